"""Activations in plain torch: the CPU path and the reference for the kernels.

Each returns (f, f') as functions of a tensor, built from an activation of
``meanfield``.  The exponential-linear family is written once here:

    f(x)  = λ x                          (x > 0)
            λ (α expm1(b x) + κ x)       (x <= 0)
    f'(x) = λ                            (x > 0)
            λ (α b e^{b x} + κ)          (x <= 0)
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np

import torch

from meanfield.activations import registry
from meanfield.activations.registry import SELU_ALPHA, SELU_LAMBDA
from meanfield.activations import Elementwise, ExpLinear


def _scalar(act: ExpLinear):
    if not act.scalar:
        raise ValueError(f"{act.name}: the torch path needs scalar parameters, got arrays")
    return float(act.lam), float(act.alpha), float(act.rate), float(act.slope)


def exp_linear_forward(x, lam, alpha, rate, slope):
    """λ(max(x, 0) + α expm1(b min(x, 0)) + κ min(x, 0)): the two branches
    vanish on each other's side, so no select is needed.

    Without a linear part (κ = 0) torch's fused ELU does it in one pass,
    (λ/b)·elu(b x, α b), and SELU's own constants take torch's SELU: on the
    CPU the seven elementwise passes of the general form cost 3-4x that
    (measured 97 against 25 ms for 16 layers of 512 x 2048 float32).
    """
    if not slope:
        if rate == 1.0 and not isinstance(lam, torch.Tensor) and (lam, alpha) == (SELU_LAMBDA, SELU_ALPHA):
            return torch.nn.functional.selu(x)
        out = torch.nn.functional.elu(x if rate == 1.0 else x * rate, alpha * rate)
        if rate != 1.0:
            out.div_(rate)
        if isinstance(lam, torch.Tensor) or lam != 1.0:
            out.mul_(lam)
        return out
    neg = torch.clamp(x, max=0.0)
    out = torch.expm1(neg * rate)
    if alpha != 1.0:
        out.mul_(alpha)
    if slope:
        out.add_(neg, alpha=slope)
    out.add_(torch.clamp(x, min=0.0))
    if isinstance(lam, torch.Tensor) or lam != 1.0:
        out.mul_(lam)
    return out


def exp_linear_derivative(x, lam, alpha, rate, slope):
    """f'(x): λ (x > 0), λ(α b e^{bx} + κ) (x <= 0); NaN where x is NaN.

    Without a linear part and with a plain-number λ, ATen's fused ELU backward with a unit
    cotangent computes it in one pass (1.1 against 14 ms for 1024 × 2048 float32 on 2 cores, the
    same values to 2 ulp: only the order of the products differs); it maps NaN to λ, so NaN is put
    back where the input has it (divergence stays visible in the backward pass)."""
    if not slope and not isinstance(lam, torch.Tensor):
        d = torch.ops.aten.elu_backward(x.new_ones(()).expand_as(x), alpha, lam, rate, False, x)
        nan = torch.isnan(x)
        return d.masked_fill_(nan, math.nan) if bool(nan.any()) else d
    neg = torch.clamp(x, max=0.0).mul_(rate)
    d = torch.exp_(neg).mul_(alpha * rate)
    if slope:
        d.add_(slope)
    d = torch.where(x > 0, 1.0, d)
    if isinstance(lam, torch.Tensor) or lam != 1.0:
        d.mul_(lam)
    return d


def torch_pair(act):
    """(f, f') acting on torch tensors for a ``meanfield`` activation."""
    if isinstance(act, ExpLinear):
        params = _scalar(act)
        return (lambda x: exp_linear_forward(x, *params)), (lambda x: exp_linear_derivative(x, *params))
    entry = registry.entry(act.name)
    if isinstance(act, Elementwise) and entry is not None and entry.torch is not None:
        return entry.torch(torch, act.params)  # the registry's torch math, given torch
    if isinstance(act, Elementwise):
        # A user's numpy callable: through numpy on the CPU.
        def via_numpy(fn):
            def wrapped(x):
                if x.device.type != "cpu":
                    raise ValueError(f"custom activation {act.name!r} is a numpy callable and runs on the CPU only")
                return torch.from_numpy(np.asarray(fn(x.numpy()), dtype=x.numpy().dtype))

            return wrapped

        return via_numpy(act.f), via_numpy(act.df)
    raise ValueError(f"no torch implementation for activation {act!r}")


def torch_ops(act):
    """(f, f') acting on torch tensors, like :func:`torch_pair`, except that on
    CUDA tensors the exponential-linear family runs the numba kernels
    (:mod:`cuda_kernels.kernels`) when numba's CUDA target is available: f by
    the forward kernel, f' by the backward kernel fed a cotangent of ones.  The
    CPU, and every other activation, use the torch math of :func:`torch_pair`.
    """
    f, df = torch_pair(act)
    if not isinstance(act, ExpLinear):
        return f, df
    params = _scalar(act)

    def forward(x):
        if kernels_ready(x):
            from .kernels import forward_cuda

            return forward_cuda(x, *params)
        return f(x)

    def derivative(x):
        if kernels_ready(x):
            from .kernels import backward_cuda

            return backward_cuda(x, torch.ones_like(x), *params, want_lambda=False)[0]
        return df(x)

    return forward, derivative


#: Smallest tensor (in elements) sent to the numba kernels.  Below it torch's
#: own elementwise kernels finish first: numba's launch path costs ~0.3 ms of
#: host time a call, torch's whole formula ~0.1 ms.  Measured on an H100,
#: steady state, forward + backward with a trainable λ: 2^22 elements 1.23 ms
#: (kernels) against 0.57 ms (torch math), 2^24 1.26 ms against 1.77 ms.
#: Set it to 0 to send every CUDA tensor to the kernels.
KERNEL_MIN_ELEMENTS = 2**23


def kernels_ready(x) -> bool:
    """Whether a CUDA tensor ``x`` goes through the numba kernels.

    False on the CPU, for tensors under KERNEL_MIN_ELEMENTS (the same math in
    plain torch is faster there) and for bfloat16 (which cannot cross numba's
    array interface; torch's math takes it).  On a GPU where the kernels cannot run
    (see :func:`cuda_kernels.kernels.unavailable_reason`) the plain torch math
    is used instead, with one warning that says why.
    """
    if not x.is_cuda or x.numel() < KERNEL_MIN_ELEMENTS or x.dtype == torch.bfloat16:
        return False
    try:
        from . import kernels
    except ImportError:
        return False
    reason = kernels.unavailable_reason()
    if reason is not None:
        _warn_once(reason)
    return reason is None


@functools.cache
def _warn_once(reason):
    warnings.warn(f"CUDA kernels unavailable, using plain torch math on the GPU: {reason}", RuntimeWarning,
                  stacklevel=4)
