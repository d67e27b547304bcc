"""Kernel benchmark on the paper's Table 3 input [512, 64, 56, 56] float32.

    python benchmarks/bench_kernels.py

Forward and backward latency of our sSELU and lSELU kernels (backward with
and without a trainable λ) against torch.nn.functional.selu and against a
device-to-device copy of the same bytes (the bandwidth ceiling), timed with
CUDA events, medians of repeated runs after warm-up.  Targets on an H100:
forward at 85% or more of the copy's bandwidth; forward and backward no
slower than torch's native SELU.  Without a GPU it says so and exits 0.
"""

from __future__ import annotations

import statistics
import sys

import torch

from _common import table

SHAPE = (512, 64, 56, 56)


def cuda_time(fn, repeat=50, warmup=10):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1e-3)
    return statistics.median(times)


def main():
    if not torch.cuda.is_available():
        print("no CUDA GPU: the kernel benchmark needs one (run it on a GPU machine); nothing measured")
        return 0
    from cuda_kernels import kernels
    from cuda_kernels.modules import module_for

    reason = kernels.unavailable_reason()
    if reason is not None:
        print(f"a GPU is present but the numba kernels cannot run: {reason}")
        return 1
    device = torch.device("cuda")
    x = torch.randn(SHAPE, device=device)
    g = torch.randn(SHAPE, device=device)
    nbytes = x.numel() * x.element_size()
    dst = torch.empty_like(x)
    t_copy = cuda_time(lambda: dst.copy_(x))
    copy_bw = 2 * nbytes / t_copy  # read + write
    rows = [["device-to-device copy (ceiling)", f"{t_copy * 1e3:.3f}", "", f"{copy_bw / 1e9:.0f}", "100%"]]

    xs = x.clone().requires_grad_(True)
    y_selu = torch.nn.functional.selu(xs)
    t_selu_f = cuda_time(lambda: torch.nn.functional.selu(x))
    t_selu_b = cuda_time(lambda: torch.autograd.grad(y_selu, xs, g, retain_graph=True))
    rows.append(["torch.nn.functional.selu", f"{t_selu_f * 1e3:.3f}", f"{t_selu_b * 1e3:.3f}",
                 f"{2 * nbytes / t_selu_f / 1e9:.0f}", f"{2 * nbytes / t_selu_f / copy_bw:.0%}"])
    verdicts = []
    for spec in ("sselu:epsilon=0.017", "lselu:epsilon=0.017"):
        for trainable in (False, True):
            m = module_for(spec, trainable_lambda=trainable).to(device)
            xr = x.clone().requires_grad_(True)
            y = m(xr)
            inputs = (xr, m.lam) if trainable else (xr,)
            t_f = cuda_time(lambda: m(x))
            t_b = cuda_time(lambda: torch.autograd.grad(y, inputs, g, retain_graph=True))
            bw = 2 * nbytes / t_f
            name = f"{spec.split(':')[0]}{' (trainable lambda)' if trainable else ''}"
            rows.append([name, f"{t_f * 1e3:.3f}", f"{t_b * 1e3:.3f}", f"{bw / 1e9:.0f}", f"{bw / copy_bw:.0%}"])
            verdicts.append((name, bw / copy_bw >= 0.85, t_f <= t_selu_f * 1.02, t_b <= t_selu_b * 1.02))
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, input {list(SHAPE)} float32")
    print(table(["kernel", "forward ms", "backward ms", "forward GB/s", "of copy bandwidth"], rows))
    for name, bw_ok, f_ok, b_ok in verdicts:
        print(f"{name}: forward >= 85% of copy {'PASS' if bw_ok else 'miss'}; "
              f"forward <= selu {'PASS' if f_ok else 'miss'}; backward <= selu {'PASS' if b_ok else 'miss'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
