"""How well the spectrum's density integrates: its own checks over activations, weights, q0 and depth.

Every ``meanfield.spectrum`` Dataset says how far its density is from integrating to 1 − atoms and
from reproducing the exact m₁ and m₂ (``density_mass_error``, ``density_m1_error``,
``density_m2_error``), and warns where the worst exceeds 1e-6.  This scan records the worst of
the three per case and lists the cases above 1e-6 (docs/spectrum.md, "Limits, measured").
Writes ``spectrum_accuracy.nc`` and ``spectrum_accuracy.png``.

    python examples/spectrum_accuracy.py           # the SELU family and tanh, q0 1e-3 and 1, depths 1, 2, 16: ~30 s
    python examples/spectrum_accuracy.py --full    # + ELU, ReLU; q0 1e-3 ... 10; depths 1, 2, 4, 16, 64: ~3 min
"""

import argparse
import os
import warnings

import numpy as np
import xarray as xr

import meanfield as mf

FAMILY = ("selu", "dselu:epsilon=0.017", "sselu:epsilon=0.017", "lselu:epsilon=0.017", "tanh")
CHECKS = ("density_mass_error", "density_m1_error", "density_m2_error")


def scan(specs, q0s, depths, points=1000):
    """The worst of the three checks, over (activation, weights, q0, depth)."""
    worst = np.full((len(specs), 2, len(q0s), len(depths)), np.nan)
    for i, spec in enumerate(specs):
        for j, weights in enumerate(("gaussian", "orthogonal")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", mf.SpectrumAccuracyWarning)  # recorded here instead
                ds = mf.spectrum(spec, list(depths), q0=list(q0s), weights=weights, points=points)
            worst[i, j] = np.max(np.abs(np.stack([ds[name].values for name in CHECKS])), axis=0)
    return xr.Dataset({"worst_check": (("activation", "weights", "q0", "depth"), worst,
                                       {"long_name": "largest |density_*_error| of the case"})},
                      coords={"activation": list(specs), "weights": ["gaussian", "orthogonal"], "q0": list(q0s),
                              "depth": list(depths)},
                      attrs={"points": points, "meanfield_version": mf.__version__,
                             "equation": "docs/spectrum.md (the density's checks)"})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="ELU and ReLU too, five q0, five depths")
    parser.add_argument("--out", default=".", help="folder for the .nc and .png (default: here)")
    args = parser.parse_args()
    if args.full:
        ds = scan(FAMILY + ("elu", "relu"), (1e-3, 0.01, 0.1, 1.0, 10.0), (1, 2, 4, 16, 64))
    else:
        ds = scan(FAMILY, (1e-3, 1.0), (1, 2, 16))
    above = ds.worst_check.where(ds.worst_check > 1e-6).to_series().dropna()
    print(f"{ds.worst_check.size} cases at {ds.attrs['points']} points; worst check "
          f"{float(ds.worst_check.max()):.2g}; {above.size} above 1e-6:")
    for (spec, weights, q0, depth), value in above.items():
        print(f"  {spec:22s} {weights:10s} q0={q0:<6g} depth={depth:<3d} {value:.2g}")
    os.makedirs(args.out, exist_ok=True)
    ds.to_netcdf(os.path.join(args.out, "spectrum_accuracy.nc"), engine="netcdf4")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, weights in zip(axes, ds.weights.values):
        table = np.log10(np.maximum(ds.worst_check.sel(weights=weights).values, 1e-16))
        flat = table.reshape(len(ds.activation), -1)
        image = ax.imshow(flat, vmin=-16, vmax=-2, cmap="viridis", aspect="auto")
        ax.set_yticks(range(len(ds.activation)), [str(a).split(":")[0] for a in ds.activation.values])
        ax.set_xticks(range(flat.shape[1]), [f"{q:g}/{d}" for q in ds.q0.values for d in ds.depth.values],
                      rotation=90, fontsize=6)
        ax.set_xlabel("q0 / depth")
        ax.set_title(f"{weights} weights", fontsize=9)
    fig.colorbar(image, ax=axes, label="log10 worst check (held to -6)")
    fig.savefig(os.path.join(args.out, "spectrum_accuracy.png"), dpi=120, bbox_inches="tight")
    print(f"wrote {os.path.join(args.out, 'spectrum_accuracy.nc')} and .png")


if __name__ == "__main__":
    main()
