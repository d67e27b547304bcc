"""Closed-form Gaussian expectations of the exponential-linear family.

Every activation of the SELU and ReLU families is

    f(x) = λ x                                   x > 0
    f(x) = λ (α (e^{b x} − 1) + κ x)             x <= 0

with (λ, α, b, κ) = (λ, α, 1, 0) for selu/dselu (eq 3), (λ, α, β, 0) for sSELU
(eq 9), (λ, α, 1, β) for lSELU (eq 10), (1, a, 1, 0) for elu, (1, 0, ·, a) for
leaky_relu and (1, 0, ·, 0) for relu.  Because the two branches have disjoint
supports, every second moment splits into a positive-branch part and a
negative-branch part; the negative branch is linear in (α, κ) and so every
functional below is a quadratic form in them.  That is what lets the solvers
reduce (eq 11) to a one-dimensional search (see ``solvers``).

Zero-mean functionals (x = √q z) are written with t = b√q and the Mills ratio
R of ``_gauss``; general-mean ones (x ~ N(m, s²)) with the tilted half-line
moments.  All arguments broadcast.
"""

from __future__ import annotations

import numpy as np

from . import _gauss
from ._gauss import INV_SQRT_2PI as RHO


def _f(x):
    return np.asarray(x, dtype=float)


# ---------------------------------------------------------------------------
# Zero mean: x = √q z.  Each returns (positive-branch part, negative-branch
# part) per unit λ² (or λ for the mean); the solvers use the split, the public
# functionals add them and multiply by λ².
# ---------------------------------------------------------------------------


# The zero-mean functionals below spend their time in the compiled Mills
# ratio; the numpy around it is written to touch each point a few times and
# to allocate little (a fresh 8 MB array costs about half a numpy.exp), so
# parameters keep their own shapes and the arithmetic runs in place.


def _params(q, alpha, rate, slope):
    """(q, α, b, κ) as float arrays and the shape they broadcast to."""
    q, alpha, rate, slope = (_f(v) for v in (q, alpha, rate, slope))
    return q, alpha, rate, slope, np.broadcast_shapes(q.shape, alpha.shape, rate.shape, slope.shape)


def _root_q(q, shape):
    """√q as a fresh array of the broadcast shape."""
    s = np.sqrt(q)
    return s if s.shape == shape else np.broadcast_to(s, shape).copy()


def _q_neg(q, alpha, rate, slope, shape):
    """Negative part of Q/λ² (see :func:`second_moment_parts`), arranged as
    α²ρR₂(t) + q(2ακbρR(t) + κ²/2) (√q·t = bq)."""
    t = _root_q(q, shape)
    t *= rate
    neg = _gauss.mills_second_difference(t)
    neg *= np.square(alpha) * RHO
    if np.any(slope):
        r1 = _gauss.mills(t, out=t)
        r1 *= 2.0 * alpha * slope * rate * RHO
        r1 += 0.5 * np.square(slope)
        r1 *= q
        neg += r1
    return neg


def _phi_neg(q, alpha, rate, slope, shape):
    """Negative part of φ/λ² (see :func:`jacobian_second_moment_parts`)."""
    t = _root_q(q, shape)
    t *= rate
    ab = alpha * rate
    if np.any(slope):  # R(t) only enters through the lSELU slope
        return _gauss.mills_pair(t, np.square(ab) * RHO, 2.0 * ab * slope * RHO, 0.5 * np.square(slope), out=t)
    neg = _gauss.mills(t, scale=2.0)
    neg *= np.square(ab) * RHO
    return neg


def _dphi_neg(q, alpha, rate, slope, shape):
    """dφ/dq / λ² (see :func:`jacobian_second_moment_derivative_parts`)."""
    t = _root_q(q, shape)
    t *= rate
    ab = alpha * rate
    if np.any(slope):
        neg = _gauss.mills_d1_pair(t, np.square(ab), ab * slope)
    else:
        neg = _gauss.mills_d1(t, scale=2.0)
        neg *= np.square(ab)
    neg *= t
    neg /= q
    neg *= RHO
    return neg


def second_moment_parts(q, alpha, rate, slope):
    """Q(q) = E[f²(√q z)] / λ² as (positive part, negative part).

    Negative part: α² R₂(t)/√(2π) + 2ακ √q t R(t)/√(2π) + κ² q/2 with
    R₂(t) = R(2t) − 2R(t) + R(0) (so E[(e^{bx} − 1)² 1{x<=0}] has no
    cancellation at small q) and E[x (e^{bx} − 1) 1{x<=0}] = √q t R(t)/√(2π).
    """
    q, alpha, rate, slope, shape = _params(q, alpha, rate, slope)
    return np.broadcast_to(0.5 * q, shape).copy(), _q_neg(q, alpha, rate, slope, shape)


def jacobian_second_moment_parts(q, alpha, rate, slope):
    """φ(q) = E[f'(√q z)²] / λ² (eq 6) as (positive part, negative part).

    Negative part: α²b² R(2t)/√(2π) + 2αbκ R(t)/√(2π) + κ²/2.
    """
    q, alpha, rate, slope, shape = _params(q, alpha, rate, slope)
    return np.full(shape, 0.5), _phi_neg(q, alpha, rate, slope, shape)


def jacobian_second_moment_derivative_parts(q, alpha, rate, slope):
    """dφ/dq / λ² as (positive part, negative part).

    d/dq R(j b √q) = j t R'(j t)/(2q), so the negative part is
    (t/q)(α²b² R'(2t) + αbκ R'(t))/√(2π); the positive part is 0.
    """
    q, alpha, rate, slope, shape = _params(q, alpha, rate, slope)
    return np.zeros(shape), _dphi_neg(q, alpha, rate, slope, shape)


def mean_parts(q, alpha, rate, slope):
    """E[f(√q z)] / λ as (positive part, negative part).

    Positive: √q/√(2π).  Negative: α (R(t) − R(0))/√(2π) − κ √q/√(2π).
    """
    q, alpha, rate, slope, shape = _params(q, alpha, rate, slope)
    s = _root_q(q, shape)
    neg = alpha * RHO * (_gauss.mills(s * rate) - _gauss.SQRT_HALF_PI) - slope * s * RHO
    return s * RHO, neg


def _scaled(neg, scale):
    """scale · neg, in neg's memory when scale broadcasts into it."""
    scale = _f(scale)
    if np.broadcast_shapes(np.shape(neg), scale.shape) != np.shape(neg):
        return scale * neg
    neg *= scale
    return neg


def second_moment(q, lam, alpha, rate, slope):
    """Q(q) = E[f²(√q z)] (SPEC §2)."""
    q, alpha, rate, slope, shape = _params(q, alpha, rate, slope)
    neg = _q_neg(q, alpha, rate, slope, shape)
    neg *= 2.0
    neg += q
    return _scaled(neg, 0.5 * np.square(_f(lam)))  # λ²(q/2 + neg)


def jacobian_second_moment(q, lam, alpha, rate, slope):
    """φ(q) = E[f'(√q z)²] (eq 6)."""
    q, alpha, rate, slope, shape = _params(q, alpha, rate, slope)
    neg = _phi_neg(q, alpha, rate, slope, shape)
    neg += 0.5
    return _scaled(neg, np.square(_f(lam)))


def jacobian_second_moment_derivative(q, lam, alpha, rate, slope):
    """dφ/dq."""
    q, alpha, rate, slope, shape = _params(q, alpha, rate, slope)
    return _scaled(_dphi_neg(q, alpha, rate, slope, shape), np.square(_f(lam)))


def second_moment_derivative(q, lam, alpha, rate, slope):
    """dQ/dq = φ(q) + E[f f''] by Gaussian integration by parts.

    d/dq E[g(√q z)] = ½ E[g''] with g = f², and (f²)'' = 2f'² + 2ff''; f(0) = 0,
    so the jump of f' at 0 contributes nothing.  E[f f''] / λ² =
    αb² (α (R(2t) − R(t)) + κ √q R'(t)) / √(2π).
    """
    return moments(q, lam, alpha, rate, slope)["dQ"]


def moments(q, lam, alpha, rate, slope):
    """Q, dQ/dq, φ, dφ/dq and E[f] at once, sharing the Mills-ratio evaluations.

    The same formulas as the single functionals above, arranged so that R(t),
    R(2t), R'(t) and R'(2t) are each computed once.
    """
    q, lam, alpha, rate, slope = np.broadcast_arrays(_f(q), _f(lam), _f(alpha), _f(rate), _f(slope))
    s = np.sqrt(q)
    t = rate * s
    lam2 = np.square(lam)
    r1 = _gauss.mills(t)
    r2 = _gauss.mills(2.0 * t)
    d1 = _gauss.mills_d1(t, r1)
    d2 = _gauss.mills_d1(2.0 * t, r2)
    ab = alpha * rate
    phi = lam2 * (0.5 + np.square(ab) * RHO * r2 + 2.0 * ab * slope * RHO * r1 + 0.5 * np.square(slope))
    big_q = lam2 * (
        0.5 * q
        + np.square(alpha) * RHO * _gauss.mills_second_difference(t, r1, r2)
        + 2.0 * alpha * slope * s * RHO * t * r1
        + 0.5 * np.square(slope) * q
    )
    dphi = lam2 * (t / q) * RHO * (np.square(ab) * d2 + ab * slope * d1)
    dq = phi + lam2 * alpha * np.square(rate) * RHO * (alpha * (r2 - r1) + slope * s * d1)
    mean = lam * (s * RHO + alpha * RHO * (r1 - _gauss.SQRT_HALF_PI) - slope * s * RHO)
    return {"Q": big_q, "dQ": dq, "phi": phi, "dphi": dphi, "mean": mean}


def second_moment_and_jacobian(q, lam, alpha, rate, slope):
    """(Q(q), φ(q)) with R(t) and R(2t) evaluated once: the layer step of Prop A.1/A.2."""
    s = np.sqrt(q)
    t = rate * s
    r2 = _gauss.mills(2.0 * t)
    lam2 = np.square(lam)
    ab = alpha * rate
    if np.any(slope != 0):
        r1 = _gauss.mills(t)
        cross_q = 2.0 * alpha * slope * s * RHO * t * r1
        cross_p = 2.0 * ab * slope * RHO * r1 + 0.5 * np.square(slope)
        quad_q = 0.5 * np.square(slope) * q
    else:
        r1 = None
        cross_q = cross_p = quad_q = 0.0
    big_q = lam2 * (0.5 * q + np.square(alpha) * RHO * _gauss.mills_second_difference(t, r1, r2) + cross_q + quad_q)
    phi = lam2 * (0.5 + np.square(ab) * RHO * r2 + cross_p)
    return big_q, phi


# ---------------------------------------------------------------------------
# General mean: x ~ N(m, s²).
# ---------------------------------------------------------------------------


def _branch_moments(m, s, rate):
    """Half-line moments needed by the general-mean functionals.

    Returns P_k = E[x^k 1{x>0}] and N[a][k] = E[x^k e^{a x} 1{x<=0}] for
    a in {0, b, 2b}, k in {0, 1, 2}.
    """
    pos = _gauss.positive_half_moments(m, s)
    neg = {
        key: _gauss.tilted_half_moments(a, m, s)
        for key, a in (("0", 0.0), ("b", rate), ("2b", 2.0 * rate))
    }
    return pos, neg


def mean_map(m, s2, lam, alpha, rate, slope):
    """M(m, s²) = E[f(x)], x ~ N(m, s²) (eq 12)."""
    m, s2, lam, alpha, rate, slope = np.broadcast_arrays(*(_f(v) for v in (m, s2, lam, alpha, rate, slope)))
    s = np.sqrt(s2)
    (p0, p1, p2), n = _branch_moments(m, s, rate)
    return lam * (p1 + alpha * (n["b"][0] - n["0"][0]) + slope * n["0"][1])


def mean_map_all(m, s2, lam, alpha, rate, slope):
    """M, S = E[f²], and their gradients in (m, v = s²), for x ~ N(m, v).

    Used by Klambauer's (μ, ν) map and its Jacobian.  With ∂/∂m E[g] = E[g']
    and ∂/∂v E[g] = ½ E[g''] (Gaussian integration by parts):

    * ∂M/∂m = E[f'],  ∂M/∂v = ½ (λ (1 − αb − κ) n(m/s)/s + λαb² E[e^{bx}1{x<=0}])
      — the first term is the jump of f' at 0 times the density there;
    * ∂S/∂m = 2 E[f f'],  ∂S/∂v = E[f'²] + E[f f''] (f(0) = 0: no jump term).
    """
    m, s2, lam, alpha, rate, slope = np.broadcast_arrays(*(_f(v) for v in (m, s2, lam, alpha, rate, slope)))
    s = np.sqrt(s2)
    (p0, p1, p2), n = _branch_moments(m, s, rate)
    b = rate
    a2 = np.square(alpha)
    k2 = np.square(slope)
    lam2 = np.square(lam)
    mean = lam * (p1 + alpha * (n["b"][0] - n["0"][0]) + slope * n["0"][1])
    second = lam2 * (
        p2
        + a2 * (n["2b"][0] - 2.0 * n["b"][0] + n["0"][0])
        + 2.0 * alpha * slope * (n["b"][1] - n["0"][1])
        + k2 * n["0"][2]
    )
    d_mean_dm = lam * (p0 + alpha * b * n["b"][0] + slope * n["0"][0])
    jump = 1.0 - alpha * b - slope
    density0 = _gauss.normal_pdf(m / s) / s
    d_mean_dv = 0.5 * lam * (jump * density0 + alpha * np.square(b) * n["b"][0])
    ffp = (
        p1
        + a2 * b * (n["2b"][0] - n["b"][0])
        + alpha * slope * (n["b"][0] - n["0"][0])
        + alpha * b * slope * n["b"][1]
        + k2 * n["0"][1]
    )
    d_second_dm = 2.0 * lam2 * ffp
    fp2 = p0 + a2 * np.square(b) * n["2b"][0] + 2.0 * alpha * b * slope * n["b"][0] + k2 * n["0"][0]
    ffpp = alpha * np.square(b) * (alpha * (n["2b"][0] - n["b"][0]) + slope * n["b"][1])
    d_second_dv = lam2 * (fp2 + ffpp)
    return {
        "mean": mean,
        "second": second,
        "d_mean_dm": d_mean_dm,
        "d_mean_dv": d_mean_dv,
        "d_second_dm": d_second_dm,
        "d_second_dv": d_second_dv,
    }


def derivative_mean_map(m, s2, lam, alpha, rate, slope):
    """E[f'(x)], x ~ N(m, s²): the mean map of f' (used by the correlation map's χ_c)."""
    m, s2, lam, alpha, rate, slope = np.broadcast_arrays(*(_f(v) for v in (m, s2, lam, alpha, rate, slope)))
    s = np.sqrt(s2)
    p0, _, _ = _gauss.positive_half_moments(m, s)
    nb, _, _ = _gauss.tilted_half_moments(rate, m, s)
    n0, _, _ = _gauss.tilted_half_moments(0.0, m, s)
    return lam * (p0 + alpha * rate * nb + slope * n0)
