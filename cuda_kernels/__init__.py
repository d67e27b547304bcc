"""Activation kernels: numba CUDA forward/backward for sSELU and lSELU with a
trainable λ, wrapped as torch autograd Functions and Modules, with plain
torch math on the CPU.
"""

from .torch_math import torch_ops, torch_pair


def __getattr__(name):  # the dropout layer loads meanfield's theory: on first use
    if name in ("AlphaDropout", "check_alpha_dropout", "selu_constants_fixed_point"):
        from . import dropout

        return getattr(dropout, name)
    raise AttributeError(f"module 'cuda_kernels' has no attribute {name!r}")


__all__ = ["AlphaDropout", "check_alpha_dropout", "selu_constants_fixed_point", "torch_ops", "torch_pair"]
