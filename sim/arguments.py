"""Argument checks shared by the Monte-Carlo engines (torch-free, so the reduced chain needs no torch)."""

from __future__ import annotations

import numpy as np


def positive_int(name, value, minimum=1):
    """``value`` as an int >= ``minimum``, or a ValueError naming ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def layer_widths(width, depth):
    """N_0..N_L as a tuple of ints from one width or a list of depth + 1 of them."""
    arr = np.atleast_1d(np.asarray(width))
    if arr.size == 1:
        arr = np.full(depth + 1, arr.item())
    if arr.shape != (depth + 1,):
        raise ValueError(f"width must be one number or depth + 1 = {depth + 1} numbers (N_0..N_L), got {arr.size}")
    for n in arr:
        if not float(n).is_integer() or n < 1:
            raise ValueError(f"widths must be integers >= 1, got {arr.tolist()}")
    return tuple(int(n) for n in arr)
