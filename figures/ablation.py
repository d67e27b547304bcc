"""Which setting makes small Fig 4 and Fig 7 runs differ from the paper: one factor at a time.

    python -m figures.ablation [--out DIR] [--data-root CIFAR]

Each row changes one thing of the quick run (data, length, depth, learning rate, clipping) or is
the CPU mode; the table gives, per activation, the summaries the paper's claims are about
(docs/figures.md §3).  With --data-root a CIFAR-10 row is added.  Every run's Dataset is written
to DIR (default ``ablation_out``) as ``<row>.nc``; a row whose file exists is read, not rerun.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
import xarray as xr

from meanfield.results import write_netcdf

#: Fig 4 rows: name -> fig4_compute settings on top of the quick mode
FIG4_ROWS = {
    "quick (digits 16x16, 26 layers, 92 it)": dict(quick=True),
    "data: CIFAR-shaped synthetic (5,000 images, 79 it)": dict(quick=True, data="cifar-shaped", epochs=1),
    "length: 4x iterations": dict(quick=True, epochs=16),
    "depth: 56 layers": dict(quick=True, depth=56),
    "lr 0.005": dict(quick=True, lr=0.005),
    "lr 0.05": dict(quick=True, lr=0.05),
    "no clipping": dict(quick=True, clip=1e6),
    "cpu mode (56 layers, 480 it)": dict(mode="cpu"),
}

#: Fig 7 rows
FIG7_ROWS = {
    "quick (20 layers, 5 epochs)": dict(quick=True),
    "cpu mode (32 layers, 10 epochs)": dict(mode="cpu"),
    "lr 0.015": dict(quick=True, lr=0.015),
    "length: 4x epochs": dict(quick=True, epochs=20),
}


def fig4_summary(ds):
    """Per activation: the median over iterations and conv layers of |log10 E[h²]| (distance of the
    second moment from 1); the spread of the weight-gradient norm across layers (std over layers of
    log10 of its median over iterations: 'flatness') and across iterations (median over layers of
    log10(p90/p10): 'concentration'), NaN and inf where training diverged; and the first iteration
    whose loss is not finite (−1: none)."""
    conv = slice(0, -1)  # the classifier after pooling is not a conv layer
    q = ds.q.isel(layer=conv).values
    g = ds.grad_norm.isel(layer=conv).values
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices of a diverged run
        return {
            "q_dist": np.nanmedian(np.abs(np.log10(q)), axis=(1, 2)),
            "grad_flat": np.nanstd(np.log10(np.nanmedian(g, axis=1)), axis=1),
            "grad_conc": np.nanmedian(np.log10(np.nanpercentile(g, 90, axis=1) / np.nanpercentile(g, 10, axis=1)),
                                      axis=1),
            "diverged_at": [int(np.argmax(~ok)) if not ok.all() else -1 for ok in np.isfinite(ds.loss.values)],
        }


def fig7_summary(ds):
    """Per k: the mean over conv layers of μ_w N_{l−1} after the last epoch, and of its change from
    initialization."""
    conv = slice(0, -1)
    last = ds.mean_gain.isel(epoch=-1, layer=conv).values
    start = ds.mean_gain.isel(epoch=0, layer=conv).values
    return {"gain": last.mean(axis=1), "gain_change": (last - start).mean(axis=1)}


def _run(figure, name, settings, out, extra):
    from . import sim_figures

    path = os.path.join(out, f"fig{figure}_" + "".join(c if c.isalnum() else "_" for c in name) + ".nc")
    if os.path.exists(path):
        return xr.load_dataset(path), float("nan")
    t = time.perf_counter()
    compute = sim_figures.fig4_compute if figure == "4" else sim_figures.fig7_compute
    ds = compute(quiet=True, **settings, **extra)
    write_netcdf(ds, path)
    return ds, time.perf_counter() - t


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m figures.ablation", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="ablation_out")
    parser.add_argument("--data-root", default=None, help="CIFAR-10 python version: adds a CIFAR-10 row")
    parser.add_argument("--only", choices=("4", "7"), default=None)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    fig4, fig7 = dict(FIG4_ROWS), dict(FIG7_ROWS)
    if args.data_root:
        fig4["data: CIFAR-10 (16x16)"] = dict(quick=True, data="cifar10", data_root=args.data_root)
        fig7["data: CIFAR-10 (16x16)"] = dict(quick=True, data="cifar10", data_root=args.data_root)
    if args.only != "7":
        print("Fig 4: per activation SELU / dSELU / sSELU / lSELU\n")
        print("| row | median abs log10 E[h^2] | grad flatness (std over layers of log10) | "
              "grad concentration (log10 p90/p10) | loss not finite from iteration | time |")
        print("|---|---|---|---|---|---|")
        for name, settings in fig4.items():
            ds, t = _run("4", name, settings, args.out, {})
            s = fig4_summary(ds)
            cells = [" / ".join(f"{v:.2f}" for v in s[key]) for key in ("q_dist", "grad_flat", "grad_conc")]
            diverged = " / ".join("-" if i < 0 else str(i) for i in s["diverged_at"])
            took = "" if np.isnan(t) else f"{t:.0f} s"
            print(f"| {name} | {cells[0]} | {cells[1]} | {cells[2]} | {diverged} | {took} |", flush=True)
    if args.only != "4":
        print("\nFig 7: dSELU, per k = 1 / 2 / 4\n")
        print("| row | mean mu_w N_{l-1} after the last epoch | its change from init | time |")
        print("|---|---|---|---|")
        for name, settings in fig7.items():
            ds, t = _run("7", name, settings, args.out, {})
            s = fig7_summary(ds)
            took = "" if np.isnan(t) else f"{t:.0f} s"
            print(f"| {name} | {' / '.join(f'{v:+.3f}' for v in s['gain'])} | "
                  f"{' / '.join(f'{v:+.3f}' for v in s['gain_change'])} | {took} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
