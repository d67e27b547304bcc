"""Closed forms of the exponential-linear family against scipy.integrate.quad."""

import numpy as np
import pytest
from scipy import integrate

import meanfield as mf
from conftest import TOL

FAMILIES = {
    "selu": dict(lam=mf.SELU_LAMBDA, alpha=mf.SELU_ALPHA, rate=1.0, slope=0.0),
    "sselu": dict(lam=1.0, alpha=3.28, rate=0.41, slope=0.0),
    "sselu_steep": dict(lam=1.2, alpha=0.7, rate=10.0, slope=0.0),
    "lselu": dict(lam=1.0, alpha=0.86, rate=1.0, slope=0.55),
    "lselu_negative_slope": dict(lam=1.1, alpha=1.5, rate=1.0, slope=-0.2),
    "leaky_relu": dict(lam=1.0, alpha=0.0, rate=1.0, slope=0.1),
    "relu": dict(lam=1.0, alpha=0.0, rate=1.0, slope=0.0),
}
Q_POINTS = [1e-6, 1e-3, 0.05, 0.5, 1.0, 2.7, 30.0, 1e3]


def _expect(g, m, s):
    """E[g(m + s z)] by quad, split at the kink x = 0 (z = −m/s)."""
    pdf = lambda z: np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)  # noqa: E731
    z0 = -m / s
    pieces = [(-np.inf, z0), (z0, np.inf)]
    return sum(integrate.quad(lambda z: g(m + s * z) * pdf(z), a, b, epsabs=0, epsrel=1e-13, limit=400)[0]
               for a, b in pieces)


def _act(params):
    return mf.ExpLinear(name="sselu", **params)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("q", Q_POINTS)
def test_zero_mean_functionals(family, q):
    act = _act(FAMILIES[family])
    s = np.sqrt(q)
    f = lambda x: float(act.f(x))  # noqa: E731
    df = lambda x: float(act.df(x))  # noqa: E731
    expected = {
        "Q": _expect(lambda x: f(x) ** 2, 0.0, s),
        "phi": _expect(lambda x: df(x) ** 2, 0.0, s),
        "mean": _expect(f, 0.0, s),
    }
    got = {
        "Q": mf.second_moment(act, q),
        "phi": mf.jacobian_second_moment(act, q),
        "mean": mf.mean_map(act, 0.0, q),
    }
    for key in expected:
        scale = max(abs(expected[key]), 1e-300)
        if key == "mean":  # E[f] can vanish (SELU at q = 1): compare against the scale of f
            scale = max(scale, s)
        assert abs(got[key] - expected[key]) <= TOL["closed_vs_quad"] * scale, (key, got[key], expected[key])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("q", [1e-3, 0.5, 1.0, 4.0, 100.0])
def test_derivatives_against_finite_differences_of_quad(family, q):
    # dφ/dq = E[f'(x)² (z² − 1)]/(2q) and dQ/dq likewise (Stein), both by quad.
    act = _act(FAMILIES[family])
    s = np.sqrt(q)
    stein = lambda g: _expect(lambda x: g(x) * ((x / s) ** 2 - 1), 0.0, s) / (2 * q)  # noqa: E731
    dphi = stein(lambda x: float(act.df(x)) ** 2)
    dq = stein(lambda x: float(act.f(x)) ** 2)
    got_dphi = mf.jacobian_second_moment_derivative(act, q)
    got_dq = mf.second_moment_derivative(act, q)
    assert abs(got_dq - dq) <= TOL["closed_vs_quad"] * abs(dq)
    if family in ("relu", "leaky_relu"):
        assert got_dphi == 0.0  # φ is constant for piecewise-linear f
    else:
        assert abs(got_dphi - dphi) <= TOL["closed_vs_quad"] * abs(dphi)


@pytest.mark.parametrize("family", ["selu", "sselu", "lselu", "leaky_relu"])
@pytest.mark.parametrize("m,s2", [(0.5, 1.0), (-0.7, 0.3), (2.0, 4.0), (-3.0, 0.5), (0.1, 1e-4), (1.0, 50.0)])
def test_general_mean(family, m, s2):
    """M, S and their (m, v) gradients against quad of the derivative forms.

    ∂M/∂m = E[f'], ∂M/∂v = ½(E[f''] + jump·n(m/s)/s), ∂S/∂m = 2E[f f'],
    ∂S/∂v = E[f'²] + E[f f''] (f(0) = 0: no jump term), f'' on each side of
    the kink by a central difference of f' (error ~1e-10).
    """
    act = _act(FAMILIES[family])
    s = np.sqrt(s2)
    f = lambda x: float(act.f(x))  # noqa: E731
    df = lambda x: float(act.df(x))  # noqa: E731
    h = 1e-5
    d2f = lambda x: (df(x + h) - df(x - h)) / (2 * h) if abs(x) > h else 0.0  # noqa: E731
    jump = df(1e-300) - df(-1e-300)
    density0 = np.exp(-0.5 * (m / s) ** 2) / np.sqrt(2 * np.pi) / s
    expected = {
        "mean": _expect(f, m, s),
        "second": _expect(lambda x: f(x) ** 2, m, s),
        "d_mean_dm": _expect(df, m, s),
        "d_mean_dv": 0.5 * (_expect(d2f, m, s) + jump * density0),
        "d_second_dm": 2 * _expect(lambda x: f(x) * df(x), m, s),
        "d_second_dv": _expect(lambda x: df(x) ** 2 + f(x) * d2f(x), m, s),
    }
    got = mf.mean_map_all(act, m, s2)
    for key, value in expected.items():
        tol = 1e-8 if "dv" in key else TOL["closed_vs_quad"]  # f'' by finite differences: ~1e-10
        scale = max(abs(value), 1e-12 * max(abs(expected["second"]), 1.0))
        assert abs(got[key] - value) <= tol * scale, (key, got[key], value)


def test_broadcasting_over_parameters_and_q():
    alpha = np.array([1.0, 2.0, 3.0])[:, None]
    q = np.array([0.5, 1.0, 2.0, 4.0])
    act = mf.ExpLinear(name="sselu", lam=1.0, alpha=alpha, rate=0.5)
    out = mf.second_moment(act, q)
    assert out.shape == (3, 4)
    for i, a in enumerate([1.0, 2.0, 3.0]):
        single = mf.second_moment(mf.ExpLinear(name="sselu", lam=1.0, alpha=a, rate=0.5), q)
        np.testing.assert_allclose(out[i], single, rtol=1e-15, atol=0)


def test_moments_broadcast_over_array_parameters():
    """The README says everything broadcasts over array-valued parameters: moments puts them first."""
    arr = mf.ExpLinear(name="sselu", lam=1.0, alpha=[2.0, 3.0], rate=0.5)
    ds = mf.moments(arr, [0.5, 1.0, 2.0])
    assert ds.Q.dims == ("config", "q") and ds.Q.shape == (2, 3)
    for i, a in enumerate([2.0, 3.0]):
        one = mf.moments(mf.ExpLinear(name="sselu", lam=1.0, alpha=a, rate=0.5), [0.5, 1.0, 2.0])
        np.testing.assert_array_equal(ds.Q.values[i], one.Q.values)
        assert float(ds.gamma1[i]) == pytest.approx(one.attrs["gamma1"], rel=1e-15)


def test_moments_honour_rule_and_order_for_every_variable():
    # Hermite order 3 is a poor rule for softplus's mean: the Dataset must show the rule asked for.
    coarse = mf.moments("softplus", [1.0], method="quadrature", rule="hermite", order=3)
    np.testing.assert_allclose(coarse.f_mean, mf.mean_map("softplus", 0.0, 1.0, rule="hermite", order=3),
                               rtol=1e-15)
    assert abs(float(coarse.f_mean[0]) - float(mf.mean_map("softplus", 0.0, 1.0))) > 1e-4
