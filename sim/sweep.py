"""Sweeps: a grid of ``sim.simulate`` (or theory) runs on dask.distributed, resumable.

A sweep file (TOML) names the grid and the fixed settings::

    [sweep]
    kind = "simulate"          # or "reduced_chain" (sim.reduced_chain), or "theory" (meanfield.recursion)
    [grid]
    depth = [16, 64]
    activation = ["selu", "sselu:epsilon=0.017"]
    q0 = [0.5, 2.0]
    seed = [0, 1, 2]
    [simulate]                 # fixed settings ([theory] for kind = "theory")
    batch = 256
    dtype = "float64"

Any argument of the point function may be a grid axis or a fixed setting.

Engine.  ``client.submit`` per point; each point is computed by a worker and
written atomically (a temporary file, then ``os.replace``) to
``DIR/points/<id>.nc``, ``id`` a hash of the point's canonical JSON; a failure
is written to ``<id>.err.json`` instead and does not stop the others.  The
driver skips points whose file exists, deletes stale temporaries and files
that do not open (a half-written point is recomputed), then gathers every
point into one Dataset with one dimension per grid axis (plus ``layer``),
``DIR/sweep.nc``.  A point's random seed derives from its own
configuration, so results do not depend on the number of workers or the order
they finish in.  Killing the driver at any moment loses no finished point.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import glob
import hashlib
import inspect
import itertools
import json
import logging
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import traceback
import uuid
import warnings

import numpy as np
import xarray as xr

import meanfield as mf
from meanfield import __version__
from meanfield.results import write_netcdf

KINDS = ("simulate", "reduced_chain", "theory")


class SweepFileError(ValueError):
    """The sweep file is invalid; raised before any work starts."""


class SweepWarning(UserWarning):
    """Something in the output folder was not trusted and is redone (a damaged or copied point file)."""


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
    return {"kind": kind, "grid": grid, "fixed": fixed, "text": text or json.dumps(raw, sort_keys=True)}


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


def run_point(sweep: dict, point: dict, out: str, threads: int = 1) -> dict:
    """Compute one point and write it atomically; returns a small status dict (runs on a worker)."""
    if sweep["kind"] == "simulate":
        import torch

        torch.set_num_threads(threads)
    pid = point_id(sweep, point)
    final = os.path.join(out, "points", f"{pid}.nc")
    err_path = os.path.join(out, "points", f"{pid}.err.json")
    tmp = os.path.join(out, "points", f".tmp-{pid}-{uuid.uuid4().hex}")
    started = time.perf_counter()
    try:
        kwargs = {**sweep["fixed"], **point}
        if sweep["kind"] == "simulate":
            kwargs["seed"] = point_seed(sweep, point)
            kwargs.setdefault("progress", None)
            ds = _point_function("simulate")(**kwargs).rename({"seed": "draw"})
        elif sweep["kind"] == "reduced_chain":
            kwargs.update(seed=point_seed(sweep, point), threads=threads, progress=None)
            # per-chain values would make every point file chains x layers: keep the means and errors
            ds = _point_function("reduced_chain")(**kwargs).drop_vars(["q_measured", "grad_measured", "diverged_at"])
        else:
            ds = theory(**kwargs)
        ds = ds.drop_vars([v for v in ds.coords if v not in ds.dims and v not in ("width",)], errors="ignore")
        ds["seconds"] = ((), time.perf_counter() - started)
        # the file records what it is and a checksum of what it holds: a copy under another point's
        # name, a truncated file, flipped bits or lost attributes are detected and recomputed
        ds.attrs = {"point_id": pid, "point_json": point_json(sweep, point), "content_sha256": _content_hash(ds)}
        _write_private(ds, tmp)
        os.replace(tmp, final)
        if os.path.exists(err_path):
            os.remove(err_path)
        return {"id": pid, "ok": True, "seconds": time.perf_counter() - started}
    except Exception as exc:  # a failing point is data, not the end of the sweep
        if os.path.exists(tmp):
            os.remove(tmp)
        record = {"id": pid, "ok": False, "point": point, "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc(limit=5)}
        tmp_err = err_path + f".tmp-{uuid.uuid4().hex}"
        try:
            with open(tmp_err, "w") as fh:
                json.dump(record, fh)
            os.replace(tmp_err, err_path)
        except OSError:  # the disk is full too: leave nothing behind; the point stays missing
            if os.path.exists(tmp_err):
                os.remove(tmp_err)
        return {"id": pid, "ok": False, "error": record["error"], "point": point}


def _write_private(ds: xr.Dataset, path: str):
    """Write a file no other task touches.  Inside a dask worker xarray would
    guard the write with a distributed lock (a scheduler round-trip per
    variable, ~50 ms a point); under the synchronous scheduler it takes a
    local lock instead."""
    try:
        import dask
    except ImportError:
        ds.to_netcdf(path, engine="netcdf4")
        return
    with dask.config.set(scheduler="synchronous"):
        ds.to_netcdf(path, engine="netcdf4")


def _content_hash(ds: xr.Dataset) -> str:
    """SHA-256 of every variable's name, dimensions and values (bit-exact through netCDF)."""
    digest = hashlib.sha256()
    for name in sorted(ds.variables):
        var = ds.variables[name]
        digest.update(f"{name}{var.dims}{var.dtype}".encode())
        digest.update(np.ascontiguousarray(var.values).tobytes() if var.dtype.kind != "O"
                      else json.dumps(var.values.tolist()).encode())
    return digest.hexdigest()


def _point_file_problem(path, sweep, point) -> str | None:
    """Why the point file at ``path`` cannot be trusted (None when it can): it does not read, is
    incomplete, or records another configuration than its name says."""
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            if "seconds" not in ds:
                return "incomplete"
            recorded = ds.attrs.get("point_json"), ds.attrs.get("point_id")
            checksum = ds.attrs.get("content_sha256")
            content = _content_hash(ds.load())
    except Exception as exc:  # netCDF/HDF5 raise many kinds for a damaged file
        return f"does not read ({type(exc).__name__})"
    if recorded != (point_json(sweep, point), point_id(sweep, point)):
        return "records another configuration (copied, renamed, or its attributes lost)"
    if checksum != content:
        return "does not match its checksum (damaged)"
    return None


def _scan(sweep, out, pts, quiet=True):
    """The points still to compute.  Removes stale temporaries (of points and of sweep.nc) and point
    files that cannot be trusted, saying which and why."""
    folder = os.path.join(out, "points")
    os.makedirs(folder, exist_ok=True)
    stale = (glob.glob(os.path.join(folder, ".tmp-*")) + glob.glob(os.path.join(folder, "*.err.json.tmp-*"))
             + glob.glob(os.path.join(out, ".sweep.nc.tmp-*")))
    for path in stale:
        os.remove(path)
    todo = []
    for p in pts:
        path = os.path.join(folder, f"{point_id(sweep, p)}.nc")
        if os.path.exists(path):
            problem = _point_file_problem(path, sweep, p)
            if problem is not None:
                warnings.warn(f"sweep: recomputing {path}: the file {problem}", SweepWarning, stacklevel=3)
                os.remove(path)
        if not os.path.exists(path):
            todo.append(p)
    return todo


def _git_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _devices():
    try:
        import torch

        if torch.cuda.is_available():
            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return [f"cpu ({os.cpu_count()} cores)"]


def _label(value):
    return value if isinstance(value, (str, int, float, bool)) else json.dumps(value)


def collect(sweep: dict, out: str, pts: list[dict]) -> xr.Dataset:
    """Gather the point files into one Dataset with a dimension per grid axis."""
    folder = os.path.join(out, "points")
    parts, errors = [], []
    template = None
    for p in pts:
        pid = point_id(sweep, p)
        path = os.path.join(folder, f"{pid}.nc")
        if os.path.exists(path):
            ds = xr.load_dataset(path, engine="netcdf4")
            template = ds if template is None else template
            ds["error"] = ((), "")
        else:
            ds = xr.Dataset()
            err = os.path.join(folder, f"{pid}.err.json")
            message = json.load(open(err))["error"] if os.path.exists(err) else "not computed"
            ds["error"] = ((), message)
            errors.append((p, message))
        ds["point_id"] = ((), pid)
        parts.append(ds)
    combined = xr.concat(parts, dim="point", join="outer", coords="minimal", compat="override",
                         combine_attrs="drop", fill_value=np.nan)
    axes = list(sweep["grid"])
    for a in axes:
        combined = combined.assign_coords({a: ("point", [_label(p[a]) for p in pts])})
    if len(axes) == 1:  # one axis: no MultiIndex to unstack
        combined = combined.swap_dims(point=axes[0])
    else:
        combined = combined.set_index(point=axes).unstack("point")
    combined = combined.transpose(*axes, ...)
    combined["ok"] = combined["error"] == ""
    for var in combined.variables.values():
        var.encoding = {}  # integers padded with NaN for failed points are floats now
    return combined, errors


def sweep(source, out: str, scheduler: str | None = None, workers: int | None = None, quiet: bool = True,
          threads_per_worker: int = 1) -> xr.Dataset:
    """Run (or finish) a sweep and return the combined Dataset (also written to ``out/sweep.nc``).

    ``scheduler``: address of an existing dask cluster ("tcp://host:port");
    otherwise an embedded LocalCluster with ``workers`` processes (default:
    one per core, ``threads_per_worker`` torch threads each); ``workers=0``
    runs in-process.  The Dataset's ``failed_points_json`` attribute lists
    failures; :func:`main`-style callers exit non-zero when it is not empty.
    """
    spec = load_sweep(source)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ValueError(f"workers must be an integer >= 0, got {workers!r}")
    _prepare_output(out)
    if scheduler is not None:
        _check_scheduler(scheduler)
    _require_resources(spec, out)
    with _exclusive(out):
        pts = points(spec)
        started = datetime.datetime.now(datetime.timezone.utc)
        todo = _scan(spec, out, pts)
        _execute(spec, out, todo, scheduler, workers, quiet, threads_per_worker, len(pts))
        ended = datetime.datetime.now(datetime.timezone.utc)
        ds, errors = collect(spec, out, pts)
        ds.attrs.update({
            "sweep_file": spec["text"],
            "kind": spec["kind"],
            "meanfield_version": __version__,
            "git_commit": _git_commit(),
            "started": started.isoformat(),
            "ended": ended.isoformat(),
            "devices_json": json.dumps(_devices()),
            "host": socket.gethostname(),
            "scheduler": scheduler or ("in-process" if workers == 0 else "LocalCluster"),
            "points": len(pts),
            "computed_this_run": len(todo),
            "failed_points_json": json.dumps([{"point": p, "error": e} for p, e in errors]),
        })
        write_netcdf(ds, os.path.join(out, "sweep.nc"))
    return ds


def _prepare_output(out):
    """The output folder exists (made if its parent does), is a folder, and is writable: else ValueError."""
    path = os.path.abspath(out)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"--out {out!r} is a file; the sweep writes a folder (points/ and sweep.nc): name a folder")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise ValueError(f"--out {out!r}: its parent folder {parent!r} does not exist")
    try:
        os.makedirs(os.path.join(path, "points"), exist_ok=True)
        probe = os.path.join(path, f".write-test-{uuid.uuid4().hex}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise ValueError(f"--out {out!r} is not writable ({exc.strerror}); choose a folder you can write") from None


def _check_scheduler(address):
    """A scheduler that does not answer fails here, in seconds, with its address (not after dask's retries)."""
    from urllib.parse import urlparse

    parsed = urlparse(address)
    if parsed.scheme not in ("tcp", "tls") or not parsed.hostname or not parsed.port:
        raise ValueError(f"--scheduler {address!r} must look like tcp://host:port")
    try:
        socket.create_connection((parsed.hostname, parsed.port), timeout=SCHEDULER_TIMEOUT).close()
    except OSError as exc:
        raise ValueError(f"no dask scheduler answers at {address} ({exc.strerror or exc}); start one "
                         f"(dask scheduler) or leave out --scheduler to use an embedded cluster") from None


#: seconds to wait for a scheduler's port to answer before refusing
SCHEDULER_TIMEOUT = 5.0


class _exclusive:
    """An advisory lock on ``out/.lock``: a second sweep into the same folder refuses at once with one
    line, so no point is computed twice.  The kernel drops the lock when a process dies (kill -9)."""

    def __init__(self, out):
        self.path = os.path.join(out, ".lock")
        self.fh = None

    def __enter__(self):
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            self.fh.seek(0)
            holder = self.fh.read().strip() or "another process"
            self.fh.close()
            raise SweepLockedError(f"another sweep is writing into {os.path.dirname(self.path)!r} ({holder}); "
                                   "wait for it to finish (rerunning then computes only what is missing) or use "
                                   "another --out") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
        return False


class SweepLockedError(ValueError):
    """Another sweep holds the output folder's lock."""


def _bar(total, done, quiet):
    if quiet:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="point", file=sys.stderr, disable=None, dynamic_ncols=True)


def _execute(spec, out, todo, scheduler, workers, quiet, threads, total):
    """Run the missing points; each writes its own file, so nothing is returned."""
    bar = _bar(total, total - len(todo), quiet)
    failed = 0

    def report(ok):
        nonlocal failed
        failed += not ok
        if bar is not None:
            bar.update(1)
            bar.set_postfix(failed=failed)

    try:
        if not todo:
            return
        if workers == 0 and scheduler is None:
            for p in todo:
                report(run_point(spec, p, out, threads)["ok"])
            return
        from dask.distributed import Client, LocalCluster, as_completed

        cluster = None
        if scheduler is None:
            n = workers or os.cpu_count() or 1
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=logging.ERROR)
            client = Client(cluster)
        else:
            client = Client(scheduler, timeout="30s")
        try:
            futures = [client.submit(run_point, spec, p, out, threads, key=f"point-{point_id(spec, p)}", pure=False)
                       for p in todo]
            for fut in as_completed(futures):
                try:
                    report(fut.result()["ok"])
                except Exception:  # a worker lost mid-point: the point stays missing, recomputed next run
                    report(False)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    finally:
        if bar is not None:
            bar.close()
