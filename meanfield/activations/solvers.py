"""Parameter solvers: SELU (eq 4), dSELU (eq 5), sSELU and lSELU (eq 11, eq 13).

Generalised, after Chen et al. 2020b, to a target fixed point q* and a weight
gain σ_w²: the constraints read σ_w² φ(q*) = 1 + ε and σ_w² Q(q*) = q*, and the
objective is γ* = |σ_w² q* φ'(q*) + 1|, the γ_{q=1} of Prop 3.1 for the map
normalised by q* (u = q/q*, φ̃(u) = σ_w² φ(q* u)).  With q* = σ_w² = 1 this is
exactly (eq 11).

Why a one-dimensional search is global.  Write the negative branch as
λ·r·g_θ(x) with amplitude r and shape θ (β for sSELU, the direction of (α, β)
for lSELU).  The branches have disjoint supports, so φ and Q are
λ²(P₊ + r² P₋(θ)) and λ²(Q₊ + r² Q₋(θ)).  For each θ the two equality
constraints fix r² and λ² in closed form:

    r² = ε q*/2 / (q* P₋ − (1 + ε) Q₋),     λ² = q* / (σ_w² (Q₊ + r² Q₋)),

so the feasible set of (eq 11) is a curve parametrised by θ alone.  The solver
evaluates the objective on a dense grid of θ, then refines every local
minimum (bounded Brent), every zero of σ_w² q* φ' + 1 and every point where
λ(θ) meets λ_min (Brent's root finder), and returns the best of these
candidates.  Central variants (eq 13) add E[f] = 0, a root in θ.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from ..gauss import closed_forms
from . import registry
from .objects import ExpLinear
from ..arguments import check_number

FAMILIES = ("selu", "dselu", "sselu", "lselu")

#: θ grids.  sSELU: β on a log grid; lSELU: the angle of (α, β) with α >= 0 (the whole half-circle).
#: β in [1e-3, 50]: Table 5's β are 0.3–0.9, and every ε of the paper (0.01–0.07) has its optimum
#: inside [0.05, 5]; an optimum on the grid's edge is refused (solve), not returned.  1601 points:
#: the grid only brackets the local minima and sign changes that Brent's method then refines;
#: 801 or 3201 points move no sSELU/lSELU row of Table 5 by more than 9e-14 (measured), and an
#: independent brute force (tests/test_solvers.py) finds no better optimum.
_SSELU_GRID = np.geomspace(1e-3, 50.0, 1601)
#: The lSELU angle stops 1e-9 short of −π/2, where α = cos θ = 0 and the shape degenerates to linear.
_LSELU_GRID = np.linspace(-0.5 * math.pi + 1e-9, 0.5 * math.pi, 1601)
_XTOL = 1e-14  # Brent's tolerance in θ: ~50 ε at θ = O(1)


class InfeasibleError(ValueError):
    """The constrained program has no feasible point (or none that double precision can represent)."""


#: A solution's constraint residuals, relative to the constraint's scale (1 + ε for φ, q* for Q,
#: λ√q* for the mean), must be at most this.  The solvers meet them to ~1e-15 (Brent's method at
#: _XTOL on a closed-form curve); a larger residual means the problem left double precision
#: (q* = 1e300 overflows Q), and the parameters are not a solution.
RESIDUAL_TOLERANCE = 1e-9


def _check_residuals(sol):
    scale = {"phi": 1.0 + (sol.epsilon or 0.0), "second_moment": sol.q_star,
             "mean": max(abs(sol.lam), 1.0) * math.sqrt(sol.q_star)}
    bad = {k: v for k, v in sol.residuals.items() if not abs(v) <= RESIDUAL_TOLERANCE * scale[k]}
    if bad:
        text = ", ".join(f"{k} = {v:.3g}" for k, v in bad.items())
        raise InfeasibleError(
            f"{sol.family}: the solver's parameters miss their constraints ({text}; relative tolerance "
            f"{RESIDUAL_TOLERANCE:g}) at epsilon={sol.epsilon!r}, q_star={sol.q_star!r}, sigma_w2={sol.sigma_w2!r}: "
            "the problem is outside what double precision can solve; use a q_star nearer 1")
    return sol


@dataclasses.dataclass(frozen=True)
class Solution:
    """A solved parameter set and how well it meets its constraints.

    ``gamma1`` is γ* = |σ_w² q* φ'(q*) + 1| (Table 5's γ_{q=1} when
    q* = σ_w² = 1); ``residuals`` are σ_w² φ(q*) − (1 + ε), σ_w² Q(q*) − q* and,
    for central variants and SELU, E[f(√q* z)].
    """

    family: str
    lam: float
    alpha: float
    beta: float | None
    gamma1: float
    residuals: dict
    epsilon: float | None = None
    lambda_min: float | None = None
    central: bool = False
    q_star: float = 1.0
    sigma_w2: float = 1.0

    def fields(self) -> dict:
        """(lam, alpha, rate, slope) of the solution, through the registry's key -> field map."""
        public = {"lambda": self.lam, "alpha": self.alpha}
        if self.beta is not None:
            public["beta"] = self.beta
        return {"lam": 1.0, "alpha": 0.0, "rate": 1.0, "slope": 0.0, **registry.exp_linear_fields(self.family, public)}

    def activation(self):
        """The :class:`~meanfield.activations.ExpLinear` with these parameters."""
        return ExpLinear(name=self.family, solution=self, **self.fields())

    def as_dict(self) -> dict:
        out = {"family": self.family, "lambda": self.lam, "alpha": self.alpha}
        if self.beta is not None:
            out["beta"] = self.beta
        out.update(
            gamma1=self.gamma1,
            epsilon=self.epsilon,
            lambda_min=self.lambda_min,
            central=self.central,
            q_star=self.q_star,
            sigma_w2=self.sigma_w2,
            residuals=dict(self.residuals),
        )
        return out


def _shape(family, theta):
    """(α, b, κ) of the unit-amplitude negative branch g_θ."""
    theta = np.asarray(theta, dtype=float)
    if family == "sselu":
        return np.ones_like(theta), theta, np.zeros_like(theta)
    if family == "lselu":
        return np.cos(theta), np.ones_like(theta), np.sin(theta)
    return np.ones_like(theta), np.ones_like(theta), np.zeros_like(theta)


def _curve(family, theta, epsilon, q_star, sigma_w2):
    """λ, r, signed objective σ_w² q* φ' + 1 and E[f] along the feasible curve."""
    alpha, rate, slope = _shape(family, theta)
    q = np.full_like(alpha, q_star)
    q_pos, q_neg = closed_forms.second_moment_parts(q, alpha, rate, slope)
    p_pos, p_neg = closed_forms.jacobian_second_moment_parts(q, alpha, rate, slope)
    _, d_neg = closed_forms.jacobian_second_moment_derivative_parts(q, alpha, rate, slope)
    m_pos, m_neg = closed_forms.mean_parts(q, alpha, rate, slope)
    # Extreme q* overflow here; the shapes where they do are infeasible (NaN/inf fail `feasible`), and a
    # solution whose constraints then fail to hold is refused by _check_residuals.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        denom = q_star * p_neg - (1.0 + epsilon) * q_neg
        r2 = ((1.0 + epsilon) * q_pos - q_star * p_pos) / denom
        feasible = (denom > 0) & (r2 > 0) & np.isfinite(r2)
        r2 = np.where(feasible, r2, np.nan)
        lam2 = q_star / (sigma_w2 * (q_pos + r2 * q_neg))
        signed = sigma_w2 * q_star * lam2 * r2 * d_neg + 1.0
        lam = np.sqrt(lam2)
        r = np.sqrt(r2)
        mean = lam * (m_pos + r * m_neg)
    return {"lam": lam, "r": r, "signed": signed, "mean": mean, "feasible": feasible}


def _scalar(family, epsilon, q_star, sigma_w2, key):
    return lambda th: float(_curve(family, np.array([th]), epsilon, q_star, sigma_w2)[key][0])


def _check_positive(name, value):
    check_number(name, value, positive=True)


def _finish(family, theta, epsilon, q_star, sigma_w2, lambda_min, central):
    c = _curve(family, np.array([theta]), epsilon, q_star, sigma_w2)
    lam, r = float(c["lam"][0]), float(c["r"][0])
    alpha, rate, slope = (float(v[0]) for v in _shape(family, np.array([theta])))
    act_alpha = r * alpha
    # the unit-amplitude shape (α, b, κ) scaled by r: sSELU's β is the rate b, lSELU's the slope r κ
    beta = {"sselu": rate, "lselu": r * slope}.get(family)
    return _check_residuals(_report(family, lam, act_alpha, beta, epsilon, q_star, sigma_w2, lambda_min, central))


def _report(family, lam, alpha, beta, epsilon, q_star, sigma_w2, lambda_min, central):
    """Evaluate γ* and the constraint residuals from the final parameters."""
    public = {"lambda": lam, "alpha": alpha, **({} if beta is None else {"beta": beta})}
    fields = {"rate": 1.0, "slope": 0.0, **registry.exp_linear_fields(family, public)}
    m = closed_forms.moments(q_star, fields["lam"], fields["alpha"], fields["rate"], fields["slope"])
    residuals = {
        "phi": float(sigma_w2 * m["phi"] - (1.0 + (epsilon or 0.0))) if epsilon is not None else None,
        "second_moment": float(sigma_w2 * m["Q"] - q_star),
    }
    if central or family == "selu":
        residuals["mean"] = float(m["mean"])
    residuals = {k: v for k, v in residuals.items() if v is not None}
    gamma1 = abs(float(sigma_w2 * q_star * m["dphi"]) + 1.0)
    return Solution(
        family=family,
        lam=float(lam),
        alpha=float(alpha),
        beta=None if beta is None else float(beta),
        gamma1=gamma1,
        residuals=residuals,
        epsilon=None if epsilon is None else float(epsilon),
        lambda_min=None if lambda_min is None else float(lambda_min),
        central=bool(central),
        q_star=float(q_star),
        sigma_w2=float(sigma_w2),
    )


def solve_selu(q_star: float = 1.0, sigma_w2: float = 1.0) -> Solution:
    """Klambauer's SELU (eq 4): E[f(z)] = 0 and E[f²(z)] = 1, z ~ N(0, q*)."""
    _check_positive("q_star", q_star)
    _check_positive("sigma_w2", sigma_w2)
    one = np.ones(1)
    q = one * q_star
    q_pos, q_neg = closed_forms.second_moment_parts(q, one, one, 0 * one)
    m_pos, m_neg = closed_forms.mean_parts(q, one, one, 0 * one)
    alpha = float(-m_pos[0] / m_neg[0])
    lam = math.sqrt(q_star / (sigma_w2 * float(q_pos[0] + alpha**2 * q_neg[0])))
    return _check_residuals(_report("selu", lam, alpha, None, None, q_star, sigma_w2, None, False))


def solve_dselu(epsilon: float, q_star: float = 1.0, sigma_w2: float = 1.0) -> Solution:
    """Chen et al. 2020b's dSELU (eq 5): σ_w² φ(q*) = 1 + ε and σ_w² Q(q*) = q*."""
    _check_positive("epsilon", epsilon)
    _check_positive("q_star", q_star)
    _check_positive("sigma_w2", sigma_w2)
    c = _curve("dselu", np.array([1.0]), epsilon, q_star, sigma_w2)
    if not c["feasible"][0]:
        raise InfeasibleError(
            f"dselu: no (lambda, alpha) gives phi(q*) = 1 + epsilon with epsilon={epsilon!r} "
            f"(q_star={q_star!r}, sigma_w2={sigma_w2!r}); the SELU form reaches at most "
            f"epsilon = {_dselu_max_epsilon(q_star):.6g}"
        )
    return _finish("dselu", 1.0, epsilon, q_star, sigma_w2, None, False)


def _dselu_max_epsilon(q_star):
    one = np.ones(1)
    q = one * q_star
    q_pos, q_neg = closed_forms.second_moment_parts(q, one, one, 0 * one)
    p_pos, p_neg = closed_forms.jacobian_second_moment_parts(q, one, one, 0 * one)
    # r² -> ∞ as q* P₋ − (1+ε) Q₋ -> 0⁺: ε_max = q* P₋/Q₋ − 1.
    return float(q_star * p_neg[0] / q_neg[0] - 1.0)


def solve(
    family: str,
    epsilon: float | None = None,
    *,
    lambda_min: float = 1.0,
    central: bool = False,
    q_star: float = 1.0,
    sigma_w2: float = 1.0,
) -> Solution:
    """Solve an activation's parameters.

    * ``selu``: (eq 4), no ε.
    * ``dselu``: (eq 5), needs ε.
    * ``sselu`` / ``lselu``: (eq 11) with λ >= ``lambda_min``; with
      ``central=True``, (eq 13) — E[f] = 0 is added and, of the roots, the one
      with the smallest γ* and λ >= ``lambda_min`` is returned.

    Raises ``ValueError`` for bad arguments and :class:`InfeasibleError` (a
    ``ValueError``) when no parameters meet the constraints.
    """
    if family not in FAMILIES:
        raise ValueError(f"cannot solve parameters of {family!r}; solvable families: {', '.join(FAMILIES)}")
    if family == "selu":
        if epsilon is not None:
            raise ValueError("selu takes no epsilon (eq 4 fixes its parameters); use dselu for a given epsilon")
        return solve_selu(q_star, sigma_w2)
    if family == "dselu":
        if central:
            raise ValueError("dselu has two parameters and cannot also meet E[f] = 0 (eq 13); "
                             "central applies to sselu and lselu")
        return solve_dselu(epsilon, q_star, sigma_w2)
    _check_positive("epsilon", epsilon)
    _check_positive("lambda_min", lambda_min)
    _check_positive("q_star", q_star)
    _check_positive("sigma_w2", sigma_w2)
    epsilon, lambda_min, q_star, sigma_w2 = map(float, (epsilon, lambda_min, q_star, sigma_w2))
    grid = _SSELU_GRID if family == "sselu" else _LSELU_GRID
    c = _curve(family, grid, epsilon, q_star, sigma_w2)
    ok = c["feasible"] & (c["lam"] >= lambda_min)
    if not ok.any():
        where = (f"for epsilon={epsilon!r}, lambda_min={lambda_min!r} (q_star={q_star!r}, sigma_w2={sigma_w2!r})")
        if not c["feasible"].any():
            shape = "beta" if family == "sselu" else "the direction of (alpha, beta)"
            raise InfeasibleError(
                f"{family}: no {shape} on the search grid gives real parameters with phi(q*) = 1 + epsilon and "
                f"Q(q*) = q* {where}; epsilon is too small or too large for this family")
        lam_max = float(np.nanmax(np.where(c["feasible"], c["lam"], np.nan)))
        raise InfeasibleError(
            f"{family}: no parameters meet phi(q*) = 1 + epsilon, Q(q*) = q* and lambda >= lambda_min {where}; "
            f"the largest feasible lambda is {lam_max:.6g}: lower lambda_min below it"
        )
    if central:
        theta = _central_root(family, grid, c, ok, epsilon, q_star, sigma_w2, lambda_min)
    else:
        theta = _global_minimum(family, grid, c, ok, epsilon, q_star, sigma_w2, lambda_min)
        if family == "sselu" and theta in (grid[0], grid[-1]):
            # sSELU's β range truncates (0, inf): a minimum on its edge is the edge, not eq 11's optimum
            raise InfeasibleError(
                f"sselu: the least |phi'(q*) + 1| on the searched beta range [{grid[0]:g}, {grid[-1]:g}] lies at "
                f"its edge, beta = {theta:g}, for epsilon={epsilon!r}, q_star={q_star!r}, sigma_w2={sigma_w2!r}: "
                "the optimum of eq 11 is outside the range (or does not exist)")
    return _finish(family, theta, epsilon, q_star, sigma_w2, lambda_min, central)


def _sign_changes(values, mask):
    """Indices i with mask[i] & mask[i+1] and a sign change between i and i+1."""
    v = np.where(mask, values, np.nan)
    return np.flatnonzero((v[:-1] * v[1:] <= 0) & mask[:-1] & mask[1:])


def _global_minimum(family, grid, c, ok, epsilon, q_star, sigma_w2, lambda_min):
    from scipy import optimize  # here: importing it costs 0.3 s, and the closed-form commands need it not

    signed = _scalar(family, epsilon, q_star, sigma_w2, "signed")
    lam = _scalar(family, epsilon, q_star, sigma_w2, "lam")

    def objective(th):
        p = _curve(family, np.array([th]), epsilon, q_star, sigma_w2)
        admissible = p["feasible"][0] and p["lam"][0] >= lambda_min * (1 - 1e-13)
        return abs(float(p["signed"][0])) if admissible else math.inf

    obj = np.where(ok, np.abs(c["signed"]), np.inf)
    best = int(np.argmin(obj))
    candidates, scores = [float(grid[best])], [float(obj[best])]

    def consider(th):
        candidates.append(th)
        scores.append(objective(th))

    # Local minima of |signed| on the grid, refined by bounded Brent inside the
    # admissible neighbours.
    for i in np.flatnonzero(np.isfinite(obj)):
        lo = i - 1 if i > 0 and ok[i - 1] else i
        hi = i + 1 if i + 1 < grid.size and ok[i + 1] else i
        if obj[i] <= obj[max(i - 1, 0)] and obj[i] <= obj[min(i + 1, grid.size - 1)] and lo < hi:
            res = optimize.minimize_scalar(objective, bounds=(grid[lo], grid[hi]), method="bounded",
                                           options={"xatol": _XTOL})
            consider(float(res.x))
    # Zeros of the signed objective: γ* = 0 exactly.
    for i in _sign_changes(c["signed"], ok):
        consider(optimize.brentq(signed, grid[i], grid[i + 1], xtol=_XTOL))
    # Points where λ meets λ_min (the constraint is active at the optimum).
    for i in _sign_changes(c["lam"] - lambda_min, c["feasible"]):
        consider(optimize.brentq(lambda th: lam(th) - lambda_min, grid[i], grid[i + 1], xtol=_XTOL))
    return candidates[int(np.argmin(scores))]


def _central_root(family, grid, c, ok, epsilon, q_star, sigma_w2, lambda_min):
    from scipy import optimize  # here: importing it costs 0.3 s, and the closed-form commands need it not

    mean = _scalar(family, epsilon, q_star, sigma_w2, "mean")
    signed = _scalar(family, epsilon, q_star, sigma_w2, "signed")
    lam = _scalar(family, epsilon, q_star, sigma_w2, "lam")
    roots = [optimize.brentq(mean, grid[i], grid[i + 1], xtol=_XTOL) for i in _sign_changes(c["mean"], c["feasible"])]
    roots = [th for th in roots if lam(th) >= lambda_min * (1 - 1e-13)]
    if not roots:
        raise InfeasibleError(
            f"{family}: no parameters meet phi(q*) = 1 + epsilon, Q(q*) = q* and E[f] = 0 (eq 13) with "
            f"lambda >= lambda_min for epsilon={epsilon!r}, lambda_min={lambda_min!r}"
        )
    return min(roots, key=lambda th: abs(signed(th)))


def solve_fixed_lambda(family: str, epsilon: float, lam: float, *, q_star: float = 1.0,
                       sigma_w2: float = 1.0) -> Solution:
    """sSELU or lSELU with λ fixed: φ(1) = 1 + ε and Q(1) = 1 leave a discrete set of
    shapes θ with λ(θ) = λ; of those, the one with the least γ* (used by Figs 1 and 6)."""
    if family not in ("sselu", "lselu"):
        raise ValueError(f"a fixed lambda applies to sselu and lselu, got {family!r}")
    for name, value in (("epsilon", epsilon), ("lambda", lam), ("q_star", q_star), ("sigma_w2", sigma_w2)):
        _check_positive(name, value)
    from scipy import optimize  # here: see _global_minimum

    epsilon, lam, q_star, sigma_w2 = map(float, (epsilon, lam, q_star, sigma_w2))
    grid = _SSELU_GRID if family == "sselu" else _LSELU_GRID
    c = _curve(family, grid, epsilon, q_star, sigma_w2)
    lam_at = _scalar(family, epsilon, q_star, sigma_w2, "lam")
    signed = _scalar(family, epsilon, q_star, sigma_w2, "signed")
    roots = [optimize.brentq(lambda th: lam_at(th) - lam, grid[i], grid[i + 1], xtol=_XTOL)
             for i in _sign_changes(c["lam"] - lam, c["feasible"])]
    if not roots:
        lo, hi = np.nanmin(c["lam"]), np.nanmax(c["lam"])
        raise InfeasibleError(f"{family}: no parameters with lambda={lam!r} meet phi(1) = 1 + epsilon and Q(1) = 1 "
                              f"for epsilon={epsilon!r}; feasible lambda lies in [{lo:.4g}, {hi:.4g}]")
    theta = min(roots, key=lambda th: abs(signed(th)))
    sol = _finish(family, theta, epsilon, q_star, sigma_w2, None, False)
    # Brent's root of λ(θ) = λ at _XTOL meets λ to ~1e-15; report exactly the λ asked for, or refuse
    if not abs(sol.lam - lam) <= 1e-12 * lam:
        raise InfeasibleError(f"{family}: the shape solving lambda(theta) = {lam!r} gives lambda = {sol.lam!r} "
                              f"(epsilon={epsilon!r}): the root was not resolved; no solution is returned")
    return dataclasses.replace(sol, lam=lam)
