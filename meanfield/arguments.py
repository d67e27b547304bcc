"""Validation of scalar arguments at the public boundary: one message style everywhere."""

from __future__ import annotations

import math
import numbers


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


def check_depth(depth) -> int:
    """A network depth: an integer >= 1 (numpy's integers are ``numbers.Integral`` too), else a ValueError."""
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    return int(depth)
