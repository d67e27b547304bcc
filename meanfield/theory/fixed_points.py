"""Fixed points and their stability (docs/theory.md §4).

* Poole et al. 2016, Schoenholz et al. 2016: the fixed point q* of
  q ↦ σ_b² + σ_w² Q(q), χ_1 = σ_w² φ(q*), the order-to-chaos boundary
  χ_1 = 1 in the (σ_w², σ_b²) plane, the correlation map c ↦ c' and the depth
  scales ξ_q = −1/ln χ_q, ξ_c = −1/ln χ_c.
* Klambauer et al. 2017, Definition 1: the (μ, ν) map g(μ, ν) = (mean,
  variance) of f(N(ωμ, τν)), its fixed point and the Jacobian's spectral norm.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ..gauss import closed_forms, quadrature
from ..results import dataset_attrs
from ..activations.objects import ExpLinear
from .functionals import check_array, mean_map_all, resolve, second_moment, smooth_closed
from .inputs import broadcast_inputs, family_arrays

_TINY_Q = 1e-300  # φ and Q at q* = 0 are taken at this q (their q -> 0⁺ limits; any q below ~1e-30 gives them)
#: Plain iterations of the q map before Newton: they contract by χ_q per step, 0.9^300 = 2e-14
#: of the start's distance for χ_q <= 0.9; slower cases are left to Newton, which needs no contraction.
_ITERATIONS = 300
#: Newton steps in u = log q: quadratic near a root; far from one each step moves |Δu| <= 5, so
#: 200 steps cross the whole range |u| <= 575 (below) twice over.
_NEWTON_STEPS = 200
#: Largest Newton step in log q: e^5 ≈ 150x per step, a bound that keeps Newton from jumping past
#: a root of G on its flat parts (G' -> 0 as q -> 0 or inf) while crossing the range fast.
_MAX_LOG_STEP = 5.0
#: q is called infinite above 1e250 and zero below 1e-250: σ_w² Q(q) for the exponential-linear
#: family is O(q), and beyond these the next step would leave float64 (1.8e308) or reach subnormals.
_INFINITE_Q = 1e250
#: log(1e250) = 575.6: the u range Newton works in, |u| < 575.
_LOG_RANGE = 575.0
#: a fixed point is accepted when |σ_b² + σ_w² Q(q*) − q*| <= this · q*: 1e6 ε, room for the
#: closed forms' (~1e-15) and quadrature's (~1e-13) rounding of Q, far below any physical effect.
_FIXED_POINT_RTOL = 1e-10
_RTOL = 4 * np.finfo(float).eps
#: |χ_1 − 1| below this is 'critical': near χ_1 = 1 the fixed point q* leaves 0 like (χ_1 − 1), and
#: the search's rounding of q* (~1e-16 relative) moves χ_1 by ~1e-16; 1e-12 is that with room
_CRITICAL_TOL = 1e-12
#: A spectral norm within this of 1 is "marginal": the fixed point is found to a residual of 1e-10
#: (mu_nu_fixed_point), which moves the Jacobian by about as much, so rounding cannot decide.
MARGINAL = 1e-8


def _maps(act, q, params):
    """Q, dQ/dq, φ at q (closed forms, or quadrature)."""
    if isinstance(act, ExpLinear):
        m = closed_forms.moments(q, *params)
        return m["Q"], m["dQ"], m["phi"]
    smooth = smooth_closed(act)
    if smooth is not None:
        return smooth.second_moment(q), smooth.second_moment_derivative(q), smooth.jacobian(q)
    big_q, _, d_q, phi = quadrature.expectation_and_gradient(act, "f2", 0.0, q, also=("df2",))
    return big_q, d_q, phi


def _solve_q_star(act, sigma_w2, sigma_b2, params):
    """q* by iterating the map from q = 1, then Newton in u = log q; vectorised.

    Returns (q*, converged).  A few hundred iterations bring q near the
    attracting fixed point; Newton on G(u) = log(σ_b² + σ_w² Q(e^u)) − u then
    converges quadratically, also near criticality where the plain iteration
    slows down like 1/l.  q* = 0 (the signal dies out, σ_b² = 0) and q* = inf
    (q grows without bound) are reported as such.
    """
    q = np.ones_like(sigma_w2)
    with np.errstate(all="ignore"):
        for _ in range(_ITERATIONS):
            big_q, _, _ = _maps(act, np.clip(q, _TINY_Q, 1e300), params)
            new = sigma_b2 + sigma_w2 * big_q
            q = np.where(np.isfinite(new), new, np.inf)
            if np.all((q > _INFINITE_Q) | (q < 1.0 / _INFINITE_Q)):
                break
        inner = np.isfinite(q) & (q > 1.0 / _INFINITE_Q) & (q < _INFINITE_Q)
        u = np.log(np.where(inner, q, 1.0))
        for _ in range(_NEWTON_STEPS):
            qq = np.exp(u)
            big_q, d_q, _ = _maps(act, qq, params)
            image = sigma_b2 + sigma_w2 * big_q
            g = np.log(image) - u
            dg = sigma_w2 * d_q * qq / image - 1.0
            # Newton only toward an attracting root (G' < 0 there); where G is
            # flat or increasing (q -> 0 or inf, no finite attracting root
            # nearby) move 5 units of log q the way the map pushes q.
            attracting = dg < -1e-12
            newton = g / np.where(attracting, dg, -1.0)
            step = np.where(attracting, np.clip(newton, -_MAX_LOG_STEP, _MAX_LOG_STEP), -_MAX_LOG_STEP * np.sign(g))
            u = np.where(inner, u - step, u)
            inner &= (u > -_LOG_RANGE) & (u < _LOG_RANGE)
            if np.all(~inner | (np.abs(step) <= _RTOL)):
                break
        newton_range = np.isfinite(q) & (q > 1.0 / _INFINITE_Q) & (q < _INFINITE_Q)
        q = np.where(newton_range, np.where(u >= _LOG_RANGE, np.inf, np.where(u <= -_LOG_RANGE, 0.0, np.exp(u))), q)
    q = np.where(q > _INFINITE_Q, np.inf, np.where(q < 1.0 / _INFINITE_Q, 0.0, q))
    big_q, _, _ = _maps(act, np.clip(q, _TINY_Q, 1e300), params)
    residual = np.abs(sigma_b2 + sigma_w2 * big_q - q)
    converged = ~np.isfinite(q) | (q == 0) | (residual <= _FIXED_POINT_RTOL * np.maximum(q, _TINY_Q))
    return q, converged


def fixed_point(act, sigma_w2=1.0, sigma_b2=0.0) -> xr.Dataset:
    """q*, χ_1 = σ_w² φ(q*), χ_q = σ_w² dQ/dq(q*) and the phase (Poole, Schoenholz).

    ``q_star`` solves q = σ_b² + σ_w² Q(q) and is the one reached by iterating
    from q = 1: 0 when the signal dies out (σ_b² = 0), inf when it grows
    without bound (χ_1 and χ_q are then their limits).  ``phase`` is 'ordered'
    (χ_1 < 1), 'chaotic' (χ_1 > 1), 'critical' (|χ_1 − 1| < 1e-12) or
    'divergent' (q* = inf).  ``converged`` is False where the search stopped
    without meeting the map to 1e-10; callers in this module treat such
    points as undefined.  Inputs broadcast as in ``recursions``.
    """
    act = resolve(act)
    dims, v, coords = broadcast_inputs(act, sigma_w2=(sigma_w2, True, False), sigma_b2=(sigma_b2, True, True))
    params = family_arrays(act, v) if isinstance(act, ExpLinear) else None
    q, converged = _solve_q_star(act, v["sigma_w2"], v["sigma_b2"], params)
    with np.errstate(all="ignore"):
        # at q* = 0 or inf, φ and dQ/dq are taken at 1e-300 or 1e300: their limits there
        _, d_q, phi = _maps(act, np.clip(q, _TINY_Q, 1e300), params)
        chi1 = v["sigma_w2"] * phi
        chi_q = v["sigma_w2"] * d_q
    phase = np.where(np.abs(chi1 - 1) < _CRITICAL_TOL, "critical", np.where(chi1 < 1, "ordered", "chaotic"))
    phase = np.where(np.isinf(q), "divergent", phase)
    return xr.Dataset(
        {
            "q_star": (dims, q, {"long_name": "fixed point of q -> sigma_b2 + sigma_w2 Q(q)"}),
            "chi1": (dims, chi1, {"long_name": "chi_1 = sigma_w2 phi(q*) (its limit where q* is 0 or inf)",
                                  "equation": "Poole et al. 2016"}),
            "chi_q": (dims, chi_q, {"long_name": "chi_q = sigma_w2 dQ/dq(q*)"}),
            "converged": (dims, converged),
            "phase": (dims, phase.astype(str)),
        },
        coords=coords,
        attrs=dataset_attrs(act, "Poole et al. 2016; Schoenholz et al. 2016"),
    )


def critical_sigma_w2(act, sigma_b2=0.0, bracket=(1e-2, 1e2), points=97) -> xr.Dataset:
    """σ_w² on the order-to-chaos boundary χ_1(σ_w², σ_b²) = 1, for each σ_b².

    χ_1 is evaluated on ``points`` log-spaced σ_w² in ``bracket`` (one
    vectorised call), the first sign change of χ_1 − 1 among the finite
    values is refined by Brent's method on log σ_w².  NaN where there is none.
    For SELU at σ_b² = 0 the boundary is σ_w² = 1/φ(0), where q* leaves 0.
    """
    act = resolve(act)
    sb = np.atleast_1d(check_array("sigma_b2", sigma_b2, positive=True, allow_zero=True))
    grid = np.geomspace(*bracket, points)

    def excess(log_w, b):
        return float(fixed_point(act, math.exp(log_w), b).chi1) - 1.0

    out = np.full(sb.shape, np.nan)
    q_out = np.full(sb.shape, np.nan)
    for i, b in enumerate(sb):
        fp = fixed_point(act, grid, b)
        chi = fp.chi1.values - 1.0
        ok = np.isfinite(chi) & fp.converged.values
        hits = np.flatnonzero(ok[:-1] & ok[1:] & (chi[:-1] * chi[1:] <= 0))
        if hits.size == 0:
            continue
        k = hits[0]
        lo, hi = math.log(grid[k]), math.log(grid[k + 1])
        # an end at the boundary within rounding is the root: there the sign of χ_1 − 1 is
        # rounding's, and it may differ between the grid's evaluation and the scalar one
        ends = [(abs(chi[j]), end) for j, end in ((k, lo), (k + 1, hi)) if abs(chi[j]) <= _CRITICAL_TOL]
        if ends:
            root = min(ends)[1]
        else:
            from scipy import optimize  # here, not at import: 0.3 s that most commands never need

            root = optimize.brentq(excess, lo, hi, args=(b,), xtol=1e-13, rtol=_RTOL)
        out[i] = math.exp(root)
        q_out[i] = float(fixed_point(act, out[i], b).q_star)
    dims = ("sigma_b2",)
    return xr.Dataset(
        {
            "sigma_w2": (dims, out, {"long_name": "critical sigma_w2 (chi_1 = 1)"}),
            "q_star": (dims, q_out, {"long_name": "fixed point q* on the critical line"}),
        },
        coords={"sigma_b2": sb},
        attrs=dataset_attrs(act, "order-to-chaos boundary chi_1 = 1 (Poole et al. 2016)", bracket_low=bracket[0],
                            bracket_high=bracket[1]),
    )


# ---------------------------------------------------------------------------
# Correlation map.
# ---------------------------------------------------------------------------


def _pair_expectation(act, c, q, derivative=False, order=16):
    """E[g(u₁) g(u₂)], (u₁, u₂) ~ N(0, q [[1, c], [c, 1]]), g = f or f'.

    In closed form for the ReLU family (the arc-cosine kernel, Cho & Saul 2009) and for
    activations whose registry entry has it (erf: the arcsine kernel; GELU).  Otherwise written
    as E_{z₁}[g(√q z₁) · E[g(√q c z₁ + √(q(1−c²)) z₂)]]: the inner expectation is the mean map of
    g (closed form for the exp-linear family), the outer one graded quadrature in z₁, split at
    g's kink.
    """
    c = np.asarray(c, dtype=float)
    q = np.broadcast_to(np.asarray(q, dtype=float), c.shape)
    smooth = smooth_closed(act)
    if smooth is not None and smooth.pair is not None:
        return (smooth.derivative_pair if derivative else smooth.pair)(c * q, q)
    if isinstance(act, ExpLinear) and act.scalar and float(act.alpha) == 0.0:
        return _arc_cosine(act, c, q, derivative)
    s = np.sqrt(q)
    x, w, z = quadrature.nodes(act, np.zeros_like(c), s, "graded", order)
    inner_m = s[..., None] * c[..., None] * z
    inner_v = np.broadcast_to((q * (1.0 - np.square(c)))[..., None], inner_m.shape)
    g = act.df if derivative else act.f
    exact = inner_v <= 0
    inner_v = np.where(exact, 1.0, inner_v)
    if isinstance(act, ExpLinear) and act.scalar:
        params = (act.lam, act.alpha, act.rate, act.slope)
        if derivative:
            inner = closed_forms.derivative_mean_map(inner_m, inner_v, *params)
        else:
            inner = closed_forms.mean_map(inner_m, inner_v, *params)
    else:
        inner = quadrature.expectation(act, "df" if derivative else "f", inner_m, inner_v)
    inner = np.where(exact, g(inner_m), inner)
    return np.sum(w * g(x) * inner, axis=-1)


def _arc_cosine(act, c, q, derivative):
    """The ReLU family, f = b x (x > 0), a x (x <= 0) with b = λ, a = λκ (the arc-cosine kernel of
    Cho & Saul 2009, for two slopes): with θ = arccos c,

    E f(u₁) f(u₂) = (a − b)²/(2π) q √(1 − c²) + ((a² + b²)/2 − (a − b)² θ/(2π)) q c,
    E f'(u₁) f'(u₂) = (a² + b²)/2 − (a − b)² θ/(2π).
    """
    b, a = float(act.lam), float(act.lam * act.slope)
    theta = np.arccos(np.clip(c, -1.0, 1.0))
    spread = np.square(a - b) / (2.0 * math.pi)
    slope = 0.5 * (a * a + b * b) - spread * theta
    if derivative:
        return slope
    return spread * q * np.sqrt(np.maximum(1.0 - np.square(c), 0.0)) + slope * q * c


def correlation_map(act, c, q, sigma_w2=1.0, sigma_b2=0.0):
    """c' = (σ_w² E[f(u₁) f(u₂)] + σ_b²) / q', q' = σ_b² + σ_w² Q(q) (Poole et al. 2016).

    ``c`` the input correlation, ``q`` the input second moment (both inputs of
    the pair have the same q).  Vectorised over ``c``; scalar activation.
    """
    act = resolve(act)
    c = check_array("c", c)
    if np.any(np.abs(c) > 1):
        raise ValueError(f"correlations must lie in [-1, 1], got {c[np.abs(c) > 1][0]!r}")
    q = check_array("q", q, positive=True)
    big_q = second_moment(act, q)
    q_next = sigma_b2 + sigma_w2 * big_q
    return (sigma_w2 * _pair_expectation(act, c, q) + sigma_b2) / q_next


def correlation_slope(act, c, q, sigma_w2=1.0):
    """χ_c = ∂c'/∂c = σ_w² E[f'(u₁) f'(u₂)] at the fixed point q = q* (Schoenholz eq 5)."""
    act = resolve(act)
    c = check_array("c", c)
    q = check_array("q", q, positive=True)
    return sigma_w2 * _pair_expectation(act, c, q, derivative=True)


def depth_scales(act, sigma_w2=1.0, sigma_b2=0.0) -> xr.Dataset:
    """ξ_q = −1/ln χ_q and ξ_c = −1/ln χ_c(c*) (Schoenholz et al. 2016).

    c* = 1 in the ordered phase (χ_1 <= 1), where χ_c(1) = χ_1; in the chaotic
    phase c* < 1 is the attracting fixed point of the correlation map, found
    by iterating it from c = 0.  ξ_c is inf on the critical line.  Scalar
    activation; σ_w², σ_b² may be arrays (looped).
    """
    act = resolve(act)
    fp = fixed_point(act, sigma_w2, sigma_b2)
    dims = fp.q_star.dims
    w = np.broadcast_to(np.asarray(fp.sigma_w2.values if "sigma_w2" in fp.coords else sigma_w2, float), fp.q_star.shape)
    b = np.broadcast_to(np.asarray(fp.sigma_b2.values if "sigma_b2" in fp.coords else sigma_b2, float), fp.q_star.shape)
    c_star = np.full(fp.q_star.shape, np.nan)
    chi_c = np.full(fp.q_star.shape, np.nan)
    for idx in np.ndindex(fp.q_star.shape):
        q, chi1 = float(fp.q_star.values[idx]), float(fp.chi1.values[idx])
        if not (np.isfinite(q) and q > 0):
            continue
        if chi1 <= 1.0:
            c_star[idx], chi_c[idx] = 1.0, chi1
            continue
        c = 0.0
        for _ in range(2000):
            new = float(correlation_map(act, c, q, w[idx], b[idx]))
            if abs(new - c) < 1e-14:
                c = new
                break
            c = new
        c_star[idx] = c
        chi_c[idx] = float(correlation_slope(act, c, q, w[idx]))
    with np.errstate(divide="ignore", invalid="ignore"):
        xi_q = -1.0 / np.log(fp.chi_q.values)
        xi_c = -1.0 / np.log(chi_c)
    xi_c = np.where(np.abs(chi_c - 1) < 1e-12, np.inf, xi_c)
    out = fp.copy()
    out["c_star"] = (dims, c_star, {"long_name": "attracting fixed point of the correlation map"})
    out["chi_c"] = (dims, chi_c, {"long_name": "sigma_w2 E[f'(u1) f'(u2)] at c*"})
    out["xi_q"] = (dims, xi_q, {"long_name": "depth scale of q: -1/ln chi_q"})
    out["xi_c"] = (dims, xi_c, {"long_name": "depth scale of correlations: -1/ln chi_c"})
    out.attrs["equation"] = "Schoenholz et al. 2016, depth scales"
    return out


# ---------------------------------------------------------------------------
# Klambauer's (μ, ν) map.
# ---------------------------------------------------------------------------


def mu_nu_map(act, mu, nu, omega=0.0, tau=1.0):
    """g(μ, ν) = (E[f(h)], Var[f(h)]), h ~ N(ωμ, τν) (Klambauer et al. 2017, Definition 1).

    ω = Σ_j w_ij and τ = Σ_j w_ij² summarise a unit's incoming weights.
    Returns (μ̃, ν̃); arrays broadcast.
    """
    mu, nu = check_array("mu", mu), check_array("nu", nu, positive=True)
    tau = check_array("tau", tau, positive=True)
    out = mean_map_all(act, omega * mu, tau * nu)
    return out["mean"], out["second"] - np.square(out["mean"])


def mu_nu_jacobian(act, mu, nu, omega=0.0, tau=1.0):
    """The 2×2 Jacobian ∂(μ̃, ν̃)/∂(μ, ν) of the (μ, ν) map, analytically.

    By the chain rule through m = ωμ, v = τν and the gradients of M and S.
    Returns an array of shape broadcast(...) + (2, 2).
    """
    mu, nu = check_array("mu", mu), check_array("nu", nu, positive=True)
    o = mean_map_all(act, omega * mu, tau * nu)
    dm_mu = omega * o["d_mean_dm"]
    dm_nu = tau * o["d_mean_dv"]
    dv_mu = omega * (o["d_second_dm"] - 2.0 * o["mean"] * o["d_mean_dm"])
    dv_nu = tau * (o["d_second_dv"] - 2.0 * o["mean"] * o["d_mean_dv"])
    return np.stack([np.stack([dm_mu, dm_nu], -1), np.stack([dv_mu, dv_nu], -1)], -2)


def mu_nu_fixed_point(act, omega=0.0, tau=1.0, start=(0.0, 1.0)) -> xr.Dataset:
    """Fixed point (μ*, ν*) of the (μ, ν) map, its Jacobian and spectral norm there.

    Found by Powell's hybrid method from ``start`` with the analytic
    Jacobian; a spectral norm below 1 means the fixed point attracts
    (Klambauer et al. 2017, Theorem 1).  Raises ValueError if it fails.
    """
    act = resolve(act)
    for name, val in (("omega", omega), ("tau", tau)):
        check_array(name, val)
    if not tau > 0:
        raise ValueError(f"tau must be > 0 (it is the sum of squared weights), got {tau!r}")

    def residual(p):
        mu, log_nu = p
        nu = math.exp(log_nu)
        m, v = mu_nu_map(act, mu, nu, omega, tau)
        return [float(m) - mu, math.log(float(v)) - log_nu]

    def jac(p):
        mu, log_nu = p
        nu = math.exp(log_nu)
        j = mu_nu_jacobian(act, mu, nu, omega, tau)
        _, v = mu_nu_map(act, mu, nu, omega, tau)
        v = float(v)
        return [[j[0, 0] - 1.0, j[0, 1] * nu], [j[1, 0] / v, j[1, 1] * nu / v - 1.0]]

    from scipy import optimize  # here, not at import (see above)

    sol = optimize.root(residual, [start[0], math.log(start[1])], jac=jac, method="hybr", tol=1e-15)
    mu, nu = float(sol.x[0]), math.exp(sol.x[1])
    res = residual(sol.x)
    # Judged by the residual: at tol=1e-15 hybr stops "not making good progress"
    # once the residual is down to the map's rounding (~1e-16), which is success.
    if not all(abs(r) <= _FIXED_POINT_RTOL for r in res):  # NaN fails too
        raise ValueError(f"no fixed point of the (mu, nu) map found from {start} for omega={omega!r}, "
                         f"tau={tau!r}: {sol.message}")
    j = mu_nu_jacobian(act, mu, nu, omega, tau)
    norm = float(np.linalg.norm(j, 2))
    eig = np.linalg.eigvals(j)
    verdict = "attracting" if norm < 1.0 - MARGINAL else "repelling" if norm > 1.0 + MARGINAL else "marginal"
    return xr.Dataset(
        {
            "mu": ((), mu, {"long_name": "fixed-point mean mu*"}),
            "nu": ((), nu, {"long_name": "fixed-point variance nu*"}),
            "jacobian": (("row", "column"), j, {"long_name": "d(mu~, nu~)/d(mu, nu) at the fixed point"}),
            "eigenvalues_abs": (("eigen",), np.sort(np.abs(eig))[::-1]),
            "spectral_norm": ((), norm, {"long_name": "largest singular value of the Jacobian"}),
            "attracting": ((), verdict == "attracting"),
            "verdict": ((), verdict, {"long_name": f"attracting / marginal (|norm - 1| <= {MARGINAL:g}) / repelling"}),
        },
        coords={"row": ["mu", "nu"], "column": ["mu", "nu"], "omega": float(omega), "tau": float(tau)},
        attrs=dataset_attrs(act, "Klambauer et al. 2017, Definition 1 and Theorem 1"),
    )
