"""Activation kernels: numba CUDA forward/backward for sSELU and lSELU with a
trainable λ, wrapped as torch autograd Functions and Modules, with plain
torch math on the CPU.
"""

from .torch_math import torch_ops, torch_pair

__all__ = ["torch_ops", "torch_pair"]
