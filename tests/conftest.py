"""Shared test settings.

numba's CUDA simulator must be switched on before numba is first imported,
so it is set here, at collection time.  Tolerances are keyed by what they
compare (see TOL); every numeric test states its tolerance and its reference.
"""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

#: Tolerances by comparison, with their reason.
TOL = {
    # closed forms against scipy.integrate.quad (quad itself reaches ~1e-13).
    "closed_vs_quad": 1e-10,
    # graded quadrature against closed forms (observed ~1e-14).
    "quadrature_vs_closed": 1e-10,
    # stable helpers against 50-digit mpmath; conditioning of erfcx at t < 0
    # costs up to t²ε (~1e-13 at t = -30).
    "mpmath": 2e-13,
}


def _has_gpu() -> bool:
    """A real CUDA GPU, with numba's simulator switched off (NUMBA_ENABLE_CUDASIM=0)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run with NUMBA_ENABLE_CUDASIM=0 on a GPU machine)")
    if _has_gpu():
        return
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)
