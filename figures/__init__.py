"""figures: the paper's figures, each a ``compute`` to a Dataset and a ``plot``."""

from . import sim_figures, theory_figures
from .common import redraw, render

FIGURES = {
    "1": (theory_figures.fig1_compute, theory_figures.fig1_plot),
    "2": (theory_figures.fig2_compute, theory_figures.fig2_plot),
    "3": (theory_figures.fig3_compute, theory_figures.fig3_plot),
    "4": (sim_figures.fig4_compute, sim_figures.fig4_plot),
    "5": (sim_figures.fig5_compute, sim_figures.fig5_plot),
    "6": (theory_figures.fig6_compute, theory_figures.fig6_plot),
    "7": (sim_figures.fig7_compute, sim_figures.fig7_plot),
    "table5": (theory_figures.table5_compute, theory_figures.table5_plot),
}


def make(name: str, out: str, quick: bool = False, **options) -> dict:
    """Compute figure ``name`` and write figNAME.png/.pdf/.nc into ``out``."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; valid names: {', '.join(FIGURES)}")
    compute, plot = FIGURES[name]
    ds = compute(quick=quick, out=out, **options)
    return render(name, ds, plot, out)


def replot(path: str, out: str | None = None) -> dict:
    """Redraw a figure from its .nc file without recomputing."""
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
    return redraw(ds, FIGURES[name][1], out or os.path.dirname(os.path.abspath(path)))


__all__ = ["FIGURES", "make", "replot"]
