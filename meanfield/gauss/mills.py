"""Stable building blocks for Gaussian expectations.

Everything here is written in terms of the Mills ratio of the standard normal,

    R(t) = Φ(−t) / n(t) = √(π/2) · erfcx(t / √2),      n(t) = e^{−t²/2} / √(2π),

because every Gaussian expectation of the exponential-linear family reduces to
R and its first two derivatives (``R' = tR − 1``, ``R'' = (1 + t²)R − t``).
Written this way, e^{a²/2}·Φ(−a) never appears as a product of an overflowing
exponential and an underflowing tail (docs/theory.md §1).

The naive forms of R' and R'' cancel catastrophically for large t (relative
error ~ ε t² and ~ ε t⁴), and R(2t) − 2R(t) + R(0) and R(0) − R(t) at small
t.  R, R', the second difference and R(0) − R(t) are therefore each one
polynomial in a variable that maps [0, ∞) onto [−1, 1), times a factor that
carries the function's behaviour at 0 and at ∞, fitted at import to values
without cancellation (scipy's erfcx, Laplace's continued fraction
R = 1/(t + T₁), T_n = n/(t + T_{n+1}) with R' = −T₁R and R'' = T₁T₂R, Taylor
series), never typed in.  R'' takes the fraction itself at large t.

These are compiled (numba, on first call: ``jit``) scalar functions with no
branch, inside array loops that vectorise: the Mills-ratio maps below;
``closed_forms`` inlines the scalar functions into its one-pass loop of the
zero-mean moments, and ``mills_series`` into its finite-width functionals
(``compile_cache`` keys their cached machine code on this file too).  The quadrature rules live in
``quadrature``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import mills_coefficients
from .jit import fma, kernel

SQRT_HALF_PI = math.sqrt(math.pi / 2.0)          # R(0)
SQRT_2PI = math.sqrt(2.0 * math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)     # n(0)
SQRT2 = math.sqrt(2.0)


def normal_pdf(u):
    """n(u) = e^{−u²/2}/√(2π), the standard normal density."""
    return INV_SQRT_2PI * np.exp(-0.5 * np.square(u))


# ---------------------------------------------------------------------------
# R, R' and the second difference for t >= 0 are each one polynomial of
# degree _DEGREE in
#
#     u = (t − K)/(t + K) = 1 − 2K·r,      r = 1/(t + K),      K = _K,
#
# which maps [0, ∞) onto [−1, 1): R = P_R(u)·r, R' = P_1(u)·r²,
# R(2t) − 2R(t) + R(0) = P_D(u)·(t·r)² and R(0) − R(t) = P_0(u)·t·r, the
# factors carrying each function's behaviour at 0 and at ∞ (R ~ 1/t,
# R' ~ −1/t², the difference ~ R(0)t² and the drop ~ t at 0),
# so each P is smooth on the whole interval and its relative accuracy is the
# function's (Schonfelder's device for erfc, Math. Comp. 32, 1978).  Each P is
# fitted (once, by ``mills_fit.py``; not at import) as a Chebyshev series in u
# by the discrete cosine transform of its values at _FIT Chebyshev nodes
# (scipy.fft.dct: a sum of cosines in floating point would leave noise of
# 1e-15 in the small coefficients) and
# evaluated by Horner in the monomial basis, its coefficients decaying fast
# enough (below 1e-16 by degree 26) for that to be well conditioned.  No table
# and no branch: the loops vectorise (AVX-512 here), which is what makes one
# value cost about one numpy exp.
#
# The values fitted: R from scipy's erfcx (~1 ulp); R' = tR − 1, which
# cancels catastrophically for large t (relative error ~ ε t²) if computed
# so, from erfcx below _D1_DIRECT_T (where it loses at most ~2ε) and from
# Laplace's continued fraction R = 1/(t + T₁), T_n = n/(t + T_{n+1}),
# R' = −T₁R, above (depths _D1_FIT_DEPTH: 1.1e-16 from t = 1, 3e-16 from
# t = 4, against 40-digit mpmath); the difference over t² from its Taylor series
# (coefficients r_{n+1} = r_{n−1}/(n+1), from R' = tR − 1; _FIT_TAYLOR_TERMS
# terms, (2t)^n r_n < 1e-18 at t = 1 by n = 48) below t = 1 and from the direct
# form above, which loses at most 4ε/t² there; the drop over t likewise (the
# direct form loses < 2ε above t = 1).
#
# For t < 0: R(t) = √(2π)e^{t²/2} − R(−t), the reflection scipy uses too (it
# costs t²ε, R's conditioning there); R' = tR − 1 (both terms < 0: no
# cancellation); the difference (outside its documented domain) from the
# Taylor series with _TAYLOR_TERMS terms ((2t)^22 · r_22 / (R(0) t²) < 1e-17 at
# |t| = 0.2).  R'' = (1 + t²)R − t below _D2_FRACTION[0] (it loses ε·t⁴/2 ≈
# 3e-14 at most), the continued fraction (R'' = T₁T₂R) at depth
# _D2_FRACTION[1] above (3e-16); it serves only the general-mean moments.
#
# Against 40-digit mpmath at 1,800 points on [0, 64] ∪ [1e-6, 1e6]: R 7.8e-16,
# R' 1.5e-15, the difference 1.8e-15, the drop 6.0e-16 relative at worst.  K and
# the degree were chosen by that measure and by time (degree 22 to 28 and K
# from 3 to 6 were tried).  Per 10⁶ points (AMD EPYC, one core): 0.9 ms for
# any of them in a loop, 1.2–1.5 ms for the array maps below, against 20 ms for
# scipy's erfcx and 1.1 ms for numpy.exp into an existing array; piecewise
# tables (a row per 1/32, chosen per point, scalar) took 2.3 ms.
# ---------------------------------------------------------------------------

# Compiled with IEEE arithmetic: no fastmath flag, so no reordering and a fused
# multiply-add only where the source asks for one (``fma``: Horner's steps, one
# rounding each), which is what gives the interpreted kernels (``jit``) the
# same bits; and IEEE division (x/0 is ±inf, as in numpy; numba's default
# checks each division, and the check keeps a loop from vectorising).
_COMPILE = {"cache": True, "nogil": True, "error_model": "numpy"}

_K = 3.5
_DEGREE = 26
_FIT = 128
_D1_DIRECT_T = 1.0
_D1_FIT_DEPTH = ((4.0, 400), (40,))  # depth 400 below t = 4, 40 above
_D2_FRACTION = (4.0, 40)
_TAYLOR_TERMS = 22
_FIT_TAYLOR_TERMS = 48


def _taylor_coefficients(terms):
    """Taylor coefficients r_n of R at 0, n <= terms (r_{n+1} = r_{n−1}/(n+1), from R' = tR − 1)."""
    r = [SQRT_HALF_PI, -1.0]
    for n in range(1, terms):
        r.append(r[n - 1] / (n + 1))
    return np.array(r)


def _difference_coefficients(terms):
    """Coefficients of Σ_n r_n (2^n − 2) t^n, the Taylor series of R(2t) − 2R(t) + R(0)."""
    r = _taylor_coefficients(terms)
    c = r * (2.0 ** np.arange(r.size) - 2.0)
    c[0] = 0.0
    return c


@kernel(**_COMPILE, inline="always")
def _continued_fraction(t, depth):
    """(R, R', R'') from Laplace's continued fraction truncated at ``depth``."""
    tail = 0.0
    t2 = 0.0
    for n in range(depth, 0, -1):
        tail = n / (t + tail)
        if n == 2:
            t2 = tail
    r = 1.0 / (t + tail)
    return r, -tail * r, t2 * tail * r


# Module globals, which numba freezes into the compiled code.  The fits are made by
# ``python -m meanfield.gauss.mills_fit`` (``mills_fit.py``), which writes
# ``mills_coefficients.py``; tests/test_gauss.py refits and compares, so the shipped values
# are the fit's.  numba keys its on-disk cache on this file, and ``compile_cache`` adds
# ``mills_coefficients.py`` to every stamp of the package, so no cache keeps stale values.
_R_POLY = np.array(mills_coefficients.R_POLY)
_D1_POLY = np.array(mills_coefficients.D1_POLY)
_DIFFERENCE_POLY = np.array(mills_coefficients.DIFFERENCE_POLY)
_DROP_POLY = np.array(mills_coefficients.DROP_POLY)
_SECOND_DIFFERENCE = _difference_coefficients(_TAYLOR_TERMS)

# ---------------------------------------------------------------------------
# Compiled scalar functions of floats, inlined into the loops below.  The
# ``_nonneg`` ones hold for t >= 0, +inf and NaN, with no branch.
# ---------------------------------------------------------------------------


@kernel(**_COMPILE, inline="always")
def _fitted(t, poly):
    """(P(u), r): the fitted polynomial at u = 1 − 2K·r, r = 1/(t + K), by Horner."""
    r = 1.0 / (t + _K)
    u = 1.0 - 2.0 * _K * r
    acc = poly[_DEGREE]
    for j in range(_DEGREE - 1, -1, -1):
        acc = fma(acc, u, poly[j])
    return acc, r


@kernel(**_COMPILE, inline="always")
def _t_over(t, r):
    """t/(t + K) given r = 1/(t + K): 1 at t = +inf (t·r would be NaN there), NaN stays NaN."""
    return 1.0 if t == math.inf else t * r


@kernel(**_COMPILE, inline="always")
def _r_nonneg(t):
    """R(t), t >= 0."""
    p, r = _fitted(t, _R_POLY)
    return p * r


@kernel(**_COMPILE, inline="always")
def _r_d1_nonneg(t):
    """R'(t), t >= 0."""
    p, r = _fitted(t, _D1_POLY)
    return p * (r * r)


@kernel(**_COMPILE, inline="always")
def _second_difference_nonneg(t):
    """R(2t) − 2R(t) + R(0), t >= 0 ((t·r)², not t²·r², so that t = 1e200 does not overflow)."""
    p, r = _fitted(t, _DIFFERENCE_POLY)
    tr = _t_over(t, r)
    return p * (tr * tr)


@kernel(**_COMPILE, inline="always")
def _drop_nonneg(t):
    """R(0) − R(t), t >= 0, without cancellation at small t (~ t)."""
    p, r = _fitted(t, _DROP_POLY)
    return p * _t_over(t, r)


@kernel(**_COMPILE, inline="always")
def _reflected(t, r_of_minus_t):
    """R(t) for t < 0 from R(−t)."""
    return SQRT_2PI * math.exp(0.5 * t * t) - r_of_minus_t


@kernel(**_COMPILE, inline="always")
def _r(t):
    """R(t) for any t; NaN stays NaN."""
    return _reflected(t, _r_nonneg(-t)) if t < 0.0 else _r_nonneg(t)


@kernel(**_COMPILE, inline="always")
def _r_d2(t):
    """R''(t) = (1 + t²)R(t) − t."""
    if t < _D2_FRACTION[0]:
        return (1.0 + t * t) * _r(t) - t
    return _continued_fraction(t, _D2_FRACTION[1])[2]


@kernel(**_COMPILE, inline="always")
def _taylor_second_difference(t):
    """R(2t) − 2R(t) + R(0) by its Taylor series (t < 0, outside the documented domain)."""
    acc = 0.0
    for j in range(_SECOND_DIFFERENCE.size - 1, -1, -1):
        acc = fma(acc, t, _SECOND_DIFFERENCE[j])
    return acc


# ---------------------------------------------------------------------------
# Array maps of R and its helpers: a branch-free pass over every point (|t|
# for R), then the few points t < 0 mended one by one.
# ---------------------------------------------------------------------------

_MILLS, _MILLS_D1, _MILLS_D2, _DIFFERENCE = range(4)


@kernel(**_COMPILE)
def _map_into(kind, t, scale, out):
    if kind == _MILLS:
        for i in range(t.size):
            out[i] = _r_nonneg(abs(scale * t[i]))
    elif kind == _MILLS_D1:
        for i in range(t.size):
            out[i] = _r_d1_nonneg(scale * t[i])
    elif kind == _DIFFERENCE:
        for i in range(t.size):
            out[i] = _second_difference_nonneg(scale * t[i])
    else:
        for i in range(t.size):
            out[i] = _r_d2(scale * t[i])


@kernel(**_COMPILE)
def _mend_negative(kind, x, where, out):
    """out[where[j]] for the points x[j] < 0 of a map, after :func:`_map_into`."""
    for j in range(x.size):
        i, xj = where[j], x[j]
        if kind == _MILLS:
            out[i] = _reflected(xj, out[i])
        elif kind == _MILLS_D1:
            out[i] = xj * _r(xj) - 1.0
        elif kind == _DIFFERENCE:
            out[i] = _taylor_second_difference(xj)


def _output(shape, out):
    """A fresh result array, or ``out`` (which may be the argument itself; a numpy
    scalar or 0-d ``out`` is ignored: nothing can be written into it in place)."""
    if not isinstance(out, np.ndarray) or out.ndim == 0:
        return np.empty(shape)
    if out.shape != shape or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float64 array of shape {shape}")
    return out


def value(result):
    """A 0-d result as a numpy scalar (as numpy's ufuncs return), any other as is."""
    return result[()] if result.ndim == 0 else result


def _map(kind, t, scale, out):
    t = np.asarray(t, dtype=float)
    result = _output(t.shape, out)
    flat, scale = np.ascontiguousarray(t).reshape(-1), float(scale)
    where = np.flatnonzero(flat * scale < 0.0) if kind != _MILLS_D2 else np.empty(0, np.intp)  # R'' branches itself
    x = flat[where] * scale  # a copy, taken before ``out`` (which may be t) is written
    # a few points run interpreted until the kernel is compiled (``Kernel.run``): the same bits
    _map_into.run(flat.size, kind, flat, scale, result.reshape(-1))
    if x.size:
        _mend_negative.run(x.size, kind, x, where, result.reshape(-1))
    return value(result)


def mills(t, *, scale=1.0, out=None):
    """R(x) at x = scale·t, R(x) = Φ(−x)/n(x) = √(π/2)·erfcx(x/√2); finite for x > −37.

    ``out`` (C-contiguous float64 of t's shape, ``t`` itself allowed) takes the result.
    """
    return _map(_MILLS, t, scale, out)


def mills_d1(t, *, scale=1.0, out=None):
    """R'(x) = xR(x) − 1 at x = scale·t, accurate for all x > −37 (negative for every x)."""
    return _map(_MILLS_D1, t, scale, out)


def mills_d2(t, *, scale=1.0, out=None):
    """R''(x) = (1 + x²)R(x) − x at x = scale·t, accurate for all x > −37 (positive)."""
    return _map(_MILLS_D2, t, scale, out)


def mills_second_difference(t, *, scale=1.0, out=None):
    """R(2x) − 2R(x) + R(0) at x = scale·t >= 0, without cancellation at small x (~ R(0)x²)."""
    return _map(_DIFFERENCE, t, scale, out)


# ---------------------------------------------------------------------------
# Half-line moments of a Gaussian, for the general-mean functionals of ``closed_forms``.
# ---------------------------------------------------------------------------


def tilted_half_moments(a, m, s):
    """E[x^k e^{a x} 1{x <= 0}] for k = 0, 1, 2 and x ~ N(m, s²).

    Exponential tilting turns the integrand into x^k·1{x<=0} under
    N(m + a s², s²) times e^{am + a²s²/2}.  With t = m/s + a s, the identity
    e^{am + a²s²/2} n(t) = n(m/s) gives, for t >= 0,

        E0 = n(m/s) R(t),   E1 = s n(m/s) R'(t),   E2 = s² n(m/s) R''(t),

    which are free of overflow and cancellation.  For t < 0 the tail Φ(−t) is
    near one and the direct forms are stable:
    E0 = exp(am + a²s²/2 + log Φ(−t)), E1 = μ'E0 − s n(m/s),
    E2 = (μ'² + s²)E0 − μ' s n(m/s), with μ' = m + a s².

    All arguments broadcast; ``s`` must be positive.
    """
    from scipy import special  # here: 0.2 s to import, and the zero-mean functionals need none of it

    a, m, s = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a, m, s)))
    t = m / s + a * s
    shape = t.shape
    a, m, s, t = (v.ravel() for v in (a, m, s, t))
    nm = normal_pdf(m / s)
    e0 = np.empty_like(t)
    e1 = np.empty_like(t)
    e2 = np.empty_like(t)
    pos = t >= 0.0
    if pos.any():
        e0[pos] = nm[pos] * mills(t[pos])
        e1[pos] = s[pos] * nm[pos] * mills_d1(t[pos])
        e2[pos] = np.square(s[pos]) * nm[pos] * mills_d2(t[pos])
    neg = ~pos
    if neg.any():
        an, mn, sn, tn = a[neg], m[neg], s[neg], t[neg]
        mu = mn + an * np.square(sn)
        e0n = np.exp(an * mn + 0.5 * np.square(an * sn) + special.log_ndtr(-tn))
        e0[neg] = e0n
        e1[neg] = mu * e0n - sn * nm[neg]
        e2[neg] = (np.square(mu) + np.square(sn)) * e0n - mu * sn * nm[neg]
    return e0.reshape(shape), e1.reshape(shape), e2.reshape(shape)


def positive_half_moments(m, s):
    """E[x^k 1{x > 0}] for k = 0, 1, 2 and x ~ N(m, s²), by reflection x → −x."""
    e0, e1, e2 = tilted_half_moments(0.0, -np.asarray(m, dtype=float), s)
    return e0, -e1, e2
