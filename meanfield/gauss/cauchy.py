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
        hs = cmath.log((c - A) / B) / b
        tp = b * (c - A)
        return hs, tp, b * tp
    hs = cmath.acosh(1.0 / cmath.sqrt(c))
    th = cmath.tanh(hs)
    tp = -2.0 * c * th
    return hs, tp, -2.0 * (tp * th + c * c)


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
            gs = dmult[g] * INV_SQRT_2PI / math.sqrt(qq) * cmath.exp(-hs * hs / (2.0 * qq))
            gps = -hs / qq * gs
            A1 = -gs / tp
            B2 = -gs / (tp * tp)
            B1 = -(gps / (tp * tp) - gs * tpp / (tp * tp * tp))
            subtract_any = cmath.isfinite(A1) and cmath.isfinite(B1)
    n = PANEL_NODES
    for p in range(npan[g]):
        lo = ends[g, p]
        hi = ends[g, p + 1]
        sub = False
        if subtract_any:
            re = hs.real
            dx = lo - re if re < lo else (re - hi if re > hi else 0.0)
            sub = math.sqrt(dx * dx + hs.imag * hs.imag) < 0.5 * (hi - lo)
        for j in range(p * n, (p + 1) * n):
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
                inv_e = 1.0 / (h[g, j] - hs)
                term -= wb[g, j] * A1 * inv_e
                termp -= wb[g, j] * (B2 * inv_e + B1) * inv_e
            K += term
            Kp += termp
        if sub:
            log_ratio = cmath.log((hi - hs) / (lo - hs))
            K += A1 * log_ratio
            Kp += B2 * (1.0 / (lo - hs) - 1.0 / (hi - hs)) + B1 * log_ratio
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
        for p in range(npan[g]):
            for j in range(p * PANEL_NODES, (p + 1) * PANEL_NODES):
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
