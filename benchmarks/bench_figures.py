"""Figs 4 and 7 at the paper's settings: the time of one epoch, and the whole figures extrapolated.

    python benchmarks/bench_figures.py [--device cuda] [--images-per-batch 10000] [--iterations N]

Writes a CIFAR-10 folder in the real python layout (random images, ``figures.data.
write_cifar10_fixture``; 5 batches of ``--images-per-batch``, so 10,000 gives CIFAR-10's 50,000
training images), and trains Fig 4's network at the paper's settings (56 layers, SELU, batch 157,
32×32, lr 0.015, statistics every iteration) for one epoch, and Fig 7's (32 layers, dSELU, batch
128) for ``--iterations`` iterations at each k.  The time per iteration (median, the first
``WARMUP`` left out) times the figure's iterations is its extrapolated time: Fig 4 trains 4
activations × 3,190 iterations, Fig 7 3 values of k × 10 epochs of ⌈50,000/128⌉ = 391.
``benchmarks/gpu.sh`` runs it with ``--device cuda``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time

import torch

from figures.data import load_cifar10, write_cifar10_fixture
from figures.sim_figures import TRAINING_MODES
from figures.training import TrainConfig, train

from _common import machine, table

#: iterations left out of the median (cuDNN's algorithm search, allocator warm-up)
WARMUP = 3
#: the paper's runs: Fig 4 4 activations × 3,190 iterations; Fig 7 3 values of k × 10 × 391
FIG4_RUNS, FIG7_K = 4, (1, 2, 4)
CIFAR_TRAIN = 50_000


def time_per_iteration(cfg, images, iterations):
    """Median seconds per training iteration (after WARMUP) over ``iterations`` iterations."""
    stamps = []

    def progress(done, total):
        if cfg.device == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    start = time.perf_counter()
    train(dataclass_replace(cfg, epochs=1, max_iterations_per_epoch=iterations), images, progress=progress)
    steps = [b - a for a, b in zip([start] + stamps[:-1], stamps)][WARMUP:]
    # too few to leave the warm-up out: the mean over all, start-up included (an upper bound)
    return (statistics.median(steps) if steps else (stamps[-1] - start) / len(stamps)), len(stamps)


def dataclass_replace(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--images-per-batch", type=int, default=10_000)
    parser.add_argument("--iterations", type=int, default=None,
                        help="Fig 4 iterations timed (default: one epoch); Fig 7's per k (default 20)")
    parser.add_argument("--size", type=int, default=TRAINING_MODES["4"]["paper"]["size"])
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_figures.py: --device cuda but torch sees no CUDA GPU")
    fig4, fig7 = TRAINING_MODES["4"]["paper"], TRAINING_MODES["7"]["paper"]
    with tempfile.TemporaryDirectory() as root:
        t = time.perf_counter()
        write_cifar10_fixture(root, n_per_batch=args.images_per_batch)
        images = load_cifar10(root, size=args.size)
        t_data = time.perf_counter() - t
    n = len(images.train_y)
    epoch4 = math.ceil(n / fig4["batch"])
    cfg4 = TrainConfig("selu", depth=fig4["depth"], batch=fig4["batch"], lr=0.015, device=args.device)
    t = time.perf_counter()
    per_it4, done4 = time_per_iteration(cfg4, images, args.iterations or epoch4)
    wall4 = time.perf_counter() - t
    fig4_total = FIG4_RUNS * fig4["epochs"] * math.ceil(CIFAR_TRAIN / fig4["batch"]) * per_it4
    rows = [[f"Fig 4: {fig4['depth']} layers, batch {fig4['batch']}, {args.size}x{args.size}", f"{done4} it in "
             f"{wall4:.1f} s", f"{per_it4 * 1e3:.1f} ms", f"{FIG4_RUNS} x {fig4['epochs']} x "
             f"{math.ceil(CIFAR_TRAIN / fig4['batch'])} it", f"{fig4_total / 60:.1f} min"]]
    fig7_total = 0.0
    for k in FIG7_K:
        cfg7 = TrainConfig("dselu:epsilon=0.017", depth=fig7["depth"], k=k, batch=fig7["batch"], lr=0.005,
                           device=args.device)
        per_it7, done7 = time_per_iteration(cfg7, images, args.iterations or 20)
        its = fig7["epochs"] * math.ceil(CIFAR_TRAIN / fig7["batch"])
        fig7_total += its * per_it7
        rows.append([f"Fig 7: {fig7['depth']} layers, k = {k}, batch {fig7['batch']}", f"{done7} it",
                     f"{per_it7 * 1e3:.1f} ms", f"{its} it", f"{its * per_it7 / 60:.1f} min"])
    rows.append(["Fig 7, all k", "", "", "", f"{fig7_total / 60:.1f} min"])
    device = torch.cuda.get_device_name() if args.device == "cuda" else machine()
    print(f"device: {device}; fixture CIFAR-10 folder of {n:,} training images written and read in {t_data:.1f} s")
    print(table(["paper-settings run", "timed", "per iteration", "the figure's iterations", "extrapolated"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
