"""``meanfield simulate``, ``reduced-chain`` and ``sweep``: registered into the ``meanfield`` command
line through the ``meanfield.commands`` entry point (pyproject.toml).  This module imports nothing
heavy; each handler imports torch or dask when it runs."""

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
    _network_arguments(c)
    c.add_argument("--batch", type=int, default=128, help="inputs per network draw (default 128)")
    c.add_argument("--seeds", type=int, default=1, help="independent network draws (default 1)")
    c.add_argument("--m0", type=float, default=0.0, help="mean of the input pre-activations h_0 (default 0)")
    c.add_argument("--mean-weight", type=float, default=0.0, help="mean mu_w of the weights (Prop 3.2; default 0)")
    c.add_argument("--dtype", choices=("float32", "float64"), default="float64", help="float type (default float64)")
    c.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch device (default cpu)")
    c.add_argument("--weights", choices=("gaussian", "orthogonal"), default="gaussian",
                   help="i.i.d. Gaussian weights, or sqrt(sigma_w2) times Haar orthogonal ones (default gaussian)")
    c.add_argument("--dropout", type=float, default=0.0, metavar="P",
                   help="alpha dropout after every activation, drop rate P (default 0: none)")
    c.add_argument("--dropped", default=None, help="dropped value: saturation, mean or a number (default: the "
                                                   "activation's)")
    _output_arguments(c)

    c = command("spectrum", cmd_spectrum,
                "the input-output Jacobian's squared singular values: moments, density, edge, quantiles")
    c.add_argument("spec", help="activation spec, e.g. 'sselu:epsilon=0.017' ('meanfield activations' lists them)")
    c.add_argument("--depth", required=True, help="depth(s) L, comma-separated, e.g. 1,4,16,64")
    c.add_argument("--weights", choices=("gaussian", "orthogonal"), default="orthogonal",
                   help="weight law (default orthogonal)")
    c.add_argument("--q0", type=float, default=1.0, help="second moment of the input pre-activations (default 1)")
    c.add_argument("--sigma-w2", type=float, default=1.0, help="weight variance gain sigma_w^2 (default 1)")
    c.add_argument("--sigma-b2", type=float, default=0.0, help="bias variance sigma_b^2 (default 0)")
    c.add_argument("--points", type=int, default=1000, help="points of the density grid (default 1000)")
    c.add_argument("--mc", type=int, default=None, metavar="N",
                   help="also measure networks of width N beside the theory (eigenvalues for N <= 1024, "
                        "random probes above)")
    c.add_argument("--draws", type=int, default=4, help="independent networks for --mc (default 4)")
    c.add_argument("--seed", type=int, default=0, help="root seed for --mc (default 0)")
    c.add_argument("--out", default=None, help="write the Dataset to this .nc file (with --mc, also F.mc.nc)")
    c.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    c = command("reduced-chain", cmd_reduced_chain,
                "the exact single-input Monte-Carlo (backward pass integrated out) beside both theories")
    _network_arguments(c)
    c.add_argument("--chains", type=int, default=1000, help="independent networks, one input each (default 1000)")
    c.add_argument("--threads", type=int, default=None, help="worker threads (default: the cores available)")
    c.add_argument("--dropout", type=float, default=0.0, metavar="P",
                   help="alpha dropout after every activation, drop rate P (default 0: none)")
    c.add_argument("--dropped", default=None, help="dropped value: saturation, mean or a number (default: the "
                                                   "activation's)")
    c.add_argument("--weights", choices=("gaussian", "orthogonal"), default="gaussian",
                   help="i.i.d. Gaussian weights, or sqrt(sigma_w2) times Haar orthogonal ones (sigma_b2 = 0, one "
                        "width; default gaussian)")
    _output_arguments(c)


def _network_arguments(c):
    from meanfield.cli import network_arguments

    c.add_argument("--activation", required=True, help="activation spec, e.g. 'sselu:epsilon=0.017'")
    network_arguments(c)
    c.add_argument("--seed", type=int, default=0, help="root seed (default 0)")


def _output_arguments(c):
    c.add_argument("--out", default=None, help="write the Dataset to this .nc file")
    c.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    c.add_argument("--quiet", action="store_true", help="no progress bar")


def _comparison_rows(ds, depth):
    """Per-layer rows: measured ± standard error, theory (infinite width), theory (width N), the errors."""
    step = max(1, depth // 16)
    layers = sorted(set(range(0, depth + 1, step)) | {depth})
    rows = []
    for l in layers:
        row = [l]
        for v in ("q", "grad"):
            row += [_plus_minus(float(ds[f'{v}_measured_mean'][l]), float(ds[f'{v}_measured_sem'][l])),
                    _percent(float(ds[f'{v}_rel_error'][l]))]
            if f"{v}_rel_error_fw" in ds:
                row.append(_percent(float(ds[f'{v}_rel_error_fw'][l])))
        rows.append(row)
    fw = "q_rel_error_fw" in ds
    header = ["layer", "q measured", "vs N=inf"] + (["vs width N"] if fw else [])
    header += ["grad measured", "vs N=inf"] + (["vs width N"] if fw else [])
    return header, rows


def _percent(value):
    """A relative error as a signed percentage; 'n/a' where the comparison is not defined."""
    import math

    return "n/a" if not math.isfinite(value) else f"{value:+.2%}"


def _plus_minus(mean, sem):
    """mean ± standard error; one draw has none, and says so instead of '± nan'."""
    import math

    if not math.isfinite(mean):
        return f"{mean}"
    return f"{mean:.6g} ± {sem:.2g}" if math.isfinite(sem) else f"{mean:.6g} (one draw: no SE)"


_JSON_KEYS = ("q_measured_mean", "q_measured_sem", "q_theory", "q_theory_fw", "q_rel_error", "q_rel_error_fw",
              "grad_measured_mean", "grad_measured_sem", "grad_theory", "grad_theory_fw", "grad_rel_error",
              "grad_rel_error_fw", "grad_chi_rel_error", "diverged_at")


def _save_or_emit(ds, args, bar):
    """Close the progress bar, write --out, print --json; True when the JSON was the output."""
    from meanfield.cli import emit_json, save_result

    if bar is not None:
        bar.close()
    if args.out:
        save_result(ds, args.out)
    if args.json:
        emit_json({"activation": ds.attrs["activation"], "layer": ds.layer.values,
                   **{k: ds[k].values for k in _JSON_KEYS if k in ds}})
    return bool(args.json)


def cmd_reduced_chain(args):
    from meanfield.cli import check_output_path, parse_widths, table

    widths = parse_widths(args.width)
    if args.out:
        check_output_path(args.out, ".nc")
    from .reduced import reduced_chain

    bar = None if args.quiet or args.json else _progress_bar(args.chains, "chain")
    from meanfield.cli import parse_dropped

    ds = reduced_chain(args.activation, args.depth, width=widths, chains=args.chains, q0=args.q0,
                       sigma_w2=args.sigma_w2, sigma_b2=args.sigma_b2, seed=args.seed, threads=args.threads,
                       progress=bar, dropout=args.dropout, dropped=parse_dropped(args.dropped), weights=args.weights)
    if _save_or_emit(ds, args, bar):
        return 0
    print(f"{ds.attrs['activation']}  width {args.width}  {args.chains} chains  ({ds.attrs['seconds']:.1f} s, "
          f"{ds.attrs['unit_layers'] / max(ds.attrs['seconds'], 1e-9) / 1e6:.0f} M unit-layers/s)")
    print(table(*_comparison_rows(ds, args.depth)))
    if args.out:
        print(f"wrote {args.out}")
    return 0


def cmd_simulate(args):
    import numpy as np

    from meanfield.cli import UsageError, check_output_path, parse_widths, table

    widths = parse_widths(args.width)
    if args.out:
        check_output_path(args.out, ".nc")
    from .memory import require_simulation_memory

    for name in ("depth", "batch", "seeds"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be an integer >= 1, got {getattr(args, name)}")
    if isinstance(widths, int) and widths >= 1 and args.device == "cpu":  # refuse before torch loads (seconds)
        require_simulation_memory(args.depth, widths, args.batch, args.seeds, args.dtype, "cpu")
    from meanfield.cli import parse_dropped, require_extra

    require_extra("simulate", "torch", "sim")
    from .simulation import simulate
    bar = None if args.quiet or args.json else _progress_bar(args.seeds, "draw")
    ds = simulate(args.activation, depth=args.depth, width=widths, batch=args.batch, seeds=args.seeds,
                  q0=args.q0, m0=args.m0, sigma_w2=args.sigma_w2, sigma_b2=args.sigma_b2,
                  mean_weight=args.mean_weight, dtype=args.dtype, device=args.device, seed=args.seed,
                  progress=bar, weights=args.weights, dropout=args.dropout, dropped=parse_dropped(args.dropped))
    if _save_or_emit(ds, args, bar):
        return 0
    header, rows = _comparison_rows(ds, args.depth)
    layers = [row[0] for row in rows]
    header.append("grad vs own chi")
    for row, l in zip(rows, layers):
        row.append(_percent(float(ds.grad_chi_rel_error[l])))
    print(f"{ds.attrs['activation']}  widths {json.loads(ds.attrs['widths_json'])[0]}..  batch {args.batch}  "
          f"draws {args.seeds}  {args.dtype} on {args.device}  ({ds.attrs['seconds']:.1f} s)")
    print(table(header, rows))
    if ds.attrs.get("grad_theory_valid", "yes") != "yes":
        print("grad vs N=inf: n/a: Prop A.2 assumes zero-mean weights; with --mean-weight != 0 no gradient theory "
              "applies (the q and mean columns still do)")
    if args.seeds == 1:
        print("one draw: no standard error; use --seeds 2 or more for one")
    for v in ("q", "grad"):
        fw = ds.get(f"{v}_rel_error_fw")
        if fw is not None and np.any(~np.isfinite(fw.values[:-1]) & np.isfinite(ds[f"{v}_measured_mean"].values[:-1])):
            print(f"{v} vs width N: n/a where the finite-width theory is not finite (its functionals overflow at "
                  f"q0 = {args.q0:g}); the N = inf column still applies")
            break
    div = ds.diverged_at.values
    if np.any(div >= 0):
        print(f"diverged: draws {np.flatnonzero(div >= 0).tolist()} at layers {div[div >= 0].tolist()}")
    if args.out:
        print(f"wrote {args.out}")
    return 0


def cmd_spectrum(args):
    import numpy as np

    import meanfield as mf
    from meanfield.cli import UsageError, check_output_path, emit_json, parse_floats, save_result, table

    depths = parse_floats(args.depth, "--depth")
    if any(not float(d).is_integer() or d < 1 for d in depths):
        raise UsageError(f"--depth must list integers >= 1, got {args.depth!r}")
    depths = [int(d) for d in depths]
    if args.mc is not None and args.mc < 1:
        raise UsageError(f"--mc must be a width >= 1, got {args.mc}")
    if args.draws < 1:
        raise UsageError(f"--draws must be an integer >= 1, got {args.draws}")
    if args.out:
        check_output_path(args.out, ".nc")
    if args.mc is not None:
        from meanfield.cli import require_extra

        require_extra("spectrum --mc", "torch", "sim")
    ds = mf.spectrum(args.spec, depths, q0=args.q0, sigma_w2=args.sigma_w2, sigma_b2=args.sigma_b2,
                     weights=args.weights, points=args.points)
    mc = None
    if args.mc is not None:
        from meanfield.cli import require_extra

        require_extra("spectrum --mc", "torch", "sim")
        from .spectrum import jacobian_spectrum
        mc = jacobian_spectrum(args.spec, depths, width=args.mc, q0=args.q0, sigma_w2=args.sigma_w2,
                               sigma_b2=args.sigma_b2, weights=args.weights, draws=args.draws, seed=args.seed)
    if args.out:
        save_result(ds, args.out)
        if mc is not None:
            save_result(mc, args.out[:-3] + ".mc.nc")
    names = ("m1", "m2", "nvar", "nvar_activation", "upper_edge", "atom_zero", "quantile_x", "density_mass_error")
    if args.json:
        out = {"activation": ds.attrs["activation"], "weights": args.weights, "depth": depths,
               "quantile": ds["quantile"].values}
        out.update({n: ds[n].values for n in names})
        if mc is not None:
            out["mc"] = {n: mc[n].values for n in ("m1", "m1_sem", "m2", "m2_sem", "nvar", "nvar_sem", "quantile_x",
                                                   "quantile_x_sem") if n in mc}
            out["mc"]["width"] = args.mc
        emit_json(out)
        return 0
    print(f"{ds.attrs['activation']}  {args.weights} weights  q0={args.q0:g} sigma_w2={args.sigma_w2:g} "
          f"sigma_b2={args.sigma_b2:g}: squared singular values of J = W_L D_(L-1) ... W_1 D_0")
    header = ["depth", "m1", "m2/m1^2 - 1", "activation's share", "upper edge", "atom at 0"] + \
        [f"q{int(round(100 * q))}" for q in ds["quantile"].values]
    rows = []
    for j, depth in enumerate(depths):
        rows.append([depth, f"{float(ds.m1[j]):.6g}", f"{float(ds.nvar[j]):.6g}", f"{float(ds.nvar_activation[j]):.4g}",
                     f"{float(ds.upper_edge[j]):.6g}", f"{float(ds.atom_zero[j]):g}"]
                    + [f"{v:.4g}" for v in ds.quantile_x.values[j]])
    print(table(header, rows))
    worst = float(np.nanmax(np.abs(ds.density_mass_error.values)))
    print(f"density: {args.points} points per depth ({ds.attrs['density_method']}); it integrates to 1 - atoms "
          f"within {worst:.1e}")
    if mc is not None:
        print(f"networks of width {args.mc}, {args.draws} draws ({mc.attrs['method']}): measured ± standard error, "
              "relative to the theory")
        rows = []
        for j, depth in enumerate(depths):
            row = [depth]
            for n in ("m1", "nvar"):
                row += [f"{float(mc[n][j]):.5g} ± {float(mc[n + '_sem'][j]):.2g}", f"{float(mc[n + '_rel_error'][j]):+.2%}"]
            if "quantile_x" in mc:
                row.append(f"{float(mc.quantile_x[j, 2]):.4g} ± {float(mc.quantile_x_sem[j, 2]):.2g}")
            rows.append(row)
        print(table(["depth", "m1", "vs theory", "m2/m1^2 - 1", "vs theory"]
                    + (["median"] if "quantile_x" in mc else []), rows))
    if args.out:
        print(f"wrote {args.out}" + (f" and {args.out[:-3]}.mc.nc" if mc is not None else ""))
    return 0


def _progress_bar(total, unit):
    try:
        from tqdm import tqdm
    except ImportError:
        return None

    bar = tqdm(total=total, unit=unit, file=sys.stderr, disable=None)

    class _Bar:
        def __call__(self, done, _total):
            bar.update(done - bar.n)

        def close(self):
            bar.close()

    return _Bar()


def cmd_sweep(args):
    import json as _json

    from meanfield.cli import UsageError, require_extra

    require_extra("sweep", "dask", "sweep")
    require_extra("sweep", "distributed", "sweep")
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
