"""Recursions: identities, vectorisation, divergence, widths, Prop 3.2."""

import numpy as np
import pytest
import xarray as xr

import meanfield as mf

SPECS = ["selu", "dselu:epsilon=0.017", "sselu:epsilon=0.017", "lselu:epsilon=0.03", "tanh"]


@pytest.mark.parametrize("spec", SPECS)
def test_forward_is_the_second_moment_map(spec):
    ds = mf.recursion(spec, 6, q0=0.7, sigma_w2=1.3, sigma_b2=0.1)
    q = ds.q.values
    np.testing.assert_allclose(q[1:], 0.1 + 1.3 * mf.second_moment(spec, q[:-1]), rtol=1e-14, atol=0)
    # Equivalent form (eq 17): q_l = σ_b² + q_{l-1} χ_l / (1 + δ_{q_{l-1}}).
    np.testing.assert_allclose(q[1:], 0.1 + q[:-1] * ds.chi.values[1:] / ds.explosion_factor.values[:-1],
                               rtol=1e-14, atol=0)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("sigma_w2", [0.8, 1.0, 1.2])
def test_prop31_identity(spec, sigma_w2):
    # (eq 27): q_l ∏(1 + δ) g_l = q_0 g_0 whenever σ_b² = 0 (any σ_w²).
    ds = mf.recursion(spec, 100, q0=[0.3, 1.0, 3.0], sigma_w2=sigma_w2)
    np.testing.assert_allclose(ds.prop31.values, 1.0, rtol=0, atol=1e-11)


def test_prop31_breaks_with_bias():
    ds = mf.recursion("selu", 20, q0=1.0, sigma_b2=0.2)
    assert float(np.max(np.abs(ds.prop31 - 1))) > 1e-2


def test_backward_is_the_product_of_chi():
    ds = mf.recursion("sselu:epsilon=0.03", 30, q0=2.0)
    chi = ds.chi.values
    expected = np.array([np.prod(chi[l + 1:]) for l in range(31)])
    np.testing.assert_allclose(ds.grad.values, expected, rtol=1e-13, atol=0)


def test_unequal_widths_per_unit_gradient():
    widths = [64, 128, 256, 128]
    ds = mf.recursion("selu", 3, q0=1.0, widths=widths)
    np.testing.assert_allclose(ds.grad_per_unit.values, ds.grad.values * widths[-1] / np.array(widths), rtol=1e-15)
    with pytest.raises(ValueError, match="depth \\+ 1 = 4"):
        mf.recursion("selu", 3, widths=[1, 2])


def test_vectorised_equals_one_at_a_time():
    q0 = np.array([0.2, 1.0, 5.0])
    w = np.array([0.9, 1.0, 1.1])
    act = mf.ExpLinear(name="sselu", lam=1.0, alpha=np.array([2.0, 2.5, 3.0]), rate=np.array([0.5, 0.6, 0.7]))
    ds = mf.recursion(act, 25, q0=q0, sigma_w2=w)
    for i in range(3):
        single = mf.recursion(mf.ExpLinear(name="sselu", lam=1.0, alpha=[2.0, 2.5, 3.0][i], rate=[0.5, 0.6, 0.7][i]),
                              25, q0=q0[i], sigma_w2=w[i])
        np.testing.assert_allclose(ds.q.values[i], single.q.values, rtol=1e-15, atol=0)
        np.testing.assert_allclose(ds.grad.values[i], single.grad.values, rtol=1e-13, atol=0)


def test_named_dimensions_broadcast():
    q0 = xr.DataArray([0.5, 2.0], dims="q0")
    w = xr.DataArray([0.9, 1.0, 1.1], dims="sigma_w2")
    ds = mf.recursion("selu", 5, q0=q0, sigma_w2=w)
    assert ds.q.dims == ("q0", "sigma_w2", "layer")
    assert ds.q.shape == (2, 3, 6)
    np.testing.assert_allclose(ds.q.sel(q0=2.0, sigma_w2=1.1).values,
                               mf.recursion("selu", 5, q0=2.0, sigma_w2=1.1).q.values, rtol=1e-15)
    assert ds.attrs["meanfield_version"] == mf.__version__ and "Prop A.1" in ds.attrs["equation"]


def test_large_sweep_is_one_call():
    q0 = np.geomspace(0.01, 10, 1000)
    ds = mf.recursion("sselu:epsilon=0.03", 1000, q0=q0)
    assert ds.q.shape == (1000, 1001)
    assert np.all(np.isfinite(ds.q.values))


def test_divergence_is_recorded_not_raised():
    # σ_w² λ²/2 > 1 makes q grow geometrically until it overflows.
    ds = mf.recursion("selu", 2000, q0=1.0, sigma_w2=[1.0, 4.0])
    assert int(ds.diverged_at[0]) == -1
    k = int(ds.diverged_at[1])
    assert 0 < k < 2000
    assert np.all(np.isfinite(ds.q.values[1, :k])) and not np.isfinite(ds.q.values[1, k])


@pytest.mark.parametrize("bad,match", [
    (dict(depth=0), "depth must be an integer >= 1"),
    (dict(depth=2.5), "depth must be an integer"),
    (dict(depth=3, q0=-1.0), "q0 must be finite and > 0"),
    (dict(depth=3, q0=[1.0, np.nan]), r"q0\[1\]"),
    (dict(depth=3, sigma_w2=0.0), "sigma_w2 must be finite and > 0"),
    (dict(depth=3, sigma_b2=-0.1), "sigma_b2 must be finite and >= 0"),
    (dict(depth=3, q0=[1.0, 2.0], sigma_w2=[1.0, 2.0, 3.0]), "do not broadcast"),
])
def test_bad_recursion_input(bad, match):
    with pytest.raises(ValueError, match=match):
        mf.recursion("selu", **bad)


def test_mean_recursion_prop32():
    ds = mf.mean_recursion("dselu:epsilon=0.017", 6, q0=1.5, m0=0.5, mean_weight=[0.0, 1e-3], widths=256)
    # μ_w = 0: the mean vanishes after one weight matrix, and q follows Prop A.1 from layer 1 on.
    assert np.all(ds.h_mean.values[0, 1:] == 0)
    m = ds.h_mean.values[1]
    # m_l = μ_w N_{l-1} M(m_{l-1}, v_{l-1}) (eq 36 with eq 12).
    for l in range(1, 7):
        expected = 1e-3 * 256 * mf.mean_map("dselu:epsilon=0.017", m[l - 1], ds.h_variance.values[1, l - 1])
        assert abs(m[l] - expected) <= 1e-14 * abs(expected)
    np.testing.assert_allclose(ds.mean_gain.values[1, 1:], 0.256, rtol=1e-15)
    zero = mf.mean_recursion("selu", 6, q0=1.0, m0=0.0, mean_weight=0.0, widths=64)
    np.testing.assert_allclose(zero.q.values, mf.recursion("selu", 6, q0=1.0).q.values, rtol=1e-14)
    with pytest.raises(ValueError, match="q0 must exceed m0"):
        mf.mean_recursion("selu", 3, q0=0.1, m0=1.0)


def test_vanishing_signal_is_data_not_divergence():
    """GELU at sigma_w2 = 1 shrinks q by ~1/2 a layer; it underflows to 0 by layer ~540 (the true value
    is ~1e-600): recorded as 0 with vanished_at, while the gradient's log stays finite."""
    ds = mf.recursion("gelu", 1000, q0=1.0)
    at = int(ds.vanished_at)
    assert 400 < at < 700 and int(ds.diverged_at) == -1
    assert np.all(ds.q.values[at:] == 0) and np.all(ds.q.values[:at] > 0)
    assert np.all(np.isfinite(ds.log_grad.values)) and np.all(np.isfinite(ds.chi.values[1:]))
    assert int(mf.recursion("selu", 50).vanished_at) == -1


@pytest.mark.parametrize("spec", ["erf", "gelu", "selu"])
def test_compiled_and_interpreted_layer_loops_give_the_same_bits(spec):
    """A small recursion runs its compiled loops interpreted (meanfield/gauss/jit.py): the forward
    loop and the derived quantities give the same bits either way, vanished and diverged layers
    included (q0 = 0 is outside the public range, so the arrays are built here)."""
    from meanfield.gauss import smooth_closed
    from meanfield.theory import recursions

    rng = np.random.default_rng(3)
    layers, n = 9, 6
    q = np.empty((layers, n))
    q[0] = [1e-300, 0.5, 1.0, 3.0, 1e200, 7.0]
    w2, b2 = rng.uniform(0.5, 3.0, n), np.where(np.arange(n) % 2, 0.0, 0.1)
    big_q, phi = np.empty_like(q), np.empty_like(q)
    if spec in smooth_closed.LAYERS:
        smooth_closed._forward.compiled(smooth_closed.LAYERS[spec], q, big_q, phi, w2, b2, 0, n)
        twin = [np.empty_like(q) for _ in range(3)]
        twin[0][0] = q[0]
        smooth_closed._forward.interpreted(smooth_closed.LAYERS[spec], *twin, w2, b2, 0, n)
        for a, b in zip((q, big_q, phi), twin):
            assert np.array_equal(a.view(np.int64), b.view(np.int64)) or np.array_equal(a, b, equal_nan=True)
    else:
        big_q, phi = rng.uniform(0.1, 2.0, q.shape), rng.uniform(0.1, 2.0, q.shape)
        q = rng.uniform(0.1, 2.0, q.shape)
    q[4, 2], q[5, 3], big_q[5, 3] = np.inf, 0.0, 0.0
    chi_phi = np.concatenate([np.full((1, n), np.nan), phi])  # φ(q_l) in row l + 1
    outputs = []
    for run in (recursions._derived.compiled, recursions._derived.interpreted):
        arrays = [big_q.copy(), chi_phi.copy()] + [np.empty_like(q) for _ in range(4)] + [np.empty((2, n), dtype=np.int64)]
        run(q, arrays[0], arrays[1], w2, *arrays[2:], 0, n)
        outputs.append(arrays)
    for a, b in zip(*outputs):
        np.testing.assert_array_equal(a, b)
        assert np.array_equal(np.where(np.isnan(a), 0, a).view(np.int64) if a.dtype == float else a,
                              np.where(np.isnan(b), 0, b).view(np.int64) if b.dtype == float else b)


@pytest.mark.parametrize("spec", ["erf", "gelu", "selu"])
def test_chunks_of_configurations_on_threads_give_the_same_bits(spec, monkeypatch):
    """The compiled passes run over chunks of configurations side by side (jit.run_in_column_chunks);
    each configuration's arithmetic is the same whatever the chunking, so the bits are the same with
    one thread and with three, through vanishing and diverging configurations."""
    from meanfield.gauss import jit

    q0 = np.geomspace(1e-3, 1e3, 200)
    sigma_w2 = xr.DataArray([1e-6, 1.0, 4.0, 1e6], dims="sigma_w2")
    monkeypatch.setattr(jit, "PARALLEL_POINTS", 0)
    runs = []
    for threads in (1, 3):
        monkeypatch.setattr(jit, "kernel_threads", lambda threads=threads: threads)
        assert len(jit.column_chunks(800, 800 * 61)) == threads
        runs.append(mf.recursion(spec, 60, q0=q0, sigma_w2=sigma_w2))
    xr.testing.assert_identical(*runs)
    assert runs[0].vanished_at.max() > 0 and (spec == "erf" or runs[0].diverged_at.max() > 0)
