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
R of ``mills``; general-mean ones (x ~ N(m, s²)) with the tilted half-line
moments.  All arguments broadcast.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import mills
from .jit import kernel
from .mills import _COMPILE, INV_SQRT_2PI, _drop_nonneg, _r_d1_nonneg, _r_nonneg, _second_difference_nonneg
from .mills import INV_SQRT_2PI as RHO


def _f(x):
    return np.asarray(x, dtype=float)


# ---------------------------------------------------------------------------
# Zero mean: x = √q z, t = b√q.  The formulas are written out below; they are
# evaluated, all of them or any subset, by one compiled pass over the points
# (:func:`exp_linear_into`, below), so each needs one or two Mills ratios per
# point and no temporary arrays.  The ``*_parts`` functions return (positive-
# branch part, negative-branch part) per unit λ² (λ for the mean): the
# solvers use the split, the public functionals add them and multiply by λ².
# ---------------------------------------------------------------------------

@functools.cache
def _exp_linear_loop(want_q, want_dq, want_phi, want_dphi, want_mean, uniform, linear):
    """The compiled loop for the chosen subset of Q, dQ/dq, φ, dφ/dq and E[f] of
    f = λx (x > 0), λ(α(e^{bx} − 1) + κx) (x <= 0) at x = √q z, after the
    formulas of the ``*_parts`` functions below (with their derivations).

    The flags are constants of the compiled code (numba caches one loop per
    combination), so each loop computes only the values its outputs need:
    R(2t) for φ, R'(2t) for dφ/dq, the second difference for Q, R(0) − R(t)
    for E[f], and R(t), R'(t) besides with ``linear`` (some κ ≠ 0: lSELU's
    slope); with ``uniform`` the parameters are read once.  (A flag tested
    per point need not save the work: LLVM may compute both sides and
    select.)  Every access has unit stride and the body no branch, so the loop
    vectorises.  Arguments as for :func:`exp_linear_into`.
    """

    @kernel(**_COMPILE)
    def loop(q, lam, alpha, rate, slope, positive, out_q, out_dq, out_phi, out_dphi, out_mean):
        rho = INV_SQRT_2PI
        lam_i = a = b = k = 0.0
        if uniform:  # one set of parameters for every point, read once
            lam_i, a, b, k = lam[0], alpha[0], rate[0], slope[0]
        for i in range(q.size):  # unit strides only, so that the loop vectorises
            qi = q[i]
            s = math.sqrt(qi)
            if not uniform:
                lam_i, a, b, k = lam[i], alpha[i], rate[i], slope[i]
            t = b * s
            ab = a * b
            lam2 = lam_i * lam_i
            r1 = _r_nonneg(t) if want_dq or (linear and (want_q or want_phi)) else 0.0
            r2 = _r_nonneg(2.0 * t) if want_phi or want_dq else 0.0
            d1 = _r_d1_nonneg(t) if linear and (want_dq or want_dphi) else 0.0
            phi = lam2 * (0.5 * positive + rho * (ab * ab * r2 + 2.0 * ab * k * r1) + 0.5 * k * k)
            if want_phi:
                out_phi[i] = phi
            if want_q:
                cross = qi * (2.0 * a * k * b * rho * r1 + 0.5 * k * k)
                out_q[i] = lam2 * (0.5 * qi * positive + a * a * rho * _second_difference_nonneg(t) + cross)
            if want_dphi:
                slope_of_t = b / s if s > 0.0 else math.inf  # dt/dq = t/(2q); q = 0 is the −∞ limit
                out_dphi[i] = lam2 * slope_of_t * rho * (ab * ab * _r_d1_nonneg(2.0 * t) + ab * k * d1)
            if want_dq:
                out_dq[i] = phi + lam2 * a * b * b * rho * (a * (r2 - r1) + k * s * d1)
            if want_mean:
                out_mean[i] = lam_i * rho * (positive * s - a * _drop_nonneg(t) - k * s)

    return loop


def exp_linear_into(q, lam, alpha, rate, slope, positive, outputs):
    """Fill ``outputs`` (Q, dQ/dq, φ, dφ/dq, E[f], in that order) in one compiled pass (a few
    points interpreted, with the same bits: ``jit.Kernel.run``).

    ``q`` and the outputs are 1-D float64 arrays of one element per point; the
    four parameters are all of one element (shared by every point) or all of
    one per point; ``positive`` (1 or 0) weights the positive branch's part.
    An output of size 0 is skipped, with all work only it needs.  No output may
    share memory with an input: LLVM checks that at run time and would run the
    scalar loop, 10× slower.  t = b√q must be >= 0 (b > 0), as every activation
    of the family has.
    """
    if q.size == 0:
        return
    loop = _exp_linear_loop(*(out.size > 0 for out in outputs), lam.size == 1, bool(np.any(slope)))
    loop.run(q.size, q, lam, alpha, rate, slope, float(positive), *outputs)


#: The zero-mean functionals, in the order :func:`zero_mean` evaluates them.
QUANTITIES = ("Q", "dQ", "phi", "dphi", "mean")
_SKIPPED = np.empty(0)


def zero_mean(q, lam, alpha, rate, slope, quantities=QUANTITIES, *, positive=True):
    """The zero-mean functionals named in ``quantities`` (a subset of :data:`QUANTITIES`), as a dict.

    With ``positive=False`` each is its negative-branch part alone (the
    positive-branch parts are q/2, 0, 1/2, 0 and √q/√(2π) per unit λ², λ).
    All arguments broadcast.
    """
    unknown = [name for name in quantities if name not in QUANTITIES]
    if unknown or not quantities:
        raise ValueError(f"quantities must be a non-empty subset of {QUANTITIES}; got {tuple(quantities)!r}")
    q, *params = (_f(v) for v in (q, lam, alpha, rate, slope))
    shape = np.broadcast_shapes(q.shape, *(p.shape for p in params))

    def per_point(a):
        return np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1)

    shared = all(p.size == 1 for p in params)  # one set of parameters: the loop reads it once
    params = [p.reshape(1) if shared else per_point(p) for p in params]
    outputs = {name: np.empty(shape) if name in quantities else _SKIPPED for name in QUANTITIES}
    exp_linear_into(per_point(q), *params, positive, [outputs[name].reshape(-1) for name in QUANTITIES])
    return {name: mills.value(outputs[name]) for name in quantities}


def _negative_part(name, q, alpha, rate, slope):
    return zero_mean(q, 1.0, alpha, rate, slope, (name,), positive=False)[name]


def second_moment_parts(q, alpha, rate, slope):
    """Q(q) = E[f²(√q z)] / λ² as (positive part, negative part).

    Negative part: α² R₂(t)/√(2π) + 2ακ √q t R(t)/√(2π) + κ² q/2 with
    R₂(t) = R(2t) − 2R(t) + R(0) (so E[(e^{bx} − 1)² 1{x<=0}] has no
    cancellation at small q) and E[x (e^{bx} − 1) 1{x<=0}] = √q t R(t)/√(2π).
    """
    neg = _negative_part("Q", q, alpha, rate, slope)
    return np.broadcast_to(0.5 * _f(q), np.shape(neg)).copy(), neg


def jacobian_second_moment_parts(q, alpha, rate, slope):
    """φ(q) = E[f'(√q z)²] / λ² (eq 6) as (positive part, negative part).

    Negative part: α²b² R(2t)/√(2π) + 2αbκ R(t)/√(2π) + κ²/2.
    """
    neg = _negative_part("phi", q, alpha, rate, slope)
    return np.full(np.shape(neg), 0.5), neg


def jacobian_second_moment_derivative_parts(q, alpha, rate, slope):
    """dφ/dq / λ² as (positive part, negative part).

    d/dq R(j b √q) = j t R'(j t)/(2q), so the negative part is
    (t/q)(α²b² R'(2t) + αbκ R'(t))/√(2π); the positive part is 0.
    """
    neg = _negative_part("dphi", q, alpha, rate, slope)
    return np.zeros(np.shape(neg)), neg


def mean_parts(q, alpha, rate, slope):
    """E[f(√q z)] / λ as (positive part, negative part).

    Positive: √q/√(2π).  Negative: α (R(t) − R(0))/√(2π) − κ √q/√(2π).
    """
    neg = _negative_part("mean", q, alpha, rate, slope)
    return np.broadcast_to(np.sqrt(_f(q)) * RHO, np.shape(neg)).copy(), neg


def second_moment(q, lam, alpha, rate, slope):
    """Q(q) = E[f²(√q z)] (docs/theory.md §2)."""
    return zero_mean(q, lam, alpha, rate, slope, ("Q",))["Q"]


def jacobian_second_moment(q, lam, alpha, rate, slope):
    """φ(q) = E[f'(√q z)²] (eq 6)."""
    return zero_mean(q, lam, alpha, rate, slope, ("phi",))["phi"]


def jacobian_second_moment_derivative(q, lam, alpha, rate, slope):
    """dφ/dq."""
    return zero_mean(q, lam, alpha, rate, slope, ("dphi",))["dphi"]


def second_moment_derivative(q, lam, alpha, rate, slope):
    """dQ/dq = φ(q) + E[f f''] by Gaussian integration by parts.

    d/dq E[g(√q z)] = ½ E[g''] with g = f², and (f²)'' = 2f'² + 2ff''; f(0) = 0,
    so the jump of f' at 0 contributes nothing.  E[f f''] / λ² =
    αb² (α (R(2t) − R(t)) + κ √q R'(t)) / √(2π).
    """
    return zero_mean(q, lam, alpha, rate, slope, ("dQ",))["dQ"]


def moments(q, lam, alpha, rate, slope):
    """Q, dQ/dq, φ, dφ/dq and E[f] at once, sharing the Mills-ratio evaluations."""
    return zero_mean(q, lam, alpha, rate, slope)


def jacobian_even_moment(q, k, lam, alpha, rate, slope):
    """E[f'(√q z)^{2k}] for an integer k >= 1: the Jacobian's moments beyond φ (k = 1), which the
    singular-value spectrum needs (k = 2: ``meanfield.theory.spectrum``).

    On x <= 0, f' = λ(αb e^{bx} + κ), so by the binomial theorem
    f'^{2k} = λ^{2k} Σ_j C(2k, j) (αb)^j κ^{2k−j} e^{jbx}, and
    E[e^{jbx} 1{x<=0}] = e^{s²/2} Φ(−s) = erfcx(s/√2)/2 with s = jb√q >= 0 (no overflow at any q);
    on x > 0, f'^{2k} = λ^{2k} with probability ½.
    """
    if int(k) != k or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    from scipy import special

    k = int(k)
    q, lam, alpha, rate, slope = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (q, lam, alpha, rate, slope)))
    a = alpha * rate
    total = np.full(q.shape, 0.5)
    for j in range(2 * k + 1):
        tail = 0.5 * special.erfcx(j * rate * np.sqrt(q) / math.sqrt(2.0))
        total = total + math.comb(2 * k, j) * np.power(a, j) * np.power(slope, 2 * k - j) * tail
    return np.power(lam, 2 * k) * total


def second_moment_and_jacobian(q, lam, alpha, rate, slope):
    """(Q(q), φ(q)) in one pass: the layer step of Prop A.1/A.2."""
    m = zero_mean(q, lam, alpha, rate, slope, ("Q", "phi"))
    return m["Q"], m["phi"]


# ---------------------------------------------------------------------------
# General mean: x ~ N(m, s²).
# ---------------------------------------------------------------------------


def _branch_moments(m, s, rate):
    """Half-line moments needed by the general-mean functionals.

    Returns P_k = E[x^k 1{x>0}] and N[a][k] = E[x^k e^{a x} 1{x<=0}] for
    a in {0, b, 2b}, k in {0, 1, 2}.
    """
    pos = mills.positive_half_moments(m, s)
    neg = {
        key: mills.tilted_half_moments(a, m, s)
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
    density0 = mills.normal_pdf(m / s) / s
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
    p0, _, _ = mills.positive_half_moments(m, s)
    nb, _, _ = mills.tilted_half_moments(rate, m, s)
    n0, _, _ = mills.tilted_half_moments(0.0, m, s)
    return lam * (p0 + alpha * rate * nb + slope * n0)
