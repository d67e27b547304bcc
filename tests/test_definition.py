"""Definition 2 (eq 7): ReLU fails, the SELU family passes, the band around q = 1."""

import pytest

import meanfield as mf


@pytest.mark.parametrize("spec", ["selu", "dselu:epsilon=0.017", "sselu:epsilon=0.01", "sselu:epsilon=0.07",
                                  "lselu:epsilon=0.03", "lselu:epsilon=0.06,central=true"])
def test_selu_family_passes(spec):
    ds = mf.self_normalization(spec)
    assert bool(ds.condition1) and bool(ds.condition2) and bool(ds.satisfied)
    lo, hi = float(ds.band_low), float(ds.band_high)
    assert lo < 1 < hi
    # The band edges solve q φ(q) = 1 and φ(q) = 1.
    assert abs(lo * mf.jacobian_second_moment(spec, lo) - 1) < 1e-12
    assert abs(mf.jacobian_second_moment(spec, hi) - 1) < 1e-12
    outside = (ds.q < lo) | (ds.q > hi)
    assert bool(ds.condition3.where(outside, True).all())
    inside = (ds.q > lo) & (ds.q < hi)
    assert not bool(ds.condition3.where(inside, False).any())


@pytest.mark.parametrize("spec", ["relu", "leaky_relu:a=0.3", "tanh", "elu"])
def test_others_fail(spec):
    assert not bool(mf.self_normalization(spec).satisfied)


def test_linear_activation_fails_condition_three_everywhere():
    # f(x) = x has φ ≡ 1 (as He-scaled ReLU, up to rounding of √2²): never
    # strictly between the bounds, and ε = 0.
    ds = mf.self_normalization("leaky_relu:a=1")
    assert not bool(ds.condition3.any())
    assert float(ds.epsilon) == 0.0 and not bool(ds.satisfied)


def test_band_shrinks_with_epsilon():
    widths = [float(mf.self_normalization(f"sselu:epsilon={e}").band_high - mf.self_normalization(
        f"sselu:epsilon={e}").band_low) for e in (0.01, 0.03, 0.07)]
    assert widths[0] < widths[1] < widths[2]


def test_rounded_table_parameters_need_a_tolerance():
    # The paper's two-decimal parameters give Q(1) = 1 only to ~1e-2.
    ds = mf.self_normalization("sselu:lambda=1.02,alpha=2.46,beta=0.58")
    assert not bool(ds.condition2)
    assert bool(mf.self_normalization("sselu:lambda=1.02,alpha=2.46,beta=0.58", atol=0.05).condition2)
