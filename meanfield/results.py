"""Attributes every result Dataset carries: provenance and parameters.

netCDF attributes cannot hold nested dicts, booleans or None, so structured
metadata goes into JSON strings (``*_json``).
"""

from __future__ import annotations

import json

import numpy as np

from ._version import __version__


def _plain(value):
    """JSON-serialisable copy of numpy scalars, arrays and nested containers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_json(value) -> str:
    return json.dumps(_plain(value), sort_keys=True)


def activation_attrs(act) -> dict:
    """Spec string and parameters of an activation, netCDF-safe."""
    scalar = getattr(act, "scalar", True)
    # Array parameters have no single spec string; they are coordinates instead.
    out = {"activation": act.spec if scalar else f"{act.name} (array parameters)", "activation_name": act.name}
    params = getattr(act, "params", None)
    if params is not None:
        out["activation_params_json"] = to_json(params)
    solution = getattr(act, "solution", None)
    if solution is not None:
        out["solver_json"] = to_json(solution.as_dict())
    return out


def dataset_attrs(act=None, equation: str = "", **extra) -> dict:
    """Standard attributes: package version, equation reference, activation."""
    attrs = {"meanfield_version": __version__, "equation": equation}
    if act is not None:
        attrs.update(activation_attrs(act))
    for key, value in extra.items():
        if isinstance(value, (dict, list, tuple)) or value is None or isinstance(value, bool):
            attrs[f"{key}_json"] = to_json(value)
        else:
            attrs[key] = _plain(value)
    return attrs


def netcdf_writer_missing() -> str | None:
    """Why this installation cannot write netCDF files, or None when it can: the commands check it
    before any work, so that a long run never ends in a failed write."""
    import importlib.util

    if importlib.util.find_spec("netCDF4") is None:
        return ("writing netCDF needs the netCDF4 package, a dependency of meanfield that is not installed here: "
                "pip install netCDF4")
    return None


def write_netcdf(ds, path: str) -> str:
    """Write ``ds`` to ``path`` atomically: a temporary file beside it, then a rename.

    A failure mid-write (a full disk) leaves neither a partial ``path`` nor the temporary file;
    the OSError names ``path``.
    """
    import errno
    import os
    import uuid

    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
    try:
        ds.to_netcdf(tmp, engine="netcdf4")
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise OSError(exc.errno, exc.strerror or str(exc), path) from None
    except RuntimeError as exc:  # the netCDF library's report of a failed write ("NetCDF: HDF error": a full disk)
        if os.path.exists(tmp):
            os.remove(tmp)
        raise OSError(errno.EIO, f"the netCDF write failed ({exc}; is the disk full?)", path) from None
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
