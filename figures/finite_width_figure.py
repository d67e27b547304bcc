"""Figure ``finite-width``: theory against Monte-Carlo as the width grows, infinite-width and O(1/N).

The exact reduced chain (``sim.reduced_chain``) at depth 64 and widths 64…1024 is set beside
Props A.1/A.2 (infinite width) and :func:`meanfield.finite_width` (O(1/N)): the relative error of
the gradient norm at the input layer (where the effect is largest) and of q averaged over layers
L/4..L (where it has settled), with error bars of one standard error and the noise floor (one
standard error) shaded.  The infinite-width error falls like 1/N, the corrected one like 1/N² (a
guide line anchored at the narrowest width) until it meets the noise floor.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

import meanfield as mf

from .common import color, label, plt, settings_of, stamp, title

SPECS = ("selu", "sselu:epsilon=0.017", "lselu:epsilon=0.017", "dselu:epsilon=0.017")
WIDTHS = (64, 128, 256, 512, 1024)


def compute(quick=False, depth=64, q0=1.0, chains=None, seed=0, quiet=False, **_):
    """Relative errors of both theories against reduced chains, per activation and width."""
    import sim

    chains = (8000 if quick else 40000) if chains is None else int(chains)
    shape = (len(SPECS), len(WIDTHS))
    names = ("q_error", "q_error_fw", "q_sem", "grad_error", "grad_error_fw", "grad_sem")
    data = {name: np.full(shape, np.nan) for name in names}
    valid = np.zeros(shape, dtype=bool)
    for i, spec in enumerate(SPECS):
        for j, n in enumerate(WIDTHS):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", mf.FiniteWidthWarning)
                ds = sim.reduced_chain(spec, depth, width=n, chains=chains, q0=q0, seed=seed)
            settled = slice(depth // 4, depth + 1)
            per_chain = (ds.q_measured.values[:, settled] / ds.q_theory_fw.values[settled]).mean(axis=1)
            ratio_inf = (ds.q_theory_fw.values[settled] / ds.q_theory.values[settled]).mean()
            data["q_error_fw"][i, j] = per_chain.mean() - 1.0
            data["q_sem"][i, j] = per_chain.std(ddof=1) / np.sqrt(chains)
            data["q_error"][i, j] = float((ds.q_measured_mean.values[settled] / ds.q_theory.values[settled]).mean()
                                          - 1.0) if np.isfinite(ratio_inf) else np.nan
            data["grad_error"][i, j] = float(ds.grad_rel_error[0])
            data["grad_error_fw"][i, j] = float(ds.grad_rel_error_fw[0])
            data["grad_sem"][i, j] = float(ds.grad_rel_error_sem[0])
            valid[i, j] = bool(ds.fw_valid)
            if not quiet:
                print(f"finite-width: {spec} N={n}: gradient error {data['grad_error'][i, j]:+.2%} (N=inf), "
                      f"{data['grad_error_fw'][i, j]:+.2%} ± {data['grad_sem'][i, j]:.2%} (O(1/N))", flush=True)
    dims = ("activation", "width")
    out = xr.Dataset({name: (dims, values) for name, values in data.items()}, coords={
        "activation": list(SPECS), "width": list(WIDTHS)})
    out["fw_valid"] = (dims, valid, {"long_name": "the O(1/N) theory is inside its validity range"})
    out["q_error"].attrs["long_name"] = "q_l measured / Prop A.1 - 1, averaged over layers L/4..L"
    out["q_error_fw"].attrs["long_name"] = "q_l measured / finite_width - 1, averaged over layers L/4..L"
    out["grad_error"].attrs["long_name"] = "gradient at layer 0 measured / Prop A.2 - 1"
    out["grad_error_fw"].attrs["long_name"] = "gradient at layer 0 measured / finite_width - 1"
    return stamp(out, "finite-width", "quick" if quick else "full", "reduced chains",
                 {"depth": depth, "q0": q0, "chains": chains, "seed": seed})


def plot(ds):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    n = ds.width.values.astype(float)
    for ax, v, where in ((axes[0], "grad", "gradient norm at layer 0"), (axes[1], "q", "q over layers L/4..L")):
        anchor = []
        floor = ds[f"{v}_sem"].max("activation").values
        ax.fill_between(n, 1e-6, floor, color="0.85", label="noise floor (1 SE)")
        for spec in ds.activation.values:
            sub = ds.sel(activation=spec)
            c = color(str(spec))
            ax.plot(n, np.abs(sub[f"{v}_error"]), "--", color=c, marker="o", ms=3, alpha=0.7)
            fw = np.abs(sub[f"{v}_error_fw"].values)
            ok = sub.fw_valid.values
            ax.errorbar(n[ok], fw[ok], yerr=sub[f"{v}_sem"].values[ok], color=c, marker="s", ms=4, capsize=2,
                        label=label(str(spec)))
            if (~ok).any():
                ax.plot(n[~ok], fw[~ok], "x", color=c, ms=6)
            anchor.append(fw[0])
        ref = np.nanmedian(anchor)
        ax.plot(n, ref * (n[0] / n) ** 2, ":", color="k", label="1/N² guide")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_ylim(bottom=max(1e-5, 0.3 * float(np.nanmin(floor))))
        ax.set_xlabel("width N")
        ax.set_ylabel(f"|relative error| of the {where}")
        ax.set_title(f"{where}: dashed N = inf, solid O(1/N)", fontsize=9)
        ax.legend(fontsize=7)
    settings = settings_of(ds)
    fig.suptitle(title(ds, f"theory against exact reduced chains: depth {settings['depth']}, q0 = {settings['q0']:g}, "
                           f"{settings['chains']} chains; x: outside the validity range"), fontsize=10)
    fig.tight_layout()
    return fig
