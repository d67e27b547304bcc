"""Mills-ratio helpers against 120-digit mpmath, one test per numerical regime."""

import mpmath as mp
import numpy as np
import pytest

from meanfield.gauss import mills
from conftest import TOL

mp.mp.dps = 120  # (1 + t²)R − t cancels ~4·log10(t) digits; 120 covers t = 1e8 with room


def _reference(t):
    t = mp.mpf(t)
    r = mp.ncdf(-t) / mp.npdf(t)
    return r, t * r - 1, (1 + t * t) * r - t


def _check(ts):
    for t in ts:
        r, d1, d2 = _reference(t)
        got = (mills.mills(np.array([t]))[0], mills.mills_d1(np.array([t]))[0], mills.mills_d2(np.array([t]))[0])
        for g, ref in zip(got, (r, d1, d2)):
            assert abs((mp.mpf(float(g)) - ref) / ref) < TOL["mpmath"], (t, g, ref)


def test_mills_near_zero():
    _check([0.0, 1e-12, 1e-6, 1e-3, 0.1])


def test_mills_moderate():
    _check([0.5, 1.0, 2.0, 3.0, 3.999999])


def test_mills_continued_fraction_branch():
    # t >= 4 switches to the continued fraction; both sides of the switch.
    _check([4.0, 4.000001, 7.0, 9.99, 10.0, 30.0])


def test_mills_huge():
    _check([1e3, 1e5, 1e8])


def test_mills_negative():
    _check([-0.5, -3.0, -10.0, -25.0])


@pytest.mark.parametrize("t", [1e-10, 1e-4, 0.1, 0.4999, 0.5, 0.5001, 2.0, 3.999, 4.001, 50.0, 63.999, 64.001, 1e4])
def test_second_difference(t):
    # R(2t) − 2R(t) + R(0) is O(t²): the Taylor branch avoids cancellation.
    ref = lambda s: mp.ncdf(-s) / mp.npdf(s)  # noqa: E731
    tt = mp.mpf(t)
    expected = ref(2 * tt) - 2 * ref(tt) + ref(0)
    got = mills.mills_second_difference(np.array([t]))[0]
    assert abs((mp.mpf(float(got)) - expected) / expected) < TOL["mpmath"]


@pytest.mark.parametrize("a,m,s", [(0.0, 0.0, 1.0), (1.0, 0.3, 0.7), (2.5, -1.0, 2.0), (0.4, -30.0, 1.0),
                                   (3.0, 0.2, 0.05), (0.0, -8.0, 1.0), (10.0, 0.0, 100.0)])
def test_tilted_half_moments(a, m, s):
    # E[x^k e^{ax} 1{x<=0}], x ~ N(m, s²), against mpmath quadrature.
    got = mills.tilted_half_moments(a, m, s)
    for k in range(3):
        f = lambda x: x**k * mp.e ** (a * x) * mp.npdf(x, m, s)  # noqa: E731
        expected = mp.quad(f, [-mp.inf, min(m, 0) - 10 * s, min(m, 0), 0])
        assert abs((mp.mpf(float(got[k])) - expected) / expected) < 1e-12, (k, got[k], expected)


def test_mills_dense_grid():
    """The compiled R against scipy's erfcx on a dense grid of both signs, and all three against
    mpmath around K (u = 0) and at points where former implementations switched regime."""
    from scipy import special

    _check([0.0625, 3.5, 6.999999, 7.000001, 15.999999, 16.0, 16.000001, 64.0, 300.0])
    t = np.concatenate([np.linspace(-30.0, 0.0, 3001), np.linspace(0.0, 20.0, 20001), np.geomspace(20.0, 1e6, 500)])
    ref = np.sqrt(np.pi / 2) * special.erfcx(t / np.sqrt(2))
    scale = np.where(t < 0, np.square(t) + 1.0, 1.0)  # R's conditioning for t < 0 is t²ε (scipy's too)
    assert np.all(np.abs(mills.mills(t) / ref - 1) <= 4e-15 * scale)


def test_polynomials_against_mpmath_at_random_points():
    """R, R' and the second difference at 300 random points of [0, 80] against 40-digit
    mpmath: measured 7.8e-16, 1.5e-15 and 1.8e-15 relative at worst over 1,800 points."""
    t = np.random.default_rng(7).uniform(0.0, 80.0, 300)
    got = (mills.mills(t), mills.mills_d1(t), mills.mills_second_difference(t))
    with mp.workdps(40):
        for i, x in enumerate(t):
            r = _reference(x)[0]
            expected = (r, x * r - 1, _reference(2 * x)[0] - 2 * r + mp.sqrt(mp.pi / 2))
            for values, ref in zip(got, expected):
                assert abs((mp.mpf(float(values[i])) - ref) / ref) < 4e-15, (x, values[i], ref)


def test_scale_out_and_nan():
    t = np.array([0.3, 2.0, 9.0, 40.0])
    np.testing.assert_array_equal(mills.mills(t, scale=2.0), mills.mills(2.0 * t))
    np.testing.assert_array_equal(mills.mills_d1(t, scale=2.0), mills.mills_d1(2.0 * t))
    expected = mills.mills(t)
    buf = t.copy()
    assert mills.mills(buf, out=buf) is buf
    np.testing.assert_array_equal(buf, expected)
    assert np.isnan(mills.mills(np.nan)) and np.isnan(mills.mills_d1(np.nan)) and np.isnan(mills.mills_d2(np.nan))
    assert np.isnan(mills.mills_second_difference(np.nan))
    # the limits at +inf: R = R' = 0, the difference R(0)
    assert mills.mills(np.inf) == 0.0 and mills.mills_d1(np.inf) == 0.0
    assert mills.mills_second_difference(np.inf) == pytest.approx(np.sqrt(np.pi / 2), rel=1e-15)
    assert isinstance(mills.mills(1.0), float) and mills.mills(np.ones((2, 3))).shape == (2, 3)
    with pytest.raises(ValueError, match="C-contiguous float64"):
        mills.mills(t, out=np.empty(3))


@pytest.mark.parametrize("alpha,rate,slope", [(1.6733, 1.0, 0.0), (2.5, 0.6, 0.0), (1.3, 1.0, 0.2), (0.9, 1.0, -0.4)])
def test_exp_linear_subsets_match_all_five(alpha, rate, slope):
    """Each compiled loop (one per subset of outputs, uniform or per-point parameters)
    gives the numbers of the all-five loop (to the ulp or two by which fused
    multiply-adds placed differently can differ), and ``positive=False`` drops
    exactly the positive-branch parts."""
    from meanfield.gauss import closed_forms

    q = np.concatenate([np.geomspace(1e-8, 1e8, 401), [1.0, 4.0 / rate**2, (64.0 / rate) ** 2]])
    lam = 1.0507
    full = closed_forms.zero_mean(q, lam, alpha, rate, slope)
    per_point = closed_forms.zero_mean(q, np.full(q.shape, lam), alpha, np.full(q.shape, rate), slope)
    # E[f] = λρ(√q − α(R(0) − R(t)) − κ√q) crosses zero for some κ: rounding there is relative to its terms
    size = {name: np.abs(full[name]) for name in closed_forms.QUANTITIES}
    size["mean"] = size["mean"] + lam * np.sqrt(q) * (1.0 + abs(alpha) + abs(slope))
    for name in closed_forms.QUANTITIES:
        alone = closed_forms.zero_mean(q, lam, alpha, rate, slope, (name,))[name]
        for got in (alone, per_point[name]):
            assert np.all(np.abs(got - full[name]) <= 1e-15 * size[name]), name
    pair = closed_forms.zero_mean(q, lam, alpha, rate, slope, ("Q", "phi"))
    np.testing.assert_allclose(pair["Q"], full["Q"], rtol=1e-15, atol=0)
    neg = closed_forms.zero_mean(q, 1.0, alpha, rate, slope, positive=False)
    positive = {"Q": q / 2, "dQ": 0.5, "phi": 0.5, "dphi": 0.0, "mean": np.sqrt(q) / np.sqrt(2 * np.pi)}
    for name, scale in (("Q", lam**2), ("phi", lam**2), ("dphi", lam**2), ("mean", lam)):
        # the parts may cancel: rounding is relative to their size, not the sum's
        size = scale * (np.abs(positive[name]) + np.abs(neg[name]))
        assert np.all(np.abs(scale * (positive[name] + neg[name]) - full[name]) <= 1e-15 * size), name


def test_exp_linear_edges():
    """Empty broadcasts compute nothing; q = 0 gives dφ/dq's −∞ limit (not an error); NaN stays NaN."""
    from meanfield.gauss import closed_forms

    assert closed_forms.zero_mean(np.zeros((0, 3)), np.ones(3), 1.6, 1.0, 0.1)["Q"].shape == (0, 3)
    at_zero = closed_forms.zero_mean(0.0, 1.05, 1.67, 1.0, 0.2)
    assert at_zero["dphi"] == -np.inf and at_zero["Q"] == 0.0
    assert all(np.isnan(v) for v in closed_forms.zero_mean(np.nan, 1.05, 1.67, 1.0, 0.2).values())
    with pytest.raises(ValueError, match="subset of"):
        closed_forms.zero_mean(1.0, 1.05, 1.67, 1.0, 0.2, ("Q", "variance"))


def test_maps_in_place_across_zero():
    """The maps mend points t < 0 from a copy taken before ``out`` (here t itself) is written."""
    t = np.array([-3.0, -0.5, 0.0, 0.7, 40.0])
    for f in (mills.mills, mills.mills_d1, mills.mills_d2, mills.mills_second_difference):
        expected = f(t)
        buf = t.copy()
        assert f(buf, out=buf) is buf
        np.testing.assert_array_equal(buf, expected)
        np.testing.assert_array_equal(f(-t, scale=-1.0), expected)


@pytest.mark.parametrize("q", [1e-12, 1e-8, 1e-4, 0.3])
def test_mean_without_cancellation_at_small_q(q):
    """E[f] = λρ(√q − α(R(0) − R(t)) − κ√q) with R(0) − R(t) from its own polynomial:
    against 40-digit mpmath to 4e-15 where R(t) − R(0) formed by subtraction loses
    R(0)/t ulps (1e-10 relative at q = 1e-12)."""
    from meanfield.gauss import closed_forms

    lam, alpha, slope = 1.0507, 1.6733, 0.0
    got = closed_forms.zero_mean(q, lam, alpha, 1.0, slope, ("mean",))["mean"]
    with mp.workdps(40):
        s = mp.sqrt(mp.mpf(q))
        drop = _reference(0)[0] - _reference(s)[0]
        expected = lam * (s - alpha * drop - slope * s) / mp.sqrt(2 * mp.pi)
    assert abs((mp.mpf(float(got)) - expected) / expected) < 4e-15


@pytest.mark.parametrize("name", ["R_POLY", "D1_POLY", "DIFFERENCE_POLY", "DROP_POLY"])
def test_shipped_coefficients_are_the_fit(name):
    """The polynomials mills ships (mills_coefficients.py) are what mills_fit computes here.
    Tolerance: the fitted values come from scipy's erfcx, ~1 ulp, which may differ by an ulp
    between scipy builds; the discrete cosine transform and cheb2poly carry a perturbation δ of
    the values to at most ~(degree + 1)·δ in a coefficient, so 32 ulps of the largest one."""
    from meanfield.gauss import mills_coefficients, mills_fit

    refit = mills_fit.coefficients()[name]
    shipped = np.array(getattr(mills_coefficients, name))
    assert shipped.shape == refit.shape == (mills._DEGREE + 1,)
    np.testing.assert_allclose(shipped, refit, rtol=0, atol=32 * np.finfo(float).eps * np.max(np.abs(refit)))
