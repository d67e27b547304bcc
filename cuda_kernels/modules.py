"""torch Modules for the activations, with a trainable λ for the SELU family.

``module_for(activation)`` turns any ``meanfield`` activation (or spec string)
into an ``nn.Module``.  The exponential-linear family (SELU, dSELU, sSELU,
lSELU, ...) becomes :class:`ExpLinear`, whose λ may be trainable; on a CUDA
tensor it runs the numba kernels of :mod:`cuda_kernels.kernels` through
:class:`ExpLinearFunction`, on the CPU the same math in plain torch
(:mod:`cuda_kernels.torch_math`), with identical results up to rounding.
"""

from __future__ import annotations

import torch
from torch import nn

from meanfield.activations import ExpLinear as _ExpLinearAct
from meanfield.activations.resolve import activation as _activation

from .torch_math import exp_linear_derivative, exp_linear_forward, kernels_ready, torch_pair


class ExpLinearFunction(torch.autograd.Function):
    """f and its backward for the exp-linear family, λ a tensor (trainable or not).

    Backward: ∂L/∂x = ∂L/∂y · f'(x) and ∂L/∂λ = Σ (y/λ) ∂L/∂y (eq 41).
    """

    @staticmethod
    def forward(ctx, x, lam, alpha, rate, slope):
        if kernels_ready(x):
            from .kernels import forward_cuda

            y = forward_cuda(x, lam, alpha, rate, slope)
        else:
            y = exp_linear_forward(x, lam, alpha, rate, slope)
        ctx.save_for_backward(x, lam)
        ctx.params = (alpha, rate, slope)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, lam = ctx.saved_tensors
        alpha, rate, slope = ctx.params
        want_lam = ctx.needs_input_grad[1]
        if kernels_ready(x):
            from .kernels import backward_cuda

            grad_x, grad_lam = backward_cuda(x, grad_y, lam, alpha, rate, slope, want_lam)
        else:
            grad_x = grad_y * exp_linear_derivative(x, lam, alpha, rate, slope)
            grad_lam = None
            if want_lam:
                # y/λ is f with λ = 1, computed and summed in float64 (the kernel: float32 at
                # least, with a Kahan sum), never in float16.
                unit = exp_linear_forward(x.double(), 1.0, alpha, rate, slope)
                grad_lam = (unit * grad_y.double()).sum()
        if grad_lam is not None:
            grad_lam = grad_lam.to(dtype=lam.dtype).reshape(lam.shape)
        return grad_x, grad_lam, None, None, None


class ExpLinear(nn.Module):
    """f(x) = λx (x > 0), λ(α(e^{βx} − 1) + κx) (x <= 0), λ optionally trainable."""

    def __init__(self, lambda_=1.0, alpha=0.0, rate=1.0, slope=0.0, trainable_lambda=False, name="exp_linear"):
        super().__init__()
        lam = torch.tensor(float(lambda_))
        if trainable_lambda:
            self.lam = nn.Parameter(lam)
        else:
            self.register_buffer("lam", lam)
        self.alpha, self.rate, self.slope = float(alpha), float(rate), float(slope)
        self.name = name

    def forward(self, x):
        # λ keeps its own dtype (a float16 input does not round λ's gradient to float16).
        return ExpLinearFunction.apply(x, self.lam, self.alpha, self.rate, self.slope)

    def extra_repr(self):
        return (f"{self.name}: lambda={float(self.lam.detach()):.6g}, alpha={self.alpha:.6g}, rate={self.rate:.6g}, "
                f"slope={self.slope:.6g}, trainable_lambda={isinstance(self.lam, nn.Parameter)}")


def SSELU(lambda_=1.0, alpha=1.0, beta=1.0, trainable_lambda=False):  # noqa: N802 - a Module factory
    """sSELU (eq 9): λx (x > 0), λα(e^{βx} − 1) (x <= 0)."""
    return ExpLinear(lambda_, alpha, rate=beta, slope=0.0, trainable_lambda=trainable_lambda, name="sselu")


def LSELU(lambda_=1.0, alpha=1.0, beta=0.0, trainable_lambda=False):  # noqa: N802 - a Module factory
    """lSELU (eq 10): λx (x > 0), λ(α(e^x − 1) + βx) (x <= 0)."""
    return ExpLinear(lambda_, alpha, rate=1.0, slope=beta, trainable_lambda=trainable_lambda, name="lselu")


class Elementwise(nn.Module):
    """Any other activation through its torch math (autograd does the backward)."""

    def __init__(self, act):
        super().__init__()
        self.f, _ = torch_pair(act)
        self.name = act.spec

    def forward(self, x):
        return self.f(x)

    def extra_repr(self):
        return self.name


def module_for(act, trainable_lambda=False) -> nn.Module:
    """The torch Module for a ``meanfield`` activation or spec string."""
    act = _activation(act)
    if isinstance(act, _ExpLinearAct):
        if not act.scalar:
            raise ValueError(f"{act.name}: a torch module needs scalar parameters, got arrays")
        return ExpLinear(float(act.lam), float(act.alpha), float(act.rate), float(act.slope),
                         trainable_lambda=trainable_lambda, name=act.name)
    if trainable_lambda:
        raise ValueError(f"trainable_lambda applies to the SELU family only, not to {act.spec!r}")
    return Elementwise(act)
