"""Sweep engine benchmark: points per second with 1 and 2 workers, and per-point overhead.

    python benchmarks/bench_sweep.py

CPU-bound points (one simulate run each, torch on one thread per worker):
target 1.7x or better going from 1 to 2 workers on 2 cores.  Tiny theory
points measure the engine's own cost per point (submit, run, write the
point file atomically, gather): target under 50 ms.  Cluster start-up is
done on a warm cluster passed by address (as --scheduler does) and excluded
from the rates; the last row shows a cold embedded LocalCluster.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time

from _common import machine, table

CPU_BOUND = """
[grid]
seed = [{seeds}]
[simulate]
activation = "sselu:epsilon=0.017"
depth = 24
width = 256
batch = 128
stat_layers = []
"""

TINY = """
[sweep]
kind = "theory"
[grid]
q0 = [{q0s}]
[theory]
activation = "selu"
depth = 2
"""


def _warm_cluster(workers):
    """A LocalCluster whose workers have already imported torch and the engine."""
    from dask.distributed import Client, LocalCluster

    t = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    client.run(lambda: __import__("sim.simulation") and None)
    return cluster, client, time.perf_counter() - t


def _timed_sweep(text, scheduler=None, workers=None):
    from sim.sweep import sweep

    folder = tempfile.mkdtemp(prefix="bench-sweep-")
    path = os.path.join(folder, "s.toml")
    with open(path, "w") as fh:
        fh.write(text)
    t = time.perf_counter()
    ds = sweep(path, os.path.join(folder, "out"), scheduler=scheduler, workers=workers)
    elapsed = time.perf_counter() - t
    compute = float(ds.seconds.sum())
    shutil.rmtree(folder)
    return elapsed, compute


def main():
    n = 32
    text = CPU_BOUND.format(seeds=", ".join(str(i) for i in range(n)))
    rows = []
    rates = {}
    for workers in (1, 2):
        cluster, client, startup = _warm_cluster(workers)
        wall, compute = _timed_sweep(text, scheduler=cluster.scheduler_address)
        client.close()
        cluster.close()
        rates[workers] = n / wall
        rows.append([f"{n} CPU-bound points, {workers} warm worker(s)", f"{rates[workers]:.2f} points/s",
                     f"{compute / n * 1e3:.0f} ms compute/point", f"cold start {startup:.1f} s (excluded)"])
    speedup = rates[2] / rates[1]
    rows.append(["speed-up 2 workers vs 1", f"{speedup:.2f}x", "target >= 1.7x", "PASS" if speedup >= 1.7 else "miss"])
    m = 200
    tiny = TINY.format(q0s=", ".join(f"{0.5 + i / m:.4f}" for i in range(m)))
    cluster, client, _ = _warm_cluster(2)
    wall, compute = _timed_sweep(tiny, scheduler=cluster.scheduler_address)
    client.close()
    cluster.close()
    overhead = wall * 2 / m - compute / m
    rows.append([f"{m} tiny theory points, 2 warm workers", f"{m / wall:.1f} points/s",
                 f"overhead {overhead * 1e3:.1f} ms/point", "PASS (< 50 ms)" if overhead < 0.05 else "miss"])
    wall, _ = _timed_sweep(text, workers=2)
    rows.append([f"{n} CPU-bound points, embedded LocalCluster (cold)", f"{n / wall:.2f} points/s",
                 "includes starting 2 workers and their imports", ""])
    print(f"machine: {machine()}")
    print(table(["sweep", "rate", "detail", ""], rows))


if __name__ == "__main__":
    main()
