"""Alpha dropout for any activation: the layer's constants and its mean-field theory (docs/dropout.md).

Klambauer et al. 2017 regularise self-normalizing networks with *alpha dropout*: a dropped unit
takes the value α′ instead of 0, and an affine map restores the mean and variance the next layer
expects.  With x = f(h), h ~ N(0, q*) at the activation's fixed point, d ~ Bernoulli(k), k = 1 − p
(p the drop rate, torch's convention):

    y = a (d x + (1 − d) α′) + b,   μ = E x,  ν = Var x,
    E y = μ and Var y = ν   ⇔   a = [k (1 + p (α′ − μ)²/ν)]^{−1/2},  b = μ − a (μ + p (α′ − μ)).

(Var y = a² k [ν + p (α′ − μ)²]: the mixture of x and α′ adds the spread of the two values.)  The
dropped value α′ is chosen by a rule: ``saturation`` (α′ = lim_{x→−∞} f(x) = −λα for the SELU
family, Klambauer's choice), ``mean`` (α′ = μ: a = k^{−1/2}, b = μ(1 − a)), or a number.

Mean-field theory, a and b fixed at q* (docs/dropout.md derives it): with m₁ = E f, m₂ = E f² at
h ~ N(0, q),

    E y_l   = μ + a k (m₁(q_l) − μ)
    q_{l+1} = σ_b² + σ_w² [a² (k m₂(q_l) + p α′²) + 2ab (k m₁(q_l) + p α′) + b²]
    χ_p(q)  = σ_w² φ(q) a² k = σ_w² φ(q) / (1 + p (α′ − μ)²/ν)   (the backward factor, ∂y/∂x = a d)

q* stays a fixed point (E y² = ν + μ² = m₂(q*)); its slope becomes σ_w² [a² k m₂'(q*) + 2ab k m₁'(q*)];
p_crit = ν (χ₀ − 1)/(α′ − μ)² is the drop rate at which χ_p(q*) = 1, χ₀ = σ_w² φ(q*).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ..activations.objects import ExpLinear
from ..arguments import check_depth
from ..results import dataset_attrs
from .fixed_points import fixed_point
from .functionals import (check_array, jacobian_second_moment, mean_map, mean_map_all, resolve, second_moment,
                          second_moment_derivative)

RULES = ("saturation", "mean")
#: torch's ``alpha_dropout`` constant: SELU's −α′ = λα (Klambauer et al. 2017, eq 14)
TORCH_SELU_ALPHA = 1.7580993408473766
#: how far out a saturation of an elementwise activation is read off: f(−X) and f(−2X) must agree
SATURATION_PROBE = 50.0
#: ... to this relative accuracy for the limit to count as reached
SATURATION_RTOL = 1e-12


def saturation_value(act):
    """lim_{x→−∞} f(x), or None where f has none (lSELU and leaky ReLU fall with slope λβ, λa)."""
    act = resolve(act)
    if isinstance(act, ExpLinear):
        return None if float(act.slope) != 0.0 else -float(act.lam) * float(act.alpha)
    far, farther = float(act.f(-SATURATION_PROBE)), float(act.f(-2.0 * SATURATION_PROBE))
    if math.isfinite(far) and abs(far - farther) <= SATURATION_RTOL * max(1.0, abs(far)):
        return farther
    return None


def default_rule(act) -> str:
    """'saturation' where f saturates below (SELU, dSELU, sSELU), else 'mean' (lSELU)."""
    return "saturation" if saturation_value(act) is not None else "mean"


def _check_p(p):
    arr = check_array("p", p)
    bad = (arr < 0) | (arr >= 1)
    if bad.any():
        value = float(np.asarray(arr)[bad].ravel()[0])
        raise ValueError(f"p is the drop rate and must lie in [0, 1), got {value!r} (p = 1 drops every unit: a is "
                         "undefined)")
    return arr


def _dropped_value(act, dropped, mu):
    """α′ for the rule (or number) ``dropped``, and the rule's name."""
    if dropped is None:
        dropped = default_rule(act)
    if isinstance(dropped, str):
        rule = dropped.strip().lower()
        if rule == "saturation":
            value = saturation_value(act)
            if value is None:
                raise ValueError(f"{act.spec}: dropped='saturation' needs a lower saturation of f, and this activation "
                                 "has none (it falls without bound as x -> -inf); use dropped='mean' or a number")
            return value, "saturation"
        if rule == "mean":
            return mu, "mean"
        try:
            dropped = float(rule)
        except ValueError:
            raise ValueError(f"dropped must be 'saturation', 'mean' or a number, got {dropped!r}") from None
    if isinstance(dropped, bool):
        raise ValueError(f"dropped must be 'saturation', 'mean' or a number, got {dropped!r}")
    try:
        value = float(dropped)
    except (TypeError, ValueError):
        raise ValueError(f"dropped must be 'saturation', 'mean' or a number, got {dropped!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"dropped must be a finite number, got {dropped!r}")
    return value, "value"


def _fixed_point_moments(act, sigma_w2, sigma_b2):
    """q*, μ, ν, φ(q*) at the activation's fixed point; refuses one that is 0, inf or not found."""
    fp = fixed_point(act, sigma_w2, sigma_b2)
    q = float(fp.q_star)
    if not (bool(fp.converged) and math.isfinite(q) and q > 0):
        raise ValueError(f"{act.spec} has no finite, positive fixed point at sigma_w2 = {sigma_w2:g}, sigma_b2 = "
                         f"{sigma_b2:g} (q* = {q:g}): alpha dropout restores the moments at q*; choose sigma_w2, "
                         "sigma_b2 where the forward map has one")
    if getattr(act, "name", "") == "selu" and sigma_w2 == 1.0 and sigma_b2 == 0.0:
        mu, second = 0.0, 1.0  # eq 4 sets E f(z) = 0 and E f(z)² = 1 exactly (q* = 1)
    else:
        mu, second = float(mean_map(act, 0.0, q)), float(second_moment(act, q))
    nu = second - mu * mu
    return q, mu, nu, float(jacobian_second_moment(act, q))


def dropout_constants(act, p, dropped=None, sigma_w2=1.0, sigma_b2=0.0) -> dict:
    """a, b, α′ (and q*, μ, ν, φ(q*), the rule) of alpha dropout at drop rate ``p`` (scalar or array).

    ``a`` and ``b`` are computed in the order of operations torch's ``alpha_dropout`` uses, so that
    SELU's equal torch's bit for bit: a = 1/√((α′−μ)(α′−μ) p/ν + 1)(1 − p)), b = μ(1 − a) − (α′ − μ) a p.
    """
    act = resolve(act)
    p = _check_p(p)
    sigma_w2 = float(check_array("sigma_w2", sigma_w2, positive=True))
    sigma_b2 = float(check_array("sigma_b2", sigma_b2, positive=True, allow_zero=True))
    q, mu, nu, phi = _fixed_point_moments(act, sigma_w2, sigma_b2)
    alpha_p, rule = _dropped_value(act, dropped, mu)
    spread = (alpha_p - mu) * (alpha_p - mu) * p / nu
    a = 1.0 / np.sqrt((spread + 1.0) * (1.0 - p))
    b = mu * (1.0 - a) - (alpha_p - mu) * a * p
    return dict(p=p, keep=1.0 - p, a=a, b=b, alpha_p=alpha_p, rule=rule, q_star=q, mu=mu, nu=nu, phi=phi,
                sigma_w2=sigma_w2, sigma_b2=sigma_b2)


def network_constants(act, p, dropped=None, sigma_w2=1.0, sigma_b2=0.0) -> dict | None:
    """:func:`dropout_constants` for one network (scalar p, plain floats), or None when it has no
    dropout: p None or 0 (nothing computed then, so an activation without a fixed point simulates
    as before), or a drop rate that checks to 0."""
    if p is None or (isinstance(p, (int, float)) and not isinstance(p, bool) and float(p) == 0.0):
        return None
    c = dropout_constants(act, p, dropped, sigma_w2, sigma_b2)
    if float(c["p"]) == 0.0:
        return None
    return dict(p=float(c["p"]), a=float(c["a"]), b=float(c["b"]), alpha_p=float(c["alpha_p"]), rule=c["rule"])


def torch_selu_constants(p) -> dict:
    """The constants ``torch.nn.AlphaDropout(p)`` applies whatever the activation: SELU's (μ = 0,
    ν = 1, α′ = −λα), as aten's ``alpha_dropout`` computes them.  With another activation they are
    the mistake ``cuda_kernels.check_alpha_dropout`` names; the negative controls use them."""
    a = 1.0 / math.sqrt((TORCH_SELU_ALPHA * TORCH_SELU_ALPHA * p + 1.0) * (1.0 - p))
    return dict(a=a, b=TORCH_SELU_ALPHA * a * p, alpha_p=-TORCH_SELU_ALPHA)


def alpha_dropout(act, p, dropped=None, sigma_w2=1.0, sigma_b2=0.0) -> xr.Dataset:
    """The constants and the theory of alpha dropout over the drop rates ``p`` (module docstring).

    Variables over ``p``: ``a``, ``b``, ``dropped_output`` (a α′ + b, what a dropped unit emits),
    ``chi_p`` (χ_p(q*), the per-layer gradient factor), ``forward_slope`` (dq_{l+1}/dq_l at q*);
    scalars ``q_star``, ``mu``, ``nu``, ``alpha_prime``, ``chi_0`` (χ without dropout) and ``p_crit``
    (χ_p(q*) = 1; NaN where no p in [0, 1) reaches it: the mean rule, or χ₀ <= 1).
    """
    act = resolve(act)
    c = dropout_constants(act, p, dropped, sigma_w2, sigma_b2)
    p, k, a, b = np.atleast_1d(c["p"]), np.atleast_1d(c["keep"]), np.atleast_1d(c["a"]), np.atleast_1d(c["b"])
    q, mu, nu, alpha_p, w2 = c["q_star"], c["mu"], c["nu"], c["alpha_p"], c["sigma_w2"]
    chi0 = w2 * c["phi"]
    chi_p = chi0 * a * a * k
    derivatives = mean_map_all(act, 0.0, q)
    slope = w2 * (a * a * k * float(second_moment_derivative(act, q)) + 2.0 * a * b * k * float(derivatives["d_mean_dv"]))
    gap = (alpha_p - mu) ** 2
    p_crit = nu * (chi0 - 1.0) / gap if gap > 0 and chi0 > 1.0 else math.nan
    if not (0.0 < p_crit < 1.0):
        p_crit = math.nan
    dims = ("p",)
    return xr.Dataset(
        {
            "a": (dims, a, {"long_name": "scale a: Var y = nu"}),
            "b": (dims, b, {"long_name": "shift b: E y = mu"}),
            "dropped_output": (dims, a * alpha_p + b, {"long_name": "a alpha' + b, the output of a dropped unit"}),
            "chi_p": (dims, chi_p, {"long_name": "chi_p(q*) = sigma_w2 phi(q*) a^2 k, the per-layer gradient factor",
                                    "equation": "Prop A.2 with dropout (docs/dropout.md)"}),
            "forward_slope": (dims, slope, {"long_name": "d q_{l+1} / d q_l at q* with dropout"}),
            "q_star": ((), q, {"long_name": "fixed point q* (unchanged by dropout)"}),
            "mu": ((), mu, {"long_name": "E f(h), h ~ N(0, q*)"}),
            "nu": ((), nu, {"long_name": "Var f(h), h ~ N(0, q*)"}),
            "alpha_prime": ((), alpha_p, {"long_name": f"the dropped value alpha' ({c['rule']})"}),
            "chi_0": ((), chi0, {"long_name": "sigma_w2 phi(q*), without dropout"}),
            "p_crit": ((), p_crit, {"long_name": "drop rate with chi_p(q*) = 1 (NaN: none in [0, 1))"}),
        },
        coords={"p": p},
        attrs=dataset_attrs(act, "Klambauer et al. 2017 (alpha dropout); docs/dropout.md", rule=c["rule"],
                            sigma_w2=w2, sigma_b2=c["sigma_b2"]),
    )


#: the relative step of the central differences that give Y₂'(s), Y₂''(s) and φ''(s) in
#: :func:`finite_width_dropout`: truncation (h²/12)·|g''''|/|g''| ~ 1e-7 and rounding
#: ε_quad/h² ~ 1e-13/1e-6 = 1e-7 of a term that is itself O(1/N)
DIFFERENCE_STEP = 1e-3


def _layer_moments(act, s):
    """E f, E f², E f³, E f⁴ and E f'² at x ~ N(0, s) (one quadrature node set)."""
    from ..gauss import quadrature

    act = resolve(act)
    cube = lambda x: act.f(x) ** 3  # noqa: E731
    fourth = lambda x: np.square(np.square(act.f(x)))  # noqa: E731
    return quadrature.expectation(act, ("f", "f2", cube, fourth, "df2"), 0.0, np.asarray(s, dtype=float))


def _dropout_maps(act, s, c):
    """Y₂(s) = E y², Y₄(s) = E y⁴ and E y'² of the dropout layer's output y = a(d f + (1 − d) α′) + b,
    d ~ Bernoulli(1 − p), x ~ N(0, s) (docs/dropout.md §finite width)."""
    m1, q2, m3, q4, phi = _layer_moments(act, s)
    a, b, k, p, alpha_p = c["a"], c["b"], 1.0 - c["p"], c["p"], c["alpha_p"]
    dropped = a * alpha_p + b
    y2 = k * (a * a * q2 + 2.0 * a * b * m1 + b * b) + p * dropped**2
    y4 = k * (a**4 * q4 + 4.0 * a**3 * b * m3 + 6.0 * a * a * b * b * q2 + 4.0 * a * b**3 * m1 + b**4) + p * dropped**4
    return y2, y4, a * a * k * phi


def finite_width_dropout(act, depth, width, p, dropped=None, q0=None, sigma_w2=1.0, sigma_b2=0.0) -> xr.Dataset:
    """The O(1/N) forward closure of a width-N network with alpha dropout after every activation.

    The single-input chain of docs/finite-width.md §1 carries over with the masks: given s_l, the
    next layer's s_{l+1} = σ_b² + σ_w² (1/N) Σ y_i² averages N iid y_i, so with Y₂ = E y², Y₄ = E y⁴

        m' = σ_b² + σ_w² [Y₂(m) + ½ Y₂''(m) v],     v' = σ_w⁴ [Y₂'(m)² v + (Y₄(m) − Y₂(m)²)/N],

    m_0 = q0, v_0 = 0; and the per-layer factor a network measures (``sim.simulate``'s
    ``chi_measured``, tr(WWᵀ) tr(DDᵀ) with the masks' a·d in D) has the mean
    σ_w² a² (1 − p) [φ(m_{l−1}) + ½ φ''(m_{l−1}) v_{l−1}].  p = 0 gives the closure without dropout
    (its forward half).  q0 defaults to the fixed point q* the constants are set at.

    Returns a Dataset over ``layer`` = 0..L: ``q`` and ``chi`` (infinite width, as
    :func:`meanfield.recursion` with dropout), ``q_mean``, ``s_var`` and ``chi_mean`` (width N).
    The gradient's closure with dropout is not derived.
    """
    act = resolve(act)
    depth = check_depth(depth)
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width must be an integer >= 1, got {width!r}")
    c = dropout_constants(act, p, dropped, sigma_w2, sigma_b2)
    if np.ndim(c["p"]):
        raise ValueError("finite_width_dropout takes one drop rate p; loop over p for several")
    c = {key: (float(value) if isinstance(value, (np.ndarray, np.floating)) else value) for key, value in c.items()}
    q0 = c["q_star"] if q0 is None else float(check_array("q0", q0, positive=True))
    n, w2, b2 = float(width), c["sigma_w2"], c["sigma_b2"]
    m, var, chi_mean = np.empty(depth + 1), np.zeros(depth + 1), np.full(depth + 1, np.nan)
    q_inf, chi_inf = np.empty(depth + 1), np.full(depth + 1, np.nan)
    m[0] = q_inf[0] = q0
    for layer in range(depth):
        s = m[layer]
        h = DIFFERENCE_STEP * s
        (y2, y2_minus, y2_plus), (y4, _, _), (g, g_minus, g_plus) = _dropout_maps(act, np.array([s, s - h, s + h]), c)
        slope, curvature = (y2_plus - y2_minus) / (2 * h), (y2_plus - 2 * y2 + y2_minus) / (h * h)
        g_curvature = (g_plus - 2 * g + g_minus) / (h * h)
        m[layer + 1] = b2 + w2 * (y2 + 0.5 * curvature * var[layer])
        var[layer + 1] = w2 * w2 * (slope * slope * var[layer] + (y4 - y2 * y2) / n)
        chi_mean[layer + 1] = w2 * (g + 0.5 * g_curvature * var[layer])
        y2_inf, _, g_inf = _dropout_maps(act, np.array([q_inf[layer]]), c)
        q_inf[layer + 1] = b2 + w2 * float(y2_inf[0])
        chi_inf[layer + 1] = w2 * float(g_inf[0])
    l = ("layer",)
    data = {
        "q": (l, q_inf, {"long_name": "q_l with alpha dropout, infinite width", "equation": "docs/dropout.md"}),
        "chi": (l, chi_inf, {"long_name": "chi_p(q_{l-1}) = sigma_w2 a^2 (1 - p) phi(q_{l-1}), infinite width"}),
        "q_mean": (l, m, {"long_name": "E[q_l] of a width-N network with dropout, O(1/N)",
                          "equation": "docs/dropout.md (finite width)"}),
        "s_var": (l, var, {"long_name": "Var[s_l], O(1/N)"}),
        "chi_mean": (l, chi_mean, {"long_name": "E[chi_l] = E[tr(WW^T) tr(DD^T)] with the masks, O(1/N)"}),
    }
    attrs = dataset_attrs(act, "docs/dropout.md (finite width), docs/finite-width.md section 3", depth=depth,
                          width=int(width), dropout=c["p"], dropout_a=c["a"], dropout_b=c["b"],
                          dropped_value=c["alpha_p"], dropped_rule=c["rule"], q0=q0, sigma_w2=w2, sigma_b2=b2)
    return xr.Dataset(data, coords={"layer": np.arange(depth + 1)}, attrs=attrs)
