"""The branch-free log, exp and arctan of meanfield/gauss/elementary.py: within one ulp of the exact
value (40-digit mpmath), the C library's special values, and the same bits compiled and interpreted.

One ulp is the bound fdlibm and Cephes state for these algorithms (below 1 ulp; Cephes atan 1.9e-16
relative peak); the error is measured here in units of the last place of the exact value.
"""

import math

import mpmath
import numpy as np
import pytest

from meanfield.gauss import smooth_closed
from meanfield.gauss.elementary import atan_nonneg, atan_ratio, exp, frexp, ldexp, log, log_scaled, scaled_product
from meanfield.gauss.jit import kernel

_RNG = np.random.default_rng(20261203)


@kernel(cache=False, error_model="numpy")
def _log_array(x, out):
    for i in range(x.size):
        out[i] = log(x[i])


@kernel(cache=False, error_model="numpy")
def _exp_array(x, out):
    for i in range(x.size):
        out[i] = exp(x[i])


@kernel(cache=False, error_model="numpy")
def _atan_array(x, out):
    for i in range(x.size):
        out[i] = atan_nonneg(x[i])


_ARRAYS = {"log": (_log_array, mpmath.log), "exp": (_exp_array, mpmath.exp), "atan": (_atan_array, mpmath.atan)}

#: per function, arguments over every regime: log from subnormals to the largest double and tightly
#: around 1 (where f = m − 1 is small); exp over its whole finite range, around 0, and where its
#: result is subnormal; atan on both sides of each reduction's switch (0.66, tan 3π/8) and far out
_POINTS = {
    "log": np.concatenate([np.exp(_RNG.uniform(-744.0, 709.0, 600)), 1.0 + _RNG.uniform(-1e-3, 1e-3, 200),
                           _RNG.uniform(0.7, 1.42, 200), [5e-324, 1e-310, 2.2250738585072014e-308, 1.0,
                                                          np.nextafter(1.0, 2.0), np.finfo(float).max]]),
    "exp": np.concatenate([_RNG.uniform(-745.0, 709.7, 600), _RNG.uniform(-1e-3, 1e-3, 200),
                           _RNG.uniform(-745.1, -708.0, 200), [0.0, -0.0, 709.78, -745.13, 1.0, -1.0]]),
    "atan": np.concatenate([_RNG.uniform(0.0, 3.0, 600), np.exp(_RNG.uniform(-30.0, 30.0, 200)),
                            [0.0, 0.66, np.nextafter(0.66, 1.0), 2.414213562373095, 2.4142135623730954,
                             1.0, 1e300, np.finfo(float).max]]),
}


def _ulp_errors(name, x):
    compiled, exact = _ARRAYS[name]
    out = np.empty_like(x)
    compiled.compiled(x, out)
    with mpmath.workdps(40):
        errors = []
        for value, arg in zip(out, x):
            truth = exact(mpmath.mpf(float(arg)))
            if truth == 0:
                errors.append(0.0 if value == 0 else math.inf)
                continue
            scale = math.ulp(float(truth)) if abs(truth) >= 2.2250738585072014e-308 else 5e-324
            errors.append(float(abs(mpmath.mpf(float(value)) - truth) / scale))
    return np.array(errors)


@pytest.mark.parametrize("name", ["log", "exp", "atan"])
def test_within_one_ulp_of_mpmath(name):
    errors = _ulp_errors(name, _POINTS[name])
    assert errors.max() < 1.0, (name, errors.max(), _POINTS[name][np.argmax(errors)])


_SPECIALS = np.array([0.0, -0.0, -1.0, 5e-324, np.inf, -np.inf, np.nan, 1e-300, 1e300, 709.79, -745.2, 800.0])


@pytest.mark.parametrize("name,reference", [("log", np.log), ("exp", np.exp)])
def test_special_values_are_the_c_librarys(name, reference):
    """0, negatives, subnormals, ±inf, NaN and the over/underflow edges: what numpy returns."""
    out = np.empty_like(_SPECIALS)
    _ARRAYS[name][0].compiled(_SPECIALS, out)
    with np.errstate(all="ignore"):
        expected = reference(_SPECIALS)
    np.testing.assert_array_equal(out, expected)


def test_atan_at_its_limits():
    out = np.empty(3)
    _atan_array.compiled(np.array([0.0, np.inf, np.nan]), out)
    assert out[0] == 0.0 and out[1] == math.pi / 2 and np.isnan(out[2])


@pytest.mark.parametrize("name", ["log", "exp", "atan"])
def test_interpreted_gives_the_compiled_bits(name):
    """IEEE arithmetic and bit moves only: the interpreted source (a few points of a recursion run so)
    returns the compiled bits, special values included."""
    array = _ARRAYS[name][0]
    x = np.concatenate([_POINTS[name][:200], _SPECIALS if name != "atan" else [0.0, np.inf, np.nan]])
    compiled, interpreted = np.empty_like(x), np.empty_like(x)
    array.compiled(x, compiled)
    array.interpreted(x, interpreted)
    np.testing.assert_array_equal(compiled.view(np.int64)[~np.isnan(compiled)],
                                  interpreted.view(np.int64)[~np.isnan(compiled)])
    assert np.array_equal(np.isnan(compiled), np.isnan(interpreted))


@pytest.mark.parametrize("name", ["erf", "gelu"])
def test_smooth_layers_at_the_edges_of_q(name):
    """q = 0 gives f(0)², f'(0)²; q -> ∞ the limits (erf: Q -> 1, φ -> 0; GELU: Q/q -> 1/2, φ -> 1/2)
    instead of a ratio of overflowed terms."""
    big_q, phi = smooth_closed.second_moment_and_jacobian(name, np.array([0.0, 1e300, 1e308, np.inf]))
    if name == "erf":
        np.testing.assert_array_equal(big_q, [0.0, 1.0, 1.0, 1.0])
        assert phi[0] == 4.0 / math.pi and np.all(phi[1:] < 1e-149)
    else:
        assert big_q[0] == 0.0 and phi[0] == 0.25
        np.testing.assert_allclose(big_q[1:3] / np.array([1e300, 1e308]), 0.5, rtol=1e-15)
        np.testing.assert_allclose(phi[1:], 0.5, rtol=1e-15)


@kernel(cache=False, error_model="numpy")
def _frexp_array(x, m, k):
    for i in range(x.size):
        m[i], k[i] = frexp(x[i])


@kernel(cache=False, error_model="numpy")
def _ldexp_array(m, k, out):
    for i in range(m.size):
        out[i] = ldexp(m[i], k[i])


#: every kind of float64: normal over the whole exponent range, subnormal, both signs, the edges
_SCALED = np.concatenate([np.exp(_RNG.uniform(-744.0, 709.0, 300)), -np.exp(_RNG.uniform(-700.0, 700.0, 50)),
                          [5e-324, 1e-310, 2.2250738585072014e-308, 2.225073858507201e-308, 1.0, 2.0,
                           np.nextafter(2.0, 0.0), np.finfo(float).max, -5e-324]])


@pytest.mark.parametrize("way", ["compiled", "interpreted"])
def test_frexp_splits_exactly_and_ldexp_restores(way):
    """x = m 2^k with 1 <= |m| < 2 (math.frexp's m in [1/2, 1) doubled) for every finite x ≠ 0,
    subnormals included; ldexp(m, k) gives x back bit for bit; ±0, ±inf, NaN pass through."""
    x = np.concatenate([_SCALED, [0.0, -0.0, np.inf, -np.inf, np.nan]])
    m, k, back = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    getattr(_frexp_array, way)(x, m, k)
    getattr(_ldexp_array, way)(m, k, back)
    finite = _SCALED.size
    expected = [math.frexp(v) for v in _SCALED]
    np.testing.assert_array_equal(m[:finite], [2.0 * e[0] for e in expected])
    np.testing.assert_array_equal(k[:finite], [e[1] - 1 for e in expected])
    np.testing.assert_array_equal(back[:finite].view(np.int64), _SCALED.view(np.int64))
    np.testing.assert_array_equal(m[finite:], x[finite:])
    np.testing.assert_array_equal(back[finite:], x[finite:])


@pytest.mark.parametrize("way", ["compiled", "interpreted"])
def test_ldexp_rounds_once_like_the_c_library(way):
    """m 2^k for exponents far outside float64's range (inf, 0) and into the subnormals, where the
    result is rounded once: math.ldexp's value, which is correctly rounded."""
    m = _RNG.uniform(1.0, 2.0, 400) * np.where(np.arange(400) % 7 == 0, -1.0, 1.0)
    k = np.concatenate([_RNG.integers(-1080, -1015, 200), _RNG.integers(-3000, 3000, 150),
                        [1023, 1024, -1074, -1075, -1076, 5000, -5000, 10**6, -10**6] + [0] * 41]).astype(float)
    out = np.empty_like(m)
    getattr(_ldexp_array, way)(m, k, out)
    expected = []
    for mi, ki in zip(m, k):
        try:
            expected.append(math.ldexp(mi, int(ki)))
        except OverflowError:
            expected.append(math.copysign(math.inf, mi))
    np.testing.assert_array_equal(out, expected)


@kernel(cache=False, error_model="numpy")
def _product_log(x, out):
    m, k = 1.0, 0.0
    for i in range(x.size):
        m, k = scaled_product(m, k, x[i])
    out[0], out[1] = ldexp(m, k), log_scaled(m, k)


def test_scaled_product_through_overflow_and_underflow():
    """A product of 2,000 factors whose partial products reach 10^±2000 (outside float64) and whose
    value is 10^−300: the scaled product and its log against 60-digit mpmath, to rounding (each of
    the 2,000 steps rounds once: |error| <= 2000 · 2⁻⁵³ relative, and the log to one ulp of it)."""
    logs = np.concatenate([np.full(1000, 2.0), np.full(1000, -2.3)]) + _RNG.uniform(-0.1, 0.1, 2000)
    logs += (-300.0 - logs.sum()) / logs.size
    x = 10.0 ** logs
    out = np.empty(2)
    _product_log.compiled(x, out)
    with mpmath.workdps(60):
        exact = mpmath.fprod([mpmath.mpf(float(v)) for v in x])
        assert abs(out[0] / exact - 1) < 2000 * 2.0**-53
        assert abs(out[1] - mpmath.log(exact)) < 2000 * 2.0**-53 + 4 * math.ulp(float(mpmath.log(exact)))
    interpreted = np.empty(2)
    _product_log.interpreted(x, interpreted)
    np.testing.assert_array_equal(out, interpreted)


def test_scaled_product_keeps_zero_inf_and_nan():
    """Once a factor is 0, inf or NaN, the product is that (0·inf = NaN), as the log form's sums of
    −inf and +inf were."""
    out = np.empty(2)
    for factors, value, log_value in (([2.0, 0.0, 3.0], 0.0, -np.inf), ([2.0, np.inf, 3.0], np.inf, np.inf),
                                      ([np.inf, 0.0], np.nan, np.nan), ([1.0, np.nan, 2.0], np.nan, np.nan)):
        _product_log.compiled(np.array(factors), out)
        np.testing.assert_array_equal(out, [value, log_value])


@kernel(cache=False, error_model="numpy")
def _atan_ratio_array(y, x, out):
    for i in range(y.size):
        out[i] = atan_ratio(y[i], x[i])


def test_atan_ratio_against_mpmath():
    """arctan(y/x) without forming y/x, against 40-digit mpmath of the exact ratio, on both sides of
    each reduction's switch.  Bound: Cephes' 1 ulp, plus the reduced argument's own rounding (its
    numerator and denominator each rounded once and the quotient once: 1.5 ulp relative, which
    reaches the result at most in full): 2.5 ulp."""
    x = np.exp(_RNG.uniform(-20.0, 20.0, 600))
    ratio = np.concatenate([_RNG.uniform(0.0, 3.0, 300), np.exp(_RNG.uniform(-25.0, 25.0, 200)),
                            0.66 * (1 + _RNG.uniform(-1e-6, 1e-6, 50)), 2.414213562373095 * (1 + _RNG.uniform(-1e-6, 1e-6, 50))])
    y = ratio * x
    out = np.empty_like(x)
    _atan_ratio_array.compiled(y, x, out)
    with mpmath.workdps(40):
        errors = [float(abs(mpmath.mpf(float(v)) - mpmath.atan(mpmath.mpf(float(a)) / mpmath.mpf(float(b))))
                        / math.ulp(float(v))) if v > 0 else 0.0 for v, a, b in zip(out, y, x)]
    assert max(errors) <= 2.5, max(errors)
    interpreted = np.empty_like(x)
    _atan_ratio_array.interpreted(y, x, interpreted)
    np.testing.assert_array_equal(out, interpreted)
