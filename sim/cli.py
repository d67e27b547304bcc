"""``meanfield simulate``: registered into the ``meanfield`` command line."""

from __future__ import annotations

import json
import os
import sys


def register(command):
    c = command("sweep", cmd_sweep, "run (or finish) a grid of simulations or theory points on dask")
    c.add_argument("file", help="sweep file (TOML)")
    c.add_argument("--out", required=True, help="output folder: points/ and sweep.nc")
    c.add_argument("--scheduler", default=None, help="address of an existing dask scheduler, tcp://host:port")
    c.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: one per core; 0 runs in-process)")
    c.add_argument("--threads-per-worker", type=int, default=1, help="torch threads per worker")
    c.add_argument("--quiet", action="store_true", help="no progress bar (batch jobs)")

    c = command("simulate", cmd_simulate, "Monte-Carlo network measured per layer beside the theory")
    c.add_argument("--activation", required=True, help="activation spec")
    c.add_argument("--depth", type=int, required=True)
    c.add_argument("--width", required=True, help="one width, or N_0..N_L comma-separated")
    c.add_argument("--batch", type=int, default=128)
    c.add_argument("--seeds", type=int, default=1, help="independent network draws")
    c.add_argument("--seed", type=int, default=0, help="root seed")
    c.add_argument("--q0", type=float, default=1.0)
    c.add_argument("--m0", type=float, default=0.0)
    c.add_argument("--sigma-w2", type=float, default=1.0)
    c.add_argument("--sigma-b2", type=float, default=0.0)
    c.add_argument("--mean-weight", type=float, default=0.0)
    c.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    c.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    c.add_argument("--out", default=None, help="write the Dataset to this .nc file")
    c.add_argument("--json", action="store_true")
    c.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_simulate(args):
    import numpy as np

    from meanfield.cli import _emit_json, _floats, _table, check_output_path

    widths = [int(v) if float(v).is_integer() else v for v in _floats(args.width, "--width")]
    widths = widths[0] if len(widths) == 1 else widths
    if args.out:
        check_output_path(args.out, ".nc")
    try:
        from .simulate import simulate
    except ImportError as exc:  # torch missing
        raise ValueError(f"simulate needs torch: pip install 'meanfield[sim]' ({exc})") from None
    bar = None if args.quiet or args.json else _progress_bar(args.seeds)
    ds = simulate(args.activation, depth=args.depth, width=widths, batch=args.batch, seeds=args.seeds,
                  q0=args.q0, m0=args.m0, sigma_w2=args.sigma_w2, sigma_b2=args.sigma_b2,
                  mean_weight=args.mean_weight, dtype=args.dtype, device=args.device, seed=args.seed,
                  progress=bar)
    if bar is not None:
        bar.close()
    if args.out:
        ds.to_netcdf(args.out, engine="netcdf4")
    if args.json:
        out = {"activation": ds.attrs["activation"], "layer": ds.layer.values}
        for name in ("q_measured_mean", "q_theory", "q_rel_error", "grad_measured_mean", "grad_theory",
                     "grad_rel_error", "grad_chi_rel_error", "diverged_at"):
            if name in ds:
                out[name] = ds[name].values
        _emit_json(out)
        return 0
    step = max(1, args.depth // 16)
    layers = sorted(set(range(0, args.depth + 1, step)) | {args.depth})
    rows = [[l, float(ds.q_measured_mean[l]), float(ds.q_theory[l]), f"{float(ds.q_rel_error[l]):+.2%}",
             float(ds.grad_measured_mean[l]), float(ds.grad_theory[l]), f"{float(ds.grad_rel_error[l]):+.2%}",
             f"{float(ds.grad_chi_rel_error[l]):+.2%}"]
            for l in layers]
    print(f"{ds.attrs['activation']}  widths {json.loads(ds.attrs['widths_json'])[0]}..  batch {args.batch}  "
          f"draws {args.seeds}  {args.dtype} on {args.device}  ({ds.attrs['seconds']:.1f} s)")
    print(_table(["layer", "q measured", "q theory", "error", "grad measured", "grad theory", "error",
                  "error vs own chi"], rows))
    div = ds.diverged_at.values
    if np.any(div >= 0):
        print(f"diverged: draws {np.flatnonzero(div >= 0).tolist()} at layers {div[div >= 0].tolist()}")
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _progress_bar(total):
    try:
        from tqdm import tqdm
    except ImportError:
        return None

    bar = tqdm(total=total, unit="draw", file=sys.stderr, disable=None)

    class _Bar:
        def __call__(self, done, _total):
            bar.update(done - bar.n)

        def close(self):
            bar.close()

    return _Bar()


def cmd_sweep(args):
    import json as _json

    from meanfield.cli import UsageError

    if args.workers is not None and args.workers < 0:
        raise UsageError(f"--workers must be >= 0, got {args.workers}")
    if args.threads_per_worker < 1:
        raise UsageError(f"--threads-per-worker must be >= 1, got {args.threads_per_worker}")
    parent = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(parent):
        raise UsageError(f"--out: parent folder {parent!r} does not exist")
    from .sweep import sweep

    ds = sweep(args.file, args.out, scheduler=args.scheduler, workers=args.workers, quiet=args.quiet,
               threads_per_worker=args.threads_per_worker)
    failed = _json.loads(ds.attrs["failed_points_json"])
    print(f"{ds.attrs['points']} points ({ds.attrs['computed_this_run']} computed this run, {len(failed)} failed); "
          f"wrote {os.path.join(args.out, 'sweep.nc')}")
    for item in failed:
        print(f"failed: {_json.dumps(item['point'], sort_keys=True)}: {item['error']}", file=sys.stderr)
    return 1 if failed else 0
