"""Alpha dropout's per-layer gradient factor over several seeds: the study of docs/dropout.md.

At the reference size one seed left three saturation-rule cells 3.2–4.3 standard errors above the
finite-width theory (``mf.finite_width_dropout``).  This runs those cells (dSELU at p = 0.05 and 0.1,
sSELU at p = 0.1) for several seeds: per seed, the layer-averaged factor of each draw against the
theory in standard errors of that seed's draws; and pooled over all draws.  Writes
``dropout_seeds.nc`` and ``dropout_seeds.png``.

    python examples/dropout_seeds.py            # width 256, depth 8, 8 draws, seeds 0-2: about 10 s
    python examples/dropout_seeds.py --full     # width 1024, depth 32, 24 draws, seeds 0-9 (the docs' table)
"""

import argparse
import os

import numpy as np
import xarray as xr

import meanfield as mf
import sim

CELLS = (("dselu:epsilon=0.017", "saturation", 0.05), ("dselu:epsilon=0.017", "saturation", 0.1),
         ("sselu:epsilon=0.017", "saturation", 0.1))


def per_draw_factor(spec, rule, p, width, depth, draws, seed):
    """Each draw's per-layer factor averaged over layers 1..L−1, and the theory's same average."""
    q_star = float(mf.alpha_dropout(spec, p, rule).q_star)
    ds = sim.simulate(spec, depth=depth, width=width, batch=64, seeds=draws, q0=q_star, dropout=p, dropped=rule,
                      stat_layers=[], bin_edges=None, seed=seed)
    theory = mf.finite_width_dropout(spec, depth, width, p, rule, q0=q_star)
    return ds.chi_measured.values[:, 1:].mean(axis=1), float(theory.chi_mean.values[1:].mean())


def measure(width, depth, draws, seeds):
    factor = np.full((len(CELLS), len(seeds), draws), np.nan)
    theory = np.full(len(CELLS), np.nan)
    for i, (spec, rule, p) in enumerate(CELLS):
        for j, seed in enumerate(seeds):
            factor[i, j], theory[i] = per_draw_factor(spec, rule, p, width, depth, draws, seed)
    error = factor - theory[:, None, None]
    z_seed = error.mean(axis=2) / (factor.std(axis=2, ddof=1) / np.sqrt(draws))
    pooled = error.reshape(len(CELLS), -1)
    z_pooled = pooled.mean(axis=1) / (pooled.std(axis=1, ddof=1) / np.sqrt(pooled.shape[1]))
    cell = [f"{spec}|{rule}|p={p}" for spec, rule, p in CELLS]
    return xr.Dataset(
        {"factor": (("cell", "seed", "draw"), factor, {"long_name": "per-layer gradient factor, layers 1..L-1"}),
         "theory_fw": (("cell",), theory, {"equation": "meanfield.finite_width_dropout"}),
         "z_seed": (("cell", "seed"), z_seed, {"long_name": "(mean - theory) / SE, one seed's draws"}),
         "z_pooled": (("cell",), z_pooled, {"long_name": "(mean - theory) / SE, all seeds' draws"})},
        coords={"cell": cell, "seed": list(seeds)},
        attrs={"width": width, "depth": depth, "draws": draws, "package_version": mf.__version__})


def plot(ds, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, cell in enumerate(ds.cell.values):
        ax.plot(ds.seed, ds.z_seed[i], "o-", label=f"{cell} (pooled {float(ds.z_pooled[i]):+.1f})")
    ax.axhline(0.0, color="0.5", lw=0.8)
    for k in (-3, 3):
        ax.axhline(k, color="0.7", ls=":", lw=0.8)
    ax.set_xticks(ds.seed.values)
    ax.set_xlabel("seed")
    ax.set_ylabel("(networks - finite-width theory) / SE")
    ax.set_title(f"alpha dropout, saturation rule: width {ds.width}, depth {ds.depth}, {ds.draws} draws a seed",
                 fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the reference size and ten seeds (about 10 min)")
    parser.add_argument("--out", default=".", help="folder for the .nc and .png")
    args = parser.parse_args()
    size = dict(width=1024, depth=32, draws=24, seeds=range(10)) if args.full else dict(
        width=256, depth=8, draws=8, seeds=range(3))
    ds = measure(**size)
    os.makedirs(args.out, exist_ok=True)
    ds.to_netcdf(os.path.join(args.out, "dropout_seeds.nc"))
    plot(ds, os.path.join(args.out, "dropout_seeds.png"))
    for i, cell in enumerate(ds.cell.values):
        seeds = " ".join(f"{v:+.1f}" for v in ds.z_seed.values[i])
        print(f"{cell}: per seed {seeds}; pooled {float(ds.z_pooled[i]):+.2f} SE")


if __name__ == "__main__":
    main()
