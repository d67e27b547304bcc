"""Stable building blocks for Gaussian expectations.

Everything here is written in terms of the Mills ratio of the standard normal,

    R(t) = Φ(−t) / n(t) = √(π/2) · erfcx(t / √2),      n(t) = e^{−t²/2} / √(2π),

because every Gaussian expectation of the exponential-linear family reduces to
R and its first two derivatives (``R' = tR − 1``, ``R'' = (1 + t²)R − t``).
Written this way, e^{a²/2}·Φ(−a) never appears as a product of an overflowing
exponential and an underflowing tail (SPEC §1).

The naive forms of R' and R'' cancel catastrophically for large t (relative
error ~ ε t² and ~ ε t⁴).  For large t they come from Laplace's
continued fraction R = 1/(t + T₁), T_n = n/(t + T_{n+1}), which gives
R' = −T₁R and R'' = T₁T₂R with no subtraction at all (R' from a table of it
and from its asymptotic series, see below).  The second difference
R(2t) − 2R(t) + R(0), which is O(t²), comes from a table of it divided by t²
below ``_DIFFERENCE_T``, fitted to its Taylor series.

R and these helpers are compiled (numba) loops over the points, one regime
chosen per point; the tables are fitted at import from scipy's erfcx and
from the series above, never typed in.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
from numpy.polynomial import chebyshev
from scipy import special

SQRT_HALF_PI = math.sqrt(math.pi / 2.0)          # R(0)
SQRT_2PI = math.sqrt(2.0 * math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)     # n(0)
SQRT2 = math.sqrt(2.0)

# R' and R'' switch from their direct forms to the continued fraction at these
# t, truncated at these depths (relative error of the fraction against 60-digit
# mpmath: below 3e-16 from t = 7 at depth 20 and from t = 4 at depth 40).  Below
# the switch the direct forms lose at most ε·t² ≈ 1e-14 (R', t < 7; measured
# 3.5e-14 with the tabled R) and ε·t⁴/2 ≈ 3e-14 (R'', t < 4).  R' sits on the
# hot path of dφ/dq: above its switch it comes from a table fitted to the
# fraction (up to _CHEB_T) and from the asymptotic series (9e-16, 1.1e-15).
_D1_FRACTION = (7.0, 20)
_D2_FRACTION = (4.0, 40)

# The Taylor series of R (coefficients r_{n+1} = r_{n−1}/(n+1), from R' = tR − 1)
# gives the second difference R(2t) − 2R(t) + R(0) for small t < 0 (outside its
# documented domain; _TAYLOR_TERMS terms leave (2t)^22 · r_22 / (R(0) t²) < 1e-17
# at |t| = 0.2) and, with _FIT_TAYLOR_TERMS terms ((2t)^n r_n < 1e-18 at t = 1
# by n = 48), the values its table is fitted to below t = 1.  Below _DIFFERENCE_T the difference is
# t² times that table (one polynomial instead of two values of R: q < 51 for
# SELU-like slopes); above, the direct form, which loses at most 4ε/t² ≈ 3e-17.
# Measured against 50-digit mpmath: 2.9e-15 relative at worst.
_TAYLOR_TERMS = 22
_DIFFERENCE_T = 4.0
_FIT_TAYLOR_TERMS = 48


def normal_pdf(u):
    """n(u) = e^{−u²/2}/√(2π), the standard normal density."""
    return INV_SQRT_2PI * np.exp(-0.5 * np.square(u))


# R itself, for t >= 0: piecewise polynomials of degree _CHEB_DEGREE on pieces
# of width _CHEB_PIECE below _CHEB_T, fitted at import as Chebyshev series
# (least squares at _CHEB_FIT Chebyshev points a piece) to scipy's erfcx and
# evaluated by Horner in the monomial basis, so the table is as
# accurate as scipy, ~1 ulp, with its noise averaged down; above _CHEB_T the
# asymptotic series t·R(t) = Σ (−1)^n (2n−1)!! t^{−2n}, whose first omitted
# term (n = _ASYMPTOTIC_TERMS) is below 4e-18 at t = 16.  Against 30-digit
# mpmath on [0, 16]: 1.4e-15 relative at worst, 4.3e-16 rms.  Per 10⁶ points
# (AMD EPYC, one core): 4 ms, against 20 ms for scipy's erfcx and 1.8 ms for
# numpy.exp into an existing array.  For t < 0, R(t) = √(2π)e^{t²/2} − R(−t),
# the reflection scipy uses too (it costs t²ε, R's conditioning there).
_CHEB_PIECE = 0.0625
_CHEB_T = 16.0
_CHEB_DEGREE = 8
_CHEB_FIT = 64
_ASYMPTOTIC_TERMS = 12


def _mills_by_erfcx(t):
    """R(t) through scipy.special.erfcx (the table's source)."""
    return SQRT_HALF_PI * special.erfcx(np.asarray(t, dtype=float) / SQRT2)


def _power_rows(coefficients):
    """Chebyshev rows (one per piece) to monomial rows in the same y ∈ [−1, 1]."""
    return np.ascontiguousarray([chebyshev.cheb2poly(row) for row in coefficients])


def _chebyshev_table():
    """Row k: R on [k, k + 1]·_CHEB_PIECE as a polynomial in y ∈ [−1, 1]."""
    pieces = int(round(_CHEB_T / _CHEB_PIECE))
    y = np.cos(np.pi * (np.arange(_CHEB_FIT) + 0.5) / _CHEB_FIT)
    mids = (np.arange(pieces) + 0.5) * _CHEB_PIECE
    values = _mills_by_erfcx(mids[:, None] + 0.5 * _CHEB_PIECE * y[None, :])
    return _power_rows(chebyshev.chebfit(y, values.T, _CHEB_DEGREE).T)


def _asymptotic_coefficients():
    """(−1)^n (2n−1)!! for n = 0 .. _ASYMPTOTIC_TERMS − 1."""
    c = [1.0]
    for n in range(1, _ASYMPTOTIC_TERMS):
        c.append(-c[-1] * (2 * n - 1))
    return np.array(c)


def _taylor_coefficients(terms=_TAYLOR_TERMS):
    """Taylor coefficients r_n of R at 0, n <= terms (r_{n+1} = r_{n−1}/(n+1), from R' = tR − 1)."""
    r = [SQRT_HALF_PI, -1.0]
    for n in range(1, terms):
        r.append(r[n - 1] / (n + 1))
    return np.array(r)


_TABLE = _chebyshev_table()
_ASYMPTOTIC = _asymptotic_coefficients()
_TAYLOR = _taylor_coefficients()
# Coefficients of Σ_n r_n (2^n − 2) t^n, the Taylor series of R(2t) − 2R(t) + R(0).
_SECOND_DIFFERENCE = _TAYLOR * (2.0 ** np.arange(_TAYLOR.size) - 2.0)
_SECOND_DIFFERENCE[0] = 0.0

# ---------------------------------------------------------------------------
# Scalar kernels (compiled), and their array wrappers.  Tables are passed as
# arguments, not read as globals, so numba's on-disk cache never holds a
# stale copy.
# ---------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, inline="always")  # inlined where called (a call costs ~15 ns)
def _piecewise_polynomial(t, start, table):
    """The table's polynomial at t: row k covers [start + k, start + k + 1]·_CHEB_PIECE,
    in y ∈ [−1, 1] (Horner: a third faster than Clenshaw on the Chebyshev form)."""
    k = int((t - start) * (1.0 / _CHEB_PIECE))
    y = (t - start - (k + 0.5) * _CHEB_PIECE) * (2.0 / _CHEB_PIECE)
    acc = table[k, _CHEB_DEGREE]
    for j in range(_CHEB_DEGREE - 1, -1, -1):
        acc = acc * y + table[k, j]
    return acc


@numba.njit(cache=True, nogil=True, inline="always")  # inlined where called (a call costs ~15 ns)
def _r_positive(t, table, asymptotic):
    if t < _CHEB_T:
        return _piecewise_polynomial(t, 0.0, table)
    v = 1.0 / (t * t)
    acc = 0.0
    for j in range(_ASYMPTOTIC_TERMS - 1, -1, -1):
        acc = acc * v + asymptotic[j]
    return acc / t


@numba.njit(cache=True, nogil=True, inline="always")  # inlined where called (a call costs ~15 ns)
def _r(t, table, asymptotic):
    r = _r_positive(abs(t), table, asymptotic)  # one call site, so it is inlined; NaN stays NaN
    return SQRT_2PI * math.exp(0.5 * t * t) - r if t < 0.0 else r


@numba.njit(cache=True, nogil=True, inline="always")  # inlined where called (a call costs ~15 ns)
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


@numba.njit(cache=True, nogil=True)
def _mills_into(t, scale, out, table, asymptotic):
    for i in range(t.size):
        out[i] = _r(scale * t[i], table, asymptotic)


@numba.njit(cache=True, nogil=True)
def _derivative_into(order, t, scale, r, given, out, table, asymptotic, d1_table):
    """R' (order 1) or R'' (order 2): direct below the switch, then R' from its own
    table up to _CHEB_T and from the asymptotic series above, R'' from the
    continued fraction."""
    threshold, depth = (_D1_FRACTION if order == 1 else _D2_FRACTION)
    for i in range(t.size):
        x = scale * t[i]
        if x < threshold or x != x:
            ri = r[i] if given else _r(x, table, asymptotic)
            out[i] = x * ri - 1.0 if order == 1 else (1.0 + x * x) * ri - x
        elif order == 2:
            out[i] = _continued_fraction(x, depth)[2]
        elif x < _CHEB_T:
            out[i] = _piecewise_polynomial(x, threshold, d1_table)
        else:  # tR − 1 = Σ_{n>=1} (−1)^n (2n−1)!! t^{−2n}, summed without the 1
            v = 1.0 / (x * x)
            acc = 0.0
            for j in range(_ASYMPTOTIC_TERMS - 1, 0, -1):
                acc = (acc + asymptotic[j]) * v
            out[i] = acc


@numba.njit(cache=True, nogil=True)
def _pair_into(t, c2, c1, c0, out, table, asymptotic):
    for i in range(t.size):
        x = t[i]
        out[i] = c2 * _r(2.0 * x, table, asymptotic) + c1 * _r(x, table, asymptotic) + c0


@numba.njit(cache=True, nogil=True)
def _d1_by_continued_fraction(t):
    out = np.empty_like(t)
    for i in range(t.size):
        out[i] = _continued_fraction(t[i], _D1_FRACTION[1])[1]
    return out


def _d1_table():
    """Rows of R' on [_D1_FRACTION[0], _CHEB_T) as for R, fitted to the continued fraction (3e-16 there)."""
    start = _D1_FRACTION[0]
    pieces = int(round((_CHEB_T - start) / _CHEB_PIECE))
    y = np.cos(np.pi * (np.arange(_CHEB_FIT) + 0.5) / _CHEB_FIT)
    mids = start + (np.arange(pieces) + 0.5) * _CHEB_PIECE
    values = _d1_by_continued_fraction((mids[:, None] + 0.5 * _CHEB_PIECE * y[None, :]).ravel())
    return _power_rows(chebyshev.chebfit(y, values.reshape(pieces, -1).T, _CHEB_DEGREE).T)


_D1_TABLE = _d1_table()


@numba.njit(cache=True, nogil=True)
def _second_difference_into(t, r1, r2, given1, given2, out, taylor, table, asymptotic, d2_table):
    """R(2t) − 2R(t) + R(0): t²·g(t) from g's table on [0, _DIFFERENCE_T), the
    Taylor series below 0, the direct form above (no cancellation there)."""
    for i in range(t.size):
        x = t[i]
        if 0.0 <= x < _DIFFERENCE_T:
            out[i] = x * x * _piecewise_polynomial(x, 0.0, d2_table)
        elif x < 0.0:
            acc = 0.0
            for j in range(taylor.size - 1, -1, -1):
                acc = acc * x + taylor[j]
            out[i] = acc
        else:
            a = r1[i] if given1 else _r(x, table, asymptotic)
            b = r2[i] if given2 else _r(2.0 * x, table, asymptotic)
            out[i] = b - 2.0 * a + SQRT_HALF_PI


def _difference_table():
    """Rows of g(t) = (R(2t) − 2R(t) + R(0))/t² on [0, _DIFFERENCE_T), as for R.

    g is smooth with g(0) = 2r₂ ≠ 0, so a polynomial fit is uniformly
    accurate relative to the difference itself, down to t = 0.  The fitted
    values come from the Taylor series (_FIT_TAYLOR_TERMS terms, summed below
    t = 1, where its terms exceed the sum by at most ~5×) and from the direct
    form (scipy's erfcx) above, where it loses at most 4ε/t² ≈ 4e-16.
    """
    pieces = int(round(_DIFFERENCE_T / _CHEB_PIECE))
    y = np.cos(np.pi * (np.arange(_CHEB_FIT) + 0.5) / _CHEB_FIT)
    t = (np.arange(pieces)[:, None] + 0.5) * _CHEB_PIECE + 0.5 * _CHEB_PIECE * y[None, :]
    r = _taylor_coefficients(_FIT_TAYLOR_TERMS)
    c = r * (2.0 ** np.arange(r.size) - 2.0)
    series = np.polynomial.polynomial.polyval(t, c[2:])  # Σ c_n t^{n−2}
    direct = (_mills_by_erfcx(2.0 * t) - 2.0 * _mills_by_erfcx(t) + SQRT_HALF_PI) / np.square(t)
    values = np.where(t < 1.0, series, direct)
    return _power_rows(chebyshev.chebfit(y, values.T, _CHEB_DEGREE).T)


_DIFFERENCE_TABLE = _difference_table()


def _flat(*arrays):
    """Broadcast to one shape; (shape, contiguous 1-D float64 views, or copies where needed)."""
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in arrays))
    return arrays[0].shape, [np.ascontiguousarray(a).reshape(-1) for a in arrays]


def _output(shape, out):
    """A fresh result array, or ``out`` (which may be the argument itself; a numpy
    scalar or 0-d ``out`` is ignored: nothing can be written into it in place)."""
    if not isinstance(out, np.ndarray) or out.ndim == 0:
        return np.empty(shape)
    if out.shape != shape or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float64 array of shape {shape}")
    return out


def _value(result):
    """A 0-d result as a numpy scalar (as numpy's ufuncs return), any other as is."""
    return result[()] if result.ndim == 0 else result


def mills(t, *, scale=1.0, out=None):
    """R(scale·t), R(t) = Φ(−t)/n(t) = √(π/2)·erfcx(t/√2); finite for t > −37.

    ``out`` (C-contiguous float64 of t's shape, ``t`` itself allowed) takes the result.
    """
    shape, (tf,) = _flat(t)
    result = _output(shape, out)
    _mills_into(tf, float(scale), result.reshape(-1), _TABLE, _ASYMPTOTIC)
    return _value(result)


def _derivative(order, t, r, scale, out):
    shape, (tf, rf) = _flat(t, t if r is None else r)
    result = _output(shape, out)
    _derivative_into(order, tf, float(scale), rf, r is not None, result.reshape(-1), _TABLE, _ASYMPTOTIC, _D1_TABLE)
    return _value(result)


def mills_d1(t, r=None, *, scale=1.0, out=None):
    """R'(x) = xR(x) − 1 at x = scale·t, accurate for all x > −37 (negative for every x).

    ``r = R(x)``, when the caller has it, is reused; ``out`` as in :func:`mills`.
    """
    return _derivative(1, t, r, scale, out)


def mills_d2(t, r=None, *, scale=1.0, out=None):
    """R''(x) = (1 + x²)R(x) − x at x = scale·t, accurate for all x > −37 (positive)."""
    return _derivative(2, t, r, scale, out)


def mills_pair(t, c2, c1, c0=0.0, *, out=None):
    """c2·R(2t) + c1·R(t) + c0: the two values lSELU's φ needs.

    One compiled pass when the c's are scalars (``out`` as in :func:`mills`);
    array c's broadcast with t.
    """
    if np.ndim(c2) == np.ndim(c1) == np.ndim(c0) == 0:
        shape, (tf,) = _flat(t)
        result = _output(shape, out)
        _pair_into(tf, float(c2), float(c1), float(c0), result.reshape(-1), _TABLE, _ASYMPTOTIC)
        return _value(result)
    return _combination(mills, t, c2, c1, c0)


def mills_d1_pair(t, c2, c1):
    """c2·R'(2t) + c1·R'(t): the two values lSELU's dφ/dq needs (c's broadcast with t)."""
    return _combination(mills_d1, t, c2, c1, 0.0)


def _combination(f, t, c2, c1, c0):
    """c2·f(2t) + c1·f(t) + c0, in place where the c's broadcast into t's shape."""
    total, second = f(t, scale=2.0), f(t)
    shape = np.broadcast_shapes(np.shape(total), *(np.shape(c) for c in (c2, c1, c0)))
    if shape != np.shape(total) or np.ndim(total) == 0:
        return c2 * total + c1 * second + c0
    total *= c2
    second *= c1
    total += second
    total += c0
    return total


def mills_second_difference(t, r1=None, r2=None):
    """R(2t) − 2R(t) + R(0) for t >= 0, without cancellation at small t (~ R(0)t²).

    ``r1 = R(t)`` and ``r2 = R(2t)``, when the caller has them, are reused.
    """
    shape, (tf, r1f, r2f) = _flat(t, t if r1 is None else r1, t if r2 is None else r2)
    out = np.empty_like(tf)
    _second_difference_into(tf, r1f, r2f, r1 is not None, r2 is not None, out, _SECOND_DIFFERENCE, _TABLE,
                            _ASYMPTOTIC, _DIFFERENCE_TABLE)
    return _value(out.reshape(shape))


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


# ---------------------------------------------------------------------------
# Quadrature: composite Gauss–Legendre in z, graded toward the activation's
# breakpoints.
# ---------------------------------------------------------------------------

#: Truncation of the z-line: n(13) ≈ 1.8e-37, far below double precision
#: relative to any integrand of polynomial growth.
Z_MAX = 13.0


#: Grading depth cap: panels down to Z_MAX·2^-64, i.e. features resolved for s up to ~1e18.
_MAX_LEVELS = 64

#: Fixed panels over the Gaussian bulk in z, so the density itself is resolved
#: even when every breakpoint maps far outside [−Z_MAX, Z_MAX] (|m| >> s).
_BULK_EDGES = Z_MAX * np.array([-1.0, -0.5, -0.25, -0.125, 0.0, 0.125, 0.25, 0.5, 1.0])


@functools.lru_cache(maxsize=32)
def _legendre(order):
    nodes, weights = np.polynomial.legendre.leggauss(order)
    return nodes, weights


@functools.lru_cache(maxsize=32)
def _hermite(order):
    nodes, weights = np.polynomial.hermite_e.hermegauss(order)
    return nodes, weights / math.sqrt(2.0 * math.pi)


def hermite_rule(order, m, s):
    """Probabilists' Gauss–Hermite nodes x = m + s z and weights (summing to 1).

    Returns arrays of shape ``broadcast(m, s).shape + (order,)``.  Exact for
    polynomials of degree < 2·order; appropriate for smooth activations whose
    features are resolved at the scale s.
    """
    z, w = _hermite(order)
    m = np.asarray(m, dtype=float)[..., None]
    s = np.asarray(s, dtype=float)[..., None]
    x = m + s * z
    return x, np.broadcast_to(w, x.shape)


def graded_rule(order, m, s, breakpoints=(0.0,), feature_scale=1.0):
    """Composite Gauss–Legendre nodes and weights for E[g(x)], x ~ N(m, s²).

    The z-line [−Z_MAX, Z_MAX] is cut at fixed panels over the Gaussian bulk,
    at every breakpoint c = (x_b − m)/s of the integrand (kinks of f or f') and
    at c ± Z_MAX·2^{−k}, k = 0..K−1, so the panels shrink geometrically toward
    each breakpoint.  K is chosen from the
    largest s so that the finest panel is below ``feature_scale/s``: features of
    the activation at x-scale ``feature_scale`` stay resolved for q up to 1e8
    and beyond, and each panel holds a smooth integrand on which ``order``-point
    Gauss–Legendre converges exponentially.  Returns ``(x, w)`` of shape
    ``broadcast(m, s).shape + (n_nodes,)``, with w including the normal density.
    """
    m = np.asarray(m, dtype=float)
    s = np.asarray(s, dtype=float)
    m, s = np.broadcast_arrays(m, s)
    finite = s[np.isfinite(s)]
    s_max = float(np.max(finite)) if finite.size else 1.0
    levels = max(4, int(math.ceil(math.log2(Z_MAX * max(s_max, 1.0) / feature_scale))) + 3)
    levels = min(levels, _MAX_LEVELS)
    offsets = Z_MAX * 2.0 ** -np.arange(levels)
    offsets = np.concatenate([-offsets, [0.0], offsets[::-1]])
    centres = [(b - m) / s for b in breakpoints]
    edges = np.concatenate(
        [np.clip(c[..., None] + offsets, -Z_MAX, Z_MAX) for c in centres]
        + [np.broadcast_to(_BULK_EDGES, m.shape + _BULK_EDGES.shape)],
        axis=-1,
    )
    edges = np.sort(edges, axis=-1)
    lo, hi = edges[..., :-1], edges[..., 1:]
    half = 0.5 * (hi - lo)
    mid = 0.5 * (hi + lo)
    t, wt = _legendre(order)
    z = (mid[..., None] + half[..., None] * t).reshape(m.shape + (-1,))
    w = (half[..., None] * wt).reshape(m.shape + (-1,)) * normal_pdf(z)
    return m[..., None] + s[..., None] * z, w
