"""Spectrum benchmark: the density of the Jacobian's squared singular values, and network probes.

    python benchmarks/bench_spectrum.py

Rows (each beside its ceiling or target, measured in the same run):

* ``mf.spectrum`` density on a 1,000-point grid at depth 64 (sSELU, orthogonal weights), with one
  law for every layer (q0 = q*) and with 64 distinct q_l (q0 = 3), and the latter for SELU, dSELU
  and lSELU (orthogonal) and dSELU (Gaussian: the family's slowest), against the issue's 1 s target,
  and against the floor any method that evaluates every layer's law once per grid point pays: one
  plain 96-node sum of the Cauchy transform per layer and point (numpy, vectorised);
* ``sim.jacobian_spectrum`` probe moments at N = 4096, L = 64 (16 probes) against one forward and
  one backward pass of the same network with a batch of 16, its weights drawn as ``sim.simulate``
  draws them (target: at most 3x).
"""

from __future__ import annotations

import numpy as np
import torch

import meanfield as mf
from sim.engine import NetworkConfig, weight
from sim.spectrum import jacobian_spectrum

from _common import machine, median_time, table


def _floor(layers, points, nodes=96):
    """One plain Cauchy-transform sum per layer and point: complex divisions, numpy."""
    c = (np.linspace(0.1, 3.0, points) + 1e-3j)[:, None]
    t = np.linspace(0.0, 1.8, nodes)[None, :]
    w = np.full(nodes, 1.0 / nodes)

    def run():
        for _ in range(layers):
            (w / (c - t)).sum(axis=1)

    return median_time(run, repeat=3)


def main():
    torch.set_num_threads(1)
    rows = []
    spec = "sselu:epsilon=0.017"
    floor = _floor(64, 1000)
    cases = [(spec, 1.0, "orthogonal", "one law (q0 = q*)"), (spec, 3.0, "orthogonal", "64 distinct q_l (q0 = 3)")]
    cases += [(other, 3.0, weights, f"64 distinct q_l (q0 = 3), {other.split(':')[0]}, {weights}")
              for other in ("selu", "dselu:epsilon=0.017", "lselu:epsilon=0.017") for weights in ("orthogonal",)]
    cases += [("dselu:epsilon=0.017", 3.0, "gaussian", "64 distinct q_l (q0 = 3), dselu, gaussian")]
    for act, q0, weights, what in cases:
        mf.spectrum(act, 64, q0=q0, weights=weights)  # compile, load caches
        t = median_time(lambda: mf.spectrum(act, 64, q0=q0, weights=weights, points=1000), repeat=3)
        rows.append([f"density, L = 64, {what}", f"{t:.2f} s", f"{t / 1.0:.2f}x the 1 s target",
                     f"{t / floor:.1f}x the floor ({floor:.3f} s)"])

    n, depth, probes = 4096, 64, 16
    cfg = NetworkConfig(depth=depth, widths=(n,) * (depth + 1), batch=probes)

    def forward_backward():
        """One network as sim.simulate runs it: its weights drawn, a batch of 16 forward, back."""
        ws = [weight(cfg, 0, layer) for layer in range(1, depth + 1)]
        h = torch.randn(probes, n, dtype=torch.float64)
        for w in ws:
            h = torch.tanh(h) @ w.T
        g = h
        for w in reversed(ws):
            g = g @ w

    base = median_time(forward_backward, repeat=1, warmup=0)
    jacobian_spectrum(spec, 2, width=256, method="probe", probes=4, draws=1, theory=False)
    t = median_time(lambda: jacobian_spectrum(spec, depth, width=n, method="probe", probes=probes, draws=1,
                                              theory=False), repeat=1, warmup=0)
    rows.append([f"probe moments, N = {n}, L = {depth}, {probes} probes", f"{t:.2f} s",
                 f"{t / base:.2f}x one network's forward + backward pass, weights drawn ({base:.2f} s; target 3x)",
                 "the weight draw is most of both"])
    print(f"# bench_spectrum ({machine()}, torch threads 1)")
    print(table(["work", "time", "against", "note"], rows))


if __name__ == "__main__":
    main()
