"""The Monte-Carlo section of ``meanfield validate``: Props A.1, A.2, 3.1, 3.2.

Each proposition is checked against simulation for SELU, dSELU, sSELU and
lSELU; the table reports the worst relative error per proposition and
activation, beside a tolerance derived from the network's size
(:mod:`sim.tolerance`).
"""

from __future__ import annotations

import numpy as np

from meanfield.validate import Check

from .simulate import simulate
from .tolerance import grad_chi_tolerance, q_tolerance, tolerances

SPECS = ("selu", "dselu:epsilon=0.017", "sselu:epsilon=0.017", "lselu:epsilon=0.017")
SIZES = {
    # width, depth, batch, seeds, q0 values
    "quick": (256, 16, 256, 2, (3.0,)),
    "default": (512, 32, 256, 2, (0.3, 3.0)),
    "full": (1024, 64, 512, 4, (0.3, 1.0, 3.0)),
}


def monte_carlo_checks(size: str = "default"):
    if size not in SIZES:
        raise ValueError(f"unknown Monte-Carlo size {size!r}; valid sizes: {', '.join(SIZES)}")
    width, depth, batch, seeds, q0s = SIZES[size]
    label = f"N={width} L={depth} B={batch} S={seeds}"
    checks = []
    for spec in SPECS:
        q_err = g_err = chi_err = p31_err = tq = tg = 0.0
        for q0 in q0s:
            ds = simulate(spec, depth=depth, width=width, batch=batch, seeds=seeds, q0=q0, dtype="float64",
                          stat_layers=[], bin_edges=None)
            q_err = max(q_err, float(np.nanmax(np.abs(ds.q_rel_error.values))))
            g_err = max(g_err, float(np.nanmax(np.abs(ds.grad_rel_error.values))))
            chi_err = max(chi_err, float(np.nanmax(np.abs(ds.grad_chi_rel_error.values))))
            pooled = ds.prop31_measured.mean("seed").values
            p31_err = max(p31_err, float(np.nanmax(np.abs(pooled - 1))))
            tq, tg = (max(a, b) for a, b in zip((tq, tg), tolerances(ds)))
        q0_text = ",".join(f"{q:g}" for q in q0s)
        checks.append(Check("monte carlo", f"Prop A.1 q_l, {spec}", q_err, f"theory, {label}, q0 in {{{q0_text}}}",
                            f"rel <= {tq:.3g}", q_err <= tq))
        checks.append(Check("monte carlo", f"Prop A.2 gradient norms, {spec}", g_err, "theory",
                            f"rel <= {tg:.3g}", g_err <= tg))
        tc = grad_chi_tolerance(width, batch, seeds, depth)
        checks.append(Check("monte carlo", f"Prop A.2 with each draw's chi_l (eq 24), {spec}", chi_err,
                            "prod tr(WW^T) tr(DD^T)", f"rel <= {tc:.3g}", chi_err <= tc))
        checks.append(Check("monte carlo", f"Prop 3.1 identity (measured), {spec}", p31_err, "1",
                            f"abs <= {tq + tg:.3g}", p31_err <= tq + tg))
    # Prop 3.2 (eq 36) through one weight matrix: E[h_1] = μ_w N_0 E[x_0],
    # with the draw's realised mean weight (it fluctuates by σ_w/√N around
    # μ_w).  The inputs x_0 = f(h_0) are i.i.d., so what remains,
    # Σ_i (w̄_i − w̄)(x̄_i − x̄), is about σ_w √Var(x_0)/√(N B).  Deeper layers
    # add per-unit offsets that eq 36 ignores; the recursion check covers them.
    mu = 0.5 / width
    ds = simulate("dselu:epsilon=0.017", depth=8, width=width, batch=batch, seeds=seeds, q0=1.5, m0=0.5,
                  mean_weight=mu, stat_layers=[], bin_edges=None)
    h1 = ds.h_mean.values[:, 1]
    x0 = ds.x_mean.values[:, 0]
    predicted = ds.mean_gain.values[:, 1] * x0
    err = float(np.max(np.abs(h1 - predicted) / np.abs(predicted)))
    spread = np.sqrt(ds.x_second_moment.values[:, 0] - x0**2)
    tol = float(np.max(6.0 * spread / np.sqrt(width * batch) / np.abs(predicted)))
    gain = float(np.nanmax(np.abs(ds.mean_gain.values[:, 1:] / 0.5 - 1)))
    checks.append(Check("monte carlo", "Prop 3.2 E[h_1] = mu_w N_0 E[x_0], dselu", err, "eq 36 (realised mu_w N)",
                        f"rel <= {tol:.3g}", err <= tol, f"realised mu_w N differs from 0.5 by up to {gain:.1%}"))
    theory = ds.h_mean_theory.values[1:]
    err = float(np.max(np.abs(ds.h_mean.mean("seed").values[1:] - theory)) / np.max(np.abs(theory)))
    tol = 6.0 * np.sqrt(1.0 / width) / 0.5 / np.sqrt(seeds) + q_tolerance(width, batch, seeds)
    checks.append(Check("monte carlo", "Prop 3.2 with eq 12 recursion (nominal mu_w), dselu", err,
                        "mean_recursion", f"rel <= {tol:.3g}", err <= tol))
    return checks
