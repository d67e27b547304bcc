"""A depth x width sweep of full networks on the embedded dask cluster, read back and plotted.

The sweep runs ``sim.simulate`` at every grid point on a dask LocalCluster (one worker per core),
writes one file per point and ``sweep.nc``; rerunning computes only what is missing.  The plot
sets the error of q_L against the infinite-width theory (Prop A.1) beside the error against the
finite-width theory, against depth, one line per width.

    python examples/sweep_depth_width.py            # 3 x 3 points, 8 draws each: about 40 s on 2 cores
    python examples/sweep_depth_width.py --full     # depth 16..128 x width 64..1024, 16 draws
"""

import argparse
import os

import numpy as np
import xarray as xr


def sweep_file(full):
    depths, widths = ([16, 32, 64, 128], [64, 256, 1024]) if full else ([4, 8, 16], [32, 64, 128])
    return f"""
[sweep]
kind = "simulate"
[grid]
depth = {depths}
width = {widths}
[simulate]
activation = "sselu:epsilon=0.017"
batch = {256 if full else 32}
seeds = {16 if full else 8}
q0 = 1.0
dtype = "float64"
stat_layers = []
"""


def plot(ds, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    depths = ds.depth.values
    for width in ds.width.values:
        sub = ds.sel(width=width)
        last = [sub.sel(depth=d).q_rel_error.sel(layer=int(d)).item() for d in depths]
        last_fw = [sub.sel(depth=d).q_rel_error_fw.sel(layer=int(d)).item() for d in depths]
        sem = [sub.sel(depth=d).q_rel_error_sem.sel(layer=int(d)).item() for d in depths]
        line, = ax.plot(depths, last, "--o", ms=3, label=f"N={width}: vs Prop A.1")
        ax.errorbar(depths, last_fw, yerr=sem, fmt="-s", ms=3, color=line.get_color(), label=f"N={width}: vs O(1/N)")
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("depth L")
    ax.set_ylabel("q_L measured / theory - 1")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the paper-size grid")
    parser.add_argument("--out", default="sweep_depth_width", help="output folder (default: sweep_depth_width)")
    args = parser.parse_args()

    import sim.sweep

    sim.sweep.sweep(sweep_file(args.full), args.out, quiet=True)  # embedded LocalCluster, one worker per core
    ds = xr.open_dataset(os.path.join(args.out, "sweep.nc"), engine="netcdf4")  # read back what was written
    print(f"{ds.attrs['points']} points, {ds.attrs['computed_this_run']} computed this run")
    print(f"{'depth':>6}{'width':>7}{'q_L vs Prop A.1':>18}{'q_L vs O(1/N)':>20}")
    for d in ds.depth.values:
        for n in ds.width.values:
            p = ds.sel(depth=d, width=n)
            print(f"{int(d):>6}{int(n):>7}{p.q_rel_error.sel(layer=int(d)).item():>+17.2%}"
                  f"{p.q_rel_error_fw.sel(layer=int(d)).item():>+12.2%} ± {p.q_rel_error_sem.sel(layer=int(d)).item():.2%}")
    plot(ds, os.path.join(args.out, "sweep_depth_width.png"))
    print(f"wrote {os.path.join(args.out, 'sweep.nc')} and sweep_depth_width.png")


if __name__ == "__main__":  # dask's LocalCluster starts its workers by spawning: the guard is required
    main()
