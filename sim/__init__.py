"""sim: Monte-Carlo deep networks measured layer by layer, beside the theory.

``sim.simulate`` (full networks, needs torch), ``sim.jacobian_spectrum`` (the
input-output Jacobian's singular values, needs torch) and ``sim.reduced_chain`` (the
exact single-input chain, numpy and numba only) are imported on first use,
so that the reduced chain works without torch.
"""

__all__ = ["jacobian_spectrum", "reduced_chain", "simulate"]

_LAZY = {"simulate": ".simulation", "reduced_chain": ".reduced", "jacobian_spectrum": ".spectrum"}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value
