"""Figures 5 and 4 of the paper from Python, and Figure 5 redrawn from its saved Dataset.

``figures.make`` computes a figure's Dataset and writes figNAME.png, .pdf and .nc;
``figures.replot`` draws it again from the .nc without recomputing.

    python examples/paper_figures.py            # quick Fig 5, a small Fig 4 (8 layers, 1 epoch): about 40 s
    python examples/paper_figures.py --full     # Fig 5 at the paper's size, Fig 4 at its CPU size (~20 min)

Fig 4 at the paper's settings trains on CIFAR-10: ``meanfield figure 4 --mode paper --data-root DIR``
(docs/figures.md).
"""

import argparse

import xarray as xr

import figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true",
                        help="Fig 5 at the paper's size (64-layer nets), Fig 4 at its CPU size (56-layer CNN, digits)")
    parser.add_argument("--out", default="paper_figures", help="output folder (default: paper_figures)")
    args = parser.parse_args()

    fig5 = figures.make("5", args.out, quick=not args.full, quiet=True)
    ds = xr.load_dataset(fig5["nc"], engine="netcdf4")
    print("Fig 5: mean of the activations per layer (lambda < 1 piles them up below 0)")
    print(ds.x_mean.to_pandas().round(3).to_string())
    redrawn = figures.replot(fig5["nc"])  # no recomputation
    print(f"redrew {redrawn['png']} from {fig5['nc']}")

    small = {} if args.full else {"depth": 8, "epochs": 1}
    fig4 = figures.make("4", args.out, quick=not args.full, mode="cpu" if args.full else None, quiet=True, **small)
    ds = xr.load_dataset(fig4["nc"], engine="netcdf4")
    print("Fig 4: final test accuracy per activation, and E[h^2] at iteration 0 against the theory (layer 4)")
    print(ds.test_accuracy.isel(epoch=-1).to_pandas().round(3).to_string())
    print((ds.q.isel(iteration=0, layer=3) / ds.q_theory.isel(layer=3)).to_pandas().round(3).to_string())
    for path in (*fig5.values(), *fig4.values()):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
