"""The Cauchy transform of the law of t(h), h ~ N(0, q), close to and on its support.

The singular-value spectrum of a deep network's Jacobian (``meanfield.theory.spectrum``) needs,
for each layer, K(c) = E[1/(c − t(h))] and K'(c) at complex c, t = f'(h) the activation's
derivative, with c as close to the support of t as the spectrum's density asks: on the real
axis itself in the limit.  There the integrand has a pole next to (or on) the integration path
and no fixed quadrature rule converges.  This module removes the pole.

A law is a set of *atoms* (t = value with a probability mass) and of *pieces*: intervals of h on
which t(h) is analytic and monotone, split into panels of a Gauss–Legendre rule.  Where c = t(h*)
has a root h* within half a panel of the panel, the pole's principal part is subtracted from the
integrand and integrated exactly (Davis & Rabinowitz, §2.12.7, "subtracting out the
singularity"):

    ∫ g(h)/(c − t(h)) dh = ∫ [g(h)/(c − t(h)) − A/(h − h*)] dh + A log((b − h*)/(a − h*)),

A = −g(h*)/t'(h*), g the Gaussian density, and for K'(c) = −∫ g/(c − t)² the double pole
B₂/(h − h*)² + B₁/(h − h*) with B₂ = −g*/t'*², B₁ = −(g'*/t'*² − g* t''*/t'*³).  What is left is
analytic on the panel, and a 16-point rule on a panel no longer than the activation's and the
Gaussian's own scales integrates it to rounding.  The logarithm's branch follows h* across the
real axis, so that c → x ± i0 gives the two boundary values (Plemelj).

Piece kinds (the roots in closed form):

* ``EXP`` (the exponential-linear family's negative branch): t = A + B e^{b h},
  h* = log((c − A)/B)/b, t' = b (c − A), t'' = b² (c − A);
* ``SECH2`` (tanh): t = sech² h on h >= 0 (the law is even: weight doubled),
  h* = acosh(1/√c), t' = −2c tanh h*, t'' = −2 (t' tanh h* + c²);
* ``NODES``: any other activation, nodes without subtraction (accurate where c stays a
  panel's length from the support).

Arrays are laid out for one compiled loop over several laws (index ``g``): see :func:`pack`.
"""

from __future__ import annotations

import cmath
import math

import numpy as np

from .jit import kernel
from .mills import _COMPILE

NODES, EXP, SECH2 = 0, 1, 2
#: Gauss–Legendre nodes per panel.  The integrand left after subtraction is analytic in a
#: neighbourhood of the panel whose size is the panel's own (panels are no longer than the
#: Gaussian's scale √q and the activation's 1/b): a 16-point rule then errs by ~ρ^{−32}, ρ >= 3.
PANEL_NODES = 16
#: pieces end at 9 standard deviations of h: the Gaussian mass beyond is 2e-19, below rounding
TAIL_SIGMAS = 9.0
#: panel length in units of √q (and of 1/b for the exponential branch): a 16-point rule
#: integrates e^{−h²/2q} to rounding on 1.5 standard deviations
PANEL_SCALE = 1.5
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: |d|² above this is a normal double with 16 digits to spare before the subnormal range (2.2e-308)
NORMAL_SQUARE = 1e-290
#: |y| below this keeps |y − t²|² far from overflow (1.8e308), with 16 digits to spare, and above
#: the next, |y − t²|² >= (3|y|/4)² above NORMAL_SQUARE: the far field's real-arithmetic sums
FAR_FAST = 1e146
FAR_SLOW_BELOW = 1e-144


def panels(lo, hi, scale, count=PANEL_NODES):
    """(panel ends, nodes, bare weights) of a composite Gauss–Legendre rule on [lo, hi] with panels
    no longer than ``scale``."""
    n_panels = max(1, int(math.ceil((hi - lo) / scale)))
    ends = np.linspace(lo, hi, n_panels + 1)
    x, w = np.polynomial.legendre.leggauss(count)
    half = 0.5 * np.diff(ends)
    mid = 0.5 * (ends[1:] + ends[:-1])
    nodes = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    weights = (half[:, None] * w[None, :]).ravel()
    return ends, nodes, weights


def pack(laws):
    """Stack laws (dicts from ``meanfield.theory.spectrum``) into the padded arrays the compiled
    loops read: kind, par (A, B, b), q, density multiplier, panel ends, nodes h, bare weights,
    weights times density, t at the nodes, atoms (value, mass)."""
    n_laws = len(laws)
    n_panel = max(max(len(law["ends"]) - 1 for law in laws), 1)
    n_atoms = max(1, max(len(law["atoms"]) for law in laws))
    kind = np.array([law["kind"] for law in laws], dtype=np.int64)
    par = np.zeros((n_laws, 3))
    q = np.array([law["q"] for law in laws], dtype=float)
    dmult = np.array([law["density_multiplier"] for law in laws], dtype=float)
    npan = np.array([len(law["ends"]) - 1 for law in laws], dtype=np.int64)
    ends = np.zeros((n_laws, n_panel + 1))
    h = np.zeros((n_laws, n_panel * PANEL_NODES))
    wb = np.zeros_like(h)
    wg = np.zeros_like(h)
    t = np.zeros_like(h)
    nat = np.array([len(law["atoms"]) for law in laws], dtype=np.int64)
    at_t = np.zeros((n_laws, n_atoms))
    at_m = np.zeros((n_laws, n_atoms))
    for i, law in enumerate(laws):
        par[i, :len(law["par"])] = law["par"]
        m = len(law["h"])
        ends[i, :len(law["ends"])] = law["ends"]
        h[i, :m], wb[i, :m], t[i, :m] = law["h"], law["weights"], law["t"]
        wg[i, :m] = law["weights"] * law["density"]
        for j, (value, mass) in enumerate(law["atoms"]):
            at_t[i, j], at_m[i, j] = value, mass
    return kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m


@kernel(**_COMPILE)
def _root(c, kind, A, B, b):
    """h* with t(h*) = c, t'(h*) and t''(h*) for a piece of this kind (module docstring)."""
    if kind == EXP:
        hs = cmath.log((c - A) * (1.0 / B)) * (1.0 / b)  # real divisors: no complex division
        tp = b * (c - A)
        return hs, tp, b * tp
    hs = cmath.acosh(1.0 / cmath.sqrt(c))
    th = cmath.tanh(hs)
    tp = -2.0 * c * th
    return hs, tp, -2.0 * (tp * th + c * c)


@kernel(**_COMPILE)
def _pole_sums(c, t, w, start, stop, squared):
    """(Σ w_j/(c − x_j), −Σ w_j/(c − x_j)², min_j |c − x_j|²) over j in start:stop, for real nodes
    x_j = t_j and weights w_j, or x_j = t_j² and weights w_j t_j² where ``squared``: with
    d = c − x_j = d_r + i c_i, 1/d = (d_r − i c_i)/|d|² and 1/d² = (d_r² − c_i² − 2i d_r c_i)/|d|⁴, one
    real division a node and a loop without a branch, which LLVM vectorises (2 ns a node, where
    complex divisions took 5-15).  Accurate where every |d|² is a normal double short of overflow:
    the caller checks the minimum and bounds |c|."""
    cr = c.real
    ci = c.imag
    ci2 = ci * ci
    sum_s_dr = 0.0
    sum_s = 0.0
    sum_s2_q = 0.0
    sum_s2_dr = 0.0
    smallest = math.inf
    for j in range(start, stop):
        x = t[j] * t[j] if squared else t[j]
        dr = cr - x
        d2 = dr * dr + ci2
        inv = 1.0 / d2
        s = (w[j] * x if squared else w[j]) * inv
        s2 = s * inv
        sum_s_dr += s * dr
        sum_s += s
        sum_s2_q += s2 * (dr * dr - ci2)
        sum_s2_dr += s2 * dr
        smallest = min(smallest, d2)
    return complex(sum_s_dr, -ci * sum_s), complex(-sum_s2_q, 2.0 * ci * sum_s2_dr), smallest


@kernel(**_COMPILE)
def cauchy(c, g, kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m):
    """K(c) = E[1/(c − t)] and K'(c) = −E[1/(c − t)²] of law ``g`` (module docstring)."""
    K = 0j
    Kp = 0j
    for a in range(nat[g]):
        d = c - at_t[g, a]
        if d == 0:  # c on an atom: no boundary value (compiled complex division would raise)
            return complex(math.nan, math.nan), complex(math.nan, math.nan)
        K += at_m[g, a] / d
        Kp -= at_m[g, a] / (d * d)
    k = kind[g]
    subtract_any = False
    hs = 0j
    A1 = 0j
    B1 = 0j
    B2 = 0j
    if k != NODES:
        hs, tp, tpp = _root(c, k, par[g, 0], par[g, 1], par[g, 2])
        if cmath.isfinite(hs) and tp != 0:
            qq = q[g]
            gs = dmult[g] * INV_SQRT_2PI / math.sqrt(qq) * cmath.exp(-hs * hs * (0.5 / qq))
            gps = -hs * (1.0 / qq) * gs
            # one complex division, 1/t'*, where four took most of this setup's time
            itp = 1.0 / tp
            A1 = -gs * itp
            B2 = A1 * itp
            B1 = -(gps - gs * tpp * itp) * itp * itp
            subtract_any = cmath.isfinite(A1) and cmath.isfinite(B1)
    n = PANEL_NODES
    run_start = 0  # the first panel of the current run of panels without subtraction
    for p in range(npan[g] + 1):
        sub = False
        if p < npan[g] and subtract_any:
            lo = ends[g, p]
            hi = ends[g, p + 1]
            re = hs.real
            dx = lo - re if re < lo else (re - hi if re > hi else 0.0)
            sub = math.sqrt(dx * dx + hs.imag * hs.imag) < 0.5 * (hi - lo)
        if not sub and p < npan[g]:
            continue
        if p > run_start:
            # a run of panels without subtraction: sums in real arithmetic, a loop without a branch
            # that LLVM vectorises; where some |d|² is not a normal double with digits to spare,
            # node by node instead
            dK, dKp, smallest = _pole_sums(c, t[g], wg[g], run_start * n, p * n, False)
            if not smallest > NORMAL_SQUARE:
                dK, dKp = _node_sums(c, g, h, wb, wg, t, run_start * n, p * n, False, hs, A1, B1, B2)
            K += dK
            Kp += dKp
        if sub:
            dK, dKp = _node_sums(c, g, h, wb, wg, t, p * n, (p + 1) * n, True, hs, A1, B1, B2)
            inv_lo = 1.0 / (lo - hs)
            inv_hi = 1.0 / (hi - hs)
            log_ratio = cmath.log((hi - hs) * inv_lo)
            K += dK + A1 * log_ratio
            Kp += dKp + B2 * (inv_lo - inv_hi) + B1 * log_ratio
        run_start = p + 1
    return K, Kp


@kernel(**_COMPILE)
def _node_sums(c, g, h, wb, wg, t, start, stop, sub, hs, A1, B1, B2):
    """Σ wg/(c − t) and −Σ wg/(c − t)² over the nodes start:stop of law g, one node at a time, with
    the pole's principal part subtracted at each node where ``sub`` (module docstring); NaN where c
    is a node."""
    K = 0j
    Kp = 0j
    for j in range(start, stop):
        d = c - t[g, j]
        if d == 0:
            return complex(math.nan, math.nan), complex(math.nan, math.nan)
        # 1/d = conj(d)/|d|²: one real division per node in place of four complex ones; |d|² does
        # not overflow (|c| <= 2√top on this path, t bounded) and, where it would be subnormal,
        # the complex division keeps full precision
        dr = d.real
        di = d.imag
        d2 = dr * dr + di * di
        if d2 > NORMAL_SQUARE:
            s2 = 1.0 / d2
            inv = complex(dr * s2, -di * s2)
        else:
            inv = 1.0 / d
        term = wg[g, j] * inv
        termp = -term * inv
        if sub:
            # 1/(h − h*) = (e_r + i h*_i)/|e|², e_r = h − Re h*, as for d above
            er = h[g, j] - hs.real
            e2 = er * er + hs.imag * hs.imag
            if e2 > NORMAL_SQUARE:
                s2 = 1.0 / e2
                inv_e = complex(er * s2, hs.imag * s2)
            else:
                inv_e = 1.0 / (h[g, j] - hs)
            term -= wb[g, j] * A1 * inv_e
            termp -= wb[g, j] * (B2 * inv_e + B1) * inv_e
        K += term
        Kp += termp
    return K, Kp


@kernel(**_COMPILE)
def moment_map(y, g, top, kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m):
    """M(y) = E[t²/(y − t²)] (the law of t²'s moment generating function, M = Σ m_k y^{−k}) and
    dM/dy.  Far from the support (|y| > 4 × ``top``, top = max t²) directly; near it through
    t²/(y − t²) = −1 + (√y/2)[1/(√y − t) + 1/(√y + t)] and :func:`cauchy` at ±√y."""
    if abs(y) > 4.0 * top:
        M = 0j
        Mp = 0j
        for a in range(nat[g]):
            u = at_t[g, a] * at_t[g, a]
            d = y - u
            if d == 0:
                return complex(math.nan, math.nan), complex(math.nan, math.nan)
            M += at_m[g, a] * u / d
            Mp -= at_m[g, a] * u / (d * d)
        stop = npan[g] * PANEL_NODES
        if FAR_SLOW_BELOW < abs(y) < FAR_FAST:  # |y − t²|² >= (3|y|/4)² (|y| > 4 top) is a normal double
            dM, dMp, _ = _pole_sums(y, t[g], wg[g], 0, stop, True)
            return M + dM, Mp + dMp
        for j in range(stop):
            u = t[g, j] * t[g, j]
            d = y - u
            if d == 0:
                return complex(math.nan, math.nan), complex(math.nan, math.nan)
            term = wg[g, j] * u / d
            M += term
            Mp -= term / d
        return M, Mp
    if y == 0:
        return complex(math.nan, math.nan), complex(math.nan, math.nan)
    r = cmath.sqrt(y)
    K1, K1p = cauchy(r, g, kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m)
    K2, K2p = cauchy(-r, g, kind, par, q, dmult, npan, ends, h, wb, wg, t, nat, at_t, at_m)
    M = -1.0 + 0.5 * r * (K1 - K2)
    dM_dr = 0.5 * (K1 - K2) + 0.5 * r * (K1p + K2p)
    return M, dM_dr / (2.0 * r)
