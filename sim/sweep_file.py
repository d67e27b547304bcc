"""Sweep files: the TOML that names a grid, checked before any work, and its points.

A sweep file names the grid and the fixed settings (the format: :mod:`sim.sweep`).  Everything
here runs before the first point: every grid value is checked, the memory and disk a sweep needs
are estimated, and each point gets its canonical JSON, the id its file is named by and its seed.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import os
import shutil
import tomllib

import numpy as np

import meanfield as mf

KINDS = ("simulate", "reduced_chain", "theory")


class SweepFileError(ValueError):
    """The sweep file is invalid; raised before any work starts."""


#: Parameters whose every grid value is checked before any point runs: name -> (check, what is valid).
_RULES = {
    "depth": (lambda v: _count(v), "an integer >= 1"),
    "batch": (lambda v: _count(v), "an integer >= 1"),
    "seeds": (lambda v: _count(v), "an integer >= 1"),
    "chains": (lambda v: _count(v), "an integer >= 1"),
    "seed": (lambda v: _count(v, 0), "an integer >= 0"),
    "width": (lambda v: _count(v) or (isinstance(v, list) and bool(v) and all(_count(n) for n in v)),
              "an integer >= 1 or a list of them (N_0..N_L)"),
    "widths": (lambda v: v is None or _count(v) or (isinstance(v, list) and all(_count(n) for n in v)),
               "an integer >= 1 or a list of them"),
    "q0": (lambda v: _real(v) and v > 0, "a number > 0"),
    "sigma_w2": (lambda v: _real(v) and v > 0, "a number > 0"),
    "sigma_b2": (lambda v: _real(v) and v >= 0, "a number >= 0"),
    "m0": (lambda v: _real(v), "a finite number"),
    "mean_weight": (lambda v: _real(v), "a finite number"),
    "dtype": (lambda v: v in ("float32", "float64"), "'float32' or 'float64'"),
    "device": (lambda v: isinstance(v, str) and (v in ("cpu", "cuda") or v.startswith("cuda:")), "'cpu' or 'cuda'"),
}
#: floats per layer a point file holds, by kind (every per-layer variable, draws or not): sizes the
#: memory and disk a sweep needs before it starts.
_FLOATS_PER_LAYER = {"simulate": 40, "reduced_chain": 30, "theory": 14}


def _count(value, minimum=1):
    return not isinstance(value, bool) and isinstance(value, int) and value >= minimum


def _real(value):
    return not isinstance(value, bool) and isinstance(value, (int, float)) and np.isfinite(value)


def theory(activation, depth, q0=1.0, sigma_w2=1.0, sigma_b2=0.0, widths=None):
    """A theory point: ``meanfield.recursion`` (Props A.1, A.2, 3.1) for one configuration."""
    return mf.recursion(activation, depth, q0=q0, sigma_w2=sigma_w2, sigma_b2=sigma_b2, widths=widths)


def _point_function(kind):
    if kind == "simulate":
        from .simulation import simulate

        return simulate
    if kind == "reduced_chain":
        from .reduced import reduced_chain

        return reduced_chain
    return theory


def _parameters(kind):
    sig = inspect.signature(_point_function(kind))
    names = [p for p in sig.parameters if p not in ("progress", "input", "loss", "threads")]
    return names


def load_sweep(source) -> dict:
    """Parse and validate a sweep file (path), TOML text or dict; raises SweepFileError."""
    text = None
    if isinstance(source, dict):
        raw = source
    else:
        if os.path.isfile(str(source)):
            with open(source, "rb") as fh:
                data = fh.read()
            text = data.decode("utf-8", errors="replace")
        elif isinstance(source, str) and "[" in source:
            text = source
        elif os.path.exists(str(source)):
            raise SweepFileError(f"sweep file {source!r} is not a regular file (a folder or a device); give a TOML "
                                 "file")
        else:
            raise SweepFileError(f"sweep file {source!r} does not exist")
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SweepFileError(f"sweep file is not valid TOML: {exc}") from None
    unknown = set(raw) - {"sweep", "grid", *KINDS}
    if unknown:
        raise SweepFileError(f"unknown section [{sorted(unknown)[0]}]; valid sections: [sweep], [grid], "
                             + ", ".join(f"[{k}]" for k in KINDS))
    meta = dict(raw.get("sweep", {}))
    kind = meta.pop("kind", "simulate")
    if kind not in KINDS:
        raise SweepFileError(f"[sweep] kind = {kind!r}; valid kinds: {', '.join(KINDS)}")
    if meta:
        raise SweepFileError(f"[sweep] unknown key {sorted(meta)[0]!r}; valid keys: kind")
    for other in KINDS:
        if other != kind and other in raw:
            raise SweepFileError(f"[{other}] does not apply to kind = {kind!r}; put fixed settings under [{kind}]")
    grid = raw.get("grid")
    if not grid:
        raise SweepFileError("the sweep file has no [grid] section (or it is empty)")
    fixed = dict(raw.get(kind, {}))
    valid = _parameters(kind)
    where = {"simulate": "sim.simulate", "reduced_chain": "sim.reduced_chain",
             "theory": "sim.sweep.theory (meanfield.recursion)"}[kind]
    for section, table in (("grid", grid), (kind, fixed)):
        for key in table:
            if key not in valid:
                raise SweepFileError(f"[{section}] key {key!r} is not a parameter of {where}; valid keys: "
                                     f"{', '.join(valid)}")
    for key, values in grid.items():
        if not isinstance(values, list):
            raise SweepFileError(f"[grid] axis {key!r} must be a list of values, got {values!r}")
        if not values:
            raise SweepFileError(f"[grid] axis {key!r} is empty")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise SweepFileError(f"[grid] axis {key!r} repeats a value")
    both = set(grid) & set(fixed)
    if both:
        raise SweepFileError(f"key {sorted(both)[0]!r} is both a [grid] axis and a fixed [{kind}] setting")
    act_key = "activation"
    activations = grid.get(act_key, [fixed.get(act_key)] if act_key in fixed else [])
    if not activations:
        raise SweepFileError(f"no activation: give [grid] {act_key} = [...] or [{kind}] {act_key} = \"...\"")
    for spec in activations:
        where_key = f"[grid] {act_key}" if act_key in grid else f"[{kind}] {act_key}"
        try:
            mf.activation(spec)
        except mf.InfeasibleError:
            pass  # a solver that finds no parameters fails that point only
        except ValueError as exc:
            raise SweepFileError(f"{where_key}: {exc}") from None
    for section, table in (("grid", grid), (kind, fixed)):
        for key, values in table.items():
            rule = _RULES.get(key)
            for value in (values if section == "grid" else [values]):
                if rule is not None and not rule[0](value):
                    raise SweepFileError(f"[{section}] {key} = {value!r}: {key} must be {rule[1]}")
    _check_stat_layers(grid, fixed)
    return {"kind": kind, "grid": grid, "fixed": fixed, "text": text or json.dumps(raw, sort_keys=True)}


def _check_stat_layers(grid, fixed):
    """stat_layers must lie in 0..depth for every depth of the grid: checked here, before any point
    runs, not by the first point that fails."""
    layers = grid.get("stat_layers", [fixed.get("stat_layers")])
    depths = grid.get("depth", [fixed.get("depth")])
    for value in layers:
        if value is None:
            continue
        if not isinstance(value, list) or not all(_count(v, 0) for v in value):
            raise SweepFileError(f"stat_layers = {value!r}: stat_layers must be a list of integers >= 0")
        for depth in depths:
            if depth is not None and _count(depth) and any(v > depth for v in value):
                raise SweepFileError(f"stat_layers = {value!r}: every layer must lie in 0..depth, and depth = {depth} "
                                     "in this sweep")


def _largest(sweep, key, default):
    """The largest value a parameter takes in the sweep (for estimates)."""
    values = sweep["grid"].get(key, [sweep["fixed"].get(key, default)])
    return max(max(v) if isinstance(v, list) else v for v in values)


def _require_resources(sweep, out):
    """Refuse, before any point runs, a sweep whose results cannot fit in memory or on disk."""
    from meanfield.resources import gib, require_layers, require_memory

    from .memory import require_simulation_memory

    n_points = math.prod(len(v) for v in sweep["grid"].values())
    depth = _largest(sweep, "depth", 1)
    kind = sweep["kind"]
    if kind == "simulate":
        require_simulation_memory(depth, _largest(sweep, "width", 256), _largest(sweep, "batch", 128),
                                  _largest(sweep, "seeds", 1), sweep["fixed"].get("dtype", "float64"), "cpu")
    elif kind == "reduced_chain":
        require_memory(2 * 8 * _largest(sweep, "chains", 1000) * (depth + 1), f"a point of depth {depth}",
                       "use fewer chains or layers")
        require_layers("finite_width", 1, depth)
    else:
        require_layers("recursion", 1, depth)
    draws = _largest(sweep, "seeds", 1) if kind == "simulate" else 1
    total = float(n_points) * (depth + 1) * _FLOATS_PER_LAYER[kind] * 8 * draws
    require_memory(total, f"collecting {n_points} points of up to {depth + 1} layers",
                   "use a smaller grid, or fewer layers or draws")
    free = shutil.disk_usage(out).free
    if total > free:
        raise ValueError(f"the sweep's {n_points} point files need about {gib(total)} on disk but {out!r} has "
                         f"{gib(free)} free; use a smaller grid or another --out")
    return n_points


def points(sweep: dict) -> list[dict]:
    """Every grid point as a dict axis -> value, in a fixed order."""
    axes = list(sweep["grid"])
    return [dict(zip(axes, combo)) for combo in itertools.product(*(sweep["grid"][a] for a in axes))]


def point_json(sweep: dict, point: dict) -> str:
    """The canonical JSON of a point's configuration: what its file name hashes and its file records."""
    return json.dumps({"kind": sweep["kind"], "fixed": sweep["fixed"], "point": point}, sort_keys=True)


def point_id(sweep: dict, point: dict) -> str:
    return hashlib.sha256(point_json(sweep, point).encode()).hexdigest()[:24]


def point_seed(sweep: dict, point: dict) -> int:
    """The root seed of a point: its own 'seed' value when the grid has one, mixed with its configuration."""
    canonical = json.dumps({"kind": sweep["kind"], "fixed": sweep["fixed"], "point": point}, sort_keys=True)
    return int(hashlib.sha256(("seed:" + canonical).encode()).hexdigest()[:15], 16)
