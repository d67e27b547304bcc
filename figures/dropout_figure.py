"""Figure ``dropout``: alpha dropout's per-layer gradient factor χ_p against the drop rate.

For SELU, dSELU, sSELU (ε = 0.017) under the saturation and the mean rule, and lSELU under the mean
rule (it has no saturation): χ_p(q*) = σ_w² φ(q*)/(1 + p (α′ − μ)²/ν) as lines
(``meanfield.alpha_dropout``), networks' own per-layer factor (``sim.simulate(..., dropout=p)``,
tr WWᵀ tr DDᵀ with the masks' a·d, averaged over layers) as points with one standard error from the
draws.  The line χ = 1 (gradient norm equality) is marked; where a saturation line crosses it is p_crit.
``chi_theory_fw`` is the same layer average of the O(1/N) theory of the networks' size
(``meanfield.finite_width_dropout``), drawn as short ticks.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

import meanfield as mf

from .common import color, label, plt, settings_of, stamp, title

CASES = (("selu", "saturation"), ("selu", "mean"), ("dselu:epsilon=0.017", "saturation"),
         ("dselu:epsilon=0.017", "mean"), ("sselu:epsilon=0.017", "saturation"), ("sselu:epsilon=0.017", "mean"),
         ("lselu:epsilon=0.017", "mean"))
P_LINE = np.linspace(0.0, 0.3, 61)


def compute(quick=False, width=None, depth=None, draws=None, seed=0, quiet=False, **_):
    import sim

    width = int(width or (256 if quick else 1024))
    depth = int(depth or (8 if quick else 32))
    draws = int(draws or (4 if quick else 24))
    p_points = np.array([0.05, 0.1, 0.2])
    line = np.full((len(CASES), len(P_LINE)), np.nan)
    measured = np.full((len(CASES), len(p_points)), np.nan)
    sem = np.full_like(measured, np.nan)
    finite = np.full_like(measured, np.nan)
    for i, (spec, rule) in enumerate(CASES):
        theory = mf.alpha_dropout(spec, P_LINE[:-1], rule)
        line[i, :-1] = theory.chi_p.values
        for j, p in enumerate(p_points):
            ds = sim.simulate(spec, depth=depth, width=width, batch=64, seeds=draws, q0=float(theory.q_star),
                              dropout=float(p), dropped=rule, stat_layers=[], bin_edges=None, seed=seed)
            per_draw = ds.chi_measured.values[:, 1:].mean(axis=1)
            fw = mf.finite_width_dropout(spec, depth, width, float(p), rule, q0=float(theory.q_star))
            finite[i, j] = float(fw.chi_mean.values[1:].mean())
            measured[i, j] = per_draw.mean()
            sem[i, j] = per_draw.std(ddof=1) / np.sqrt(draws) if draws > 1 else np.nan
        if not quiet:
            print(f"dropout: {spec} ({rule}): chi_p at p = 0.1 theory {float(mf.alpha_dropout(spec, 0.1, rule).chi_p[0]):.4f},"
                  f" networks {measured[i, 1]:.4f} ± {sem[i, 1]:.4f}", flush=True)
    case = [f"{spec}|{rule}" for spec, rule in CASES]
    out = xr.Dataset({"chi_theory": (("case", "p_line"), line), "chi_measured": (("case", "p"), measured),
                      "chi_sem": (("case", "p"), sem),
                      "chi_theory_fw": (("case", "p"), finite,
                                        {"long_name": "layer-averaged E chi_l at the networks' width, O(1/N)",
                                         "equation": "meanfield.finite_width_dropout"})},
                     coords={"case": case, "p_line": P_LINE, "p": p_points})
    return stamp(out, "dropout", "quick" if quick else "full", "random networks (no data set)",
                 {"width": width, "depth": depth, "draws": draws, "seed": seed})


def plot(ds):
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for i, case in enumerate(ds.case.values):
        spec, rule = str(case).split("|")
        style = "-" if rule == "saturation" else "--"
        c = color(spec)
        ax.plot(ds.p_line, ds.chi_theory[i], style, color=c, label=f"{label(spec)}, {rule}")
        ax.errorbar(ds.p, ds.chi_measured[i], yerr=ds.chi_sem[i], fmt="o" if rule == "saturation" else "s",
                    color=c, ms=4, capsize=2, mfc="white" if rule == "mean" else c)
        if "chi_theory_fw" in ds:
            ax.plot(ds.p, ds.chi_theory_fw[i], "_", color=c, ms=12)
    ax.axhline(1.0, color="k", lw=0.8, ls=":", label="chi = 1 (gradient norm equality)")
    ax.set_xlabel("drop rate p")
    ax.set_ylabel("per-layer gradient factor chi_p(q*)")
    ax.legend(fontsize=7, ncol=2)
    s = settings_of(ds)
    ax.set_title(title(ds, f"alpha dropout: lines theory, points networks (N={s['width']}, L={s['depth']}, "
                           f"{s['draws']} draws)"), fontsize=9)
    fig.tight_layout()
    return fig
