"""Estimate before work: refuse a request whose result cannot fit in memory, before allocating it.

Every public function that allocates per-layer results calls :func:`require_memory` with its
estimate first, so a hopeless request (``mf.recursion("selu", 10**9)``) fails in well under a
second with the estimate in the message, and nothing is allocated.
"""

from __future__ import annotations

import os

#: Bytes of one float64.
FLOAT = 8


def available_memory() -> int:
    """Free bytes of host memory (Linux MemAvailable; the physical size elsewhere)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.3g} GiB"


def require_memory(nbytes: float, what: str, hint: str, available: int | None = None) -> None:
    """ValueError naming ``what`` needs ``nbytes`` when more than the free memory; ``hint`` says what to change."""
    have = available_memory() if available is None else available
    if nbytes > have:
        raise ValueError(f"{what} needs about {gib(nbytes)} but {gib(have)} is free; {hint}")


#: float arrays of configurations x (L + 1) values each layer recursion holds at its peak:
#: recursion(): q, Q, φ, χ, 1 + δ, log_grad, grad, the explosion and Prop 3.1 products and the
#: Dataset's copies; mean_recursion(): its means, variances and moments; finite_width(): the
#: recursion's 14, the forward closure's mean, variance and nine functionals, the backward pass's
#: six outputs (χ, three adjoints, two residual estimates), the derived variables and the
#: Dataset's copies: 48 is an upper bound on them.
LAYER_ARRAYS = {"recursion": 14, "mean_recursion": 10, "finite_width": 48}


def require_layers(what: str, configs: float, depth: int) -> None:
    """Refuse, before allocating, a ``what`` (a key of LAYER_ARRAYS) over ``configs`` x (depth + 1) values
    that does not fit.  Light enough for the command line to call before importing the theory."""
    require_memory(LAYER_ARRAYS[what] * FLOAT * float(configs) * (depth + 1),
                   f"{what} over {int(configs)} configurations x {depth + 1} layers",
                   "use fewer layers or configurations")
