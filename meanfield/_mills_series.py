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
R and R' of ``_gauss`` and the recurrence R^{(k+1)} = u R^{(k)} + k R^{(k−1)}
(it loses at most ~100ε there); from u = 4 on from Laplace's continued
fraction, R^{(k)} = (−1)^k T₁⋯T_k R, which has no cancellation at large u.

These functions inline ``_gauss``'s compiled helpers (and the coefficients
numba freezes into them); ``compile_cache`` keys their on-disk cache on that
file too, so a change there recompiles them.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numba
import numpy as np

from . import _gauss

#: The series is used for t below this.  Against 40-digit mpmath the worst
#: relative error is 3.4e-14, for Δ⁴R at the switch itself (the series'
#: alternating terms and the direct sum's cancellation meet there); every other
#: combination stays below 1.2e-14 (tests/test_finite_width.py).  Switching at
#: 0.5 the direct sums lost 2.5e-14 for Δ⁴R, at 0.75 the series 8.6e-14.
SERIES_BELOW = 0.6
#: Series terms: the n-th term is about (4t)^n r_n n^k with r_n ~ 1/n!!, below
#: 1e-19 of the leading term at t = 0.6 by n = 80.
SERIES_TERMS = 80
#: From this argument on, R^{(k)} comes from the continued fraction (depth
#: _FRACTION_DEPTH: converged to 1e-17 relative from u = 4 on).
FRACTION_FROM = 4.0
_FRACTION_DEPTH = 60

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

#: One row of Taylor coefficients per combination: the DIFFERENCES, then the curvature bracket.
SERIES = np.stack([combination_series(difference_terms(j, k)) for j, k in DIFFERENCES]
                  + [combination_series(CURVATURE_TERMS, divide_by=2)])
#: (sign, binomial) weights of each difference, row per DIFFERENCES entry, column per i = 0..4.
DIFFERENCE_WEIGHTS = np.array([[(-1) ** (j - i) * math.comb(j, i) if i <= j else 0.0 for i in range(5)]
                               for j, _ in DIFFERENCES])
DIFFERENCE_ORDER = np.array([k for _, k in DIFFERENCES])
#: R^{(k)}(0), k = 0..4: √(π/2), −1, √(π/2), −2, 3√(π/2).
AT_ZERO = np.array([_gauss.SQRT_HALF_PI, -1.0, _gauss.SQRT_HALF_PI, -2.0, 3.0 * _gauss.SQRT_HALF_PI])


# ---------------------------------------------------------------------------
# Compiled scalar code.
# ---------------------------------------------------------------------------


@numba.njit(**_COMPILE, inline="always")
def _fraction_terms(u):
    """(R, T₁, T₂, T₃) of Laplace's continued fraction R = 1/(u + T₁), T_n = n/(u + T_{n+1})."""
    tail = 0.0
    t1 = t2 = t3 = 0.0
    for n in range(_FRACTION_DEPTH, 0, -1):
        tail = n / (u + tail)
        if n == 3:
            t3 = tail
        elif n == 2:
            t2 = tail
    t1 = tail
    return 1.0 / (u + t1), t1, t2, t3


@numba.njit(**_COMPILE)
def derivatives_into(u, out):
    """out[k] = R^{(k)}(u), k = 0..3, u >= 0 (numba-callable)."""
    if u < FRACTION_FROM:
        r0 = _gauss._r_nonneg(u)
        r1 = _gauss._r_d1_nonneg(u)
        r2 = r0 + u * r1
        out[0], out[1], out[2], out[3] = r0, r1, r2, u * r2 + 2.0 * r1
    else:
        r, t1, t2, t3 = _fraction_terms(u)
        out[0], out[1], out[2], out[3] = r, -t1 * r, t1 * t2 * r, -t1 * t2 * t3 * r


@numba.njit(**_COMPILE, inline="always")
def _horner(coefficients, t):
    acc = 0.0
    for n in range(coefficients.size - 1, -1, -1):
        acc = acc * t + coefficients[n]
    return acc


@numba.njit(**_COMPILE)
def combinations_into(t, table, series, weights, orders, out):
    """For one t >= 0: R^{(k)}(i t) into ``table`` (i = 0..4, k = 0..3), then each
    difference of :data:`DIFFERENCES` and the curvature bracket into ``out``
    (series below SERIES_BELOW, direct above)."""
    for k in range(4):
        table[0, k] = AT_ZERO[k]
    for i in range(1, 5):
        derivatives_into(i * t, table[i])
    n_diff = weights.shape[0]
    if t < SERIES_BELOW:
        for g in range(n_diff + 1):
            out[g] = _horner(series[g], t)
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

#: Output columns of :func:`finite_width_into` (functionals.FINITE_WIDTH_QUANTITIES, checked by a test).
FINITE_WIDTH_QUANTITIES = ("Q", "Q4", "dQ", "d2Q", "phi", "dphi", "d2phi", "P", "S")


@numba.njit(**_COMPILE)
def finite_width_into(q, lam, alpha, rate, slope, series, weights, orders, out):
    """out[i, :] = FINITE_WIDTH_QUANTITIES at point i (1-D arrays of one value per point)."""
    rho = _gauss.INV_SQRT_2PI
    table = np.empty((5, 4))
    g = np.empty(weights.shape[0] + 1)
    for i in range(q.size):
        qi, lm, a, b, k = q[i], lam[i], alpha[i], rate[i], slope[i]
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
        lam2 = lm * lm
        lam4 = lam2 * lam2
        r1, r2 = table[1, 0], table[2, 0]
        r1d, r2d = table[1, 1], table[2, 1]
        r1dd, r2dd = table[1, 2], table[2, 2]
        out[i, 0] = lam2 * (0.5 * qi + a * a * d20 + 2.0 * a * k * d11 + k * k * d02)
        out[i, 1] = lam4 * (1.5 * qi * qi + a**4 * d40 + 4.0 * a**3 * k * d31 + 6.0 * a * a * k * k * d22
                            + 4.0 * a * k**3 * d13 + k**4 * d04)
        phi = lam2 * (0.5 + rho * (ab * ab * r2 + 2.0 * ab * k * r1) + 0.5 * k * k)
        out[i, 4] = phi
        out[i, 2] = phi + lam2 * a * b * b * rho * (a * (r2 - r1) + k * s * r1d)
        out[i, 3] = lam2 * (b**4 * rho / (4.0 * t)) * (a * a * curvature + (2.0 * a * k / b) * (3.0 * r1d + t * r1dd))
        out[i, 5] = lam2 * (b * b / t) * rho * (ab * ab * r2d + ab * k * r1d)
        out[i, 6] = lam2 * (b**4 * rho / (2.0 * t**3)) * (ab * ab * (2.0 * t * r2dd - r2d) + ab * k * (t * r1dd - r1d))
        out[i, 7] = lam2 * (0.5 * qi + qi * rho * (ab * ab * r2dd + 2.0 * ab * k * r1dd) + 0.5 * k * k * qi)
        negative_s = (a**4 * b * b * d40 + 2.0 * a**3 * b * c0 * d30 + a * a * c0 * c0 * d20
                      + 2.0 * a**3 * k * b * b * d31 + 4.0 * a * a * k * b * c0 * d21 + 2.0 * a * k * c0 * c0 * d11
                      + k * k * a * a * b * b * d22 + 2.0 * k * k * a * b * c0 * d12 + k * k * c0 * c0 * d02)
        out[i, 8] = lam4 * (0.5 * qi + negative_s)


def finite_width_moments(q, lam, alpha, rate, slope):
    """FINITE_WIDTH_QUANTITIES of the exponential-linear family, as a dict of arrays of the broadcast shape."""
    arrays = [np.asarray(v, dtype=float) for v in (q, lam, alpha, rate, slope)]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    flat = [np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1) for a in arrays]
    out = np.empty((flat[0].size, len(FINITE_WIDTH_QUANTITIES)))
    if out.shape[0]:
        finite_width_into(*flat, SERIES, DIFFERENCE_WEIGHTS, DIFFERENCE_ORDER, out)
    return {name: _gauss.value(out[:, j].reshape(shape)) for j, name in enumerate(FINITE_WIDTH_QUANTITIES)}
