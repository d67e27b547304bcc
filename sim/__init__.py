"""sim: Monte-Carlo deep networks measured layer by layer, beside the theory."""

from .simulate import simulate

__all__ = ["simulate"]
