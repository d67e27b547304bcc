"""Finite and accurate from q = 1e-8 to 1e8 and for β up to 10 (no overflow, no NaN).

References: 60-digit mpmath quadrature of the defining integrals.
"""

import mpmath as mp
import numpy as np
import pytest

import meanfield as mf

mp.mp.dps = 60


def _mp_expect(g, q):
    s = mp.sqrt(q)
    f = lambda z: g(s * z) * mp.npdf(z)  # noqa: E731
    return mp.quad(f, [-mp.inf, -1 / s, 0, 1 / s, mp.inf]) if s > 1 else mp.quad(f, [-mp.inf, 0, mp.inf])


def _mp_family(lam, alpha, rate, slope):
    def f(x):
        return lam * x if x > 0 else lam * (alpha * mp.expm1(rate * x) + slope * x)

    def df(x):
        return lam if x > 0 else lam * (alpha * rate * mp.exp(rate * x) + slope)

    return f, df


CASES = [
    (mf.SELU_LAMBDA, mf.SELU_ALPHA, 1.0, 0.0),
    (1.0, 0.5, 10.0, 0.0),   # sSELU with β = 10
    (1.0, 3.0, 0.05, 0.0),   # very shallow exponential
    (1.0, 1.1, 1.0, 0.4),    # lSELU
]


@pytest.mark.parametrize("params", CASES)
@pytest.mark.parametrize("q", [1e-8, 1e-5, 1e5, 1e8])
def test_functionals_at_extreme_q(params, q):
    act = mf.ExpLinear(name="sselu", lam=params[0], alpha=params[1], rate=params[2], slope=params[3])
    f, df = _mp_family(*[mp.mpf(p) for p in params])
    ref_q = _mp_expect(lambda x: f(x) ** 2, mp.mpf(q))
    ref_phi = _mp_expect(lambda x: df(x) ** 2, mp.mpf(q))
    got_q, got_phi = mf.second_moment(act, q), mf.jacobian_second_moment(act, q)
    assert np.isfinite(got_q) and np.isfinite(got_phi)
    assert abs(mp.mpf(float(got_q)) / ref_q - 1) < 1e-12
    assert abs(mp.mpf(float(got_phi)) / ref_phi - 1) < 1e-12


def test_no_nan_over_the_whole_range():
    q = np.geomspace(1e-8, 1e8, 2001)
    for beta in [1e-3, 0.3, 1.0, 3.0, 10.0]:
        act = mf.ExpLinear(name="sselu", lam=1.0, alpha=2.0, rate=beta)
        ds = mf.moments(act, q)
        for name in ["Q", "dQ_dq", "phi", "dphi_dq", "explosion_factor", "f_mean"]:
            assert np.all(np.isfinite(ds[name].values)), (beta, name)
        # Q and φ are positive, Q grows and φ falls monotonically in q (α, β > 0).
        assert np.all(ds.Q.values > 0) and np.all(np.diff(ds.Q.values) > 0)
        assert np.all(np.diff(ds.phi.values) <= 0)


def test_explosion_factor_is_one_for_a_linear_activation():
    # Identity: f(x) = x gives Q = q and φ = 1, so 1 + δ_q = 1 exactly.
    q = np.geomspace(1e-8, 1e8, 17)
    np.testing.assert_allclose(mf.explosion_factor("leaky_relu:a=1", q), 1.0, rtol=1e-15, atol=0)
