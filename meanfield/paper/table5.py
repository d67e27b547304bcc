"""Table 5 of the paper reproduced by the solvers, row by row."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..results import dataset_attrs
from ..theory.functionals import gamma_fixed_point, jacobian_second_moment, second_moment
from .values import TABLE5, TABLE5_NOT_OPTIMAL
from ..activations.solvers import solve
from ..activations.resolve import activation

#: Table 5 prints λ, α, β to two decimals; docs/theory.md §3 asks for agreement at that
#: precision (half a unit of the last digit, plus rounding slack).
TOLERANCE = 0.0051
#: Table 5 prints γ_{q=1} to three decimals: half a unit of the last one.
GAMMA_ROUNDING = 0.0005


def _paper_activation(row):
    """The paper's printed (rounded) parameters as an activation."""
    if row.family == "selu":
        return activation("selu")
    if row.family == "dselu":
        return activation(f"dselu:lambda={row.lam},alpha={row.alpha}")
    return activation(f"{row.family}:lambda={row.lam},alpha={row.alpha},beta={row.beta}")


def table5() -> xr.Dataset:
    """Every row of Table 5: the paper's values beside ours, and a status per row.

    ``status`` is 'match' (λ, α, β, γ within two decimals), 'paper not
    optimal' for the rows where our global optimum has a γ no larger than
    the printed one but different parameters (sSELU at ε = 0.03 and 0.07),
    or 'MISMATCH'.  ``paper_gamma_eval`` is γ of the printed, rounded
    parameters, and ``paper_phi_residual`` / ``paper_q_residual`` show how far
    those rounded parameters are from the constraints.
    """
    rows = []
    for row in TABLE5:
        ours = solve(row.family, row.epsilon, central=row.central)
        paper_act = _paper_activation(row)
        beta = np.nan if ours.beta is None else ours.beta
        diffs = [abs(ours.lam - row.lam), abs(ours.alpha - row.alpha), abs(ours.gamma1 - row.gamma1)]
        if row.beta is not None:
            diffs.append(abs(beta - row.beta))
        if max(diffs) <= TOLERANCE:
            status = "match"
        # the paper prints γ to three decimals: ours may exceed it by its rounding, half a unit of the last digit
        elif (row.family, row.epsilon) in TABLE5_NOT_OPTIMAL and ours.gamma1 <= row.gamma1 + GAMMA_ROUNDING:
            status = "paper not optimal"
        else:
            status = "MISMATCH"
        rows.append({
            "label": row.label,
            "section": row.section,
            "spec": row.spec,
            "epsilon": np.nan if row.epsilon is None else row.epsilon,
            "paper_lambda": row.lam,
            "paper_alpha": row.alpha,
            "paper_beta": np.nan if row.beta is None else row.beta,
            "paper_gamma1": row.gamma1,
            "lambda": ours.lam,
            "alpha": ours.alpha,
            "beta": beta,
            "gamma1": ours.gamma1,
            "paper_gamma_eval": float(gamma_fixed_point(paper_act)),
            "paper_phi_residual": float(jacobian_second_moment(paper_act, 1.0)) - 1.0 - (row.epsilon or 0.0),
            "paper_q_residual": float(second_moment(paper_act, 1.0)) - 1.0,
            "max_abs_diff": max(diffs),
            "status": status,
        })
    data = {k: ("row", np.array([r[k] for r in rows])) for k in rows[0]}
    return xr.Dataset(data, coords={"row": np.arange(len(rows))},
                      attrs=dataset_attrs(None, "Table 5 (Appendix D), eq 4, eq 5, eq 11, eq 13", tolerance=TOLERANCE))
