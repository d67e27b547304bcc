"""figures: the paper's figures, each a ``compute`` to a Dataset and a ``plot``."""

import importlib

#: figure name -> (module, compute function, plot function); modules (and matplotlib) load on use
FIGURES = {
    "1": ("theory_figures", "fig1_compute", "fig1_plot"),
    "2": ("theory_figures", "fig2_compute", "fig2_plot"),
    "3": ("theory_figures", "fig3_compute", "fig3_plot"),
    "4": ("sim_figures", "fig4_compute", "fig4_plot"),
    "5": ("sim_figures", "fig5_compute", "fig5_plot"),
    "6": ("theory_figures", "fig6_compute", "fig6_plot"),
    "7": ("sim_figures", "fig7_compute", "fig7_plot"),
    "table5": ("theory_figures", "table5_compute", "table5_plot"),
    "finite-width": ("finite_width_figure", "compute", "plot"),
    "spectrum": ("spectrum_figure", "compute", "plot"),
    "dropout": ("dropout_figure", "compute", "plot"),
}


def functions(name: str):
    """(compute, plot) of figure ``name``."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; valid names: {', '.join(FIGURES)}")
    module, compute, plot = FIGURES[name]
    mod = importlib.import_module(f".{module}", __name__)
    return getattr(mod, compute), getattr(mod, plot)


def make(name: str, out: str, quick: bool = False, **options) -> dict:
    """Compute figure ``name`` and write figNAME.png/.pdf/.nc into ``out``."""
    compute, plot = functions(name)
    ds = compute(quick=quick, out=out, **options)
    from .common import render

    return render(name, ds, plot, out)


def replot(path: str, out: str | None = None, expected: str | None = None) -> dict:
    """Redraw a figure from its .nc file without recomputing; ``expected`` (a figure name) must be the
    figure that wrote the file."""
    import os

    import xarray as xr

    if not os.path.isfile(path):
        raise ValueError(f"--from: no such file {path!r}")
    try:
        ds = xr.load_dataset(path, engine="netcdf4")
    except Exception as exc:  # a corrupt or foreign file
        raise ValueError(f"--from: {path!r} is not a readable netCDF file ({exc})") from None
    name = ds.attrs.get("figure")
    if name not in FIGURES:
        raise ValueError(f"--from: {path!r} was not written by 'meanfield figure' (figure attribute {name!r})")
    if expected is not None and name != expected:
        raise ValueError(f"--from: {path!r} holds figure {name}, not figure {expected}: "
                         f"use 'meanfield figure {name} --from {path}'")
    from .common import redraw

    return redraw(ds, functions(name)[1], out or os.path.dirname(os.path.abspath(path)))


__all__ = ["FIGURES", "functions", "make", "replot"]
