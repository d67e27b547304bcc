"""Validation of scalar arguments at the public boundary: one message style everywhere."""

from __future__ import annotations

import math


def check_number(label: str, value, *, positive: bool = False, nonnegative: bool = False) -> float:
    """``value`` as a finite float, or a ValueError naming ``label``, the value and what is valid."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{label} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{label} must be a finite number, got {value!r}")
    if positive and number <= 0:
        raise ValueError(f"{label} must be > 0, got {value!r}")
    if nonnegative and number < 0:
        raise ValueError(f"{label} must be >= 0, got {value!r}")
    return number
