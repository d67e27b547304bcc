"""What every figure shares: saving PNG, PDF and the Dataset, and redrawing from it.

A figure is a pair ``compute(**settings) -> xr.Dataset`` and
``plot(ds) -> matplotlib.figure.Figure``; :func:`render` writes
``figNAME.png``, ``figNAME.pdf`` and ``figNAME.nc`` (settings, mode and data
set in its attributes), and :func:`redraw` plots an existing ``.nc`` again
without recomputing.
"""

from __future__ import annotations

import json
import os

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt  # noqa: E402
import xarray as xr  # noqa: E402

from meanfield.results import to_json, write_netcdf  # noqa: E402
from meanfield import __version__  # noqa: E402

from meanfield.activations.registry import color, label  # noqa: E402, F401 - the activation table's labels and colours


def stamp(ds: xr.Dataset, name: str, mode: str, data: str, settings: dict) -> xr.Dataset:
    ds.attrs.update(figure=name, mode=mode, dataset=data, settings_json=to_json(settings), meanfield_version=__version__)
    return ds


def title(ds: xr.Dataset, text: str) -> str:
    return f"{text} [{ds.attrs.get('mode', '?')}, data: {ds.attrs.get('dataset', '?')}]"


def render(name: str, ds: xr.Dataset, plot, out: str) -> dict:
    """Write figNAME.png/.pdf/.nc into ``out``; returns their paths."""
    os.makedirs(out, exist_ok=True)
    paths = {ext: os.path.join(out, f"fig{name}.{ext}") for ext in ("png", "pdf", "nc")}
    write_netcdf(ds, paths["nc"])
    fig = plot(ds)
    fig.savefig(paths["png"], dpi=150, bbox_inches="tight")
    fig.savefig(paths["pdf"], bbox_inches="tight")
    plt.close(fig)
    return paths


def redraw(ds: xr.Dataset, plot, out: str) -> dict:
    """Plot a figure's Dataset again (read from its figNAME.nc; no recomputation)."""
    name = ds.attrs["figure"]
    os.makedirs(out, exist_ok=True)
    paths = {ext: os.path.join(out, f"fig{name}.{ext}") for ext in ("png", "pdf")}
    fig = plot(ds)
    fig.savefig(paths["png"], dpi=150, bbox_inches="tight")
    fig.savefig(paths["pdf"], bbox_inches="tight")
    plt.close(fig)
    return paths


def settings_of(ds: xr.Dataset) -> dict:
    return json.loads(ds.attrs.get("settings_json", "{}"))
