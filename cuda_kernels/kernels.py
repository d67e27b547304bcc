"""numba CUDA kernels for the exponential-linear family (Appendix B).

    f(x)  = λx                       (x > 0),   λ(α expm1(βx) + κx)      (x <= 0)
    ∂L/∂x = ∂L/∂y · λ                (x > 0),   ∂L/∂y · λ(αβ e^{βx} + κ) (x <= 0)
    ∂L/∂λ = Σ (y/λ) ∂L/∂y                                              (eq 41)

sSELU is (β, κ) = (β, 0), lSELU (1, β), SELU/dSELU (1, 0).  The scalar math
lives in plain Python functions compiled twice: for the device (called by
the kernels) and for the CPU (``cpu_forward``, used by the tests to check
that the kernels only index).  λ is read from a one-element device array, so
a trainable λ never makes the host wait for the GPU.

Forward: one grid-stride elementwise pass (Algorithm 1).  Backward: a
grid-stride pass writing ∂L/∂x and, when λ is trainable, a per-thread Kahan
sum of (y/λ)·∂L/∂y, a shared-memory tree reduction per block and one float64
atomic add per block (Algorithm 2; the launch shapes, and where they depart
from the paper's "few thousand blocks", are measured below).  Arrays move as
4-wide vectors (``_vector``) when aligned for them.  The reduction uses shared
memory, not warp shuffles, so it also runs under numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``).

dtypes: float64 computes and accumulates in float64; float32 and float16
compute and accumulate in float32 (float16 is read and written as float16);
blocks meet in float64.  bfloat16 cannot cross numba's array interface and
is rejected.

Arrays: anything with ``__cuda_array_interface__`` (torch CUDA tensors, CuPy,
numba device arrays) or, under the simulator, numpy arrays; 1-D contiguous
views are used (the torch layer makes inputs contiguous first).
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np

try:
    import numba
    from numba import cuda
except ImportError:  # numba is an optional extra
    numba = None
    cuda = None

#: Most threads per block: a power of two (the tree reduction halves it).
THREADS = 256
#: Launch shape per kernel, (threads per block, 4-wide vectors per thread),
#: measured on an H200 at Table 3's size (float32 [512, 64, 56, 56], device
#: time, ``python benchmarks/bench_kernels.py --shapes``; a device-to-device
#: copy of the same bytes takes 0.194 ms, torch's SELU 0.195 ms forward and
#: 0.285 ms backward):
#: forward (256, 1) 0.219 ms, (256, 2) 0.195 ms, (128, 2) 0.195 ms, (256, 4) 0.198 ms;
#: ∂L/∂x (256, 1) 0.284 ms, (256, 2) 0.286 ms, (256, 4) 0.288 ms;
#: ∂L/∂x with ∂L/∂λ (128, 2) 0.341 ms (100,352 blocks), (128, 4) 0.316 ms,
#: (128, 8) 0.307 ms (25,088 blocks), (128, 16) 0.309 ms, (256, 8) 0.313 ms.
#: On an H100 (the earlier defaults) forward (256, 1) 0.272 ms and (256, 2)
#: 0.276 ms against torch's 0.275 ms; ∂L/∂x with ∂L/∂λ (128, 2) 0.404 ms,
#: (256, 2) 0.407 ms, and the "few thousand blocks" of Appendix B (docs/theory.md §7):
#: 3168-4224 blocks of 256 0.425 ms, 2112 blocks 0.452-0.467 ms; (128, 8) was not measured there.
#: Blocks meet in float64, so more blocks cost no accuracy.
FORWARD_LAUNCH = (256, 2)
BACKWARD_LAUNCH = (256, 1)
BACKWARD_LAMBDA_LAUNCH = (128, 8)
#: Cap on blocks (grid-stride covers the rest): CUDA's limit on a grid's x size.
MAX_BLOCKS = 2**31 - 1
#: Grids below this many blocks draw numba-cuda's low-occupancy warning (its
#: dispatcher's threshold); for a small tensor that is expected, not a mistake.
SMALL_GRID = 128


@functools.cache
def unavailable_reason() -> str | None:
    """Why numba's CUDA kernels cannot run here, or None when they can.

    On a real GPU a tiny kernel using the same libdevice math is compiled
    once, so a broken toolchain shows up here with its cause rather than as
    a traceback inside the first training step.  (numba-cuda 0.30.4 and
    older, for one, cannot compile any kernel under NumPy 2.5, which removed
    ``numpy.row_stack``.)
    """
    if cuda is None:
        return "numba and numba-cuda are not installed (pip install 'meanfield[cuda]')"
    try:
        if not cuda.is_available():
            return "numba sees no CUDA device"
        if not _simulating():
            cuda.jit("void(float32[::1])")(_probe_kernel)
    except Exception as exc:  # any failure means: use the torch path
        hint = ("; NumPy 2.5 removed numpy.row_stack, which this numba-cuda still registers: install "
                "'numpy<2.5' (the cuda extra's pin) or a numba-cuda that supports NumPy 2.5"
                if "row_stack" in str(exc) else "")
        return f"numba-cuda {_numba_cuda_version()} cannot compile kernels here: {type(exc).__name__}: {exc}{hint}"
    return None


def available() -> bool:
    """True when numba's CUDA target (a GPU or the simulator) can run kernels."""
    return unavailable_reason() is None


def _probe_kernel(a):
    i = cuda.grid(1)
    if i < a.size:
        a[i] = math.expm1(a[i])


def _numba_cuda_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("numba-cuda")
    except PackageNotFoundError:
        return "(unknown version)"


# ---------------------------------------------------------------------------
# The scalar math, once.
# ---------------------------------------------------------------------------


def _unit_value(x, alpha, rate, slope):
    """f(x)/λ."""
    if x > 0:
        return x
    return alpha * math.expm1(rate * x) + slope * x


def _unit_slope(x, alpha, rate, slope):
    """f'(x)/λ."""
    if x > 0:
        return x * 0 + 1
    return alpha * rate * math.exp(rate * x) + slope


if numba is not None:
    from ._vector import WIDTH, load4, store4, vector_align

    _dev_value = cuda.jit(device=True)(_unit_value)
    _dev_slope = cuda.jit(device=True)(_unit_slope)
    _cpu_value = numba.njit(_unit_value)

    @cuda.jit(device=True)
    def _values4(v, scale, alpha, rate, slope, one):
        """f(v) = λ · (f(v)/λ) for a vector of four."""
        return (scale * _dev_value(v[0] * one, alpha, rate, slope), scale * _dev_value(v[1] * one, alpha, rate, slope),
                scale * _dev_value(v[2] * one, alpha, rate, slope), scale * _dev_value(v[3] * one, alpha, rate, slope))

    @cuda.jit(device=True)
    def _grads4(v, g, scale, alpha, rate, slope, one):
        """∂L/∂x = ∂L/∂y · f'(x) for a vector of four."""
        return ((g[0] * one) * scale * _dev_slope(v[0] * one, alpha, rate, slope),
                (g[1] * one) * scale * _dev_slope(v[1] * one, alpha, rate, slope),
                (g[2] * one) * scale * _dev_slope(v[2] * one, alpha, rate, slope),
                (g[3] * one) * scale * _dev_slope(v[3] * one, alpha, rate, slope))

    @cuda.jit(device=True)
    def _dot4(v, g, alpha, rate, slope, one):
        """Σ ∂L/∂y · y/λ over a vector of four (pairwise)."""
        return (((g[0] * one) * _dev_value(v[0] * one, alpha, rate, slope)
                 + (g[1] * one) * _dev_value(v[1] * one, alpha, rate, slope))
                + ((g[2] * one) * _dev_value(v[2] * one, alpha, rate, slope)
                   + (g[3] * one) * _dev_value(v[3] * one, alpha, rate, slope)))

    # Layout of every kernel: elements [0, 4·nvec) as 4-wide vectors, up to
    # two vectors in flight per thread per grid-stride step (4-byte loads, one
    # per thread, leave HBM idle: 75% of a copy's bandwidth on an H100, against
    # 99-100% with vectors); then the rest, fewer than four elements,
    # or all of them when the arrays are not aligned for vectors (nvec = 0),
    # one element at a time.

    @cuda.jit
    def _forward_kernel(x, y, lam, alpha, rate, slope, one, nvec):
        scale = lam[0]
        s = cuda.gridsize(1)
        t = cuda.grid(1)
        j = t
        while j + s < nvec:
            a = load4(x, 4 * j)
            b = load4(x, 4 * (j + s))
            store4(y, 4 * j, _values4(a, scale, alpha, rate, slope, one))
            store4(y, 4 * (j + s), _values4(b, scale, alpha, rate, slope, one))
            j += 2 * s
        if j < nvec:
            store4(y, 4 * j, _values4(load4(x, 4 * j), scale, alpha, rate, slope, one))
        i = 4 * nvec + t
        while i < x.size:
            y[i] = scale * _dev_value(x[i] * one, alpha, rate, slope)
            i += s

    @cuda.jit
    def _backward_input_kernel(x, grad_y, grad_x, lam, alpha, rate, slope, one, nvec):
        scale = lam[0]
        s = cuda.gridsize(1)
        t = cuda.grid(1)
        j = t
        while j + s < nvec:
            xa, ga = load4(x, 4 * j), load4(grad_y, 4 * j)
            xb, gb = load4(x, 4 * (j + s)), load4(grad_y, 4 * (j + s))
            store4(grad_x, 4 * j, _grads4(xa, ga, scale, alpha, rate, slope, one))
            store4(grad_x, 4 * (j + s), _grads4(xb, gb, scale, alpha, rate, slope, one))
            j += 2 * s
        if j < nvec:
            store4(grad_x, 4 * j, _grads4(load4(x, 4 * j), load4(grad_y, 4 * j), scale, alpha, rate, slope, one))
        i = 4 * nvec + t
        while i < x.size:
            grad_x[i] = (grad_y[i] * one) * scale * _dev_slope(x[i] * one, alpha, rate, slope)
            i += s

    def _make_backward_lambda_kernel(acc_type):
        @cuda.jit
        def kernel(x, grad_y, grad_x, grad_lam, lam, alpha, rate, slope, one, nvec):
            partial = cuda.shared.array(THREADS, dtype=acc_type)
            scale = lam[0]
            s = cuda.gridsize(1)
            t = cuda.grid(1)
            # Kahan: total += group without losing the small groups.
            total = acc_type(0)
            carry = acc_type(0)
            j = t
            while j < nvec:
                # Two vectors in flight when there are two (four loads before any use), else one.
                xa, ga = load4(x, 4 * j), load4(grad_y, 4 * j)
                second = j + s < nvec
                xb, gb = (load4(x, 4 * (j + s)), load4(grad_y, 4 * (j + s))) if second else (xa, ga)
                store4(grad_x, 4 * j, _grads4(xa, ga, scale, alpha, rate, slope, one))
                group = _dot4(xa, ga, alpha, rate, slope, one)
                if second:
                    store4(grad_x, 4 * (j + s), _grads4(xb, gb, scale, alpha, rate, slope, one))
                    group += _dot4(xb, gb, alpha, rate, slope, one)
                term = group - carry
                u = total + term
                carry = (u - total) - term
                total = u
                j += 2 * s
            i = 4 * nvec + t
            while i < x.size:
                xv = x[i] * one
                g = grad_y[i] * one
                grad_x[i] = g * scale * _dev_slope(xv, alpha, rate, slope)
                term = g * _dev_value(xv, alpha, rate, slope) - carry
                u = total + term
                carry = (u - total) - term
                total = u
                i += s
            tid = cuda.threadIdx.x
            partial[tid] = total
            cuda.syncthreads()
            width = cuda.blockDim.x // 2
            while width > 0:
                if tid < width:
                    partial[tid] += partial[tid + width]
                cuda.syncthreads()
                width //= 2
            if tid == 0:
                # Blocks meet in float64 whatever the input: thousands of float32
                # atomic adds would lose ~sqrt(blocks) ulps of the total.
                cuda.atomic.add(grad_lam, 0, float(partial[0]))

        return kernel

    _BACKWARD_LAMBDA = {
        np.dtype(np.float32): _make_backward_lambda_kernel(numba.float32),
        np.dtype(np.float64): _make_backward_lambda_kernel(numba.float64),
    }


# ---------------------------------------------------------------------------
# Launchers.
# ---------------------------------------------------------------------------

#: Input dtype -> compute and accumulation dtype.
_COMPUTE = {np.dtype(np.float16): np.float32, np.dtype(np.float32): np.float32, np.dtype(np.float64): np.float64}


def _dtype(arr):
    """The numpy dtype of a numpy array or of anything with ``__cuda_array_interface__``."""
    if "bfloat16" in str(getattr(arr, "dtype", "")):
        raise ValueError("bfloat16 cannot cross numba's CUDA array interface; convert with x.float() first")
    if isinstance(arr, np.ndarray):
        dt = arr.dtype
    else:
        try:
            dt = np.dtype(arr.__cuda_array_interface__["typestr"])
        except AttributeError:
            raise ValueError(f"expected an array with __cuda_array_interface__ (or numpy under the simulator), "
                             f"got {type(arr).__name__}") from None
    if dt not in _COMPUTE:
        raise ValueError(f"unsupported dtype {dt}; the kernels take float16, float32 or float64")
    return np.dtype(dt)


def _as_device(arr):
    if cuda is None:
        raise ValueError("the CUDA kernels need numba: pip install 'meanfield[cuda]'")
    if isinstance(arr, np.ndarray):
        if not _simulating():
            raise ValueError("numpy arrays are accepted only under numba's CUDA simulator; pass a device array")
        return arr
    if not hasattr(arr, "__cuda_array_interface__"):
        raise ValueError(f"expected an array with __cuda_array_interface__, got {type(arr).__name__}")
    return cuda.as_cuda_array(arr, sync=False)


def _simulating() -> bool:
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def _check_threads(threads):
    if threads < 1 or threads > THREADS or threads & (threads - 1):
        raise ValueError(f"threads must be a power of two between 1 and {THREADS}, got {threads}")
    return threads


def _check_blocks(blocks):
    if blocks < 1:
        raise ValueError(f"blocks must be >= 1, got {blocks}")
    return blocks


def _lambda_array(lam, acc, stream):
    """λ as the one-element device array the kernels read (so a trainable λ never leaves the GPU)."""
    if np.ndim(lam) == 0 and not hasattr(lam, "__cuda_array_interface__"):
        value = np.array([lam], dtype=acc)
        return value if _simulating() else cuda.to_device(value, stream=stream or 0)
    if _dtype(lam) != acc or int(np.prod(np.shape(lam))) != 1:
        raise ValueError(f"lam must be a number or a one-element {np.dtype(acc)} array, got shape "
                         f"{tuple(np.shape(lam))} of {_dtype(lam)}")
    return _as_device(lam).reshape(1)


def _vector_count(n, itemsize, *addresses):
    """4-wide vectors the kernels may use: n // 4 when every array starts aligned for them, else 0."""
    align = vector_align(itemsize)
    return n // WIDTH if all(a % align == 0 for a in addresses) else 0


def _blocks(n, nvec, cap, per_thread, threads):
    """Blocks for ``per_thread`` vectors per thread (one element each without vectors), at most ``cap``."""
    units = math.ceil(nvec / per_thread) if nvec else n
    return min(max(1, math.ceil(units / threads)), cap)


def _address(arr):
    return arr.ctypes.data if isinstance(arr, np.ndarray) else arr.__cuda_array_interface__["data"][0]


def _launch(kernel, blocks, threads, stream, *args):
    """Launch on ``stream``; a small tensor's small grid is expected, not worth numba's warning."""
    def launch():
        config = kernel[blocks, threads] if stream is None or _simulating() else kernel[blocks, threads, stream]
        config(*args)

    if blocks >= SMALL_GRID:
        launch()
        return
    with warnings.catch_warnings():  # numba warns when configuring, wrapped in ANSI codes
        warnings.filterwarnings("ignore", message=".*Grid size .* under-utilization")
        launch()


def _flat(arr, name):
    """A C-contiguous array as a 1-D view (a copy would lose what the kernel writes)."""
    contiguous = arr.flags.c_contiguous if isinstance(arr, np.ndarray) else arr.is_c_contiguous()
    if not contiguous:
        raise ValueError(f"{name} must be C-contiguous (the torch layer makes its inputs contiguous; "
                         f"here use np.ascontiguousarray or .copy())")
    return arr.reshape(arr.size) if arr.ndim != 1 else arr


def forward(x, lam, alpha, rate=1.0, slope=0.0, out=None, *, threads=None, blocks=None, stream=None):
    """y = f(x) elementwise into ``out`` (allocated like ``x`` when None); returns ``out``.

    ``lam`` is a number or a one-element device array of the compute dtype
    (float32 for float16/float32 input, float64 for float64), read on the device.
    """
    dt = _dtype(x)
    xd = _as_device(x)
    if out is None:
        out = np.empty_like(x) if isinstance(x, np.ndarray) else cuda.device_array_like(xd)
    yd = _as_device(out)
    if xd.shape != yd.shape:
        raise ValueError(f"out has shape {yd.shape}, x has {xd.shape}")
    xf, yf = _flat(xd, "x"), _flat(yd, "out")
    n = xf.size
    nvec = _vector_count(n, dt.itemsize, _address(xf), _address(yf))
    default_threads, per_thread = FORWARD_LAUNCH
    threads = _check_threads(default_threads if threads is None else threads)
    blocks = _check_blocks(_blocks(n, nvec, MAX_BLOCKS, per_thread, threads) if blocks is None else blocks)
    c = _COMPUTE[dt]
    lamd = _lambda_array(lam, c, stream)
    if n:
        _launch(_forward_kernel, blocks, threads, stream, xf, yf, lamd, c(alpha), c(rate), c(slope), c(1), nvec)
    return out


def backward(x, grad_y, lam, alpha, rate=1.0, slope=0.0, grad_x=None, *, want_lambda=True, threads=None,
             blocks=None, stream=None, grad_lambda=None):
    """∂L/∂x into ``grad_x`` and, with ``want_lambda``, ∂L/∂λ = Σ (y/λ)·∂L/∂y.

    Returns ``(grad_x, grad_lambda)`` where ``grad_lambda`` is a one-element
    float64 device array, or None.  Threads sum in the compute dtype (float32
    for float16/float32 inputs) with Kahan's compensation, blocks in float64.
    Pass ``grad_lambda`` (float64, one element) to accumulate into it.
    ``lam`` as in :func:`forward`; ``threads`` and ``blocks`` (a cap on the
    grid) default to BACKWARD_LAMBDA_LAUNCH / BACKWARD_LAUNCH.
    """
    dt = _dtype(x)
    if _dtype(grad_y) != dt:
        raise ValueError(f"grad_y has dtype {_dtype(grad_y)}, x has {dt}")
    xd, gyd = _as_device(x), _as_device(grad_y)
    if xd.shape != gyd.shape:
        raise ValueError(f"grad_y has shape {gyd.shape}, x has {xd.shape}")
    host = isinstance(x, np.ndarray)
    if grad_x is None:
        grad_x = np.empty_like(x) if host else cuda.device_array_like(xd)
    flat = [_flat(a, name) for a, name in ((xd, "x"), (gyd, "grad_y"), (_as_device(grad_x), "grad_x"))]
    n = flat[0].size
    nvec = _vector_count(n, dt.itemsize, *map(_address, flat))
    default_threads, per_thread = BACKWARD_LAMBDA_LAUNCH if want_lambda else BACKWARD_LAUNCH
    threads = _check_threads(default_threads if threads is None else threads)
    blocks = _check_blocks(_blocks(n, nvec, MAX_BLOCKS if blocks is None else blocks, per_thread, threads))
    c = _COMPUTE[dt]
    params = (_lambda_array(lam, c, stream), c(alpha), c(rate), c(slope), c(1), nvec)
    if not want_lambda:
        if n:
            _launch(_backward_input_kernel, blocks, threads, stream, *flat, *params)
        return grad_x, None
    if grad_lambda is None:
        zero = np.zeros(1)
        grad_lambda = zero if host else cuda.to_device(zero, stream=stream or 0)
    elif _dtype(grad_lambda) != np.float64 or int(np.prod(np.shape(grad_lambda))) != 1:
        raise ValueError(f"grad_lambda must be a one-element float64 array, got shape {tuple(np.shape(grad_lambda))} "
                         f"of {_dtype(grad_lambda)}")
    if n:
        _launch(_BACKWARD_LAMBDA[np.dtype(c)], blocks, threads, stream, *flat, _as_device(grad_lambda), *params)
    return grad_x, grad_lambda


def cpu_forward(x, lam, alpha, rate=1.0, slope=0.0):
    """The same scalar math compiled for the CPU: the kernels' reference."""
    out = np.empty_like(x)
    for i in range(x.size):
        out.flat[i] = lam * _cpu_value(float(x.flat[i]), alpha, rate, slope)
    return out


# ---------------------------------------------------------------------------
# torch hand-off (zero copy, torch's current stream).
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _external_stream(handle):
    return cuda.external_stream(handle)


def _torch_stream():
    import torch

    return _external_stream(torch.cuda.current_stream().cuda_stream)


_TYPESTR = {"torch.float16": "<f2", "torch.float32": "<f4", "torch.float64": "<f8"}


def _launch_on_torch_stream(kernel, launch_shape, n, nvec, *args):
    """Launch with ``launch_shape`` (threads, vectors per thread) on torch's current stream."""
    threads, per_thread = launch_shape
    _launch(kernel, _blocks(n, nvec, MAX_BLOCKS, per_thread, threads), threads, _torch_stream(), *args)


def _device_view(t):
    """A contiguous torch CUDA tensor as a flat numba device array (no copy).

    The interface is written here rather than read from the tensor: torch's
    carries its stream, for which numba would wrap a new stream object on
    every call (together ~25 µs of the launch's host time).
    """
    desc = {"shape": (t.numel(),), "strides": None, "typestr": _TYPESTR[str(t.dtype)], "data": (t.data_ptr(), False),
            "version": 3}
    return cuda.from_cuda_array_interface(desc, owner=t, sync=False)


def _lambda_tensor(lam, x):
    """λ as a one-element tensor of the compute dtype on x's device (a fill or a cast: no host sync)."""
    import torch

    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    if isinstance(lam, torch.Tensor):
        lam = lam.detach().reshape(1)
        return lam if lam.dtype == acc and lam.device == x.device else lam.to(device=x.device, dtype=acc)
    return torch.full((1,), float(lam), dtype=acc, device=x.device)


def _check_torch_dtype(x):
    import torch

    if x.dtype not in (torch.float16, torch.float32, torch.float64):
        raise ValueError(f"unsupported dtype {x.dtype}; the kernels take float16, float32 or float64"
                         + ("; bfloat16 cannot cross numba's CUDA array interface, convert with x.float() first"
                            if x.dtype == torch.bfloat16 else ""))


def forward_cuda(x, lam, alpha, rate, slope):
    """f(x) for a CUDA torch tensor, on torch's current stream, without copies.

    ``lam`` is a number or a tensor (a trainable λ stays on the device).
    """
    import torch

    _check_torch_dtype(x)
    x = x.detach().contiguous()
    y = torch.empty_like(x)
    n = x.numel()
    if n:
        c = _COMPUTE[np.dtype(_TYPESTR[str(x.dtype)])]
        nvec = _vector_count(n, x.element_size(), x.data_ptr(), y.data_ptr())
        _launch_on_torch_stream(_forward_kernel, FORWARD_LAUNCH, n, nvec, _device_view(x), _device_view(y),
                                _device_view(_lambda_tensor(lam, x)), c(alpha), c(rate), c(slope), c(1), nvec)
    return y


def backward_cuda(x, grad_y, lam, alpha, rate, slope, want_lambda):
    """(∂L/∂x, ∂L/∂λ as a 0-d float64 tensor, or None) for CUDA torch tensors."""
    import torch

    _check_torch_dtype(x)
    x = x.detach().contiguous()
    grad_y = grad_y.detach().to(dtype=x.dtype).contiguous()
    grad_x = torch.empty_like(x)
    grad_lam = torch.zeros(1, dtype=torch.float64, device=x.device) if want_lambda else None
    n = x.numel()
    if n:
        c = _COMPUTE[np.dtype(_TYPESTR[str(x.dtype)])]
        nvec = _vector_count(n, x.element_size(), x.data_ptr(), grad_y.data_ptr(), grad_x.data_ptr())
        args = (_device_view(x), _device_view(grad_y), _device_view(grad_x))
        params = (_device_view(_lambda_tensor(lam, x)), c(alpha), c(rate), c(slope), c(1), nvec)
        if want_lambda:
            _launch_on_torch_stream(_BACKWARD_LAMBDA[np.dtype(c)], BACKWARD_LAMBDA_LAUNCH, n, nvec, *args,
                                    _device_view(grad_lam), *params)
        else:
            _launch_on_torch_stream(_backward_input_kernel, BACKWARD_LAUNCH, n, nvec, *args, *params)
    return grad_x, (grad_lam.reshape(()) if want_lambda else None)
