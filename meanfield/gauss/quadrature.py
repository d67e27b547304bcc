"""Gaussian functionals of any activation by quadrature.

Four rules, all vectorised over every argument:

* ``"auto"`` (the default) — ``"trapezoid"`` at the points where it is exact
  to rounding (an activation analytic in a strip about the real axis, at
  moderate q: tanh, softplus, swish), ``"graded"`` everywhere else.
* ``"trapezoid"`` — the trapezoidal rule in z on a fixed grid.  For an
  integrand analytic in the strip |Im z| < d its error decays as e^{−2πd/h}
  (Trefethen & Weideman 2014, SIAM Review 56, Thm 5.1): geometric, and faster
  than Gauss–Hermite with the same number of nodes for integrands with poles
  near the real axis.  An activation declares the half-width of its strip in
  x (``Activation.analytic_strip``); in z it is that over s.
* ``"hermite"`` — probabilists' Gauss–Hermite with ``order`` nodes.  Exact for
  polynomials of degree < 2·order and spectrally accurate for smooth f at
  moderate q; it converges only algebraically when f or f' has a kink
  (ReLU, the SELU family) and misses features of f narrower than the node
  spacing times √q (tanh at q = 1e8).
* ``"graded"`` — composite Gauss–Legendre in z with panels cut
  at the activation's kinks and graded geometrically toward them and toward
  x = 0 (``graded_rule``).  Each panel holds a smooth integrand, so it
  converges exponentially for kinked activations and stays accurate from
  q = 1e-8 to 1e8.  It agrees with the closed forms of the exponential-linear
  family to ~1e-14 (``tests/test_quadrature.py``).

Derivatives in q, m and v = s² use Gaussian integration by parts (Stein's
identities), so no second derivative of f is ever needed:

    ∂/∂m E[g(m + s z)] = E[g · z] / s,     ∂/∂v E[g(m + s z)] = E[g · (z² − 1)] / (2v).

g(m) is subtracted first (E[z] = E[z² − 1] = 0 exactly), which removes the
O(1/s) and O(1/s²) amplification of rounding at tiny q.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .mills import normal_pdf

#: The functionals of the O(1/N) finite-width theory, in the order every implementation returns
#: them (``finite_width_moments`` here, ``mills_series`` for the exponential-linear family).
FINITE_WIDTH_QUANTITIES = ("Q", "Q4", "dQ", "d2Q", "phi", "dphi", "d2phi", "P", "S")

RULES = ("auto", "graded", "hermite", "trapezoid")
DEFAULT_RULE = "auto"
#: Nodes per panel (graded) or in total (hermite, trapezoid).  With 16-point panels the
#: graded rule reaches ~1e-14 against the closed forms at every tested q.  Under "auto",
#: ``order`` sets the graded rule's and the trapezoid rule keeps its own.
DEFAULT_ORDER = {"graded": 16, "hermite": 96, "trapezoid": 129}

#: The trapezoid rule's z-range [−10, 10]: the Gaussian tail of every moment the functionals
#: take (up to z⁶ n(z), for Q'' by Stein) beyond it is 2·10⁵·n(10) < 2e-17, below rounding.
TRAPEZOID_Z = 10.0
#: Node counts "auto" chooses from, each point taking the fewest that are exact for it (odd, so
#: that z = 0 is a node): h = 20/32, 20/64, 20/128.
TRAPEZOID_ORDERS = (33, 65, 129)
#: The trapezoid rule's error for E[g(s z)], g analytic in |Im z| < d, shifting the line to
#: Im z = a <= d (Trefethen & Weideman 2014, SIAM Review 56, Thm 5.1, with the Gaussian's growth
#: e^{a²/2} on the shifted line): C·exp(min_{a<=d} a²/2 − 2πa/h).  ln C measured for the table's
#: activations is at most 10.4 (tanh², a double pole; at a = 2π/h the Gaussian's own aliasing
#: term, smaller); tests/test_quadrature.py measures the error again at every boundary.
TRAPEZOID_LOG_PREFACTOR = 11.0
#: The error "auto" accepts: half an ulp of 1.
TRAPEZOID_LOG_ERROR = math.log(2.0**-53)


def trapezoid_min_distance(order):
    """The smallest d (the singularity's distance from the real axis in z) at which the trapezoid
    rule with ``order`` nodes meets TRAPEZOID_LOG_ERROR by the bound above; inf if it never does."""
    k = 2.0 * math.pi * (order - 1) / (2.0 * TRAPEZOID_Z)  # 2π/h
    budget = TRAPEZOID_LOG_ERROR - TRAPEZOID_LOG_PREFACTOR
    if -0.5 * k * k > budget:  # even the best shift, a = 2π/h, falls short
        return math.inf
    return k - math.sqrt(k * k + 2.0 * budget)  # the smaller root of a²/2 − k a = budget


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


@functools.lru_cache(maxsize=32)
def _trapezoid(order):
    z = np.linspace(-TRAPEZOID_Z, TRAPEZOID_Z, order)
    w = normal_pdf(z)
    return z, w / w.sum()  # the trapezoid sum of the density is 1 to e^{−2π²/h²}; normalised, E[1] = 1 exactly


def trapezoid_rule(order, m, s):
    """Trapezoid nodes x = m + s z, z on ``order`` equispaced points of [−10, 10], and the
    weights (one vector, shared by every point, summing to 1)."""
    z, w = _trapezoid(order)
    x = np.asarray(s, dtype=float)[..., None] * z
    m = np.asarray(m, dtype=float)
    if m.any():  # a centred Gaussian (every second-moment map) skips a pass over the nodes
        x += m[..., None]
    return x, w


def _graded_levels(s, feature_scale):
    """Grading depth K of ``graded_rule``: the finest panel below feature_scale/s at the largest s."""
    finite = s[np.isfinite(s)]
    s_max = float(np.max(finite)) if finite.size else 1.0
    levels = max(4, int(math.ceil(math.log2(Z_MAX * max(s_max, 1.0) / feature_scale))) + 3)
    return min(levels, _MAX_LEVELS)


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
    levels = _graded_levels(s, feature_scale)
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


def _check_rule(rule, order):
    if rule not in RULES:
        raise ValueError(f"unknown quadrature rule {rule!r}; valid rules: {', '.join(RULES)}")
    if order is not None and (int(order) != order or order < 2):
        raise ValueError(f"quadrature order must be an integer >= 2, got {order!r}")


@functools.lru_cache(maxsize=32)
def _folded(rule, order):
    """The nodes z >= 0 of a rule symmetric about 0, each z > 0 weighted twice: E[g(s z)] for an
    even g on half the nodes."""
    z, w = _hermite(order) if rule == "hermite" else _trapezoid(order)
    keep = z >= 0.0
    return z[keep], np.where(z > 0.0, 2.0 * w, w)[keep]


def _rule(act, m, s, rule, order, fold=False):
    """``(x, w, z)`` of one rule (not "auto"); w is one shared vector for hermite and trapezoid.
    ``fold`` (an even integrand and m = 0): the symmetric rules on their nodes z >= 0 alone."""
    order = DEFAULT_ORDER[rule] if order is None else int(order)
    if fold and rule in ("hermite", "trapezoid"):
        z, w = _folded(rule, order)
        return s[..., None] * z, w, z
    if rule == "hermite":
        z, w = _hermite(order)
        return m[..., None] + s[..., None] * z, w, z
    if rule == "trapezoid":
        x, w = trapezoid_rule(order, m, s)
        return x, w, _trapezoid(order)[0]
    points = tuple(sorted(set(act.breakpoints) | {0.0}))
    x, w = graded_rule(order, m, s, points, act.feature_scale)
    return x, w, (x - m[..., None]) / s[..., None]


def trapezoid_orders(act, s):
    """Per point, the trapezoid node count "auto" uses (the fewest of TRAPEZOID_ORDERS that are
    exact for the point, ``trapezoid_min_distance``), 0 where none is (the graded rule then); None
    when the activation declares no strip of analyticity."""
    strip = act.analytic_strip
    if strip is None:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = strip / np.asarray(s, dtype=float)
    orders = np.zeros(np.shape(distance), dtype=int)
    for order in TRAPEZOID_ORDERS[::-1]:
        orders[distance >= trapezoid_min_distance(order)] = order
    return orders


def nodes(act, m, s, rule=DEFAULT_RULE, order=None):
    """Nodes x and weights w (summing to 1) for E[g(x)], x ~ N(m, s²).

    Returns ``(x, w, z)`` with a trailing node axis after the broadcast shape.  "auto" picks one
    rule for all the points: the trapezoid rule only where it holds at every point.
    """
    _check_rule(rule, order)
    m, s = np.broadcast_arrays(np.asarray(m, dtype=float), np.asarray(s, dtype=float))
    if rule == "auto":
        orders = trapezoid_orders(act, s)
        rule, order = ("trapezoid", int(orders.max())) if orders is not None and orders.all() else ("graded", order)
    x, w, z = _rule(act, m, s, rule, order)
    return x, np.broadcast_to(w, x.shape), np.broadcast_to(z, x.shape)


def _weighted(w, values):
    """Σ_j w_j values[..., j]: a matrix-vector product when w is shared by every point."""
    return values @ w if w.ndim == 1 else np.sum(w * values, axis=-1)


#: Points go through in blocks of about this many nodes, which bounds every temporary at 512 KiB
#: whatever the number of points (10⁶ points on the graded rule's ~500 nodes would otherwise make
#: 4 GB temporaries).  A block's Python overhead is tens of µs: tanh's 1,000 × 1,000 recursion
#: (128 nodes a point, two blocks a layer) took the same time as in one piece (medians of five).
BLOCK_NODES = 65536


def _nodes_per_point(act, kind, order, s):
    """How many nodes ``_rule`` gives each point."""
    order = DEFAULT_ORDER[kind] if order is None else int(order)
    if kind != "graded":
        return order
    points = len(set(act.breakpoints) | {0.0})
    return order * (points * (2 * _graded_levels(s, act.feature_scale) + 1) + len(_BULK_EDGES) - 1)


def _by_regime(act, m, s, v, rule, order, compute, fold=False):
    """``compute(x, w, z, m, s, v)`` (a tuple of arrays of m's shape) on each rule's points.

    Under "auto" each point gets the trapezoid rule with the fewest nodes that are exact for it
    (``trapezoid_orders``), or the graded rule where none is; any other rule applies to every
    point.  The points go through in blocks of about ``BLOCK_NODES`` nodes (one block when an
    activation's parameters are arrays, which broadcast against the points' shape; such an
    activation declares no strip, so it has one rule).  ``fold``: every integrand is even and
    m = 0, so the symmetric rules take half their nodes (``_folded``).
    """
    _check_rule(rule, order)
    if rule == "auto":
        orders = trapezoid_orders(act, s)
        if orders is None:
            groups = [(None, "graded", order)]
        else:
            groups = [(orders == n, "trapezoid", n) for n in TRAPEZOID_ORDERS] + [(orders == 0, "graded", order)]
            groups = [g for g in groups if g[0].any()]
            if len(groups) == 1:
                groups = [(None,) + groups[0][1:]]
    else:
        groups = [(None, rule, order)]
    if not getattr(act, "scalar", True):
        if len(groups) == 1:
            return compute(*_rule(act, m, s, groups[0][1], groups[0][2], fold), m, s, v)
        raise AssertionError("an activation with array parameters declares no strip, so it has one rule")
    shape = m.shape
    m, s, v = (np.ravel(a) for a in (m, s, v))
    out = None
    for mask, kind, o in groups:
        index = np.arange(m.size) if mask is None else np.flatnonzero(np.ravel(mask))
        rows = max(1, BLOCK_NODES // _nodes_per_point(act, kind, o, s[index]))
        for start in range(0, index.size, rows):
            i = index[start:start + rows]
            values = compute(*_rule(act, m[i], s[i], kind, o, fold), m[i], s[i], v[i])
            if out is None:
                out = [np.empty(m.size, dtype=np.result_type(x)) for x in values]
            for full, x in zip(out, values):
                full[i] = x
    return tuple(full.reshape(shape) for full in out)


def _batch_shape(act, *arrays):
    shapes = [np.shape(a) for a in arrays]
    for field in ("lam", "alpha", "rate", "slope"):
        if hasattr(act, field):
            shapes.append(np.shape(getattr(act, field)))
    return np.broadcast_shapes(*shapes)


def expectation(act, g, m, s2, rule=DEFAULT_RULE, order=None):
    """E[g(x)] for x ~ N(m, s²), g one of 'f', 'df', 'f2', 'df2', 'df4' or a callable of x.

    A tuple of integrands gives a tuple of expectations on one shared node set.
    """
    shape = _batch_shape(act, m, s2)
    m = np.broadcast_to(np.asarray(m, dtype=float), shape)
    v = np.broadcast_to(np.asarray(s2, dtype=float), shape)
    names = g if isinstance(g, tuple) else (g,)
    # f odd or even: f², f'² and f'⁴ are even, and at m = 0 half of a symmetric rule's nodes do
    fold = getattr(act, "parity", None) is not None and set(names) <= {"f2", "df2", "df4"} and not np.any(m)
    if all(isinstance(n, str) for n in names) and {"f", "f2"} & set(names) and {"df", "df2", "df4"} & set(names):
        view = act.with_node_axis()

        def compute(x, w, z, m, s, v):  # f and f' from one evaluation (tanh: one tanh for both)
            f, df = view.f_and_df(x)
            values = {"f": f, "df": df, "f2": np.square(f), "df2": np.square(df), "df4": np.square(np.square(df))}
            return tuple(_weighted(w, values[n]) for n in names)
    else:
        integrands = tuple(_integrand(act, gi) for gi in names)

        def compute(x, w, z, m, s, v):
            return tuple(_weighted(w, fn(x)) for fn in integrands)

    out = _by_regime(act, m, np.sqrt(v), v, rule, order, compute, fold)
    return out if isinstance(g, tuple) else out[0]


def _integrand(act, g):
    view = act.with_node_axis()
    table = {
        "f": view.f,
        "df": view.df,
        "f2": lambda x: np.square(view.f(x)),
        "df2": lambda x: np.square(view.df(x)),
        "df4": lambda x: np.square(np.square(view.df(x))),
    }
    return table[g] if isinstance(g, str) else g


def expectation_and_gradient(act, g, m, s2, rule=DEFAULT_RULE, order=None, also=()):
    """E[g], ∂E[g]/∂m and ∂E[g]/∂v for x ~ N(m, v), by Stein's identities.

    ``also``: further integrands whose plain expectations are appended to the
    result, computed on the same nodes.
    """
    shape = _batch_shape(act, m, s2)
    m = np.broadcast_to(np.asarray(m, dtype=float), shape)
    v = np.broadcast_to(np.asarray(s2, dtype=float), shape)
    fn = _integrand(act, g)
    others = tuple(_integrand(act, gi) for gi in also)

    def compute(x, w, z, m, s, v):
        values = fn(x)
        centred = values - fn(m[..., None])
        mean = _weighted(w, values)
        d_m = _weighted(w, centred * z) / s
        d_v = _weighted(w, centred * (np.square(z) - 1.0)) / (2.0 * v)
        return (mean, d_m, d_v) + tuple(_weighted(w, other(x)) for other in others)

    return _by_regime(act, m, np.sqrt(v), v, rule, order, compute)


def finite_width_moments(act, q, rule=DEFAULT_RULE, order=None):
    """The finite-width functionals of any activation at x ~ N(0, q), on one node set.

    Q = E f², Q4 = E f⁴, φ = E f'², P = E f'² x², S = E f² f'², and the
    q-derivatives of Q and φ by Gaussian integration by parts (Stein):

        d/dq E[g] = E[g He₂(z)] / (2q),     d²/dq² E[g] = E[g He₄(z)] / (4q²),

    He₂ = z² − 1, He₄ = z⁴ − 6z² + 3, with g(0) subtracted first (E[He₂] =
    E[He₄] = 0), so no derivative of f beyond f' is needed.  Returns a dict
    keyed as ``FINITE_WIDTH_QUANTITIES``.
    """
    shape = _batch_shape(act, q)
    q = np.broadcast_to(np.asarray(q, dtype=float), shape)
    view = act.with_node_axis()

    def compute(x, w, z, m, s, q):
        f, df = view.f(x), view.df(x)
        zero = np.zeros(m.shape + (1,))
        f0, df0 = view.f(zero), view.df(zero)
        f2, df2 = np.square(f), np.square(df)
        z2 = np.square(z)
        he2, he4 = z2 - 1.0, z2 * z2 - 6.0 * z2 + 3.0
        centred_f2, centred_df2 = f2 - np.square(f0), df2 - np.square(df0)
        return (
            _weighted(w, f2),
            _weighted(w, np.square(f2)),
            _weighted(w, centred_f2 * he2) / (2.0 * q),
            _weighted(w, centred_f2 * he4) / (4.0 * np.square(q)),
            _weighted(w, df2),
            _weighted(w, centred_df2 * he2) / (2.0 * q),
            _weighted(w, centred_df2 * he4) / (4.0 * np.square(q)),
            _weighted(w, df2 * np.square(x)),
            _weighted(w, f2 * df2),
        )

    return dict(zip(FINITE_WIDTH_QUANTITIES, _by_regime(act, np.zeros(shape), np.sqrt(q), q, rule, order, compute)))


#: The further functionals of the second-order forward closure (docs/finite-width.md §3b): Q''' and
#: Q'''' of Q = E f², the first two q-derivatives of Q4 = E f⁴, and Q6 = E f⁶.
SECOND_ORDER_QUANTITIES = ("d3Q", "d4Q", "dQ4", "d2Q4", "Q6")


def second_order_moments(act, q, rule=DEFAULT_RULE, order=None):
    """SECOND_ORDER_QUANTITIES of any activation at x ~ N(0, q), on one node set.

    The q-derivatives by Stein's identity d^k/dq^k E[g(√q z)] = E[g He_{2k}(z)] / (2q)^k (the
    heat equation: d/dq E g = ½ E g''), with g(0) subtracted first as in
    :func:`finite_width_moments`; He₆ = z⁶ − 15z⁴ + 45z² − 15,
    He₈ = z⁸ − 28z⁶ + 210z⁴ − 420z² + 105.
    For an f smooth at 0 the k-th derivative cancels like q^k at small q, so its relative
    rounding error grows like 1e-16 / q^(k−1): ample for the O(1/N²) terms it enters.
    Returns a dict keyed as ``SECOND_ORDER_QUANTITIES``.
    """
    shape = _batch_shape(act, q)
    q = np.broadcast_to(np.asarray(q, dtype=float), shape)
    view = act.with_node_axis()

    def compute(x, w, z, m, s, q):
        f2 = np.square(view.f(x))
        f0 = np.square(view.f(np.zeros(m.shape + (1,))))
        z2 = np.square(z)
        he2, he4 = z2 - 1.0, z2 * z2 - 6.0 * z2 + 3.0
        he6 = ((z2 - 15.0) * z2 + 45.0) * z2 - 15.0
        he8 = (((z2 - 28.0) * z2 + 210.0) * z2 - 420.0) * z2 + 105.0
        centred_f2, centred_f4 = f2 - f0, np.square(f2) - np.square(f0)
        return (
            _weighted(w, centred_f2 * he6) / (8.0 * q**3),
            _weighted(w, centred_f2 * he8) / (16.0 * q**4),
            _weighted(w, centred_f4 * he2) / (2.0 * q),
            _weighted(w, centred_f4 * he4) / (4.0 * np.square(q)),
            _weighted(w, f2 * np.square(f2)),
        )

    return dict(zip(SECOND_ORDER_QUANTITIES, _by_regime(act, np.zeros(shape), np.sqrt(q), q, rule, order, compute)))
