"""Kernel benchmark on the paper's Table 3 input [512, 64, 56, 56] float32.

    python benchmarks/bench_kernels.py [--shapes]

Forward and backward of our sSELU and lSELU kernels (backward with and
without a trainable λ) against torch.nn.functional.selu and against a
device-to-device copy of the same bytes (the bandwidth ceiling), timed with
CUDA events, medians of repeated runs after warm-up.  Two times per row:

- device ms: ten calls queued behind a ~10 ms GPU sleep, so the events time
  the GPU's work alone (the kernel's latency, what Table 3 compares);
- call ms: one call between two events on an idle GPU, so Python's launch
  cost is in it (numba's launch path costs far more host time than torch's).

Targets on an H100 (device ms): forward at 85% or more of the copy's
bandwidth; forward and backward no slower than torch's native SELU (a ratio
within the timing noise, torch's forward timed twice, counts as a tie).
Without a GPU it says so and exits 0.

``--shapes`` then times each kernel at every launch shape (threads per block, 4-wide vectors
per thread) that ``cuda_kernels.kernels`` accepts, through the torch modules as above (device
time), to choose the defaults on a new GPU (``FORWARD_LAUNCH`` and its neighbours).
"""

from __future__ import annotations

import statistics
import sys

import torch

from _common import table

SHAPE = (512, 64, 56, 56)
#: Calls per timed region for the device time, and the GPU sleep (cycles) that
#: lets the host queue them all first (~10 ms at 2 GHz).
QUEUED, SLEEP_CYCLES = 10, 20_000_000


def _events(fn, calls, sleep, repeat):
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if sleep:
            torch.cuda._sleep(SLEEP_CYCLES)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1e-3 / calls)
    return statistics.median(times)


def cuda_times(fn, repeat=30, warmup=5):
    """(device seconds, call seconds) per call, medians."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    return _events(fn, QUEUED, True, repeat), _events(fn, 1, False, repeat)


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
    copy_dev, copy_call = cuda_times(lambda: dst.copy_(x))
    copy_bw = 2 * nbytes / copy_dev  # read + write
    rows = [["device-to-device copy (ceiling)", f"{copy_dev * 1e3:.3f}", f"{copy_call * 1e3:.3f}", "", "",
             f"{copy_bw / 1e9:.0f}", "100%"]]

    def measure(name, module, params=()):
        xr = x.clone().requires_grad_(True)
        y = module(xr)
        inputs = (xr, *params)
        fwd = cuda_times(lambda: module(x))
        bwd = cuda_times(lambda: torch.autograd.grad(y, inputs, g, retain_graph=True))
        bw = 2 * nbytes / fwd[0]
        rows.append([name, f"{fwd[0] * 1e3:.3f}", f"{fwd[1] * 1e3:.3f}", f"{bwd[0] * 1e3:.3f}",
                     f"{bwd[1] * 1e3:.3f}", f"{bw / 1e9:.0f}", f"{bw / copy_bw:.0%}"])
        return fwd[0], bwd[0], bw / copy_bw

    selu_f, selu_b, _ = measure("torch.nn.functional.selu", torch.nn.functional.selu)
    # Timing noise: the same torch forward timed again; a ratio within it is a tie.
    noise = abs(cuda_times(lambda: torch.nn.functional.selu(x))[0] / selu_f - 1)
    verdicts = []
    for spec in ("sselu:epsilon=0.017", "lselu:epsilon=0.017"):
        for trainable in (False, True):
            m = module_for(spec, trainable_lambda=trainable).to(device)
            name = f"{spec.split(':')[0]}{' (trainable lambda)' if trainable else ''}"
            f, b, frac = measure(name, m, (m.lam,) if trainable else ())
            verdicts.append((name, frac, f / selu_f, b / selu_b))
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, input {list(SHAPE)} float32")
    print(table(["kernel", "forward device ms", "forward call ms", "backward device ms", "backward call ms",
                 "forward GB/s", "of copy bandwidth"], rows))
    print(f"timing noise (torch's selu timed twice): {noise:.2%}")
    for name, frac, f_ratio, b_ratio in verdicts:
        print(f"{name}: forward at {frac:.0%} of copy (target 85%) {'PASS' if frac >= 0.85 else 'miss'}; "
              f"forward {f_ratio:.3f}x selu {'PASS' if f_ratio <= 1 + noise else 'miss'}; "
              f"backward {b_ratio:.3f}x selu {'PASS' if b_ratio <= 1 + noise else 'miss'}")
    if "--shapes" in sys.argv[1:]:
        print(table(["launch shape (threads, vectors per thread)", "forward device ms", "backward device ms",
                     "backward with dL/dlambda device ms"], launch_shape_rows(x, g, selu_f, selu_b)))
    return 0


#: the launch shapes tried by ``--shapes``: threads up to ``kernels.THREADS`` (the reduction's
#: shared array), one to four vectors in flight per thread
SHAPES = [(t, v) for t in (64, 128, 256) for v in (1, 2, 4)]


def launch_shape_rows(x, g, selu_f, selu_b):
    """Device ms of the three kernels at each shape in SHAPES (lSELU, λ trainable for the third),
    each also as a ratio to torch's SELU."""
    from cuda_kernels import kernels
    from cuda_kernels.modules import module_for

    fixed = module_for("lselu:epsilon=0.017").to(x.device)
    trained = module_for("lselu:epsilon=0.017", trainable_lambda=True).to(x.device)
    xr = x.clone().requires_grad_(True)
    y_fixed, y_trained = fixed(xr), trained(xr)
    defaults = kernels.FORWARD_LAUNCH, kernels.BACKWARD_LAUNCH, kernels.BACKWARD_LAMBDA_LAUNCH
    rows = []
    try:
        for shape in SHAPES:
            kernels.FORWARD_LAUNCH = kernels.BACKWARD_LAUNCH = kernels.BACKWARD_LAMBDA_LAUNCH = shape
            f = cuda_times(lambda: fixed(x), repeat=15)[0]
            b = cuda_times(lambda: torch.autograd.grad(y_fixed, (xr,), g, retain_graph=True), repeat=15)[0]
            bl = cuda_times(lambda: torch.autograd.grad(y_trained, (xr, trained.lam), g, retain_graph=True),
                            repeat=15)[0]
            def mark(default, shape=shape):
                return " (default)" if shape == default else ""

            rows.append([f"{shape}", f"{f * 1e3:.3f} ({f / selu_f:.3f}x selu){mark(defaults[0])}",
                         f"{b * 1e3:.3f} ({b / selu_b:.3f}x){mark(defaults[1])}",
                         f"{bl * 1e3:.3f} ({bl / selu_b:.3f}x){mark(defaults[2])}"])
    finally:
        kernels.FORWARD_LAUNCH, kernels.BACKWARD_LAUNCH, kernels.BACKWARD_LAMBDA_LAUNCH = defaults
    return rows


if __name__ == "__main__":
    sys.exit(main())
