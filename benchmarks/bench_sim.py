"""Monte-Carlo engine benchmark: the engine against a plain torch loop, achieved FLOP/s against
torch's GEMM, and peak memory.

    python benchmarks/bench_sim.py [--skip-memory] [--command-only] [--device cuda]

First, per draw, ``sim.simulate`` against the loop a researcher writes by hand, timed in the same
run: the same weight draws (``normal_`` in place), forward, autograd backward, hooks keeping
per-layer q and gradient norms (target: engine <= 1.1x the loop), at float64 B256 N1024 L32 and
float32 B512 N2048 L16; the engine runs bare (``skip`` every optional measurement), then with all
of them (histograms, quantiles, ‖∂L/∂W‖_F, χ traces; their cost, target <= 15%, or switched off
by name).  Where neural-tangents is installed (the ``peers`` extra, ``_peers.py``), its
``monte_carlo_kernel_fn`` on the same network (one sample: weight draws and the forward pass; it
has no backward pass) is timed in the same interleaved rounds, compiled beforehand.

For widths 1024 and 2048 (float32, batch 512, depth 16, one draw) it measures,
in the same run, torch's matrix-product throughput at the engine's shape
(B×N)·(N×N) — the ceiling — and the engine's achieved rate counting the
forward product, the backward product and the ‖∂L/∂W‖_F product.  Target:
70% of the ceiling at width 2048, 60% at 1024 (medians of three rounds, each a ceiling and a draw).  It reports the share of time outside matrix products
(time minus FLOPs at the ceiling rate).  (The ‖∂L/∂W‖_F products counted are those executed: the
upper block triangle of the batch's Gram matrices where that is cheaper than δᵀx.)

Then the Gaussian generators per second (torch, the engine's parallel row blocks, numpy's PCG64,
SFC64 and counter-based Philox), and the command as a user runs it (issue 26):
``meanfield simulate --activation selu --depth 32 --width 2048 --batch 1024 --seeds 1 --dtype
float32 --out t.nc`` in a fresh process, whole, against the time its 3·2·B·N²·L = 825 GFLOP take
at the GEMM peak measured in the same run (target >= 50%), and ``sim.simulate`` with the same
options in a warm process, its draw alone (target >= 75%); medians of three interleaved rounds.
``--command-only`` runs just these.  Then, in a subprocess, width 4096, depth 256, batch 256,
float32 forward and backward, and its peak resident memory (target: under 8 GiB; the weights
alone would take 17 GB).

``--device cuda`` (``benchmarks/gpu.sh`` runs it): at width 4096, batch 2048, depth 32, float32
and float64, the GPU's GEMM peak at the engine's shape, a whole ``sim.simulate`` call (against the
nominal 3·2·B·N²·L), the plain torch loop, and the engine bare (``skip`` every optional
measurement: the loop's forward and backward products alone) against that loop, timed with CUDA
events.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

import torch

import _peers
from _common import machine, median_time, table


OPTIONAL = ("weight_grad_norm", "x_batch_correlation", "traces", "mean_gain")


def plain_loop(depth, width, batch, dtype, device, seed=0):
    """What a user writes: Gaussian weights by normal_, SELU layers, autograd, per-layer q and ‖∂L/∂h‖²."""
    import math

    g = torch.Generator(device=device).manual_seed(seed)
    weights = [torch.empty(width, width, dtype=dtype, device=device).normal_(0.0, math.sqrt(1.0 / width), generator=g)
               for _ in range(depth)]
    x = torch.randn(batch, width, generator=g, dtype=dtype, device=device).requires_grad_(True)
    qs, hs = [], []
    for w in weights:
        h = torch.nn.functional.selu(x) @ w.T
        h.retain_grad()
        hs.append(h)
        qs.append(float(h.detach().square().mean()))
        x = h
    x.backward(torch.randn(batch, width, generator=g, dtype=dtype, device=device))
    return qs, [float(h.grad.square().sum()) / batch for h in hs]


def engine_against_plain(depth, width, batch, dtype, device, peer=None):
    import sim

    name = "float64" if dtype == torch.float64 else "float32"

    def engine(skip):
        sim.simulate("selu", depth, width=width, batch=batch, seeds=1, dtype=name, device=device, skip=skip,
                     **({"stat_layers": [], "bin_edges": None} if skip else {}))

    runs = {"plain": lambda: plain_loop(depth, width, batch, dtype, device), "bare": lambda: engine(OPTIONAL),
            "full": lambda: engine(())}
    if peer is not None and device == "cpu":
        runs["nt"], _ = _peers.monte_carlo(peer, depth, width, batch, name)
    for run in runs.values():
        run()  # warm: first-touch of memory, compiled kernels, imports
    times = {k: [] for k in runs}
    for _ in range(3):  # interleaved, so that the machine's slow spells hit all three alike
        for k, run in runs.items():
            times[k].append(median_time(run, repeat=1, warmup=0))
    return {k: min(v) for k, v in times.items()}


def gemm_rate(n, batch, dtype=torch.float32):
    a = torch.randn(batch, n, dtype=dtype)
    w = torch.randn(n, n, dtype=dtype)
    t = median_time(lambda: a @ w.T, repeat=9, warmup=2)
    return 2.0 * batch * n * n / t


def engine_against_gemm(n, batch, depth=16, rounds=3):
    """Per round the GEMM ceiling, then one engine draw: (ceiling, achieved, ratio), the medians
    over the rounds (interleaved, so that the VM's slow spells hit both)."""
    import sim

    def run():
        return sim.simulate("sselu:epsilon=0.03", depth=depth, width=n, batch=batch, seeds=1, dtype="float32",
                            stat_layers=[], bin_edges=None)

    flops = run().attrs["matmul_flops"]
    results = []
    for _ in range(rounds):
        ceiling = gemm_rate(n, batch)
        achieved = flops / median_time(run, repeat=1, warmup=0)
        results.append((ceiling, achieved, achieved / ceiling))
    return tuple(statistics.median(column) for column in zip(*results))


#: the command a user runs (issue: 824 GFLOP of matrix work, float32 on the CPU)
COMMAND = dict(activation="selu", depth=32, width=2048, batch=1024, seeds=1, dtype="float32")


def command_line(out):
    c = COMMAND
    return ["simulate", "--activation", c["activation"], "--depth", str(c["depth"]), "--width", str(c["width"]),
            "--batch", str(c["batch"]), "--seeds", str(c["seeds"]), "--dtype", c["dtype"], "--out", out]


def nominal_work(depth, width, batch):
    """3·2·B·N²·L: forward, backward and ‖∂L/∂W‖_F as three direct products per layer, the work
    that the ratios below count whatever the engine does (its Gram products do less)."""
    return 3 * 2.0 * batch * width * width * depth


def whole_command(rounds=3):
    """Per round: the GEMM ceiling at the engine's shape, the whole ``meanfield simulate`` command
    (a fresh process: interpreter, imports, theory, the draw, the table, the netCDF file) and
    ``sim.simulate`` in this warm process with the command's options; medians over the rounds."""
    import os
    import shutil
    import tempfile
    import time

    import sim

    c = COMMAND
    launcher = [shutil.which("meanfield")] if shutil.which("meanfield") else [sys.executable, "-m", "meanfield.cli"]
    work = nominal_work(c["depth"], c["width"], c["batch"])
    options = {k: v for k, v in c.items() if k != "activation"}
    sim.simulate(c["activation"], **{**options, "depth": 2})  # warm this process's imports and kernels
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "t.nc")
        for _ in range(rounds):
            ceiling = gemm_rate(c["width"], c["batch"])
            if os.path.exists(out):
                os.remove(out)
            t = time.perf_counter()
            subprocess.run(launcher + command_line(out), check=True, capture_output=True)
            command = time.perf_counter() - t
            t = time.perf_counter()
            ds = sim.simulate(c["activation"], **options)
            call = time.perf_counter() - t
            draw = float(ds.attrs["seconds"])  # the draws alone: no theory, no Dataset
            rows.append((ceiling, command, call, draw))
    ceiling, command, call, draw = (statistics.median(column) for column in zip(*rows))
    return ceiling, work, command, call, draw, ds.attrs["matmul_flops"]


def print_whole_command():
    ceiling, work, command, call, draw, executed = whole_command()
    at_peak = work / ceiling
    c = COMMAND
    print(f"`meanfield {' '.join(command_line('t.nc'))}`: {work / 1e9:.0f} GFLOP of matrix work "
          f"(3·2·B·N²·L; the engine executes {executed / 1e9:.0f}: its Gram products for ‖∂L/∂W‖_F do less), "
          f"{at_peak:.2f} s at the GEMM peak of this run ({ceiling / 1e9:.1f} GFLOP/s, (B×N)·(N×N), B = {c['batch']})")
    print(table(["as the user waits for it (medians of 3 interleaved rounds)", "time", "GEMM-peak time / time",
                 "target"],
                [["the whole command (fresh process)", f"{command:.2f} s", f"{at_peak / command:.0%}",
                  "50%: " + ("PASS" if at_peak / command >= 0.5 else "miss")],
                 ["`sim.simulate` with its options, warm process", f"{call:.2f} s", f"{at_peak / call:.0%}", ""],
                 ["  of which the draw", f"{draw:.2f} s", f"{at_peak / draw:.0%}",
                  "75%: " + ("PASS" if at_peak / draw >= 0.75 else "miss")]]))


def generator_rows(n=2048):
    """Gaussian numbers per second for one n × n float32 weight matrix: torch's ``normal_`` (what the
    engine uses, one core), the engine's row blocks on parallel threads (``sim.engine.weight``),
    numpy's Generator on PCG64, SFC64 and the counter-based Philox (one core each)."""
    import numpy as np

    from sim import engine

    w = torch.empty(n, n)
    a = np.empty((n, n), dtype=np.float32)
    g = torch.Generator().manual_seed(0)
    cfg = engine.NetworkConfig(depth=1, widths=(n, n), batch=1, dtype="float32")
    runs = [("torch normal_ (one call)", lambda: w.normal_(0.0, 1.0, generator=g)),
            (f"engine: {len(engine.weight_blocks(n, n))} row blocks on {torch.get_num_threads()} threads",
             lambda: engine.weight(cfg, 0, 1))]
    for name in ("PCG64", "SFC64", "Philox"):
        rng = np.random.Generator(getattr(np.random, name)(0))
        runs.append((f"numpy Generator({name}).standard_normal, float32",
                     lambda rng=rng: rng.standard_normal(out=a, dtype=np.float32)))
    return [[name, f"{n * n / median_time(fn, repeat=9, warmup=2) / 1e6:.0f} M/s"] for name, fn in runs]


def cuda_time(fn, repeat=5, warmup=2):
    """Median wall time of ``fn()`` with the GPU drained before and after (CUDA events)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


#: the GPU run: width 4096 (issue 26), a batch that fills the GPU and the depth of the CPU command
GPU_SIZE = dict(width=4096, batch=2048, depth=32)


def gpu_rows():
    """Per dtype: the GEMM ceiling of this GPU at the engine's shape, one warm ``sim.simulate`` draw
    and the plain torch loop of the same network, in the same run (float32: TF32 off, as the
    engine runs it)."""
    import sim

    n, b, depth = GPU_SIZE["width"], GPU_SIZE["batch"], GPU_SIZE["depth"]
    work = nominal_work(depth, n, b)
    rows = []
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        a = torch.randn(b, n, dtype=dtype, device="cuda")
        w = torch.randn(n, n, dtype=dtype, device="cuda")
        ceiling = 2.0 * b * n * n / cuda_time(lambda: a @ w.T, repeat=20)
        del a, w

        def draw(skip=()):
            bare = {"stat_layers": [], "bin_edges": None} if skip else {}
            return sim.simulate("selu", depth, width=n, batch=b, seeds=1, dtype=name, device="cuda", skip=skip,
                                **bare)

        t_engine = cuda_time(draw, repeat=3, warmup=1)
        t_bare = cuda_time(lambda: draw(OPTIONAL), repeat=3, warmup=1)
        t_plain = cuda_time(lambda: plain_loop(depth, n, b, dtype, "cuda"), repeat=3, warmup=1)
        rows.append([f"{name} B{b} N{n} L{depth}", f"{ceiling / 1e12:.2f}", f"{work / ceiling * 1e3:.0f} ms",
                     f"{t_engine * 1e3:.0f} ms", f"{work / ceiling / t_engine:.0%}", f"{t_plain * 1e3:.0f} ms",
                     f"{t_bare * 1e3:.0f} ms", f"{t_bare / t_plain:.2f}x"])
    return rows


def print_gpu():
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}; "
          f"TF32 matmul {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}")
    print(table(["sim.simulate on the GPU (whole call, theory and Dataset included)", "GEMM TFLOP/s (ceiling)",
                 "3·2·B·N²·L at the ceiling", "engine", "GEMM-peak time / time", "plain torch loop (fwd + bwd)",
                 "engine, bare (the loop's two products a layer)", "bare / loop"], gpu_rows()))


MEMORY_SCRIPT = r"""
import json, resource, time, sim
t = time.perf_counter()
ds = sim.simulate("sselu:epsilon=0.03", depth=256, width=4096, batch=256, seeds=1, dtype="float32",
                  stat_layers=[], bin_edges=None)
elapsed = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": elapsed, "peak_bytes": peak, "q_last": float(ds.q_measured[0, -1]),
                  "grad_first": float(ds.grad_measured[0, 0])}))
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--command-only", action="store_true", help="only the whole-command rows")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("bench_sim.py --device cuda: no CUDA GPU here (torch.cuda.is_available() is False)")
        return print_gpu()
    if args.command_only:
        print(f"machine: {machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
        print(table(["Gaussian generator, 2048 x 2048 float32", "numbers per second"], generator_rows()))
        return print_whole_command()
    peer = _peers.neural_tangents()
    rows = []
    for dtype, batch, width, depth in [(torch.float64, 256, 1024, 32), (torch.float32, 512, 2048, 16)]:
        t = engine_against_plain(depth, width, batch, dtype, args.device, peer)
        ratio, extras = t["bare"] / t["plain"], t["full"] / t["bare"] - 1.0
        row = [f"{str(dtype).split('.')[-1]} B{batch} N{width} L{depth}", f"{t['plain']:.2f} s", f"{t['bare']:.2f} s",
               f"{ratio:.2f}x", "PASS" if ratio <= 1.1 else "miss", f"{t['full']:.2f} s", f"+{extras:.0%}",
               "PASS" if extras <= 0.15 else "switch off by name"]
        if "nt" in t:
            row += [f"{t['nt']:.2f} s", f"{t['bare'] / t['nt']:.2f}x"]
        rows.append(row)
    print(f"machine: {machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device}"
          + (f"; {_peers.version()}" if peer is not None else ""))
    header = ["draw", "plain torch loop", "engine, bare", "engine / loop", "target 1.1x", "engine, every measurement",
              "extras cost", "target 15%"]
    if rows and len(rows[0]) > len(header):
        header += ["neural-tangents MC (forward only)", "engine (fwd + bwd) / NT"]
    print(table(header, rows))
    rows = []
    # targets: 70% at the float32 draw above (issue 14), 60% at width 1024 (issue 3), where the
    # O(B·N) elementwise work weighs twice as much against the O(B·N²) products
    for n, target in ((1024, 0.6), (2048, 0.7)):
        batch = 512
        ceiling, achieved, ratio = engine_against_gemm(n, batch)
        rows.append([f"width {n}, batch {batch}, depth 16, float32", f"{ceiling / 1e9:.1f}", f"{achieved / 1e9:.1f}",
                     f"{ratio:.0%}", f"{1.0 - ratio:.0%}", f"{target:.0%}: " + ("PASS" if ratio >= target else "miss")])
    print(table(["engine run (medians of 3 interleaved rounds)", "GEMM GFLOP/s (ceiling)", "engine GFLOP/s",
                 "of ceiling", "time outside matmul", "target"], rows))
    print(table(["Gaussian generator, 2048 x 2048 float32", "numbers per second"], generator_rows()))
    print_whole_command()
    if not args.skip_memory:
        out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        gib = res["peak_bytes"] / 2**30
        print(table(["memory run", "peak RSS", "time", "target"],
                    [["width 4096, depth 256, batch 256, float32, fwd+bwd", f"{gib:.2f} GiB",
                      f"{res['seconds']:.0f} s", "PASS (< 8 GiB)" if gib < 8 else "miss"]]))


if __name__ == "__main__":
    main()
