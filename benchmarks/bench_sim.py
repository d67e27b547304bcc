"""Monte-Carlo engine benchmark: achieved FLOP/s against torch's GEMM, and peak memory.

    python benchmarks/bench_sim.py [--skip-memory]

For widths 1024 and 2048 (float32, batch 512, depth 16, one draw) it measures,
in the same run, torch's matrix-product throughput at the engine's shape
(B×N)·(N×N) — the ceiling — and the engine's achieved rate counting the
forward product, the backward product and the ‖∂L/∂W‖_F product.  Target:
60% of the ceiling.  It reports the share of time outside matrix products
(time minus FLOPs at the ceiling rate).  Then, in a subprocess, width 4096,
depth 256, batch 256, float32 forward and backward, and its peak resident
memory (target: under 8 GiB; the weights alone would take 17 GB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import torch

from _common import machine, median_time, table


def gemm_rate(n, batch, dtype=torch.float32):
    a = torch.randn(batch, n, dtype=dtype)
    w = torch.randn(n, n, dtype=dtype)
    t = median_time(lambda: a @ w.T, repeat=9, warmup=2)
    return 2.0 * batch * n * n / t


def engine_rate(n, batch, depth=16):
    import sim

    def run():
        return sim.simulate("sselu:epsilon=0.03", depth=depth, width=n, batch=batch, seeds=1, dtype="float32",
                            stat_layers=[], bin_edges=None)

    ds = run()
    t = median_time(run, repeat=3, warmup=0)
    return ds.attrs["matmul_flops"] / t, t


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
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    for n in (1024, 2048):
        batch = 512
        ceiling = gemm_rate(n, batch)
        achieved, seconds = engine_rate(n, batch)
        outside = 1.0 - (achieved / ceiling)
        ratio = achieved / ceiling
        rows.append([f"width {n}, batch {batch}, depth 16, float32", f"{ceiling / 1e9:.1f}", f"{achieved / 1e9:.1f}",
                     f"{ratio:.0%}", f"{outside:.0%}", "PASS" if ratio >= 0.6 else "miss"])
    print(f"machine: {machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(table(["engine run", "GEMM GFLOP/s (ceiling)", "engine GFLOP/s", "of ceiling", "time outside matmul",
                 "target 60%"], rows))
    if not args.skip_memory:
        out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        gib = res["peak_bytes"] / 2**30
        print(table(["memory run", "peak RSS", "time", "target"],
                    [["width 4096, depth 256, batch 256, float32, fwd+bwd", f"{gib:.2f} GiB",
                      f"{res['seconds']:.0f} s", "PASS (< 8 GiB)" if gib < 8 else "miss"]]))


if __name__ == "__main__":
    main()
