"""numba CUDA kernels under the simulator against a float64 reference; the torch layer.

conftest.py switches numba's CUDA simulator on before numba is imported.
Tests marked ``gpu`` run on a real GPU only (NUMBA_ENABLE_CUDASIM=0).
"""

import math

import numpy as np
import pytest
import torch

import meanfield as mf
from cuda_kernels import kernels as K
from cuda_kernels import torch_math
from cuda_kernels.modules import LSELU, SSELU, ExpLinearFunction, module_for

PARAMS = {
    "selu": (mf.SELU_LAMBDA, mf.SELU_ALPHA, 1.0, 0.0),
    "sselu": (1.0, 2.6187, 0.5608, 0.0),
    "lselu": (1.02, 1.1382, 1.0, 0.394),
}
SIZES = [1, 7, 1000, 4097]


def _reference(x, g, lam, alpha, rate, slope):
    """float64 numpy reference, with the parameters as the kernel sees them."""
    dt = np.float32 if x.dtype in (np.float16, np.float32) else np.float64
    lam, alpha, rate, slope = (float(dt(p)) for p in (lam, alpha, rate, slope))
    xd, gd = x.astype(np.float64), g.astype(np.float64)
    neg = np.minimum(xd, 0.0)
    unit = np.where(xd > 0, xd, alpha * np.expm1(rate * neg) + slope * xd)
    slope_ = np.where(xd > 0, 1.0, alpha * rate * np.exp(rate * neg) + slope)
    terms = gd * unit
    return lam * unit, gd * lam * slope_, math.fsum(terms), math.fsum(np.abs(terms))


TOL = {np.float64: 1e-14, np.float32: 2e-6, np.float16: 2e-3}  # relative, per element


@pytest.mark.parametrize("family", PARAMS)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("offset", [0, 1], ids=["vectors", "unaligned"])
def test_kernels_against_float64_reference(family, n, dtype, offset, rng):
    """Both paths: 4-wide vectors (aligned arrays) and one element at a time (x starts one element in)."""
    x = (2.0 * rng.standard_normal(n + offset)).astype(dtype)[offset:]
    g = rng.standard_normal(n).astype(dtype)
    assert K._vector_count(n, x.itemsize, x.ctypes.data, g.ctypes.data) == (n // 4 if offset == 0 else 0)
    p = PARAMS[family]
    y = K.forward(x, *p, threads=32, blocks=3)
    gx, gl = K.backward(x, g, *p, threads=32, blocks=3)
    gx_only, none = K.backward(x, g, *p, threads=64, blocks=2, want_lambda=False)
    y_ref, gx_ref, gl_ref, gl_scale = _reference(x, g, *p)
    tol = TOL[dtype]
    assert y.dtype == dtype and gx.dtype == dtype and none is None
    np.testing.assert_allclose(y.astype(np.float64), y_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(gx.astype(np.float64), gx_ref, rtol=tol, atol=tol)
    np.testing.assert_array_equal(gx, gx_only)
    # ∂L/∂λ: float32 accumulation for float16/float32 (Kahan per thread), float64 otherwise.
    acc_eps = 1e-15 if dtype == np.float64 else 1e-7
    assert abs(gl[0] - gl_ref) <= 10 * acc_eps * gl_scale + 1e-300


def test_kernel_only_indexes_the_cpu_scalar_math(rng):
    x = 3.0 * rng.standard_normal(513)
    for p in PARAMS.values():
        np.testing.assert_array_equal(K.forward(x, *p, threads=16, blocks=5), K.cpu_forward(x, *p))


def test_grid_stride_covers_every_element(rng):
    # Poison the output; every element must be written whatever the launch shape.
    x = rng.standard_normal(1031)
    for threads, blocks in [(1, 1), (2, 3), (32, 1), (256, 1), (64, 100)]:
        out = np.full_like(x, np.nan)
        K.forward(x, *PARAMS["lselu"], out=out, threads=threads, blocks=blocks)
        assert np.all(np.isfinite(out))


@pytest.mark.slow
def test_lambda_gradient_over_a_million_elements(rng):
    """∂L/∂λ within 1e-5 relative for 10^6 float32 elements (Kahan + block reduction + atomics)."""
    n = 1_000_003
    x = rng.standard_normal(n).astype(np.float32)
    g = (1.0 + 0.5 * rng.standard_normal(n)).astype(np.float32)  # a cotangent with a mean, as in training
    _, gl = K.backward(x, g, *PARAMS["sselu"], threads=64, blocks=8)
    _, _, ref, scale = _reference(x, g, *PARAMS["sselu"])
    assert abs(gl[0] / ref - 1) < 1e-5
    assert abs(gl[0] - ref) < 1e-7 * scale


def test_bad_arrays_are_rejected():
    with pytest.raises(ValueError, match="bfloat16"):
        K.forward(torch.zeros(4, dtype=torch.bfloat16), *PARAMS["selu"])
    with pytest.raises(ValueError, match="unsupported dtype"):
        K.forward(np.zeros(4, dtype=np.int32), *PARAMS["selu"])
    with pytest.raises(ValueError, match="power of two"):
        K.forward(np.zeros(4), *PARAMS["selu"], threads=48)
    with pytest.raises(ValueError, match="power of two"):
        K.backward(np.zeros(4), np.zeros(4), *PARAMS["selu"], threads=0)
    with pytest.raises(ValueError, match="blocks must be >= 1"):
        K.backward(np.zeros(4), np.zeros(4), *PARAMS["selu"], blocks=0)
    with pytest.raises(ValueError, match="shape"):
        K.backward(np.zeros(4), np.zeros(5), *PARAMS["selu"])
    with pytest.raises(ValueError, match="__cuda_array_interface__"):
        K.forward([1.0, 2.0], *PARAMS["selu"])
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        K.forward(np.zeros(8), *PARAMS["selu"], out=np.zeros(16)[::2])
    with pytest.raises(ValueError, match="one-element float32 array"):
        K.forward(np.zeros(4, dtype=np.float32), np.ones(2, dtype=np.float32), *PARAMS["selu"][1:])
    with pytest.raises(ValueError, match="one-element float64 array"):
        K.forward(np.zeros(4), np.ones(1, dtype=np.float32), *PARAMS["selu"][1:])


def test_lambda_from_a_device_array_equals_a_number(rng):
    x = rng.standard_normal(777)
    g = rng.standard_normal(777)
    p = PARAMS["lselu"]
    lam = np.array([p[0]])
    np.testing.assert_array_equal(K.forward(x, lam, *p[1:]), K.forward(x, *p))
    np.testing.assert_array_equal(K.backward(x, g, lam, *p[1:])[0], K.backward(x, g, *p)[0])


# ---------------------------------------------------------------------------
# torch layer (CPU fallback here; the same Function calls the kernels on CUDA).
# ---------------------------------------------------------------------------


def test_cpu_fallback_matches_the_kernels(rng):
    x = 2.0 * rng.standard_normal(2049)
    for p in PARAMS.values():
        lam = torch.tensor(p[0], dtype=torch.float64)
        y_torch = ExpLinearFunction.apply(torch.from_numpy(x), lam, *p[1:]).numpy()
        np.testing.assert_allclose(y_torch, K.forward(x, *p, threads=32, blocks=8), rtol=4e-16, atol=4e-16)


@pytest.mark.parametrize("family", PARAMS)
def test_gradcheck_x_and_lambda(family):
    p = PARAMS[family]
    g = torch.Generator().manual_seed(0)
    x = (2.0 * torch.randn(40, generator=g, dtype=torch.float64)).requires_grad_(True)
    lam = torch.tensor(p[0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, lam: ExpLinearFunction.apply(x, lam, *p[1:]), (x, lam))


def test_modules_from_spec_and_trainable_lambda():
    act = mf.activation("lselu:epsilon=0.03")
    m = module_for("lselu:epsilon=0.03", trainable_lambda=True)
    assert isinstance(m.lam, torch.nn.Parameter)
    x = torch.linspace(-4, 3, 202, dtype=torch.float64).reshape(101, 2)[:, 0]  # a strided, non-contiguous view
    assert not x.is_contiguous()
    y = m.double()(x)
    # The module holds λ in float32: compare with f at that λ.
    expected = act.f(x.numpy()) * (float(m.lam.detach()) / float(act.lam))
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-15, atol=1e-15)
    gy = torch.ones_like(y)
    y.backward(gy)
    expected = float((y.detach() / m.lam.detach()).sum())
    assert abs(float(m.lam.grad) - expected) < 1e-12
    assert act.torch_module().__class__.__name__ == "ExpLinear"
    s = SSELU(1.0, 2.0, 0.5)
    assert not isinstance(s.lam, torch.nn.Parameter) and s.rate == 0.5
    assert LSELU(1.0, 1.0, 0.3, trainable_lambda=True).slope == 0.3
    with pytest.raises(ValueError, match="SELU family only"):
        module_for("tanh", trainable_lambda=True)
    np.testing.assert_allclose(module_for("gelu")(torch.tensor([0.5])).numpy(),
                               mf.activation("gelu").f(np.array([0.5])), rtol=1e-7)


def test_float16_module_on_cpu():
    m = module_for("sselu:epsilon=0.03", trainable_lambda=True)
    x = torch.linspace(-3, 3, 4001, dtype=torch.float16)
    y = m(x)
    assert y.dtype == torch.float16
    np.testing.assert_allclose(y.float().detach().numpy(),
                               mf.activation("sselu:epsilon=0.03").f(x.float().numpy()), rtol=2e-3, atol=2e-3)
    y.backward(torch.ones_like(y))
    # λ keeps float32: its gradient is not rounded to float16 (spacing 1 near 1000).
    assert m.lam.grad.dtype == torch.float32
    expected = float(np.sum(mf.activation("sselu:epsilon=0.03").f(x.double().numpy()))) / float(m.lam.detach())
    assert abs(float(m.lam.grad) / expected - 1) < 1e-6


def test_a_toolchain_that_cannot_compile_is_reported_with_its_remedy(monkeypatch):
    """On a GPU where numba-cuda cannot compile (0.30.4 under NumPy 2.5, as on a stock GPU image),
    unavailable_reason says why and what to install; the modules then take torch's math."""
    def broken_jit(*args, **kwargs):
        raise AttributeError("module 'numpy' has no attribute 'row_stack'")

    monkeypatch.setattr(K, "_simulating", lambda: False)
    monkeypatch.setattr(K.cuda, "is_available", lambda: True)
    monkeypatch.setattr(K.cuda, "jit", broken_jit)
    K.unavailable_reason.cache_clear()
    try:
        reason = K.unavailable_reason()
        assert not K.available()
    finally:
        K.unavailable_reason.cache_clear()
    assert "cannot compile kernels here" in reason and "row_stack" in reason and "numpy<2.5" in reason


# ---------------------------------------------------------------------------
# Real GPU only.
# ---------------------------------------------------------------------------


@pytest.fixture(params=["kernels", "torch math"])
def cuda_path(request, monkeypatch):
    """Either path for CUDA tensors of any size: the numba kernels, or torch's own (below the size threshold)."""
    monkeypatch.setattr(torch_math, "KERNEL_MIN_ELEMENTS", 0 if request.param == "kernels" else 2**62)
    return request.param


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16])
def test_cuda_module_matches_cpu(dtype, cuda_path):
    m = module_for("sselu:epsilon=0.03", trainable_lambda=True)
    x = torch.randn(64, 33, 17, dtype=torch.float64)
    xc = x.to("cuda", dtype).transpose(0, 2).requires_grad_(True)  # non-contiguous on purpose
    mc = module_for("sselu:epsilon=0.03", trainable_lambda=True).cuda()
    y = mc(xc)
    y.backward(torch.ones_like(y))
    xr = xc.detach().cpu().double().requires_grad_(True)  # the same (rounded) inputs
    yr = m.double()(xr)
    yr.backward(torch.ones_like(yr))
    tol = {torch.float64: 1e-13, torch.float32: 1e-5, torch.float16: 2e-3}[dtype]
    np.testing.assert_allclose(y.double().cpu().detach().numpy(), yr.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(xc.grad.double().cpu().numpy(), xr.grad.numpy(), rtol=tol, atol=tol)
    assert abs(float(mc.lam.grad) / float(m.lam.grad) - 1) < 1e-5


@pytest.mark.gpu
@pytest.mark.parametrize("family", PARAMS)
@pytest.mark.parametrize("n", [1, 4097, 1_000_003])
def test_device_kernels_against_float64_reference(family, n):
    """The low-level API on torch CUDA tensors (``__cuda_array_interface__``), default launch shapes."""
    gen = torch.Generator().manual_seed(n)
    x = 2.0 * torch.randn(n, generator=gen)
    g = 1.0 + 0.5 * torch.randn(n, generator=gen)  # a cotangent with a mean, as in training
    xc, gc = x.cuda(), g.cuda()
    y = torch.full_like(xc, float("nan"))  # poisoned: every element must be written
    gx = torch.full_like(xc, float("nan"))
    gl = torch.zeros(1, dtype=torch.float64, device="cuda")
    p = PARAMS[family]
    K.forward(xc, *p, out=y)
    K.backward(xc, gc, *p, grad_x=gx, grad_lambda=gl)
    torch.cuda.synchronize()
    y_ref, gx_ref, gl_ref, gl_scale = _reference(x.numpy(), g.numpy(), *p)
    np.testing.assert_allclose(y.cpu().double().numpy(), y_ref, rtol=TOL[np.float32], atol=TOL[np.float32])
    np.testing.assert_allclose(gx.cpu().double().numpy(), gx_ref, rtol=TOL[np.float32], atol=TOL[np.float32])
    assert abs(float(gl) / gl_ref - 1) < 1e-5
    assert abs(float(gl) - gl_ref) < 1e-6 * gl_scale  # float32 accumulation, Kahan per thread


@pytest.mark.gpu
def test_cuda_module_runs_on_the_current_stream(cuda_path):
    m = module_for("lselu:epsilon=0.03", trainable_lambda=True).cuda()
    x = torch.randn(3, 1001, 7, device="cuda", requires_grad=True)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        y = m(x)
        y.backward(2 * torch.ones_like(y))
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    mc = module_for("lselu:epsilon=0.03", trainable_lambda=True).double()
    xr = x.detach().cpu().double().requires_grad_(True)
    yr = mc(xr)
    yr.backward(2 * torch.ones_like(yr))
    np.testing.assert_allclose(y.detach().cpu().double().numpy(), yr.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.cpu().double().numpy(), xr.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert abs(float(m.lam.grad) / float(mc.lam.grad) - 1) < 1e-5


@pytest.mark.gpu
def test_kernels_use_vector_loads():
    """The compiled forward reads and writes 16 bytes per instruction for float32."""
    from numba import cuda, float32, int64

    arr = float32[::1]
    ptx, _ = cuda.compile_ptx(K._forward_kernel.py_func, (arr, arr, arr, float32, float32, float32, float32, int64))
    assert "ld.global.v4.f32" in ptx and "st.global.v4.f32" in ptx


@pytest.mark.gpu
def test_cuda_gradcheck(cuda_path):
    x = torch.randn(30, dtype=torch.float64, device="cuda", requires_grad=True)
    lam = torch.tensor(1.0, dtype=torch.float64, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, lam: ExpLinearFunction.apply(x, lam, 2.0, 0.5, 0.1), (x, lam))


@pytest.mark.gpu
def test_cuda_bfloat16(monkeypatch):
    """The kernels refuse bfloat16 clearly; the modules take it through torch's math at any size."""
    x = torch.linspace(-3, 3, 1001, device="cuda")
    with pytest.raises(ValueError, match="bfloat16"):
        K.forward(x.bfloat16(), *PARAMS["selu"])
    monkeypatch.setattr(torch_math, "KERNEL_MIN_ELEMENTS", 0)
    y = module_for("selu")(x.bfloat16())
    assert y.dtype == torch.bfloat16
    np.testing.assert_allclose(y.float().cpu().numpy(), mf.activation("selu").f(x.bfloat16().double().cpu().numpy()),
                               rtol=1e-2, atol=1e-2)


@pytest.mark.gpu
def test_small_tensors_take_torch_math(monkeypatch):
    from cuda_kernels import kernels

    def refuse(*args):
        raise AssertionError("kernel called")

    monkeypatch.setattr(kernels, "forward_cuda", refuse)
    module_for("selu")(torch.zeros(torch_math.KERNEL_MIN_ELEMENTS - 1, device="cuda"))
    with pytest.raises(AssertionError, match="kernel called"):
        module_for("selu")(torch.zeros(torch_math.KERNEL_MIN_ELEMENTS, device="cuda"))
