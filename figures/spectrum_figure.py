"""Figure ``spectrum``: the Jacobian's squared singular values, theory against networks.

Top rows: the density of log x (x an eigenvalue of JJᵀ) for SELU, dSELU, sSELU and lSELU at two
depths, Gaussian then orthogonal weights; lines are ``meanfield.spectrum``, points with error bars
the histograms of explicit eigenvalues of networks (``sim.jacobian_spectrum``; one standard error
from the draws).  Bottom left: the normalized variance m₂/m₁² − 1 against depth (lines) with the
networks' (points).  Bottom right: the known cases of Pennington et al. (2017): tanh with orthogonal
weights near q* → 0, where isometry is reachable (the spectrum stays near 1), and ReLU, where it is
not (an atom of ½ at 0 and a spread that grows with depth).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

import meanfield as mf

from .common import color, label, plt, settings_of, stamp, title

SPECS = ("selu", "dselu:epsilon=0.017", "sselu:epsilon=0.017", "lselu:epsilon=0.017")
WEIGHTS = ("gaussian", "orthogonal")
#: the known cases: (spec, weights, q0, sigma_w2, sigma_b2)
KNOWN = (("tanh", "orthogonal", 1e-3, 1.0, 1e-6), ("relu", "orthogonal", 1.0, 2.0, 0.0))
POINTS = 400
BINS = 40


def compute(quick=False, depths=None, width=None, draws=None, seed=0, quiet=False, **_):
    """Densities, histograms and normalized variances (module docstring)."""
    from sim.spectrum import jacobian_spectrum

    depths = tuple(depths or ((2, 8) if quick else (4, 16)))
    width = int(width or (128 if quick else 512))
    draws = int(draws or (2 if quick else 4))
    curve_depths = np.arange(1, (16 if quick else 64) + 1)
    shape = (len(SPECS), len(WEIGHTS), len(depths))
    log_x = np.full(shape + (POINTS,), np.nan)
    dens = np.full(shape + (POINTS,), np.nan)
    edges = np.full(shape + (BINS + 1,), np.nan)
    hist = np.full(shape + (BINS,), np.nan)
    hist_sem = np.full(shape + (BINS,), np.nan)
    nvar_mc = np.full(shape, np.nan)
    nvar_mc_sem = np.full(shape, np.nan)
    nvar_curve = np.full((len(SPECS), len(WEIGHTS), len(curve_depths)), np.nan)
    for i, spec in enumerate(SPECS):
        for j, weights in enumerate(WEIGHTS):
            nvar_curve[i, j] = mf.jacobian_moments(spec, list(curve_depths), weights=weights).nvar.values
            theory = mf.spectrum(spec, list(depths), weights=weights, points=POINTS)
            mc = jacobian_spectrum(spec, list(depths), width=width, weights=weights, draws=draws, seed=seed,
                                   theory=False)
            for k in range(len(depths)):
                log_x[i, j, k], dens[i, j, k] = theory.log_x.values[k], theory.density_log.values[k]
                logs = np.log(np.maximum(mc.eigenvalues.values[:, k], 1e-300))
                lo = max(float(np.quantile(logs, 0.005)), float(np.nanmin(log_x[i, j, k])))
                e = np.linspace(lo, float(theory.log_upper_edge.values[k]) + 0.05, BINS + 1)
                per_draw = np.stack([np.histogram(row, bins=e)[0] / (row.size * np.diff(e)) for row in logs])
                edges[i, j, k], hist[i, j, k] = e, per_draw.mean(axis=0)
                hist_sem[i, j, k] = per_draw.std(axis=0, ddof=1) / np.sqrt(draws) if draws > 1 else np.nan
                nvar_mc[i, j, k], nvar_mc_sem[i, j, k] = mc.nvar.values[k], mc.nvar_sem.values[k]
            if not quiet:
                print(f"spectrum: {spec} {weights}: nvar at depth {depths[-1]} theory {nvar_curve[i, j, depths[-1] - 1]:.4g},"
                      f" networks {nvar_mc[i, j, -1]:.4g} ± {nvar_mc_sem[i, j, -1]:.2g}", flush=True)
    known_depth = depths[-1]
    known_x = np.full((len(KNOWN), POINTS), np.nan)
    known_dens = np.full((len(KNOWN), POINTS), np.nan)
    known_atom = np.zeros(len(KNOWN))
    for n, (spec, weights, q0, w2, b2) in enumerate(KNOWN):
        ds = mf.spectrum(spec, known_depth, q0=q0, sigma_w2=w2, sigma_b2=b2, weights=weights, points=POINTS)
        known_x[n], known_dens[n] = ds.log_x.values[0], ds.density_log.values[0]
        known_atom[n] = float(ds.atom_zero[0])
    dims = ("activation", "weights", "depth")
    out = xr.Dataset(
        {
            "log_x": (dims + ("point",), log_x), "density_log": (dims + ("point",), dens,
                                                                {"long_name": "density of log x, theory"}),
            "bin_edges": (dims + ("edge",), edges), "histogram": (dims + ("bin",), hist,
                                                                  {"long_name": "density of log x, networks"}),
            "histogram_sem": (dims + ("bin",), hist_sem),
            "nvar_mc": (dims, nvar_mc), "nvar_mc_sem": (dims, nvar_mc_sem),
            "nvar_theory": (("activation", "weights", "curve_depth"), nvar_curve),
            "known_log_x": (("case", "point"), known_x), "known_density_log": (("case", "point"), known_dens),
            "known_atom_zero": (("case",), known_atom),
        },
        coords={"activation": list(SPECS), "weights": list(WEIGHTS), "depth": list(depths),
                "curve_depth": curve_depths, "case": [f"{s} ({w}, q0={q:g}, sigma_w2={v:g})" for s, w, q, v, _ in KNOWN]},
    )
    return stamp(out, "spectrum", "quick" if quick else "full", "random networks (no data set)",
                 {"depths": list(depths), "width": width, "draws": draws, "seed": seed, "known_depth": known_depth})


def plot(ds):
    fig, axes = plt.subplots(3, 2, figsize=(11, 11))
    depths = ds.depth.values
    for r, weights in enumerate(WEIGHTS):
        for c, depth in enumerate(depths):
            ax = axes[r, c]
            lows, highs, tops = [], [], []
            for spec in ds.activation.values:
                sub = ds.sel(activation=spec, weights=weights, depth=depth)
                col = color(str(spec))
                ax.plot(sub.log_x, sub.density_log, color=col, label=label(str(spec)))
                e = sub.bin_edges.values
                ax.errorbar(0.5 * (e[1:] + e[:-1]), sub.histogram, yerr=sub.histogram_sem, fmt="o", ms=2.5,
                            color=col, capsize=1.5, alpha=0.8)
                d = np.nan_to_num(sub.density_log.values)
                seen = sub.log_x.values[d >= 1e-3 * d.max()]
                lows.append(seen.min())
                highs.append(seen.max())
                tops.append(np.nanmax(sub.histogram.values + np.nan_to_num(sub.histogram_sem.values)))
            # the bulk: where some density exceeds 1e-3 of its peak; the y-range of the networks'
            # histograms (an inverse-square-root spike where atoms meet, L = 2, orthogonal, is clipped)
            ax.set_xlim(min(lows) - 0.5, max(highs) + 0.3)
            ax.set_ylim(0.0, 1.3 * max(tops))
            ax.set_xlabel("log x  (x: eigenvalue of J J^T)")
            ax.set_ylabel("density of log x")
            ax.set_title(f"{weights} weights, depth {depth}: lines theory, points networks", fontsize=9)
            ax.legend(fontsize=7)
    ax = axes[2, 0]
    for spec in ds.activation.values:
        col = color(str(spec))
        for weights, style in zip(WEIGHTS, ("--", "-")):
            sub = ds.sel(activation=spec, weights=weights)
            ax.plot(ds.curve_depth, sub.nvar_theory, style, color=col,
                    label=f"{label(str(spec))}, {weights}" if weights == "orthogonal" else None)
            ax.errorbar(depths, sub.nvar_mc, yerr=sub.nvar_mc_sem, fmt="o", color=col, ms=3, capsize=2)
    ax.set_yscale("log")
    ax.set_xlabel("depth L")
    ax.set_ylabel("m2/m1^2 - 1 of the squared singular values")
    ax.set_title("normalized variance: solid orthogonal, dashed Gaussian; points networks", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[2, 1]
    for n, case in enumerate(ds.case.values):
        atom = float(ds.known_atom_zero[n])
        ax.plot(ds.known_log_x[n], ds.known_density_log[n],
                label=str(case) + (f", atom {atom:g} at 0" if atom else ""))
    ax.axvline(0.0, color="0.6", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylim(1e-4, None)
    ax.set_xlim(-12.0, 3.0)
    ax.set_xlabel("log x")
    ax.set_ylabel("density of log x")
    ax.set_title(f"known cases at depth {settings_of(ds)['known_depth']}: tanh near q* = 0 (isometry), ReLU "
                 "(none)", fontsize=9)
    ax.legend(fontsize=7)
    settings = settings_of(ds)
    fig.suptitle(title(ds, f"Jacobian spectrum: networks of width {settings['width']}, {settings['draws']} draws"),
                 fontsize=10)
    fig.tight_layout()
    return fig
