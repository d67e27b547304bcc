"""Alpha dropout's mask, output and Jacobian in one compiled pass (the CPU path of ``sim.engine``).

Per element: kept when the 32-bit uniform integer u < threshold (``u`` flat, one per element) (a Bernoulli(k) draw to 2.3e-10);
then y = a x + b and the Jacobian entry f'(h) is multiplied by a, else y = a α′ + b and the entry is
0.  Three elementwise passes and a boolean mask in torch become one loop (the draw's GEMMs dominate;
this keeps dropout's share of a draw near its random numbers' cost).
"""

from __future__ import annotations

import os

import numba
import numpy as np

from meanfield.gauss import compile_cache

compile_cache.register(os.path.dirname(__file__))


@numba.njit(nogil=True, cache=True, error_model="numpy")
def apply(x, u, threshold, a, b, dropped_output, y, jacobian):
    """Fill ``y`` and scale ``jacobian`` in place (flat, contiguous arrays of one length)."""
    for i in range(x.shape[0]):
        if u[i] < threshold:
            y[i] = a * x[i] + b
            jacobian[i] *= a
        else:
            y[i] = dropped_output
            jacobian[i] = 0.0


def alpha_dropout_cpu(x: np.ndarray, jacobian: np.ndarray, u: np.ndarray, threshold: int, a: float, b: float,
                      dropped_output: float) -> np.ndarray:
    y = np.empty_like(x)
    apply(x.reshape(-1), u, np.uint32(threshold), x.dtype.type(a), x.dtype.type(b),
          x.dtype.type(dropped_output), y.reshape(-1), jacobian.reshape(-1))
    return y
