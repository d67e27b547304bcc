"""Figures that come from ``meanfield`` alone: 1, 2, 3 (with a Monte-Carlo
overlay), 6 and Table 5."""

from __future__ import annotations

import numpy as np
import xarray as xr

import meanfield as mf
from meanfield.activations.solvers import solve_fixed_lambda

from .common import color, label, plt, stamp, title

FAMILIES = ("sselu", "lselu")


# ---------------------------------------------------------------------------
# Fig 1: φ(q) against q, and f(x), for sSELU and lSELU at several λ.
# ---------------------------------------------------------------------------


def fig1_compute(quick=False, epsilon=0.03, lambdas=(0.8, 1.0, 1.2), **_):
    """φ(q) (eq 6) and f(x) at fixed λ, α and β solving φ(1) = 1 + ε, Q(1) = 1 with the least γ."""
    q = np.geomspace(0.05, 20.0, 100 if quick else 400)
    x = np.linspace(-4.0, 3.0, 141)
    lambdas = tuple(float(v) for v in lambdas)
    phi = np.full((len(FAMILIES), len(lambdas), q.size), np.nan)
    f = np.full((len(FAMILIES), len(lambdas), x.size), np.nan)
    params = np.full((len(FAMILIES), len(lambdas), 3), np.nan)
    gamma1 = np.full((len(FAMILIES), len(lambdas)), np.nan)
    for i, fam in enumerate(FAMILIES):
        for j, lam in enumerate(lambdas):
            try:
                sol = solve_fixed_lambda(fam, epsilon, lam)
            except mf.InfeasibleError:
                continue
            act = sol.activation()
            phi[i, j] = mf.jacobian_second_moment(act, q)
            f[i, j] = act.f(x)
            params[i, j] = (sol.lam, sol.alpha, sol.beta)
            gamma1[i, j] = sol.gamma1
    ds = xr.Dataset(
        {
            "phi": (("family", "lam", "q"), phi, {"long_name": "phi(q)", "equation": "eq 6"}),
            "f": (("family", "lam", "x"), f, {"long_name": "f(x)"}),
            "params": (("family", "lam", "param"), params),
            "gamma1": (("family", "lam"), gamma1),
        },
        coords={"family": list(FAMILIES), "lam": list(lambdas), "q": q, "x": x, "param": ["lambda", "alpha", "beta"]},
    )
    return stamp(ds, "1", "quick" if quick else "full", "none (theory)", {"epsilon": epsilon, "lambdas": lambdas})


def fig1_plot(ds):
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    for i, fam in enumerate(ds.family.values):
        ax_phi, ax_f = axes[2 * i], axes[2 * i + 1]
        q = ds.q.values
        for j, lam in enumerate(ds.lam.values):
            p = ds.params.values[i, j]
            lbl = f"lambda={lam:g} (alpha={p[1]:.2f}, beta={p[2]:.2f})"
            ax_phi.plot(q, ds.phi.values[i, j], label=lbl)
            ax_f.plot(ds.x.values, ds.f.values[i, j], label=f"lambda={lam:g}")
        ax_phi.plot(q, 1 / q, "k--", lw=1, label="1/q")
        ax_phi.axhline(1.0, color="k", lw=0.8, ls=":")
        ax_phi.set(xscale="log", yscale="log", xlabel="q (second moment of pre-activations)", ylabel="phi(q)",
                   title=f"{fam}: phi(q)")
        ax_f.set(xlabel="x", ylabel="f(x)", title=f"{fam}: f(x)")
        ax_phi.legend(fontsize=7)
        ax_f.legend(fontsize=7)
    fig.suptitle(title(ds, "Fig 1: phi(q) and f(x) of sSELU and lSELU under different lambda"))
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# Fig 2: 1 + δ_q against q for several ε.
# ---------------------------------------------------------------------------


def fig2_compute(quick=False, epsilons=(0.01, 0.017, 0.03, 0.05, 0.07), **_):
    q = np.linspace(0.02, 3.0, 80 if quick else 300)
    specs = [f"{fam}:epsilon={e:g}" for fam in ("dselu",) + FAMILIES for e in epsilons]
    rate = np.stack([mf.explosion_factor(s, q) for s in specs]).reshape(3, len(epsilons), q.size)
    ds = xr.Dataset(
        {"explosion_factor": (("family", "epsilon", "q"), rate, {"long_name": "1 + delta_q", "equation": "eq 2"})},
        coords={"family": ["dselu", *FAMILIES], "epsilon": list(epsilons), "q": q},
    )
    return stamp(ds, "2", "quick" if quick else "full", "none (theory)", {"epsilons": list(epsilons)})


def fig2_plot(ds):
    fig, axes = plt.subplots(1, ds.sizes["family"], figsize=(13, 3.8), sharey=True)
    cmap = plt.get_cmap("viridis")
    for ax, fam in zip(axes, ds.family.values):
        for k, e in enumerate(ds.epsilon.values):
            ax.plot(ds.q.values, ds.explosion_factor.sel(family=fam, epsilon=e).values,
                    color=cmap(k / max(ds.sizes["epsilon"] - 1, 1)), label=f"eps={e:g}")
        ax.axvline(1.0, color="k", lw=0.8, ls=":")
        ax.set(xlabel="q (second moment of pre-activations)", title=fam)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("1 + delta_q (gradient growth per layer)")
    fig.suptitle(title(ds, "Fig 2: (1 + delta_q) against q"))
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# Fig 3: |E[f(h)]| against the input mean and variance, theory and Monte-Carlo.
# ---------------------------------------------------------------------------


def fig3_compute(quick=False, activations=("dselu:epsilon=0.06", "sselu:epsilon=0.06", "lselu:epsilon=0.06"),
                 variances=(0.25, 1.0, 2.0, 4.0), samples=None, seed=0, **_):
    """Theory: M(m, s²) (eq 12); measured: the sample mean of f(h), h ~ N(m, s²)."""
    samples = samples or (20_000 if quick else 400_000)
    means = np.linspace(-1.0, 1.0, 11 if quick else 41)
    var = np.asarray(variances, dtype=float)
    theory = np.zeros((len(activations), var.size, means.size))
    measured = np.zeros_like(theory)
    stderr = np.zeros_like(theory)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(samples)
    for a, spec in enumerate(activations):
        act = mf.activation(spec)
        theory[a] = mf.mean_map(act, means[None, :], var[:, None])
        for v, s2 in enumerate(var):
            for m, mu in enumerate(means):
                y = act.f(mu + np.sqrt(s2) * z)
                measured[a, v, m] = y.mean()
                stderr[a, v, m] = y.std(ddof=1) / np.sqrt(samples)
    dims = ("activation", "variance", "mean")
    ds = xr.Dataset(
        {
            "abs_mean_theory": (dims, np.abs(theory), {"long_name": "|E[f(h)]|, h ~ N(m, s2)", "equation": "eq 12"}),
            "mean_theory": (dims, theory),
            "mean_measured": (dims, measured, {"long_name": "sample mean of f(h)"}),
            "abs_mean_measured": (dims, np.abs(measured)),
            "standard_error": (dims, stderr),
        },
        coords={"activation": list(activations), "variance": var, "mean": means},
    )
    return stamp(ds, "3", "quick" if quick else "full", "Gaussian samples",
                 {"samples": samples, "seed": seed, "activations": list(activations)})


def fig3_plot(ds):
    n = ds.sizes["activation"]
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 3.8), sharey=True)
    axes = np.atleast_1d(axes)
    cmap = plt.get_cmap("plasma")
    for ax, spec in zip(axes, ds.activation.values):
        for k, s2 in enumerate(ds.variance.values):
            c = cmap(k / max(ds.sizes["variance"] - 1, 1) * 0.85)
            sel = dict(activation=spec, variance=s2)
            ax.plot(ds["mean"].values, ds.abs_mean_theory.sel(sel).values, color=c, label=f"s2={s2:g} theory")
            ax.plot(ds["mean"].values, ds.abs_mean_measured.sel(sel).values, "--", color=c, label=f"s2={s2:g} measured")
        ax.set(xlabel="input mean E[h]", title=label(str(spec)))
        ax.legend(fontsize=6, ncol=2)
    axes[0].set_ylabel("|output mean| |E[f(h)]|")
    fig.suptitle(title(ds, "Fig 3: |output mean| against input mean and variance (solid: eq 12, dashed: measured)"))
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# Fig 6: max over q in (0, 2] of 1 + δ_q against λ.
# ---------------------------------------------------------------------------


def fig6_compute(quick=False, epsilon=0.03, lambdas=None, **_):
    lambdas = np.linspace(0.6, 1.4, 9 if quick else 41) if lambdas is None else np.asarray(lambdas, float)
    q = np.linspace(1e-3, 2.0, 200 if quick else 800)
    peak = np.full((len(FAMILIES), lambdas.size), np.nan)
    at = np.full_like(peak, np.nan)
    for i, fam in enumerate(FAMILIES):
        for j, lam in enumerate(lambdas):
            try:
                act = solve_fixed_lambda(fam, epsilon, float(lam)).activation()
            except mf.InfeasibleError:
                continue
            rate = mf.explosion_factor(act, q)
            peak[i, j], at[i, j] = rate.max(), q[rate.argmax()]
    ds = xr.Dataset(
        {
            "max_explosion_factor": (("family", "lam"), peak, {"long_name": "max over q in (0, 2] of 1 + delta_q"}),
            "argmax_q": (("family", "lam"), at),
        },
        coords={"family": list(FAMILIES), "lam": lambdas},
    )
    return stamp(ds, "6", "quick" if quick else "full", "none (theory)", {"epsilon": epsilon})


def fig6_plot(ds):
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for fam in ds.family.values:
        ax.plot(ds.lam.values, ds.max_explosion_factor.sel(family=fam).values, "o-", ms=3, color=color(fam),
                label=fam)
    ax.set(xlabel="lambda", ylabel="max over q in (0, 2] of 1 + delta_q")
    ax.legend()
    ax.set_title(title(ds, "Fig 6: influence of lambda on 1 + delta_q"), fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# Table 5 as a figure (a rendered table) and its Dataset.
# ---------------------------------------------------------------------------


def table5_compute(quick=False, **_):
    ds = mf.table5()
    return stamp(ds, "table5", "quick" if quick else "full", "none (theory)", {})


def table5_plot(ds):
    rows = []
    for i in range(ds.sizes["row"]):
        def two(v):
            return "" if np.isnan(v) else f"{v:.2f}"

        rows.append([str(ds.label.values[i]), str(ds.section.values[i]),
                     f"{two(ds.paper_lambda.values[i])} / {two(ds['lambda'].values[i])}",
                     f"{two(ds.paper_alpha.values[i])} / {two(ds.alpha.values[i])}",
                     f"{two(ds.paper_beta.values[i])} / {two(ds.beta.values[i])}",
                     f"{ds.paper_gamma1.values[i]:.3f} / {ds.gamma1.values[i]:.4f}", str(ds.status.values[i])])
    fig, ax = plt.subplots(figsize=(11, 0.32 * len(rows) + 1.2))
    ax.axis("off")
    tab = ax.table(cellText=rows, colLabels=["activation", "setting", "lambda", "alpha", "beta", "gamma_{q=1}",
                                             "status"], loc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    tab.scale(1, 1.25)
    ax.set_title(title(ds, "Table 5: paper / ours"), fontsize=10)
    return fig
