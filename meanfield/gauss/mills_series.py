"""Combinations of Mills-ratio derivatives without cancellation, for the finite-width functionals.

The finite-width theory (``docs/finite-width.md``) needs fourth moments of the
exponential-linear family, E[f⁴] and E[f² f'²], and second q-derivatives.
On the branch x <= 0 they reduce (``closed_forms.finite_width_parts``) to

    D(j, k) = E[x^k (e^{bx} − 1)^j 1{x<=0}] = s^k Δ^j R^{(k)}(t) / √(2π),     t = b s,

where Δ^j R^{(k)}(t) = Σ_i C(j, i) (−1)^{j−i} R^{(k)}(i t) is the j-th forward
difference of R^{(k)} with step t, and R(t) = Φ(−t)/n(t) is the Mills ratio
(E[x^k e^{ax} 1{x<=0}] = s^k R^{(k)}(a s)/√(2π), by x → −s u).  The difference
is O(t^j) while its terms are O(1): summed directly it loses ~ε/t^j.  Below
:data:`SERIES_BELOW` each combination is therefore its Taylor series in t,
whose coefficients are computed here *exactly* (rational numbers plus
rational multiples of R(0) = √(π/2), from R' = tR − 1, i.e.
r_{n+1} = r_{n−1}/(n+1)), so the leading terms that cancel are exact zeros;
above it, the direct sum, which then loses at most a few digits.

R^{(k)}(u) for u >= 0, k <= 3 (``_derivatives``): below u = 4 from the fitted
R and R' of ``mills`` and the recurrence R^{(k+1)} = u R^{(k)} + k R^{(k−1)}
(it loses at most ~100ε there); from u = 4 on from Laplace's continued
fraction, R^{(k)} = (−1)^k T₁⋯T_k R, which has no cancellation at large u.

These functions inline ``mills``'s compiled helpers (and the coefficients
numba freezes into them); ``compile_cache`` keys their on-disk cache on that
file too, so a change there recompiles them.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from . import mills, quadrature
from .mills import _r_d1_nonneg, _r_nonneg
from .jit import kernel

#: The series is used for t below this.  Against 40-digit mpmath the worst
#: relative error is 3.4e-14, for Δ⁴R at the switch itself (the series'
#: alternating terms and the direct sum's cancellation meet there); every other
#: combination stays below 1.2e-14 (tests/test_finite_width.py).  Switching at
#: 0.5 the direct sums lost 2.5e-14 for Δ⁴R, at 0.75 the series 8.6e-14.
SERIES_BELOW = 0.6
#: Series terms: the n-th term is about (4t)^n r_n n^k with r_n ~ 1/n!!, below
#: 1e-19 of the leading term at t = 0.6 by n = 80.
SERIES_TERMS = 80
#: From this argument on, R^{(k)} comes from the continued fraction, truncated at depth
#: 16 + 700/u^2: the depths it needs for R to R^{(3)} to 3e-16 against 40-digit mpmath were 60 at
#: u = 4, 40 at 5, 30 at 6, 20 at 8, 16 at 12-16, 12 at 32, 8 at 64 (measured; the rule covers each).
FRACTION_FROM = 4.0

#: LLVM may fuse multiply-adds here ("contract"): these kernels are only ever compiled (no
#: interpreted twin to match bit for bit, as ``closed_forms``' loop has; see ``jit``).
_COMPILE = {"cache": True, "nogil": True, "fastmath": {"contract"}, "error_model": "numpy"}


# ---------------------------------------------------------------------------
# Exact Taylor coefficients.  A number is (a, b) meaning a + b·√(π/2).
# ---------------------------------------------------------------------------


def _taylor_of_mills(terms):
    """r_n for n < terms as exact (a, b) pairs: r_0 = √(π/2), r_1 = −1, r_{n+1} = r_{n−1}/(n+1)."""
    r = [(Fraction(0), Fraction(1)), (Fraction(-1), Fraction(0))]
    for n in range(1, terms):
        a, b = r[n - 1]
        r.append((a / (n + 1), b / (n + 1)))
    return r


def combination_series(terms, divide_by=0, n_terms=SERIES_TERMS):
    """Float Taylor coefficients c_0..c_{n−1} in t of Σ w t^p R^{(k)}(j t) / t^divide_by.

    ``terms`` is a list of (w, p, k, j) with w rational and p, k, j >= 0
    integers.  The coefficients are accumulated exactly; every coefficient of
    a negative power of t must vanish exactly (it raises otherwise).
    """
    need = n_terms + divide_by + 4
    r = _taylor_of_mills(need + 4)
    coeff = [(Fraction(0), Fraction(0)) for _ in range(need)]
    for w, p, k, j in terms:
        w = Fraction(w)
        for n in range(need - p):
            if j == 0 and n > 0:
                break
            a, b = r[n + k]
            scale = w * math.perm(n + k, k) * Fraction(j) ** n  # 0**0 = 1: the j = 0 term is R^{(k)}(0)
            ca, cb = coeff[p + n]
            coeff[p + n] = (ca + scale * a, cb + scale * b)
    for m in range(divide_by):
        if coeff[m] != (0, 0):
            raise ValueError(f"the combination is not O(t^{divide_by}): coefficient of t^{m} is {coeff[m]}")
    root = math.sqrt(math.pi / 2.0)
    return np.array([float(a) + float(b) * root for a, b in coeff[divide_by:divide_by + n_terms]])


def difference_terms(j, k):
    """Δ^j R^{(k)}(t) = Σ_i C(j, i) (−1)^{j−i} R^{(k)}(i t) as (w, p, k, i) terms."""
    return [((-1) ** (j - i) * math.comb(j, i), 0, k, i) for i in range(j + 1)]


#: The differences D(j, k) needs: (j, k), j >= 1, j + k <= 4.
DIFFERENCES = ((1, 0), (2, 0), (3, 0), (4, 0), (1, 1), (2, 1), (3, 1), (1, 2), (2, 2), (1, 3))

#: [4t R''(2t) − 2t R''(t) − 2R'(2t) + 2R'(t)] / t², part of d²Q/dq² (closed_forms); O(1) at t → 0.
CURVATURE_TERMS = [(4, 1, 2, 2), (-2, 1, 2, 1), (-2, 0, 1, 2), (2, 0, 1, 1)]

#: Taylor coefficients, one column per combination (the DIFFERENCES, then the curvature bracket),
#: one row per power of t.
SERIES = np.ascontiguousarray(np.stack([combination_series(difference_terms(j, k)) for j, k in DIFFERENCES]
                                       + [combination_series(CURVATURE_TERMS, divide_by=2)]).T)


def _terms_needed(upper):
    """Terms of SERIES that matter up to t = ``upper``: past them every term is below 1e-18 of its
    combination's smallest value on [0, upper] (the combinations are monotone there; their value at
    ``upper`` and at the leading term bound it)."""
    powers = upper ** np.arange(SERIES.shape[0])
    values = np.abs(powers @ SERIES)
    lead = np.array([np.abs(col[np.flatnonzero(col)[0]]) * upper ** np.flatnonzero(col)[0] for col in SERIES.T])
    floor = np.minimum(values, lead)
    big = np.abs(SERIES) * powers[:, None] > 1e-18 * floor
    return int(np.flatnonzero(big.any(axis=1)).max()) + 1


#: The series is summed to fewer terms at smaller t: bucket upper edges, and the terms each needs.
SERIES_BUCKETS = np.array([0.05, 0.15, 0.3, 0.45, SERIES_BELOW])
SERIES_BUCKET_TERMS = np.array([_terms_needed(edge) for edge in SERIES_BUCKETS])
assert SERIES.shape[1] == 11, "combinations_into sums the eleven series in registers"
#: (sign, binomial) weights of each difference, row per DIFFERENCES entry, column per i = 0..4.
DIFFERENCE_WEIGHTS = np.array([[(-1) ** (j - i) * math.comb(j, i) if i <= j else 0.0 for i in range(5)]
                               for j, _ in DIFFERENCES])
DIFFERENCE_ORDER = np.array([k for _, k in DIFFERENCES])
#: R^{(k)}(0), k = 0..4: √(π/2), −1, √(π/2), −2, 3√(π/2).
AT_ZERO = np.array([mills.SQRT_HALF_PI, -1.0, mills.SQRT_HALF_PI, -2.0, 3.0 * mills.SQRT_HALF_PI])


# ---------------------------------------------------------------------------
# Compiled scalar code.
# ---------------------------------------------------------------------------


@kernel(**_COMPILE, inline="always")
def _fraction_terms(u):
    """(R, T₁, T₂, T₃) of Laplace's continued fraction R = 1/(u + T₁), T_n = n/(u + T_{n+1})."""
    tail = 0.0
    t1 = t2 = t3 = 0.0
    for n in range(16 + int(700.0 / (u * u)), 0, -1):
        tail = n / (u + tail)
        if n == 3:
            t3 = tail
        elif n == 2:
            t2 = tail
    t1 = tail
    return 1.0 / (u + t1), t1, t2, t3


@kernel(**_COMPILE)
def derivatives_into(u, out):
    """out[k] = R^{(k)}(u), k = 0..3, u >= 0 (numba-callable)."""
    if u < FRACTION_FROM:
        r0 = _r_nonneg(u)
        r1 = _r_d1_nonneg(u)
        r2 = r0 + u * r1
        out[0], out[1], out[2], out[3] = r0, r1, r2, u * r2 + 2.0 * r1
    else:
        r, t1, t2, t3 = _fraction_terms(u)
        out[0], out[1], out[2], out[3] = r, -t1 * r, t1 * t2 * r, -t1 * t2 * t3 * r


@kernel(**_COMPILE, inline="always")
def _horner(coefficients, t):
    acc = 0.0
    for n in range(coefficients.size - 1, -1, -1):
        acc = acc * t + coefficients[n]
    return acc


@kernel(**_COMPILE, inline="always")
def _four_fitted(t, poly):
    """mills' fitted polynomial (R = P r, or R' = P r²) at u_i = i t, i = 1..4, as four Horner
    chains interleaved: independent chains keep the FMA pipeline full (one chain at a time waits
    on each step's latency, 4x slower; measured)."""
    k = mills._K
    r1, r2, r3, r4 = 1.0 / (t + k), 1.0 / (2.0 * t + k), 1.0 / (3.0 * t + k), 1.0 / (4.0 * t + k)
    v1, v2, v3, v4 = 1.0 - 2.0 * k * r1, 1.0 - 2.0 * k * r2, 1.0 - 2.0 * k * r3, 1.0 - 2.0 * k * r4
    a1 = a2 = a3 = a4 = poly[poly.size - 1]
    for j in range(poly.size - 2, -1, -1):
        c = poly[j]
        a1, a2, a3, a4 = a1 * v1 + c, a2 * v2 + c, a3 * v3 + c, a4 * v4 + c
    return (a1, a2, a3, a4), (r1, r2, r3, r4)


@kernel(**_COMPILE, inline="always")
def _four_fractions(t, depth):
    """Laplace's continued fraction at u_i = i t, i = 1..4, as four interleaved division chains
    (one chain waits on each division's latency; four keep the divider busy: 3x faster, measured).
    Returns the four (R, T1, T2, T3)."""
    u1, u2, u3, u4 = t, 2.0 * t, 3.0 * t, 4.0 * t
    a1 = a2 = a3 = a4 = 0.0
    s1 = s2 = s3 = s4 = 0.0  # T2
    r1 = r2 = r3 = r4 = 0.0  # T3
    for n in range(depth, 0, -1):
        a1, a2, a3, a4 = n / (u1 + a1), n / (u2 + a2), n / (u3 + a3), n / (u4 + a4)
        if n == 3:
            r1, r2, r3, r4 = a1, a2, a3, a4
        elif n == 2:
            s1, s2, s3, s4 = a1, a2, a3, a4
    return ((1.0 / (u1 + a1), a1, s1, r1), (1.0 / (u2 + a2), a2, s2, r2),
            (1.0 / (u3 + a3), a3, s3, r3), (1.0 / (u4 + a4), a4, s4, r4))


@kernel(**_COMPILE, inline="always")
def _table(t, table):
    """R^{(k)}(i t), i = 1..4: R and R' fitted (interleaved); the second and third derivatives by the
    recurrence below FRACTION_FROM, by the continued fraction above it (where the recurrence cancels),
    the four fractions interleaved at the depth the smallest argument above FRACTION_FROM needs."""
    p, r = _four_fitted(t, mills._R_POLY)
    d, _ = _four_fitted(t, mills._D1_POLY)
    fractions = ((0.0, 0.0, 0.0, 0.0),) * 4
    if 4.0 * t >= FRACTION_FROM:
        smallest = 4.0 * t
        for i in range(3, 0, -1):
            if i * t >= FRACTION_FROM:
                smallest = i * t
        fractions = _four_fractions(t, 16 + int(700.0 / (smallest * smallest)))
    for i in range(4):
        u = (i + 1) * t
        if u < FRACTION_FROM:
            r0 = p[i] * r[i]
            r1 = d[i] * (r[i] * r[i])
            r2 = r0 + u * r1
            table[i + 1, 0], table[i + 1, 1], table[i + 1, 2], table[i + 1, 3] = r0, r1, r2, u * r2 + 2.0 * r1
        else:
            rr, t1, t2, t3 = fractions[i]
            table[i + 1, 0], table[i + 1, 1] = rr, -t1 * rr
            table[i + 1, 2], table[i + 1, 3] = t1 * t2 * rr, -t1 * t2 * t3 * rr


@kernel(**_COMPILE, inline="always")
def combinations_into(t, table, series, weights, orders, out):
    """For one t >= 0: R^{(k)}(i t) into ``table`` (i = 0..4, k = 0..3), then each
    difference of :data:`DIFFERENCES` and the curvature bracket into ``out``
    (series below SERIES_BELOW, direct above).  ``series`` holds the Taylor
    coefficients term by term (n, combination), so the combinations' Horner
    chains advance together."""
    for k in range(4):
        table[0, k] = AT_ZERO[k]
    _table(t, table)
    n_diff = weights.shape[0]
    if t < SERIES_BELOW:
        terms = series.shape[0]
        for edge in range(SERIES_BUCKETS.size):
            if t < SERIES_BUCKETS[edge]:
                terms = SERIES_BUCKET_TERMS[edge]
                break
        # eleven Horner chains in registers, advanced together (an array of accumulators would go
        # through memory every step: 2x slower, measured)
        c = series[terms - 1]
        a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10 = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10]
        for n in range(terms - 2, -1, -1):
            c = series[n]
            a0, a1, a2, a3 = a0 * t + c[0], a1 * t + c[1], a2 * t + c[2], a3 * t + c[3]
            a4, a5, a6, a7 = a4 * t + c[4], a5 * t + c[5], a6 * t + c[6], a7 * t + c[7]
            a8, a9, a10 = a8 * t + c[8], a9 * t + c[9], a10 * t + c[10]
        out[0], out[1], out[2], out[3], out[4], out[5] = a0, a1, a2, a3, a4, a5
        out[6], out[7], out[8], out[9], out[10] = a6, a7, a8, a9, a10
        return
    for g in range(n_diff):
        acc = 0.0
        for i in range(5):
            acc += weights[g, i] * table[i, orders[g]]
        out[g] = acc
    out[n_diff] = (4.0 * t * table[2, 2] - 2.0 * t * table[1, 2] - 2.0 * table[2, 1] + 2.0 * table[1, 1]) / (t * t)


def combinations(t):
    """Every combination at each t (array): shape t.shape + (len(DIFFERENCES) + 1,); for tests and callers
    outside compiled code."""
    t = np.asarray(t, dtype=float)
    flat = t.reshape(-1)
    out = np.empty((flat.size, len(DIFFERENCES) + 1))
    table = np.empty((5, 4))
    for n in range(flat.size):
        combinations_into(flat[n], table, SERIES, DIFFERENCE_WEIGHTS, DIFFERENCE_ORDER, out[n])
    return out.reshape(t.shape + (-1,))


def derivatives(u):
    """R^{(k)}(u), k = 0..3, for u >= 0: shape u.shape + (4,)."""
    u = np.asarray(u, dtype=float)
    flat = u.reshape(-1)
    out = np.empty((flat.size, 4))
    for n in range(flat.size):
        derivatives_into(flat[n], out[n])
    return out.reshape(u.shape + (4,))


# ---------------------------------------------------------------------------
# The finite-width functionals of the exponential-linear family
#
#     f(x) = λx (x > 0),   λ g(x) = λ(α y + κx) (x <= 0),   y = e^{bx} − 1,
#     g'(x) = αb y + c₀,   c₀ = αb + κ = g'(0⁻),
#
# at x = √q z, s = √q, t = b s, ρ = 1/√(2π).  Each is a positive-branch part
# (E[x^n 1{x>0}] = s^n m_n, m = 1/2, ρ, 1/2, 2ρ, 3/2) plus a negative-branch
# part written with D(j, k) = E[x^k y^j 1{x<=0}] (module docstring):
#
#   Q   = E f²      = λ²[q/2 + α²D(2,0) + 2ακD(1,1) + κ²D(0,2)]
#   Q4  = E f⁴      = λ⁴[3q²/2 + Σ_j C(4,j) α^j κ^{4−j} D(j, 4−j)]
#   φ   = E f'²     = λ²[1/2 + ρ(α²b² R(2t) + 2αbκ R(t)) + κ²/2]                     (eq 6)
#   P   = E f'² x²  = λ²[q/2 + q ρ(α²b² R''(2t) + 2αbκ R''(t)) + κ² q/2]
#   S   = E f² f'²  = λ⁴[q/2 + E (αy + κx)² (αb y + c₀)² 1{x<=0}]     (expanded in D below)
#   Q'  = φ + E f f'' = φ + λ² αb² ρ [α(R(2t) − R(t)) + κ s R'(t)]                    (closed_forms)
#   φ'  = λ² (b²/t) ρ [α²b² R'(2t) + αbκ R'(t)]                                       (closed_forms)
#   φ'' = λ² (b⁴ρ/(2t³)) [α²b² (2t R''(2t) − R'(2t)) + αbκ (t R''(t) − R'(t))]
#   Q'' = λ² (b⁴ρ/(4t)) [α² C(t) + (2ακ/b)(3R'(t) + t R''(t))],
#         C(t) = [4t R''(2t) − 2t R''(t) − 2R'(2t) + 2R'(t)] / t²
#
# (d/dq = (b²/2t) d/dt; Q'' = (b⁴/4t³)(tF'' − F') with F the negative part of
# Q in t, whose linear κ² part drops out.)  No bracket cancels at large t;
# the D(j, k) and C(t) are O(t^j) and O(1) at small t, and come from the
# series there.  R = E f f' x = q Q' by Stein's identity.
# ---------------------------------------------------------------------------

#: Output columns of :func:`finite_width_into`.
FINITE_WIDTH_QUANTITIES = quadrature.FINITE_WIDTH_QUANTITIES


@kernel(**_COMPILE, inline="always")
def _point_into(qi, lm, a, b, k, series, weights, orders, table, g, out):
    """The nine FINITE_WIDTH_QUANTITIES of one point into ``out`` (formulas above)."""
    rho = mills.INV_SQRT_2PI
    s = math.sqrt(qi)
    t = b * s
    combinations_into(t, table, series, weights, orders, g)
    # D(j, k) = s^k ρ Δ^j R^{(k)}(t); DIFFERENCES order: (1,0) (2,0) (3,0) (4,0) (1,1) (2,1) (3,1) (1,2) (2,2) (1,3)
    d10, d20, d30, d40 = rho * g[0], rho * g[1], rho * g[2], rho * g[3]
    d11, d21, d31 = rho * s * g[4], rho * s * g[5], rho * s * g[6]
    d12, d22 = rho * qi * g[7], rho * qi * g[8]
    d13 = rho * qi * s * g[9]
    curvature = g[10]
    d02, d04 = 0.5 * qi, 1.5 * qi * qi
    c0 = a * b + k
    ab = a * b
    a2, k2, b2 = a * a, k * k, b * b  # powers by products: x**4 in numba is a call to pow
    a3, a4, k3, k4, b4 = a2 * a, a2 * a2, k2 * k, k2 * k2, b2 * b2
    lam2 = lm * lm
    lam4 = lam2 * lam2
    r1, r2 = table[1, 0], table[2, 0]
    r1d, r2d = table[1, 1], table[2, 1]
    r1dd, r2dd = table[1, 2], table[2, 2]
    out[0] = lam2 * (0.5 * qi + a * a * d20 + 2.0 * a * k * d11 + k * k * d02)
    out[1] = lam4 * (1.5 * qi * qi + a4 * d40 + 4.0 * a3 * k * d31 + 6.0 * a2 * k2 * d22
                        + 4.0 * a * k3 * d13 + k4 * d04)
    phi = lam2 * (0.5 + rho * (ab * ab * r2 + 2.0 * ab * k * r1) + 0.5 * k * k)
    out[4] = phi
    out[2] = phi + lam2 * a * b * b * rho * (a * (r2 - r1) + k * s * r1d)
    out[3] = lam2 * (b4 * rho / (4.0 * t)) * (a2 * curvature + (2.0 * a * k / b) * (3.0 * r1d + t * r1dd))
    out[5] = lam2 * (b * b / t) * rho * (ab * ab * r2d + ab * k * r1d)
    out[6] = lam2 * (b4 * rho / (2.0 * t * t * t)) * (ab * ab * (2.0 * t * r2dd - r2d) + ab * k * (t * r1dd - r1d))
    out[7] = lam2 * (0.5 * qi + qi * rho * (ab * ab * r2dd + 2.0 * ab * k * r1dd) + 0.5 * k * k * qi)
    negative_s = (a4 * b2 * d40 + 2.0 * a3 * b * c0 * d30 + a2 * c0 * c0 * d20
                  + 2.0 * a3 * k * b2 * d31 + 4.0 * a * a * k * b * c0 * d21 + 2.0 * a * k * c0 * c0 * d11
                  + k * k * a * a * b * b * d22 + 2.0 * k * k * a * b * c0 * d12 + k * k * c0 * c0 * d02)
    out[8] = lam4 * (0.5 * qi + negative_s)


@kernel(**_COMPILE)
def finite_width_into(q, lam, alpha, rate, slope, series, weights, orders, out):
    """out[i, :] = FINITE_WIDTH_QUANTITIES at point i (1-D arrays of one value per point)."""
    table = np.empty((5, 4))
    g = np.empty(weights.shape[0] + 1)
    for i in range(q.size):
        _point_into(q[i], lam[i], alpha[i], rate[i], slope[i], series, weights, orders, table, g, out[i])


@kernel(**_COMPILE)
def forward_closure_into(q0, w2, b2, n, lam, alpha, rate, slope, series, weights, orders, m, var, fn):
    """docs/finite-width.md §3 for every configuration (rows): m, v over layers 0..L and the nine
    functionals at m_k (fn[c, k, :]), k = 0..L−1, in one compiled pass (no Python per layer).
    A non-finite or non-positive m_k leaves NaN from there on."""
    table = np.empty((5, 4))
    g = np.empty(weights.shape[0] + 1)
    configs, depth = fn.shape[0], fn.shape[1]
    for c in range(configs):
        m[c, 0], var[c, 0] = q0[c], 0.0
        for k in range(depth):
            mk, vk = m[c, k], var[c, k]
            if not (mk > 0.0 and mk < math.inf):
                for j in range(k + 1, depth + 1):
                    m[c, j] = var[c, j] = math.nan
                for j in range(k, depth):
                    fn[c, j, :] = math.nan
                break
            _point_into(mk, lam[c], alpha[c], rate[c], slope[c], series, weights, orders, table, g, fn[c, k])
            big_q, q4, dq, d2q = fn[c, k, 0], fn[c, k, 1], fn[c, k, 2], fn[c, k, 3]
            m[c, k + 1] = b2[c] + w2[c] * (big_q + 0.5 * d2q * vk)
            var[c, k + 1] = w2[c] * w2[c] * (dq * dq * vk + (q4 - big_q * big_q) / n[c, k])


def finite_width_moments(q, lam, alpha, rate, slope):
    """FINITE_WIDTH_QUANTITIES of the exponential-linear family, as a dict of arrays of the broadcast shape."""
    arrays = [np.asarray(v, dtype=float) for v in (q, lam, alpha, rate, slope)]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    flat = [np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1) for a in arrays]
    out = np.empty((flat[0].size, len(FINITE_WIDTH_QUANTITIES)))
    if out.shape[0]:
        finite_width_into(*flat, SERIES, DIFFERENCE_WEIGHTS, DIFFERENCE_ORDER, out)
    return {name: mills.value(out[:, j].reshape(shape)) for j, name in enumerate(FINITE_WIDTH_QUANTITIES)}
