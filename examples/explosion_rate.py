"""Validating Prop 3.1: the gradient explodes at the rate 1 + δ_q per layer, measured against theory over ε.

At σ_w² = 1, σ_b² = 0 and q_0 = 1 an sSELU solved by (eq 11) keeps q_l = 1, so Prop 3.1 (eq 27)
says the squared gradient norm grows by 1 + δ_1 = φ(1) = 1 + ε per layer towards the input.
The exact reduced chains (``sim.reduced_chain``) measure the rate (g_0/g_L)^(1/L) in a network of
width N; the table sets it beside 1 + ε (infinite width) and beside the finite-width theory.
Writes ``explosion_rate.nc`` and ``explosion_rate.png``.

    python examples/explosion_rate.py            # width 256, depth 32, 3,000 chains: about 15 s
    python examples/explosion_rate.py --full     # width 1024, depth 64, 20,000 chains
"""

import argparse
import os
import warnings

import numpy as np
import xarray as xr

import meanfield as mf
import sim


def measure(epsilons, width, depth, chains):
    rows = {k: [] for k in ("theory", "theory_fw", "measured", "sem")}
    for eps in epsilons:
        act = mf.activation(f"sselu:epsilon={eps:g}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mf.FiniteWidthWarning)
            ds = sim.reduced_chain(act, depth, width=width, chains=chains, q0=1.0, seed=2)
        g0, sem = float(ds.grad_measured_mean[0]), float(ds.grad_measured_sem[0])
        rows["measured"].append(g0 ** (1 / depth))
        rows["sem"].append(g0 ** (1 / depth) * sem / g0 / depth)  # delta method for the L-th root
        rows["theory"].append(float(mf.explosion_factor(act, 1.0)))  # 1 + δ_1 (eq 2)
        rows["theory_fw"].append(float(ds.grad_theory_fw[0]) ** (1 / depth))
    return xr.Dataset({k: ("epsilon", np.array(v)) for k, v in rows.items()}, coords={"epsilon": list(epsilons)},
                      attrs={"width": width, "depth": depth, "chains": chains, "equation": "Prop 3.1, eq 27",
                             "meanfield_version": mf.__version__})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="width 1024, depth 64, 20,000 chains")
    parser.add_argument("--out", default=".", help="folder for the .nc and .png (default: here)")
    args = parser.parse_args()
    width, depth, chains = (1024, 64, 20000) if args.full else (256, 32, 3000)
    ds = measure((0.01, 0.017, 0.03, 0.05, 0.07), width, depth, chains)
    print(f"per-layer growth of E||dL/dh||^2 towards the input, width {width}, depth {depth}, {chains} chains")
    print(f"{'epsilon':>8}{'1 + delta_1':>13}{'finite width':>14}{'measured':>20}")
    for i, eps in enumerate(ds.epsilon.values):
        r = ds.isel(epsilon=i)
        print(f"{eps:>8g}{float(r.theory):>13.5f}{float(r.theory_fw):>14.5f}{float(r.measured):>12.5f} ± "
              f"{float(r.sem):.5f}")
    os.makedirs(args.out, exist_ok=True)
    ds.to_netcdf(os.path.join(args.out, "explosion_rate.nc"), engine="netcdf4")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(ds.epsilon, ds.theory, "k--", label="1 + delta_1 = 1 + epsilon (Prop 3.1)")
    ax.plot(ds.epsilon, ds.theory_fw, "b-", label=f"finite width N = {width}")
    ax.errorbar(ds.epsilon, ds.measured, yerr=ds.sem, fmt="o", color="C3", label="reduced chains")
    ax.set_xlabel("epsilon")
    ax.set_ylabel("per-layer gradient growth")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "explosion_rate.png"), dpi=120)
    print(f"wrote {os.path.join(args.out, 'explosion_rate.nc')} and .png")


if __name__ == "__main__":
    main()
