"""Single-layer Gaussian functionals (docs/theory.md §2).

Every function takes an activation (an :class:`Activation` or a spec string)
and arrays that broadcast with each other and with the activation's
parameters.  ``method="auto"`` uses the closed forms of the exponential-linear
family when they exist and quadrature otherwise; ``"closed"`` insists on the
closed form, ``"quadrature"`` forces quadrature (``rule``, ``order``: see
:mod:`meanfield.gauss.quadrature`).

Notation: z ~ N(0, 1), q the second moment of the pre-activations.
"""

from __future__ import annotations

import numpy as np

from ..gauss import closed_forms, quadrature
from ..results import dataset_attrs
from ..activations.objects import Activation, ExpLinear
from ..activations.resolve import activation as _activation

METHODS = ("auto", "closed", "quadrature")


def resolve(act) -> Activation:
    """An Activation from an Activation or a spec string."""
    return _activation(act)


def check_array(name, value, *, positive=False, allow_zero=False):
    """Float array from ``value``; ValueError naming the first bad element.  Strings are refused, as
    ``depth="3"`` is: a number given as text is a mistake to name, not to convert."""
    if isinstance(value, (str, bytes)) or np.asarray(value).dtype.kind in "USO" and any(
            isinstance(v, (str, bytes)) for v in np.asarray(value, dtype=object).ravel()):
        raise ValueError(f"{name} must be numeric, got {value!r}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {value!r}") from None
    bad = ~np.isfinite(arr)
    if positive:
        bad |= (arr < 0) if allow_zero else (arr <= 0)
    if bad.any():
        idx = np.argwhere(bad)[0]
        where = f"{name}[{', '.join(map(str, idx))}]" if arr.ndim else name
        need = "finite and >= 0" if (positive and allow_zero) else "finite and > 0" if positive else "finite"
        raise ValueError(f"{name} must be {need}; got {where} = {float(arr[tuple(idx)])!r}")
    return arr


def _route(act, method):
    """'closed' (the exponential-linear family, or an activation whose registry entry has closed
    forms: erf, GELU) or 'quadrature'."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    closed = isinstance(act, ExpLinear) or getattr(act, "closed", None) is not None
    if method == "closed" and not closed:
        raise ValueError(f"{act.spec!r} has no closed form; use method='quadrature' or 'auto'")
    return "closed" if closed and method != "quadrature" else "quadrature"


def smooth_closed(act):
    """The :class:`~meanfield.activations.registry.ClosedForms` of an elementwise activation, None for the
    exponential-linear family (``closed_forms``) and for activations without them."""
    return None if isinstance(act, ExpLinear) else getattr(act, "closed", None)


def _family(act):
    return act.lam, act.alpha, act.rate, act.slope


def second_moment(act, q, *, method="auto", rule=quadrature.DEFAULT_RULE, order=None):
    """Q(q) = E[f²(√q z)], the second-moment map (docs/theory.md §2)."""
    act, q = resolve(act), check_array("q", q, positive=True)
    if _route(act, method) == "closed":
        smooth = smooth_closed(act)
        return smooth.second_moment(q) if smooth else closed_forms.second_moment(q, *_family(act))
    return quadrature.expectation(act, "f2", 0.0, q, rule, order)


def second_moment_derivative(act, q, *, method="auto", rule=quadrature.DEFAULT_RULE, order=None):
    """dQ/dq, the slope of the second-moment map (χ_q = σ_w² dQ/dq at q*)."""
    act, q = resolve(act), check_array("q", q, positive=True)
    if _route(act, method) == "closed":
        smooth = smooth_closed(act)
        return smooth.second_moment_derivative(q) if smooth else closed_forms.second_moment_derivative(q, *_family(act))
    return quadrature.expectation_and_gradient(act, "f2", 0.0, q, rule, order)[2]


def jacobian_second_moment(act, q, *, method="auto", rule=quadrature.DEFAULT_RULE, order=None):
    """φ(q) = E[f'(√q z)²] (eq 6): second moment of the activation's Jacobian."""
    act, q = resolve(act), check_array("q", q, positive=True)
    if _route(act, method) == "closed":
        smooth = smooth_closed(act)
        return smooth.jacobian(q) if smooth else closed_forms.jacobian_second_moment(q, *_family(act))
    return quadrature.expectation(act, "df2", 0.0, q, rule, order)


def jacobian_fourth_moment(act, q, *, method="auto", rule=quadrature.DEFAULT_RULE, order=None):
    """E[f'(√q z)⁴]: with φ(q), the spread of the Jacobian's squared entries,
    E f'⁴/φ² − 1 (the activation's share of the singular-value spread, docs/spectrum.md)."""
    act, q = resolve(act), check_array("q", q, positive=True)
    if _route(act, method) == "closed":
        smooth = smooth_closed(act)
        if smooth is None:
            return closed_forms.jacobian_even_moment(q, 2, *_family(act))
        if smooth.jacobian_fourth is not None:
            return smooth.jacobian_fourth(q)
    return quadrature.expectation(act, "df4", 0.0, q, rule, order)


def jacobian_second_moment_derivative(act, q, *, method="auto", rule=quadrature.DEFAULT_RULE, order=None):
    """dφ/dq; its value at q = 1 sets γ_{q=1} (Prop 3.1)."""
    act, q = resolve(act), check_array("q", q, positive=True)
    if _route(act, method) == "closed":
        smooth = smooth_closed(act)
        return smooth.jacobian_derivative(q) if smooth else \
            closed_forms.jacobian_second_moment_derivative(q, *_family(act))
    return quadrature.expectation_and_gradient(act, "df2", 0.0, q, rule, order)[2]


def mean_map(act, m, s2, *, method="auto", rule=quadrature.DEFAULT_RULE, order=None):
    """M(m, s²) = E[f(x)], x ~ N(m, s²) (eq 12): the activation's mean map.

    ``s2`` is the variance of the pre-activations (not the standard deviation).
    """
    act = resolve(act)
    m, s2 = check_array("m", m), check_array("s2", s2, positive=True)
    if _route(act, method) == "closed":
        smooth = smooth_closed(act)
        if smooth is None:
            return closed_forms.mean_map(m, s2, *_family(act))
        if smooth.mean_map is not None:
            return smooth.mean_map(m, s2)
    return quadrature.expectation(act, "f", m, s2, rule, order)


def mean_map_all(act, m, s2, *, method="auto", rule=quadrature.DEFAULT_RULE, order=None):
    """M = E[f], S = E[f²] and their gradients in (m, v = s²), x ~ N(m, v).

    Returns a dict with keys mean, second, d_mean_dm, d_mean_dv, d_second_dm,
    d_second_dv.  Used by Klambauer's (μ, ν) map and its Jacobian.
    """
    act = resolve(act)
    m, s2 = check_array("m", m), check_array("s2", s2, positive=True)
    if _route(act, method) == "closed" and smooth_closed(act) is None:
        return closed_forms.mean_map_all(m, s2, *_family(act))
    mean, d_mean_dm, d_mean_dv = quadrature.expectation_and_gradient(act, "f", m, s2, rule, order)
    second, d_second_dm, d_second_dv = quadrature.expectation_and_gradient(act, "f2", m, s2, rule, order)
    return {
        "mean": mean,
        "second": second,
        "d_mean_dm": d_mean_dm,
        "d_mean_dv": d_mean_dv,
        "d_second_dm": d_second_dm,
        "d_second_dv": d_second_dv,
    }


def derivative_mean_map(act, m, s2, *, method="auto", rule=quadrature.DEFAULT_RULE, order=None):
    """E[f'(x)], x ~ N(m, s²)."""
    act = resolve(act)
    m, s2 = check_array("m", m), check_array("s2", s2, positive=True)
    if _route(act, method) == "closed":
        smooth = smooth_closed(act)
        if smooth is None:
            return closed_forms.derivative_mean_map(m, s2, *_family(act))
        if smooth.derivative_mean_map is not None:
            return smooth.derivative_mean_map(m, s2)
    return quadrature.expectation(act, "df", m, s2, rule, order)


def explosion_factor(act, q, **kw):
    """1 + δ_q = q φ(q) / Q(q) (eq 2), the per-layer gradient explosion rate (Prop 3.1).

    (eq 38) as printed puts q in the denominator; it agrees with (eq 2) only at q = 1.
    """
    q = check_array("q", q, positive=True)
    return q * jacobian_second_moment(act, q, **kw) / second_moment(act, q, **kw)


def delta(act, q, **kw):
    """δ_q (eq 2): (1 + δ_q) E[f²(x)] = E[f'(x)²] E[x²], x ~ N(0, q)."""
    return explosion_factor(act, q, **kw) - 1.0


def gamma(act, q, **kw):
    """γ_q (eq 8): φ(q) as an interpolation between 1 and 1/q.

    Both branches of (eq 8) solve to γ = (1 − q φ(q)) / (1 − q); it is
    undefined at q = 1 (NaN there), where Prop 3.1 uses |φ'(1) + 1| instead.
    """
    q = check_array("q", q, positive=True)
    phi = jacobian_second_moment(act, q, **kw)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q == 1.0, np.nan, (1.0 - q * phi) / (1.0 - q))


def gamma_fixed_point(act, q_star=1.0, sigma_w2=1.0, **kw):
    """γ* = |σ_w² q* φ'(q*) + 1|; with q* = σ_w² = 1 this is γ_{q=1} of Table 5 (Prop 3.1)."""
    q_star = check_array("q_star", q_star, positive=True)
    sigma_w2 = check_array("sigma_w2", sigma_w2, positive=True)
    return np.abs(sigma_w2 * q_star * jacobian_second_moment_derivative(act, q_star, **kw) + 1.0)


def moments(act, q, **kw) -> xr.Dataset:
    """Every single-layer functional at the given q, as a Dataset over ``q``.

    Variables: Q (second-moment map), dQ_dq, phi (eq 6), dphi_dq, delta (eq 2),
    explosion_factor (1 + δ_q), gamma (eq 8) and f_mean (E[f(√q z)]); attribute
    gamma1 = |φ'(1) + 1| (of the first parameter set).  ``method``, ``rule`` and
    ``order`` apply to every variable.  Array-valued activation parameters
    broadcast: they become leading dimensions (``config``, or ``config_0``, ...)
    before ``q``, with the parameters as coordinates.
    """
    import xarray as xr  # here, so that the command line's theory commands start without it

    act = resolve(act)
    q = np.atleast_1d(check_array("q", q, positive=True))
    if q.ndim != 1:
        raise ValueError(f"q must be a scalar or a 1-D list of values, got shape {q.shape}")
    param_shape = () if not isinstance(act, ExpLinear) else np.broadcast_shapes(*(np.shape(p) for p in _family(act)))
    grid = q.reshape((1,) * len(param_shape) + q.shape)
    if param_shape:
        act = ExpLinear(name=act.name, **{f: np.asarray(getattr(act, f))[..., None]
                                          for f in ("lam", "alpha", "rate", "slope")})
    if _route(act, kw.get("method", "auto")) == "closed" and smooth_closed(act) is None:
        m = closed_forms.moments(grid, *_family(act))
    else:  # closed forms of a smooth activation, or quadrature: each with the caller's rule and order
        m = {
            "Q": second_moment(act, grid, **kw),
            "dQ": second_moment_derivative(act, grid, **kw),
            "phi": jacobian_second_moment(act, grid, **kw),
            "dphi": jacobian_second_moment_derivative(act, grid, **kw),
            "mean": mean_map(act, 0.0, grid, **kw),
        }
    m = {k: np.broadcast_to(v, param_shape + q.shape) for k, v in m.items()}
    factor = grid * m["phi"] / m["Q"]
    with np.errstate(divide="ignore", invalid="ignore"):
        gam = np.where(grid == 1.0, np.nan, (1.0 - grid * m["phi"]) / (1.0 - grid))
    config = ("config",) if len(param_shape) == 1 else tuple(f"config_{i}" for i in range(len(param_shape)))
    dims = config + ("q",)
    coords = {"q": (("q",), q, {"long_name": "second moment of the pre-activations"})}
    if param_shape:
        for public, field in (("lambda", "lam"), ("alpha", "alpha"), ("rate", "rate"), ("slope", "slope")):
            coords[public] = (config, np.broadcast_to(np.asarray(getattr(act, field))[..., 0], param_shape))
    gamma1 = gamma_fixed_point(act, **kw)
    ds = xr.Dataset(
        {
            "Q": (dims, m["Q"], {"long_name": "second-moment map Q(q) = E[f^2(sqrt(q) z)]"}),
            "dQ_dq": (dims, m["dQ"], {"long_name": "dQ/dq"}),
            "phi": (dims, m["phi"], {"long_name": "phi(q) = E[f'(sqrt(q) z)^2]", "equation": "eq 6"}),
            "dphi_dq": (dims, m["dphi"], {"long_name": "dphi/dq"}),
            "explosion_factor": (dims, factor, {"long_name": "1 + delta_q = q phi(q) / Q(q)", "equation": "eq 2"}),
            "delta": (dims, factor - 1.0, {"long_name": "delta_q", "equation": "eq 2"}),
            "gamma": (dims, gam, {"long_name": "gamma_q (NaN at q = 1)", "equation": "eq 8"}),
            "f_mean": (dims, m["mean"], {"long_name": "E[f(sqrt(q) z)]", "equation": "eq 12"}),
        },
        coords=coords,
        attrs=dataset_attrs(act, "eq 2, eq 6, eq 8, eq 12", gamma1=float(np.ravel(gamma1)[0])),
    )
    if param_shape:
        ds["gamma1"] = (config, np.broadcast_to(gamma1, param_shape + (1,))[..., 0],
                        {"long_name": "|phi'(1) + 1| per parameter set"})
    return ds


#: What :func:`finite_width_moments` returns, in order.
FINITE_WIDTH_QUANTITIES = quadrature.FINITE_WIDTH_QUANTITIES


def finite_width_moments(act, q, *, method="auto", rule=quadrature.DEFAULT_RULE, order=None) -> dict:
    """The functionals of the O(1/N) finite-width theory at x ~ N(0, q) (docs/finite-width.md §2).

    Returns a dict of arrays of the broadcast shape:

    * ``Q`` = E f², ``Q4`` = E f⁴, ``dQ`` = Q', ``d2Q`` = Q'';
    * ``phi`` = φ = E f'² (eq 6), ``dphi`` = φ', ``d2phi`` = φ'';
    * ``P`` = E[f'² x²], ``S`` = E[f² f'²]  (R = E[f f' x] is q·Q', by Stein's identity).

    Closed forms for the exponential-linear family (``gauss.mills_series``; 7e-15
    relative against mpmath at worst), graded quadrature otherwise, with the
    q-derivatives by Stein's identities (the quadrature path's Q'' loses
    accuracy at large q, where Q'' ~ q^{-5/2} is the small difference of
    O(q) terms: 1e-9 relative at q = 1e4 for ELU).
    """
    from ..gauss import mills_series  # its exact series are built on first use (0.1 s)

    act, q = resolve(act), check_array("q", q, positive=True)
    if _route(act, method) == "closed" and smooth_closed(act) is None:
        return mills_series.finite_width_moments(q, *_family(act))
    return quadrature.finite_width_moments(act, q, rule, order)
