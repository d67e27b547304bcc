"""Inputs of the theory's functions: configuration arrays broadcast with each other and with an
activation's array parameters, as named, coordinated xarray dimensions."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..activations.objects import ExpLinear
from .functionals import check_array

_PARAM_NAMES = {"lam": "lambda", "alpha": "alpha", "rate": "rate", "slope": "slope"}


def _as_dataarray(name, value, *, positive=False, allow_zero=False):
    if isinstance(value, xr.DataArray):
        check_array(name, value.values, positive=positive, allow_zero=allow_zero)
        return value.astype(float).rename(name)
    arr = check_array(name, value, positive=positive, allow_zero=allow_zero)
    if arr.ndim == 0:
        dims = ()
    elif arr.ndim == 1:
        dims = ("config",)
    else:
        dims = tuple(f"config_{i}" for i in range(arr.ndim))
    return xr.DataArray(arr, dims=dims, name=name)


def broadcast_inputs(act, **inputs):
    """Broadcast named inputs and the activation's array parameters.

    ``inputs`` maps name -> (value, positive, allow_zero).  Returns
    (dims, {name: ndarray}, coords) where every array has the broadcast shape.
    """
    arrays = {name: _as_dataarray(name, v, positive=p, allow_zero=z) for name, (v, p, z) in inputs.items()}
    if isinstance(act, ExpLinear):
        for field, public in _PARAM_NAMES.items():
            value = getattr(act, field)
            if np.ndim(value):
                arrays[public] = _as_dataarray(public, value)
    try:
        aligned = xr.broadcast(*xr.align(*arrays.values(), join="exact"))
    except ValueError as exc:
        raise ValueError(f"inputs do not broadcast: {exc}") from None
    dims = aligned[0].dims if aligned else ()
    values = {name: np.array(a.transpose(*dims).values, dtype=float) for name, a in zip(arrays, aligned)}
    coords = {name: arrays[name] for name in arrays}
    return dims, values, coords


def family_arrays(act, values):
    """(λ, α, b, κ) broadcast to the configuration shape."""
    return tuple(values.get(public, np.asarray(getattr(act, field), dtype=float)) for field, public in _PARAM_NAMES.items())
