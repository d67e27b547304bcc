"""Finite-width benchmark: the O(1/N) theory against the recursion, the reduced chain against a core.

    python benchmarks/bench_finite_width.py

Rows (each beside its ceiling or target, measured in the same run):

* ``mf.finite_width`` for 1,000 configurations x 64 layers against ``mf.recursion`` on the same
  grid (target: at most 5x its time), for the closed forms (sSELU, lSELU) and for quadrature (tanh);
* ``sim.reduced_chain`` in unit-layers per second per core (N·(L + 1)·chains / time / threads;
  target: 1e8), beside numpy's own Gaussian generator (the draws alone) on one core.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

import meanfield as mf
import sim

from _common import machine, median_time, table


def main():
    rows = []
    q0 = np.geomspace(0.1, 10.0, 1000)
    warnings.simplefilter("ignore", mf.FiniteWidthWarning)
    for spec, configs in [("sselu:epsilon=0.03", 1000), ("lselu:epsilon=0.03", 1000), ("tanh", 100)]:
        act = mf.activation(spec)
        grid = q0[:: 1000 // configs]
        mf.finite_width(act, 64, q0=grid, widths=512)  # compile and fill caches
        # interleaved, so that the VM's slow spells hit both alike; the median of the pairs' ratios
        pairs = [(median_time(lambda: mf.recursion(act, 64, q0=grid), repeat=1, warmup=0),
                  median_time(lambda: mf.finite_width(act, 64, q0=grid, widths=512), repeat=1, warmup=0))
                 for _ in range(15)]
        t_rec, t_fw = (float(np.median(column)) for column in zip(*pairs))
        ratio = float(np.median([fw / rec for rec, fw in pairs]))
        rows.append([f"finite_width {configs} configs x 64 layers, {spec}", f"{t_fw * 1e3:.0f} ms",
                     f"{ratio:.2f}x recursion ({t_rec * 1e3:.0f} ms)", "PASS" if ratio <= 5 else "miss"])

    threads = len(os.sched_getaffinity(0))
    sim.reduced_chain("selu", 4, width=64, chains=threads)  # compile
    for spec, width, chains in [("selu", 1024, 4000), ("lselu:epsilon=0.017", 1024, 4000), ("tanh", 256, 200)]:
        started = time.perf_counter()
        ds = sim.reduced_chain(spec, 64, width=width, chains=chains, threads=threads)
        elapsed = time.perf_counter() - started
        rate = ds.attrs["unit_layers"] / elapsed / threads
        target = "PASS" if rate >= 1e8 else "miss"
        rows.append([f"reduced_chain {spec}, N={width} L=64, {chains} chains, {threads} threads",
                     f"{rate / 1e6:.0f} M unit-layers/s/core", "target 100 M", target if spec != "tanh" else
                     "(numpy path: any f)"])
    rng = np.random.default_rng(0)
    buffer = np.empty(1 << 20)
    t = median_time(lambda: rng.standard_normal(out=buffer), repeat=9)
    rows.append(["numpy Generator.standard_normal (the draws alone, one core)", f"{buffer.size / t / 1e6:.0f} M/s",
                 "ceiling for any chain", ""])
    print(f"machine: {machine()}")
    print(table(["figure", "rate / time", "vs ceiling / target", "target"], rows))


if __name__ == "__main__":
    main()
