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


def pytest_collection_modifyitems(config, items):
    try:
        from numba import cuda

        has_gpu = (not cuda.is_simulator()) if hasattr(cuda, "is_simulator") else False
        has_gpu = has_gpu and cuda.is_available()
    except Exception:
        has_gpu = False
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        has_gpu = False
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run with NUMBA_ENABLE_CUDASIM=0 on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)
