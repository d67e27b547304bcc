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
import json
import logging
import os
import socket
import subprocess
import sys
import time
import traceback
import uuid
import warnings

import numpy as np
import xarray as xr

from meanfield import __version__
from meanfield.results import write_netcdf

from .sweep_file import KINDS, SweepFileError  # noqa: F401 - public here too
from .sweep_file import _point_function, _require_resources, load_sweep, point_id, point_json, point_seed, points, theory


class SweepWarning(UserWarning):
    """Something in the output folder was not trusted and is redone (a damaged or copied point file)."""


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
