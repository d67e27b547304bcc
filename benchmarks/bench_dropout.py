"""Dropout benchmark: what alpha dropout adds to a ``sim.simulate`` draw.

    python benchmarks/bench_dropout.py

One row per dtype: the time of one draw of the engine (``sim.engine.run_draw``: width 1024, depth 32,
batch 256, forward, backward, the per-layer measurements) with alpha dropout at p = 0.1 against the
same draw without it, in interleaved rounds (target: at most 1.10x), and the whole ``sim.simulate``
call beside it (which also solves the dropout theory: the fixed point and the constants, once).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

import meanfield as mf
import sim
from sim.engine import NetworkConfig, Probes, run_draw

from _common import machine, median_time, table


def main():
    rows = []
    act = mf.activation("selu")
    c = mf.alpha_dropout(act, 0.1)
    for dtype in ("float32", "float64"):
        plain = NetworkConfig(depth=32, widths=(1024,) * 33, batch=256, dtype=dtype)
        drop = dataclasses.replace(plain, dropout=0.1, dropout_a=float(c.a[0]), dropout_b=float(c.b[0]),
                                   dropout_alpha=float(c.alpha_prime))
        probes = Probes()
        run_draw(drop, act, 0, probes)  # compile the dropout pass
        pairs = [(median_time(lambda: run_draw(plain, act, 0, probes), repeat=1, warmup=0),
                  median_time(lambda: run_draw(drop, act, 0, probes), repeat=1, warmup=0)) for _ in range(7)]
        t_plain, t_drop = (float(np.median(col)) for col in zip(*pairs))
        ratio = float(np.median([d / p for p, d in pairs]))
        kwargs = dict(depth=32, width=1024, batch=256, seeds=1, dtype=dtype, stat_layers=[], bin_edges=None)
        whole = [(median_time(lambda: sim.simulate("selu", **kwargs), repeat=1, warmup=0),
                  median_time(lambda: sim.simulate("selu", **kwargs, dropout=0.1), repeat=1, warmup=0))
                 for _ in range(3)]
        whole_ratio = float(np.median([d / p for p, d in whole]))
        rows.append([f"draw, {dtype}, N=1024 L=32 B=256", f"{t_plain:.3f} s", f"{t_drop:.3f} s",
                     f"{ratio:.3f}x (target 1.10x)", f"{whole_ratio:.3f}x"])
    print(f"# bench_dropout ({machine()}, torch threads {torch.get_num_threads()})")
    print(table(["work", "without dropout", "with p = 0.1", "draw ratio", "whole simulate call"], rows))


if __name__ == "__main__":
    main()
