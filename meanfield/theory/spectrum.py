"""The singular-value spectrum of a deep network's input–output Jacobian (docs/spectrum.md).

For L layers of width N → ∞, J = W_L D_{L−1} W_{L−1} ⋯ W_1 D_0 with D_l = diag f'(h_l),
h_l ~ N(0, q_l) from the forward recursion (Prop A.1) and h_0 ~ N(0, q0): L weight matrices and L
derivative matrices, the first at the input pre-activation.  The weights are Gaussian (entries
N(0, σ_w²/N)) or orthogonal (√σ_w² O, O Haar).  The factors are asymptotically free, so the law of
the squared singular values (the eigenvalues of JJᵀ) is the free multiplicative convolution of
the laws of the D_l² and the W_l W_lᵀ (Pennington, Schoenholz & Ganguli 2017, 2018):

* moments, exact: m₁ = Π_l σ_w² E f'(h_l)² (Prop A.2's product of χ_l) and, because the
  normalized variance v = m₂/m₁² − 1 adds over free factors,
  v = Σ_l [E f'(h_l)⁴/(E f'(h_l)²)² − 1] + L·v_W, v_W = 1 (Gaussian), 0 (orthogonal);
* the density, by S-transforms (``spectrum_solver``), with the upper edge of the support found
  where d x(z)/dz = 0 on the real branch, the atom at zero (max_l P(f'(h_l) = 0): ReLU's ½), and
  quantiles of the squared singular values.

The density is computed for the exponential-linear family (ReLU, ELU, SELU, dSELU, sSELU,
lSELU, ...) and tanh with the pole of the Cauchy transform subtracted (``meanfield.gauss.cauchy``),
which makes it accurate up to the support; for any other activation with plain quadrature,
accurate where the density is smooth on the quadrature's scale.  Either way every Dataset says
how well its density integrates to 1 − atoms and reproduces m₁ and m₂ (``density_*_error``).
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import xarray as xr
from scipy import special

from ..activations.objects import ExpLinear
from ..gauss import cauchy
from ..results import dataset_attrs
from .functionals import jacobian_fourth_moment, jacobian_second_moment, resolve
from .recursions import _depth, recursion

WEIGHTS = ("gaussian", "orthogonal")
#: the density's checks (mass, m₁, m₂ against the exact values) are held to this
#: (tests/test_spectrum.py); a Dataset whose checks exceed it comes with a SpectrumAccuracyWarning
DENSITY_TOL = 1e-6
#: quantile levels reported for the squared singular values
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
#: points of the density grid by default
DEFAULT_POINTS = 1000
#: the density is evaluated at x + iη with η = ETA_REL·x: its effect on the density is of this
#: relative order, far below the quadrature's; it fixes the side of the real axis (Plemelj)
ETA_REL = 1e-14
#: the grid in log x extends down until the mass below it is estimated under this
TAIL_MASS = 1e-9
#: the normalized variance of W Wᵀ: Marchenko–Pastur at ratio 1 (m₂ = 2 m₁²), or a point mass
WEIGHT_VARIANCE = {"gaussian": 1.0, "orthogonal": 0.0}
#: the first point solved from scratch lies this far (relative, in log x) below the upper edge
START_DEPTH = 1e-3
#: layers whose q_l agree to this (relative) share one law
LAW_RTOL = 1e-12
#: densities below this fraction of |z| are the η floor, not spectrum (ETA_REL with room)
NOISE_REL = 1e-12
#: a density (relative to |z|) that falls to nothing from above this within one grid step marks a
#: hard lower edge; a spectrum that thins out smoothly reaches the η floor (NOISE_REL) gradually
EDGE_DENSITY = 1e-8
#: a hard lower edge is bisected to this (relative, in log x): a grid that ends δ inside a
#: square-root edge misses O(δ^{3/2}) of mass (3e-15 here), and within ~1e-9 of the edge z is known
#: only to ~√ε anyway
EDGE_TOL = 1e-10
#: a grid whose checks (mass, m₁, m₂) are off by more than this is laid again where a soft lower edge leaves
#: most of it below the support: a tenth of the 1e-6 the density is held to (tests/test_spectrum.py)
REFINE_TOL = 1e-7
#: the grid's span grows to at most this many times its first (:func:`_initial_span`): a deep Gaussian
#: network whose q_l explodes (SELU at σ_w² = 3) has a tail thousands of units of log x long;
#: at depth 16 (q_l up to 4.5e3) the grid stops at 4 times its first in 1.6 s, with the power law's
#: estimate of the mass below it in ``tail_mass`` (and a warning); deeper, see UNDERFLOW_MASS
MAX_SPAN_GROWTH = 4.0
#: half an ulp (c + δ rounds to c below it, relative) and the log of the smallest positive double:
#: where a law's branch ends in double precision (:func:`_branch_floor`)
HALF_ULP = 2.0**-53
LOG_TINY = math.log(2.0**-1074)
#: tanh: sech⁴ h = (f'(h))² underflows for h beyond this (sech h ≈ 2e^{−h})
SECH4_UNDERFLOW = (math.log(16.0) - LOG_TINY) / 4.0
#: the density is refused where more of some layer's f'(h_l)² than this lies below the smallest double
#: (:func:`_branch_floor`: SELU at σ_w² = 3, depth 32, q0 = 0.166 reaches q_l = 8.7e6 and puts 46 % of
#: f'² there, and a density took 7 minutes): the grid's tail mass, TAIL_MASS, is the resolution
UNDERFLOW_MASS = TAIL_MASS
#: the knee of a soft lower edge: the lowest point where the density is this fraction of its largest
KNEE = 1e-2
#: points closer than this (relative) to an atom away from zero have no density of their own: z holds
#: the atom's m·a/(x − a + iη), and the rest is left to the solver's rounding, which grows like the
#: cube of the atom's term (ELU at L = 1, measured: the density 1.3e-5 off at 1e-8 from its atom,
#: 4e-7 at 3e-8, within η's own 3e-8 at 1e-7); they take the power law through their neighbours
ATOM_GAP = 1e-7
#: singular points enumerated at most (choices of one atom per layer)
MAX_SINGULAR = 64
#: points of the grid's panel between two singular points, at least
MIN_PANEL_POINTS = 32
#: the real branch of x(z) has ended when some y_l is this close (relative) to the top of its law
EDGE_END = 1e-12


class SpectrumAccuracyWarning(UserWarning):
    """A density whose own checks (``density_*_error``) exceed DENSITY_TOL: the grid under-resolves it."""


def _warn_inaccurate(ds, points, estimated_tail):
    """One warning naming the worst configuration and depth where the density's checks exceed
    DENSITY_TOL (docs/spectrum.md, limits: laws of f'(h)² near a point mass, small q0 with
    orthogonal weights at depths 2–16), or where the power law's estimate of the mass below the
    grid does (``estimated_tail``: the grid's tail an estimate, not the exact mass at its bottom
    that the one-layer route reports)."""
    errors = np.maximum.reduce([np.abs(ds[name].values) for name in
                                ("density_mass_error", "density_m1_error", "density_m2_error")])
    errors = np.where(np.isnan(errors), np.inf, errors)
    tail = np.where(estimated_tail, ds.tail_mass.values, 0.0)
    errors = np.maximum(errors, np.where(np.isnan(tail), np.inf, tail))
    if not np.any(errors > DENSITY_TOL):
        return
    import warnings

    at = np.unravel_index(int(np.argmax(errors)), errors.shape)
    where = ds.m1.isel(dict(zip(ds.m1.dims, at)))
    names = ", ".join(f"{k}={where[k].item():.6g}" for k in where.coords
                      if k in ds.m1.dims or (where[k].ndim == 0 and k in ("q0", "sigma_w2", "sigma_b2")))
    count = int(np.count_nonzero(errors > DENSITY_TOL))
    why = ("this activation's density is plain quadrature, which does not resolve a law of f'(h)^2 narrower "
           "than its panels, as at small q_l" if ds.attrs.get("density_method") == "quadrature" else
           "a law of f'(h)^2 near a point mass?")
    warnings.warn(f"spectrum: the density's checks (or the mass estimated below its grid) are off by {errors[at]:.2g} "
                  f"(held to {DENSITY_TOL:g}) at {names}"
                  f"{f' and {count - 1} more' if count > 1 else ''}; the {points}-point grid under-resolves it ({why}); "
                  "density_*_error and tail_mass record it",
                  SpectrumAccuracyWarning, stacklevel=3)


def _check_weights(weights):
    if weights not in WEIGHTS:
        raise ValueError(f"unknown weights {weights!r}; valid: {', '.join(WEIGHTS)}")
    return weights


def _depths(depth):
    values = [depth] if np.ndim(depth) == 0 else list(np.asarray(depth).ravel())
    if not values:
        raise ValueError("depth is empty; give one depth >= 1 or a list of them")
    out = []
    for d in values:
        if isinstance(d, (float, np.floating)) and float(d).is_integer():
            d = int(d)
        out.append(_depth(d.item() if isinstance(d, np.integer) else d))
    return sorted(set(out))


def _forward(act, depth, q0, sigma_w2, sigma_b2):
    """The recursion's Dataset to layer depth − 1 (the D's of J sit at h_0..h_{L−1}); refuses a
    configuration whose q_l is not finite and positive there."""
    rec = recursion(act, max(depth - 1, 1), q0=q0, sigma_w2=sigma_w2, sigma_b2=sigma_b2)
    q = rec.q.isel(layer=slice(0, depth))
    bad = ~(np.isfinite(q) & (q > 0))
    if bool(bad.any()):
        first = int(np.argmax(bad.values.reshape(-1, depth).any(axis=0)))
        raise ValueError(f"the forward recursion leaves (0, inf) at layer {first} (q_l = "
                         f"{float(q.values.reshape(-1, depth)[:, first][bad.values.reshape(-1, depth)[:, first]][0])!r}):"
                         " the Jacobian's spectrum needs finite, positive q_l at every layer; choose a smaller q0 or "
                         "sigma_w2, or a smaller depth")
    return rec, q


def jacobian_moments(act, depth, q0=1.0, sigma_w2=1.0, sigma_b2=0.0, weights="orthogonal") -> xr.Dataset:
    """m₁, m₂ and the normalized variance of the squared singular values of J (module docstring),
    per depth in ``depth`` (an int or a list); q0, σ_w² and σ_b² broadcast as in ``recursion``."""
    act = resolve(act)
    weights = _check_weights(weights)
    depths = _depths(depth)
    return _moments(act, depths, weights, *_forward(act, max(depths), q0, sigma_w2, sigma_b2))


def _moments(act, depths, weights, rec, q):
    """:func:`jacobian_moments` from the forward recursion ``rec`` and its q_0..q_{L−1} ``q``."""
    phi = xr.apply_ufunc(lambda v: jacobian_second_moment(act, v), q)
    fourth = xr.apply_ufunc(lambda v: jacobian_fourth_moment(act, v), q)
    w2 = rec.sigma_w2
    log_chi = np.log(w2 * phi)
    share = fourth / phi**2 - 1.0
    pick = xr.DataArray(np.array(depths), dims="depth")
    cum_log = log_chi.cumsum("layer").isel(layer=pick - 1)
    activation_share = share.cumsum("layer").isel(layer=pick - 1)
    weight_share = WEIGHT_VARIANCE[weights] * pick.astype(float)
    nvar = activation_share + weight_share
    m1 = np.exp(cum_log)
    ds = xr.Dataset(
        {
            "m1": (m1.dims, m1.values, {"long_name": "m1 = tau(J J^T) = prod_l sigma_w2 E f'(h_l)^2",
                                         "equation": "Prop A.2; docs/spectrum.md eq (M1)"}),
            "log_m1": (cum_log.dims, cum_log.values, {"long_name": "log m1 (finite where m1 over- or underflows)"}),
            "m2": (m1.dims, (m1**2 * (1.0 + nvar)).values, {"long_name": "m2 = tau((J J^T)^2)"}),
            "nvar": (nvar.dims, nvar.values, {"long_name": "normalized variance m2/m1^2 - 1 of the squared singular "
                                                           "values", "equation": "docs/spectrum.md eq (V)"}),
            "nvar_activation": (activation_share.dims, activation_share.values,
                                {"long_name": "the activation's share: sum_l E f'^4/(E f'^2)^2 - 1"}),
            "nvar_weights": (("depth",), np.broadcast_to(weight_share.values, (len(depths),)).copy(),
                             {"long_name": "the weights' share: L (Gaussian), 0 (orthogonal)"}),
        },
        coords={"depth": depths, **{k: v for k, v in rec.coords.items() if k not in ("layer", "width")}},
        attrs=dataset_attrs(act, "docs/spectrum.md (free multiplicative convolution of D_l^2 and W_l W_l^T)",
                            weights=weights),
    )
    return ds.transpose(*[d for d in ds.m1.dims if d != "depth"], "depth")


# ---------------------------------------------------------------------------
# The laws of f'(h), h ~ N(0, q), for the Cauchy transforms.
# ---------------------------------------------------------------------------

def _law(act, q):
    """Atoms and pieces of the law of t = f'(h), h ~ N(0, q) (``meanfield.gauss.cauchy``)."""
    sd = math.sqrt(q)
    H = cauchy.TAIL_SIGMAS * sd
    if isinstance(act, ExpLinear):
        lam, alpha, rate, slope = (float(v) for v in (act.lam, act.alpha, act.rate, act.slope))
        a = alpha * rate
        atoms = [(lam, 0.5)]
        if a == 0.0:
            atoms.append((lam * slope, 0.5))
            return dict(kind=cauchy.NODES, par=(0.0, 0.0, 1.0), q=q, density_multiplier=1.0, ends=np.array([0.0]),
                        h=np.zeros(0), weights=np.zeros(0), density=np.zeros(0), t=np.zeros(0), atoms=atoms,
                        top=max(v * v for v, _ in atoms), top_continuous=0.0)
        scale = cauchy.PANEL_SCALE * min(sd, 1.0 / rate)
        lo = max(-H, _branch_floor(lam * slope, lam * a, rate))
        underflow = 0.0
        if lo > -H:  # the mass below, t = λκ to rounding (or t² = 0), is an atom there
            atoms.append((lam * slope, float(special.ndtr(lo / sd))))
            underflow = atoms[-1][1] if slope == 0.0 else 0.0
        ends, h, w = cauchy.panels(lo, 0.0, scale)
        t = lam * slope + lam * a * np.exp(rate * h)
        continuous = max((lam * slope + lam * a) ** 2, (lam * slope) ** 2)  # t² at h = 0⁻ and h → −∞
        return dict(kind=cauchy.EXP, par=(lam * slope, lam * a, rate), q=q, density_multiplier=1.0, ends=ends, h=h,
                    weights=w, density=_gauss(h, q), t=t, atoms=atoms, top=max(lam * lam, continuous),
                    top_continuous=continuous, underflow=underflow)
    if act.name == "tanh" and getattr(act, "closed", None) is None and not getattr(act, "params", {}):
        scale = cauchy.PANEL_SCALE * min(sd, 1.0)
        hi = min(H, SECH4_UNDERFLOW)
        ends, h, w = cauchy.panels(0.0, hi, scale)
        atoms = [(0.0, 2.0 * float(special.ndtr(-hi / sd)))] if hi < H else []  # sech⁴ h underflows beyond
        return dict(kind=cauchy.SECH2, par=(0.0, 0.0, 0.0), q=q, density_multiplier=2.0, ends=ends, h=h, weights=w,
                    density=2.0 * _gauss(h, q), t=1.0 / np.cosh(h) ** 2, atoms=atoms, top=1.0, top_continuous=1.0,
                    underflow=atoms[0][1] if atoms else 0.0)
    scale = cauchy.PANEL_SCALE * min(sd, act.feature_scale)
    cuts = sorted({-H, H, *[k for k in act.breakpoints if -H < k < H]})
    parts = [cauchy.panels(lo, hi, scale) for lo, hi in zip(cuts[:-1], cuts[1:])]
    h = np.concatenate([p[1] for p in parts])
    w = np.concatenate([p[2] for p in parts])
    ends = np.concatenate([parts[0][0]] + [p[0][1:] for p in parts[1:]])
    t = np.asarray(act.df(h), dtype=float)
    top = float(max(np.max(np.square(t)), np.max(np.square(act.df(ends)))))  # the nodes' and panel ends' largest
    return dict(kind=cauchy.NODES, par=(0.0, 0.0, 0.0), q=q, density_multiplier=1.0, ends=ends, h=h, weights=w,
                density=_gauss(h, q), t=t, atoms=[], top=top, top_continuous=top)


def _branch_floor(c, d, r):
    """h below which the branch t = c + d e^{rh} carries nothing double precision can resolve: t = c
    to rounding (c ≠ 0: |d| e^{rh} below half an ulp of c) or t² underflows (c = 0).  Its panels
    stop there and the mass below becomes an atom at c: where q_l explodes (SELU at σ_w² = 3,
    depth 32: q_l ~ 1e7, 9 standard deviations = 26,000) the panels down to −9√q_l numbered
    ~18,000 a law, and one density took minutes."""
    if c != 0.0:
        return (math.log(HALF_ULP * abs(c)) - math.log(abs(d))) / r
    return (0.5 * LOG_TINY - math.log(abs(d))) / r


def _gauss(h, q):
    return np.exp(-h * h / (2.0 * q)) / math.sqrt(2.0 * math.pi * q)


def density_method(act) -> str:
    """'subtracted' (the pole of the Cauchy transform removed: accurate up to the support) or
    'quadrature' (plain nodes: accurate where the density is smooth on the nodes' scale)."""
    act = resolve(act)
    law = _law(act, 1.0)
    return "quadrature" if law["kind"] == cauchy.NODES and len(law["h"]) else "subtracted"


# ---------------------------------------------------------------------------
# One configuration, one depth.
# ---------------------------------------------------------------------------

class _Problem:
    """The packed laws of one configuration at one depth and the constants of x(z)."""

    def __init__(self, act, qs, sigma_w2, weights):
        qs = np.asarray(qs, dtype=float)
        # layers whose q_l agree to LAW_RTOL share one law (the recursion at its fixed point wobbles
        # in the last bits); their density differs by that relative amount at most
        distinct, inverse = np.unique(np.round(np.log(qs) / LAW_RTOL) * LAW_RTOL, return_inverse=True)
        distinct = np.array([qs[inverse == k][0] for k in range(len(distinct))])
        self.laws = [_law(act, float(q)) for q in distinct]
        worst = max(range(len(distinct)), key=lambda k: self.laws[k].get("underflow", 0.0))
        if self.laws[worst].get("underflow", 0.0) > UNDERFLOW_MASS:
            layer = int(np.flatnonzero(inverse == worst)[0])
            raise ValueError(f"q_l = {distinct[worst]:.4g} at layer {layer} puts {self.laws[worst]['underflow']:.2g} of "
                             "f'(h)^2 below the smallest double, where the density cannot be resolved; the moments "
                             "are exact (meanfield.jacobian_moments); a smaller q0, sigma_w2 or depth keeps q_l in "
                             "range")
        self.mult = np.bincount(inverse, minlength=len(distinct)).astype(float)
        self.packed = cauchy.pack(self.laws)
        self.L = len(qs)
        self.e = 1.0 if weights == "gaussian" else 1.0 - self.L
        self.log_gain = self.L * math.log(sigma_w2)
        self.sigma_w2 = sigma_w2
        self.weights = weights
        self.second = np.array([float(jacobian_second_moment(act, q)) for q in distinct])
        self.top = np.array([law["top"] for law in self.laws])
        self.log_m1 = self.log_gain + float(np.sum(self.mult * np.log(self.second)))
        fourth = np.array([float(jacobian_fourth_moment(act, q)) for q in distinct])
        self.log_shift = np.log(fourth / self.second)  # log E t⁴/E t², t = f'(h_l)²
        nvar = float(np.sum(self.mult * (fourth / self.second**2 - 1.0))) + self.L * WEIGHT_VARIANCE[weights]
        self.log_pole = self.log_m1 + math.log1p(nvar)  # log m₂/m₁
        # P(f'(h) = 0): ReLU's flat branch, or where f'² underflows (:func:`_branch_floor`)
        self.zero_atom = max(sum(m for v, m in law["atoms"] if v == 0.0) for law in self.laws)

    @functools.cached_property
    def single_layer(self):
        """:func:`_single_layer_map` of this problem (None where the free solver is used)."""
        return _single_layer_map(self)

    def start_guess(self):
        """(log m₁, log m₂/m₁, log E t_l², log E t_l⁴/E t_l²): what the η-paths start from
        (``spectrum_solver._eta_path``: the first-order start, and the one-pole one where that fails)."""
        return self.log_m1, self.log_pole, np.log(self.second), self.log_shift

    def args(self):
        return (self.mult, float(self.L), self.e, self.log_gain)

    def log_x(self, z, y):
        return (self.log_gain + self.e * np.log1p(z) + (self.L - 1) * np.log(z) + float(np.sum(self.mult * np.log(y))))

    def atoms_only(self):
        """Whether the spectrum is atoms only: orthogonal weights at L = 1 with a law of atoms (ReLU)."""
        return self.weights == "orthogonal" and self.L == 1 and self.laws[0]["top_continuous"] == 0.0

    def singular_points(self):
        """Points where atoms or jump edges of every layer's law meet (orthogonal weights): a choice
        of one atom a_l or the top of the continuous part per layer gives the point σ_w^{2L} Π a_l²,
        where the density of their free product is not smooth (two atoms at L = 2: it diverges like
        an inverse square root; deeper, the kink weakens but still slows the quadrature), so the
        grid breaks there.  The top of the exponential-linear family's continuous part, f'(0⁻)², is
        a jump edge, and where q_l is small that part is a narrow lump, nearly an atom: with the
        tops among the choices SELU at q0 = 1e-3, depth 2, integrates to 5e-5 where it did to 4e-4.
        With more than MAX_SINGULAR choices only the product of each layer's heaviest atom is kept."""
        if self.weights != "orthogonal" or self.L < 2:
            return []
        per_layer = []
        for law, mult in zip(self.laws, self.mult):
            atoms = [(v * v, m) for v, m in law["atoms"] if v != 0.0]
            if not atoms:
                return []
            edges = [(law["top_continuous"], 0.0)] if law["top_continuous"] > 0.0 else []
            per_layer += [atoms + edges] * int(mult)
        if math.prod(len(a) for a in per_layer) > MAX_SINGULAR:
            per_layer = [[max(atoms, key=lambda a: a[1])] for atoms in per_layer]
        return sorted({self.sigma_w2 ** self.L * math.prod(v for v, _ in choice)
                       for choice in itertools.product(*per_layer)})

    def other_atoms(self):
        """Atoms away from zero: with orthogonal weights W Wᵀ = σ_w² I, so a product of atoms a_l of
        mass p_l has mass max(0, Σ p_l − (L − 1)) (Belinschi 2003): at L = 1 every atom of D_0²."""
        if self.weights != "orthogonal":
            return []
        atoms = []
        if self.L == 1:
            law = self.laws[0]
            return [(self.sigma_w2 * v * v, m) for v, m in law["atoms"] if v != 0.0]
        best = [max([(m, v) for v, m in law["atoms"] if v != 0.0], default=(0.0, 0.0)) for law in self.laws]
        mass = sum(mult * m for mult, (m, _) in zip(self.mult, best)) - (self.L - 1)
        if mass > 0:
            value = self.sigma_w2 ** self.L * math.prod((v * v) ** mult for mult, (_, v) in zip(self.mult, best))
            atoms.append((value, mass))
        return atoms


def _upper_edge(problem):
    """(log x_max, z*): the minimum of log x(z) on the real branch z > 0, where dx/dz = 0.  The
    branch ends where some y_l(z) reaches the top of its law's support; if x(z) still decreases
    there, the edge is x at the branch's end: with orthogonal weights and y_l → top_l as z → ∞
    (an atom or a density at the top of every law: L = 1, ReLU), x_max = σ_w^{2L} Π top_l exactly."""
    from .spectrum_solver import edge_slope

    mult, L, e, _ = problem.args()
    packed = problem.packed
    zs = np.geomspace(1e-8, 1e8, 65)
    y = problem.second / zs[0]
    prev = None
    ended = False
    for z in zs:
        y_prev = y.copy()
        slope, _ = edge_slope(z, y, mult, L, e, problem.top, *packed)
        if np.any(y - problem.top <= EDGE_END * problem.top):
            ended = True
            break
        if slope >= 0.0 and prev is not None:
            lo, hi = prev, z
            y_lo = y_prev
            for _ in range(200):
                mid = math.sqrt(lo * hi)
                y_mid = y_lo.copy()
                s_mid, _ = edge_slope(mid, y_mid, mult, L, e, problem.top, *packed)
                if s_mid < 0.0:
                    lo, y_lo = mid, y_mid
                else:
                    hi = mid
                if hi / lo - 1.0 < 1e-15:
                    break
            return problem.log_x(lo, y_lo), lo
        prev = z
    if problem.L == 1 and problem.weights == "orthogonal":  # σ_w² f'(h_0)²: the top of its continuous part
        top = problem.laws[0]["top_continuous"] or problem.laws[0]["top"]  # atoms only (ReLU): the top atom
        return problem.log_gain + math.log(top), math.inf
    if problem.weights == "orthogonal" and (not ended or np.all(y - problem.top <= EDGE_END * problem.top)):
        return problem.log_gain + float(np.sum(problem.mult * np.log(problem.top))), math.inf
    return problem.log_x(prev if ended and prev is not None else zs[-1], y_prev if ended else y), math.inf


@functools.lru_cache(maxsize=16)
def _legendre(points):
    """Gauss–Legendre nodes and weights on (−1, 1) (0.04 s for 1,000 points: kept)."""
    nodes, weights = np.polynomial.legendre.leggauss(points)
    nodes.flags.writeable = weights.flags.writeable = False
    return nodes, weights


def _grid(u_top, span, points, breaks=()):
    """u = log x on (u_top − span, u_top) and the weights of ∫ g du.  Without breakpoints,
    u = u_top − span (1 − cos θ), θ at the Gauss–Legendre nodes of (0, π/2): near the square-root
    edge the integrand is smooth in θ, so the rule converges fast there, and it does at an edge
    where the density jumps (orthogonal weights at L = 1) or at the grid's lower end, where it is
    truncated.  ``breaks`` (log x of interior singular points of the density) split the range;
    the panels below the top one map θ ∈ (0, π) by u = lo + (hi − lo)(1 − cos θ)/2, which
    clusters points at both ends and makes an inverse-square-root singularity there smooth in θ."""
    lo_end = u_top - span
    inner = sorted(b for b in breaks if lo_end < b < u_top - START_DEPTH * max(1.0, abs(u_top)))
    if not inner:
        nodes, w = _legendre(points)
        theta = 0.25 * math.pi * (1.0 + nodes)
        return u_top - span * (1.0 - np.cos(theta)), span * np.sin(theta) * 0.25 * math.pi * w
    cuts = [lo_end] + inner + [u_top]
    lengths = np.diff(cuts)
    counts = np.maximum(MIN_PANEL_POINTS, np.round(points * lengths / lengths.sum()).astype(int))
    counts[-1] = points - counts[:-1].sum()
    least = min(MIN_PANEL_POINTS, points // len(lengths))
    if counts[-1] < least:  # too few points for MIN_PANEL_POINTS a panel: `least` each, the rest by length
        counts = least + np.floor((points - least * len(lengths)) * lengths / lengths.sum()).astype(int)
        counts[-1] = points - counts[:-1].sum()
    us, ws = [], []
    for (lo, hi), n in zip(zip(cuts[:-1], cuts[1:]), counts):
        nodes, w = _legendre(int(n))
        theta = 0.5 * math.pi * (1.0 + nodes)
        us.append(lo + 0.5 * (hi - lo) * (1.0 - np.cos(theta)))
        ws.append(0.5 * (hi - lo) * np.sin(theta) * 0.5 * math.pi * w)
    u = np.concatenate(us)
    w = np.concatenate(ws)
    order = np.argsort(-u)
    return u[order], w[order]


def _solve_grid(problem, u, u_top, breaks):
    """(z, settled, density of log x) at the points ``u`` (descending): z = M_J(x + iη) along them
    from the upper edge down; points next to an edge, a singular point (``breaks``) or an atom
    where z did not settle take the local power law (:func:`_fill_singular`)."""
    from .spectrum_solver import density_path

    z = np.zeros(u.shape, dtype=complex)
    ok = np.zeros(u.shape, dtype=bool)
    # start a little inside the edge, where the square root of the edge no longer dominates
    start = int(min(np.searchsorted(-u, -(u_top - START_DEPTH * max(1.0, abs(u_top)))), len(u) - 1))
    density_path(u, start, u_top, *problem.start_guess(), problem.mult, float(problem.L), problem.e,
                 problem.log_gain, ETA_REL, problem.top, *problem.packed, z, ok)
    atoms = problem.other_atoms()
    for a, _ in atoms:  # next to an atom z carries its rounding (:data:`ATOM_GAP`)
        ok &= ~(np.abs(np.expm1(u - math.log(a))) < ATOM_GAP)
    dens = _fill_singular(u, _density(u, z, ok, atoms), list(breaks) + [u_top] + [math.log(a) for a, _ in atoms])
    return z, ok, dens


def _initial_span(problem):
    """Range of log x to start from: the orthogonal spectra of the SELU family spread by a few units
    of log x per layer; each Gaussian factor adds a power-law tail x^{1/(L+1)} that needs about
    (L + 1)·ln(1/tol).  The grid is extended if the tail is heavier."""
    if problem.weights == "gaussian":
        return 30.0 + (problem.L + 1) * math.log(1.0 / TAIL_MASS)
    return 30.0 + problem.L


def density_on_grid(problem, points, log_m1=None, m2_rel=None):
    """The density of log x on the θ-grid below the upper edge, with its quadrature weights.  The
    grid ends at the lower edge of the support where there is one (found by bisection where the
    density falls to nothing between two points), else it extends down until the estimated mass
    below it is under TAIL_MASS.

    A soft lower edge (the density falls steeply to the η floor above the grid's bottom: the SELU
    family with orthogonal weights, whose f'² reaches 0 only in a thin tail) leaves most of the
    grid's points below the support and few on the fall; where the grid's own checks are then
    off by more than REFINE_TOL, the grid is laid again: down to the first point below the
    support, with a break at the fall's knee (the lowest point where the density is KNEE of its
    largest), which clusters points on both sides of it.  The grid whose checks are better is
    kept.  The checks are the mass, and with ``log_m1`` (log m₁) and ``m2_rel`` (m₂/m₁²) the two
    moments (:func:`_checks`)."""
    u_top, z_edge = _upper_edge(problem)
    if problem.atoms_only():  # σ_w² f'(h_0)² of the ReLU family at L = 1: atoms, no density
        u, w = _grid(u_top, 1.0, points)
        return u_top, z_edge, u, w, np.zeros(points, dtype=complex), np.ones(points, dtype=bool), np.zeros(points), 0.0
    single = _single_layer_grid(problem, points)
    if single is not None:
        return (u_top, z_edge) + single
    span = _initial_span(problem)
    most = MAX_SPAN_GROWTH * span
    breaks = [math.log(v) for v in problem.singular_points()]
    for _ in range(8):
        u, w = _grid(u_top, span, points, breaks)
        z, ok, dens = _solve_grid(problem, u, u_top, breaks)
        low = _hard_lower_edge(problem, u, dens, np.abs(z), u_top)
        if low is not None:
            u, w = _grid(u_top, u_top - low, points, breaks + [low])
            z, ok, dens = _solve_grid(problem, u, u_top, breaks + [low])
            return u_top, z_edge, u, w, z, ok, dens, 0.0
        tail = _tail_mass(u, dens)
        if tail < TAIL_MASS or span >= most:
            break
        # an infinite tail estimate (the density still rising at the grid's bottom: leaky ReLU's
        # orthogonal spectra span L·log(1/a²), 3.2 units a layer at a = 0.2) widens the most
        span = min(_wider_span(span, dens, tail), most)

    def worst(u, w, dens, tail):
        return max((abs(e) for e in _checks(problem, u, w, dens, tail, log_m1, m2_rel) if np.isfinite(e)), default=0.0)

    positive = np.flatnonzero(dens > 0)
    first = worst(u, w, dens, tail)
    if positive.size and positive[-1] < len(u) - 1 and first > REFINE_TOL:
        knee = u[np.flatnonzero(dens >= KNEE * np.nanmax(dens))[-1]]  # u descends
        u2, w2 = _grid(u_top, u_top - u[positive[-1] + 1], points, breaks + [knee])
        z2, ok2, dens2 = _solve_grid(problem, u2, u_top, breaks)
        tail2 = _tail_mass(u2, dens2)
        if worst(u2, w2, dens2, tail2) < first:
            return u_top, z_edge, u2, w2, z2, ok2, dens2, tail2
    return u_top, z_edge, u, w, z, ok, dens, tail


def _single_layer_map(problem):
    """At L = 1 with orthogonal weights J Jᵀ = σ_w² O D_0² Oᵀ has the law of x = σ_w² f'(h_0)² itself.
    Where the continuous part comes from a branch on which t = f'(h) is monotone and keeps its
    sign (the exponential-linear family's t = c + d e^{rh}, h < 0; tanh's sech² h, h > 0, counted
    twice), u = log x is a one-to-one map of h: (h_lo, h_hi, u(h), log|du/dh|(h), h(u) or NaN, the
    density of h), else None (the free solver instead).

    On this route the density of log x is p(h)/|du/dh| exactly, and a grid in h integrates it to
    rounding: the free solver's grid in u could not follow a law that piles up at a lower edge
    (lSELU at q0 = 10: x − (λκ)² ∝ e^{bh}, half the mass within e^{−5} of the edge, 1.7e-4 of it
    missed at 1,000 points)."""
    if problem.weights != "orthogonal" or problem.L != 1:
        return None
    law = problem.laws[0]
    q, log_gain = law["q"], problem.log_gain
    lo, hi = float(law["ends"][0]), float(law["ends"][-1])  # beyond, the law's atoms (:func:`_branch_floor`)
    mult = law["density_multiplier"]

    def density(h):
        return mult * _gauss(h, q)

    if law["kind"] == cauchy.EXP:
        c, d, r = law["par"]
        if d == 0.0 or c * (c + d) < 0.0:  # no continuous part, or t changes sign on it
            return None
        sign = math.copysign(1.0, c + d)

        def u_of(h):
            return log_gain + 2.0 * np.log(sign * (c + d * np.exp(r * h)))

        def log_slope(h):
            return math.log(2.0 * abs(d * r)) + r * h - np.log(sign * (c + d * np.exp(r * h)))

        def h_of(u):
            with np.errstate(divide="ignore", invalid="ignore"):
                h = np.log((sign * np.exp(0.5 * (u - log_gain)) - c) / d) / r
            return np.where(h < 0.0, h, np.nan)

        return lo, hi, u_of, log_slope, h_of, density
    if law["kind"] == cauchy.SECH2:
        def log_cosh(h):
            return h + np.log1p(np.exp(-2.0 * h)) - math.log(2.0)

        def u_of(h):
            return log_gain - 4.0 * log_cosh(h)

        def log_slope(h):
            return math.log(4.0) + np.log(np.tanh(h))

        def h_of(u):
            with np.errstate(invalid="ignore"):
                return np.arccosh(np.exp(-0.25 * (u - log_gain)))

        return lo, hi, u_of, log_slope, h_of, density
    return None


def _single_layer_grid(problem, points):
    """(u, w, z, settled, density of log x, tail) of :func:`_single_layer_map`'s law on ``points``
    Gauss–Legendre nodes in h (weights w = |du/dh| w_h, so Σ ρ w is the rule's Σ p w_h); z is not
    formed (NaN).  Nodes where x is within rounding of the branch's end (next to the law's floor,
    :func:`_branch_floor`, below which its atom takes over) carry no resolvable density: their
    mass is reported as the tail below the grid, where it lies to within ε of x; None where the map
    does not apply."""
    found = problem.single_layer
    if found is None:
        return None
    lo, hi, u_of, log_slope, _, density = found
    nodes, wl = _legendre(points)
    h = 0.5 * (hi - lo) * nodes + 0.5 * (hi + lo)
    wh = 0.5 * (hi - lo) * wl
    u = u_of(h)
    ls = log_slope(h)
    resolved = np.isfinite(ls) & (ls > math.log(np.finfo(float).eps) + np.log(np.abs(u) + 1.0))
    p = density(h)
    tail = float(np.sum((p * wh)[~resolved]))
    with np.errstate(over="ignore"):
        dens = np.where(resolved, p * np.exp(-ls), 0.0)
        w = np.where(resolved, np.exp(ls) * wh, 0.0)
    order = np.argsort(-u, kind="stable")
    n = len(u)
    return u[order], w[order], np.full(n, np.nan, dtype=complex), np.ones(n, dtype=bool), dens[order], tail


def _checks(problem, u, w, dens, tail, log_m1=None, m2_rel=None):
    """(mass, m₁, m₂) errors of a grid's density: ∫ρ + tail against 1 − atoms, and (given log m₁
    and m₂/m₁²) the moments relative to the exact ones, as ∫ e^{k(u − log m₁)} ρ du, stable for
    any size of m₁; NaN for a moment not given."""
    other = problem.other_atoms()
    mass = float(np.nansum(dens * w)) + tail - (1.0 - problem.zero_atom - sum(m for _, m in other))
    if log_m1 is None:
        return mass, math.nan, math.nan
    rel = [(m, math.exp(math.log(v) - log_m1)) for v, m in other]
    bottom = math.exp(float(np.min(u)) - log_m1) if tail else 0.0  # the tail lies below the grid's bottom
    mom1 = float(np.nansum(np.exp(u - log_m1) * dens * w)) + sum(m * r for m, r in rel) + tail * bottom
    mom2 = (float(np.nansum(np.exp(2.0 * (u - log_m1)) * dens * w)) + sum(m * r * r for m, r in rel)
            + tail * bottom**2)
    return mass, mom1 - 1.0, (math.nan if m2_rel is None else mom2 / m2_rel - 1.0)


def _density(u, z, ok, atoms):
    """The density of log x, −Im z/π, with the known atoms away from zero taken out: z = M_J(x + iη)
    holds an atom of mass m at a as m·a/(x − a + iη), a Lorentzian of width η that near the atom
    dwarfs the density beside it (ELU at L = 1: its atom of ½ at the top of the continuous part
    read 2.5e5 instead of 0.2 at 8e-11 below the top, and 1e-4 of mass over the grid).  Zero where
    the rest is below the floor that η leaves (the Lorentzian tails of the rest of the spectrum,
    ~ETA_REL relative)."""
    z = z - _atoms_transform(atoms, u)
    dens = np.where(ok, np.maximum(-z.imag / math.pi, 0.0), np.nan)
    return np.where(dens <= NOISE_REL * np.abs(z), 0.0, dens)


def _atoms_transform(atoms, u):
    """Σ m·a/(x − a + iη) at x = e^u, η = ETA_REL·x: the atoms' (value a, mass m) part of M_J(x + iη),
    with x − a = a·expm1(u − log a) exact next to the atom."""
    total = np.zeros(np.shape(u), dtype=complex)
    if atoms:
        with np.errstate(over="ignore"):
            eta = ETA_REL * np.exp(u)
        for a, m in atoms:
            total += m * a / (a * np.expm1(u - math.log(a)) + 1j * eta)
    return total


def _fill_singular(u, dens, breaks):
    """Points next to an edge or a singular point of the density (``breaks``) where Newton could not
    settle (within ~1e-9 of it the equations' terms grow like the density and cancel, or two roots
    meet): the density there follows the power law c|u − b|^k through the two nearest solved points
    on the same side (k = ½ at a square-root edge, −½ at the meeting of atoms)."""
    dens = dens.copy()
    for b in breaks:
        for side in (1.0, -1.0):
            on_side = np.flatnonzero(side * (u - b) > 0)
            if on_side.size == 0:
                continue
            near = on_side[np.argsort(np.abs(u[on_side] - b))]
            solved = near[np.isfinite(dens[near]) & (dens[near] > 0)]
            if solved.size < 2:
                continue
            (i, j), di = solved[:2], np.abs(u[solved[:2]] - b)
            k = math.log(dens[j] / dens[i]) / math.log(di[1] / di[0]) if di[1] != di[0] else 0.0
            closer = near[: np.searchsorted(np.abs(u[near] - b), di[0])]
            missing = closer[~np.isfinite(dens[closer])]
            dens[missing] = dens[i] * (np.abs(u[missing] - b) / di[0]) ** k
    return dens


def _hard_lower_edge(problem, u, dens, scale, u_top):
    """log x of a lower edge where the density drops from a substantial value to nothing between two
    grid points (a square-root edge: orthogonal weights with every f'² bounded away from 0, or an
    atom at 0 beside a gap), refined by bisection; None for a spectrum that thins out smoothly.

    The innermost point is solved by η-continuation, and each midpoint by continuation in log x from
    the innermost point inside so far (a midpoint whose continuation fails, as it may within ~1e-9
    of the edge where two roots meet, counts as outside: the grid then ends that much inside, which
    loses O(δ^{3/2}) of mass); a density between the η floor and EDGE_DENSITY found so is checked
    by an η-path from scratch, which at every midpoint cost 25 times more."""
    from .spectrum_solver import MAX_HALVINGS, MAX_NEWTON, _continue, _eta_path

    positive = np.flatnonzero(dens > 0)
    if positive.size == 0 or positive[-1] == len(u) - 1 or dens[positive[-1]] < EDGE_DENSITY * scale[positive[-1]]:
        return None
    inside, outside = u[positive[-1]], u[positive[-1] + 1]
    mult, L, e, log_gain = problem.args()
    log_rel = math.log(ETA_REL)

    def from_scratch(at):
        y = np.empty(len(mult), dtype=complex)
        z, found = _eta_path(at, u_top, *problem.start_guess(), y, mult, L, e, log_gain, at + log_rel,
                             problem.top, *problem.packed)
        return z, found, y

    z_in, good, y_in = from_scratch(inside)
    for _ in range(60):
        mid = 0.5 * (inside + outside)
        if good:
            y = y_in.copy()
            z, found = _continue(inside, mid, z_in, y, log_rel, MAX_HALVINGS, MAX_NEWTON, mult, L, e, log_gain,
                                 problem.top, *problem.packed)
        else:  # the innermost point did not settle: η-paths from scratch
            z, found, y = from_scratch(mid)
        if good and found and NOISE_REL * abs(z) < -z.imag / math.pi <= EDGE_DENSITY * abs(z):
            # a density this small may be continuation's rounding past the edge (z is known to ~√ε
            # there) or a thin tail of the support: an η-path from scratch decides
            z, found, y = from_scratch(mid)
        if found and -z.imag / math.pi > NOISE_REL * abs(z):
            inside = mid
            if good:
                z_in, y_in = z, y
        else:
            outside = mid
        if inside - outside <= EDGE_TOL * max(1.0, abs(inside)):
            break
    return inside


def _wider_span(span, dens, tail):
    """The span of a grid whose tail below is under TAIL_MASS: the power law e^{k u} of
    :func:`_tail_mass` (tail = ρ_bottom/k) falls by TAIL_MASS/tail within log(tail/TAIL_MASS)/k,
    taken with a quarter more (a tail steepens or flattens slowly); at least 1.5 and at most 4
    times the span."""
    k = dens[-1] / tail
    grow = 1.25 * math.log(tail / TAIL_MASS) / k if k > 0 else math.inf
    return span + min(max(grow, 0.5 * span), 3.0 * span)


def _tail_mass(u, dens):
    """Mass below the grid's last point, from the power law e^{k u} through that point and the
    nearest one at least a unit of log x above it."""
    if dens.size < 2 or not (dens[-1] > 0):
        return 0.0
    above = np.flatnonzero(u - u[-1] >= 1.0)
    j = above[-1] if above.size else 0
    if not (dens[j] > 0) or u[j] == u[-1]:
        return math.inf
    k = (math.log(dens[j]) - math.log(dens[-1])) / (u[j] - u[-1])
    return float(dens[-1] / k) if k > 0 else math.inf


def _quantiles(u, w, dens, zero_atom, tail, other):
    """Quantiles of the squared singular values from the CDF (atoms included).  The CDF in log x is
    the integral of a monotone cubic (PCHIP) through the density at the grid's points, scaled so
    that its total is the grid's own quadrature of the density (so the quantiles agree with the
    mass the Dataset reports); each quantile is its root (Brent)."""
    from scipy import interpolate, optimize

    order = np.argsort(u)
    us, ds = u[order], np.nan_to_num(dens[order])
    keep = np.concatenate([[True], np.diff(us) > 0])
    us, ds = us[keep], ds[keep]
    continuous = float(np.nansum(dens * w))
    if continuous <= 0 or us.size < 2:
        antiderivative = None
    else:
        antiderivative = interpolate.PchipInterpolator(us, ds).antiderivative()
        scale = continuous / float(antiderivative(us[-1]))

    def cdf(v):
        inner = 0.0 if antiderivative is None else scale * float(antiderivative(min(max(v, us[0]), us[-1])))
        return zero_atom + tail + inner + sum(m for loc, m in other if math.log(loc) <= v)

    out = []
    for level in QUANTILES:
        if level <= zero_atom + tail:
            out.append(0.0 if level <= zero_atom else math.exp(us[0]))
            continue
        atom_hit = [loc for loc, _ in other if cdf(math.log(loc)) >= level > cdf(math.log(loc) - 1e-12)]
        if atom_hit:
            out.append(atom_hit[0])
            continue
        if cdf(us[-1]) < level:
            out.append(math.exp(us[-1]))
            continue
        out.append(math.exp(optimize.brentq(lambda v: cdf(v) - level, us[0], us[-1], xtol=1e-14)))
    return out


def _density_at(problem, u_top, log_x):
    """The density of log x at given points (any order): solved along them from the upper edge down
    (or, on :func:`_single_layer_map`'s route, p(h)/|du/dh| at h(u)); zero above the edge."""
    single = problem.single_layer
    if single is not None:
        lo, hi, _, log_slope, h_of, density = single
        h = h_of(np.asarray(log_x, dtype=float))
        h = np.where((h >= lo) & (h <= hi), h, np.nan)  # beyond, the law's atoms
        with np.errstate(invalid="ignore", over="ignore"):
            dens = density(h) * np.exp(-log_slope(h))
        return np.where(np.isfinite(dens) & (log_x < u_top), dens, 0.0)
    order = np.argsort(-log_x)
    u = log_x[order]
    dens = np.zeros(u.shape)
    inside = np.flatnonzero(u < u_top)
    if inside.size and not problem.atoms_only():
        sub = u[inside]
        dens[inside] = _solve_grid(problem, sub, u_top, [])[2]
    out = np.empty_like(dens)
    out[order] = dens
    return out


def spectrum(act, depth, q0=1.0, sigma_w2=1.0, sigma_b2=0.0, weights="orthogonal", points=DEFAULT_POINTS,
             density=True, x=None) -> xr.Dataset:
    """The squared singular values of J at each depth in ``depth``: moments, and (``density=True``) the
    limiting density on a ``points``-point grid, the upper edge, the atom at zero and quantiles.

    Variables over (config dims..., depth): ``m1``, ``m2``, ``nvar`` (and its activation and weight
    shares), ``upper_edge``, ``atom_zero``, ``atom_other`` (atoms away from zero: orthogonal
    weights at L = 1), ``quantile_x`` (dim ``quantile``), and the density's own checks
    ``density_mass_error`` (∫ρ against 1 − atoms), ``density_m1_error``, ``density_m2_error``
    (relative, against the exact moments).  Over (config dims..., depth, ``point``): ``log_x``,
    ``x``, ``density`` ρ(x) and ``density_log`` (the density of log x, x ρ(x): the form that
    stays finite for deep Gaussian networks, whose spectrum spans hundreds of decades).

    ``x`` (optional): squared singular values at which to report the density instead of the grid
    (zero above the upper edge); the checks and quantiles still come from the grid.
    """
    act = resolve(act)
    weights = _check_weights(weights)
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 16:
        raise ValueError(f"points must be an integer >= 16, got {points!r}")
    depths = _depths(depth)
    rec, q = _forward(act, max(depths), q0, sigma_w2, sigma_b2)
    moments = _moments(act, depths, weights, rec, q)
    if not density:
        return moments
    if isinstance(act, ExpLinear) and not act.scalar:
        raise ValueError("the density needs scalar activation parameters; moments take arrays")
    if x is not None:
        from .functionals import check_array

        x = np.atleast_1d(check_array("x", x, positive=True))
        if x.ndim != 1:
            raise ValueError(f"x must be one list of squared singular values, got shape {x.shape}")
    config_dims = [d for d in moments.m1.dims if d != "depth"]
    shape = tuple(moments.sizes[d] for d in config_dims)
    n_cfg = int(np.prod(shape, dtype=int))
    qs = q.transpose(*config_dims, "layer").values.reshape(n_cfg, -1)
    # σ_w² has the config dims only where it was given as an array
    w2 = rec.sigma_w2.broadcast_like(moments.m1.isel(depth=0)).transpose(*config_dims).values.reshape(n_cfg)
    nd = len(depths)
    out = {name: np.full((n_cfg, nd), np.nan) for name in
           ("upper_edge", "log_upper_edge", "atom_zero", "atom_other", "density_mass_error", "density_m1_error",
            "density_m2_error", "tail_mass", "unconverged", "filled")}
    quant = np.full((n_cfg, nd, len(QUANTILES)), np.nan)
    estimated_tail = np.ones((n_cfg, nd), dtype=bool)
    n_out = points if x is None else len(x)
    log_x = np.full((n_cfg, nd, n_out), np.nan)
    dens_log = np.full((n_cfg, nd, n_out), np.nan)
    outside = 0
    m2_rel = 1.0 + moments.nvar.transpose(*config_dims, "depth").values.reshape(n_cfg, nd)  # m₂/m₁², finite
    log_m1 = moments.log_m1.transpose(*config_dims, "depth").values.reshape(n_cfg, nd)
    for i in range(n_cfg):
        for j, L in enumerate(depths):
            problem = _Problem(act, qs[i, :L], float(w2[i]), weights)
            exact = float(log_m1[i, j]), float(m2_rel[i, j])
            u_top, _, u, w, z, ok, dens, tail = density_on_grid(problem, points, *exact)
            other = problem.other_atoms()
            atom_other = sum(m for _, m in other)
            mass_error, m1_error, m2_error = _checks(problem, u, w, dens, tail, *exact)
            out["upper_edge"][i, j] = math.exp(u_top) if u_top < 700 else math.inf
            out["log_upper_edge"][i, j] = u_top
            out["atom_zero"][i, j] = problem.zero_atom
            out["atom_other"][i, j] = atom_other
            out["density_mass_error"][i, j] = mass_error
            out["density_m1_error"][i, j] = m1_error
            out["density_m2_error"][i, j] = m2_error
            out["tail_mass"][i, j] = tail
            estimated_tail[i, j] = problem.single_layer is None
            out["unconverged"][i, j] = float(np.count_nonzero(~np.isfinite(dens)))
            out["filled"][i, j] = float(np.count_nonzero(~ok & np.isfinite(dens)))
            quant[i, j] = _quantiles(u, w, dens, problem.zero_atom, tail, other)
            if x is None:
                log_x[i, j] = u
                dens_log[i, j] = dens
            else:
                log_x[i, j] = np.log(x)
                dens_log[i, j] = _density_at(problem, u_top, np.log(x))
                outside += int(np.all(np.log(x) > u_top))
    if x is not None and outside == n_cfg * nd:
        raise ValueError(f"every x lies above the support of the squared singular values, which ends at "
                         f"{float(np.nanmax(out['upper_edge'])):.6g} (largest over the configurations); give x in "
                         "(0, upper edge]")
    dims = tuple(config_dims) + ("depth",)

    def shaped(a, extra=()):
        return a.reshape(shape + (nd,) + extra)

    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        values = np.exp(log_x)
        density_x = dens_log / values
    data = {
        "upper_edge": (dims, shaped(out["upper_edge"]), {"long_name": "upper edge of the support of the squared "
                                                                      "singular values (dx/dz = 0, found directly)"}),
        "log_upper_edge": (dims, shaped(out["log_upper_edge"]), {"long_name": "log of upper_edge"}),
        "atom_zero": (dims, shaped(out["atom_zero"]), {"long_name": "mass of the atom at 0 (max_l P(f'(h_l) = 0))"}),
        "atom_other": (dims, shaped(out["atom_other"]), {"long_name": "mass of atoms away from 0"}),
        "quantile_x": (dims + ("quantile",), shaped(quant, (len(QUANTILES),)),
                       {"long_name": "quantiles of the squared singular values"}),
        "density_mass_error": (dims, shaped(out["density_mass_error"]),
                               {"long_name": "integral of the density minus (1 - atoms)"}),
        "density_m1_error": (dims, shaped(out["density_m1_error"]),
                             {"long_name": "integral of x rho / m1 - 1"}),
        "density_m2_error": (dims, shaped(out["density_m2_error"]),
                             {"long_name": "integral of x^2 rho / m2 - 1"}),
        "tail_mass": (dims, shaped(out["tail_mass"]), {"long_name": "mass below the grid (power-law estimate)"}),
        "unconverged": (dims, shaped(out["unconverged"]).astype(int),
                        {"long_name": "grid points where the solver did not converge (density NaN there)"}),
        "filled": (dims, shaped(out["filled"]).astype(int),
                   {"long_name": "grid points next to an edge or singular point where Newton could not settle, "
                                 "filled by the local power law"}),
        "log_x": (dims + ("point",), shaped(log_x, (n_out,)), {"long_name": "log of the squared singular value"}),
        "x": (dims + ("point",), shaped(values, (n_out,)),
              {"long_name": "squared singular value (eigenvalue of J J^T)"}),
        "density": (dims + ("point",), shaped(density_x, (n_out,)), {"long_name": "density rho(x)"}),
        "density_log": (dims + ("point",), shaped(dens_log, (n_out,)),
                        {"long_name": "density of log x, x rho(x)"}),
    }
    ds = moments.assign(data).assign_coords(quantile=list(QUANTILES))
    ds.attrs.update(dataset_attrs(act, ds.attrs.get("equation", ""), weights=weights, points=points,
                                  density_method=density_method(act)))
    _warn_inaccurate(ds, points, shaped(estimated_tail))
    return ds
