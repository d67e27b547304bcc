"""Definition 2 (eq 7): does an activation have the self-normalization property?

f self-normalizes if φ(1) = 1 + ε with ε > 0 small, Q(1) = 1, and
min(1, 1/q) < φ(q) < max(1, 1/q) for q ≠ 1.

The third condition cannot hold right next to q = 1 when ε > 0: at q = 1
both bounds equal 1 while φ(1) = 1 + ε, so by continuity it fails on a band
[q_lo, q_hi] around 1, where q_lo solves q φ(q) = 1 and q_hi solves
φ(q) = 1 (width O(ε)).  The checker reports that band and calls the
definition satisfied when conditions 1 and 2 hold and condition 3 holds at
every q of the grid outside the band.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import optimize

from ..results import dataset_attrs
from .functionals import check_array, jacobian_second_moment, resolve, second_moment

#: Default q grid: three decades either side of the fixed point q = 1.
DEFAULT_Q = np.geomspace(1e-3, 1e3, 601)


def _root_near_one(fn, q, side):
    """The root of fn nearest q = 1 on one side, by Brent between grid points."""
    values = fn(q)
    idx = np.flatnonzero(values[:-1] * values[1:] <= 0)
    idx = idx[q[idx + 1] <= 1.0] if side == "below" else idx[q[idx] >= 1.0]
    if idx.size == 0:
        return np.nan
    i = idx[-1] if side == "below" else idx[0]
    return optimize.brentq(lambda x: float(fn(np.array([x]))[0]), q[i], q[i + 1], xtol=1e-15)


def self_normalization(act, q=None, *, atol=1e-6) -> xr.Dataset:
    """Check Definition 2 over a q grid; a Dataset with a verdict per condition.

    Variables over ``q``: phi, lower (min(1, 1/q)), upper (max(1, 1/q)),
    condition3 (lower < φ < upper).  Scalars: epsilon = φ(1) − 1, Q1 = Q(1),
    condition1 (ε > 0), condition2 (|Q(1) − 1| <= atol), band_low, band_high
    (the unavoidable failure band around 1), condition3_outside_band and
    satisfied.
    """
    act = resolve(act)
    q = DEFAULT_Q if q is None else np.sort(np.atleast_1d(check_array("q", q, positive=True)))
    q = q[q != 1.0]
    phi = jacobian_second_moment(act, q)
    lower, upper = np.minimum(1.0, 1.0 / q), np.maximum(1.0, 1.0 / q)
    cond3 = (lower < phi) & (phi < upper)
    eps = float(jacobian_second_moment(act, 1.0)) - 1.0
    q1 = float(second_moment(act, 1.0))
    cond1, cond2 = eps > 0, abs(q1 - 1.0) <= atol
    grid = np.geomspace(q.min(), q.max(), 2001)
    band_low = _root_near_one(lambda x: x * jacobian_second_moment(act, x) - 1.0, grid, "below") if cond1 else np.nan
    band_high = _root_near_one(lambda x: jacobian_second_moment(act, x) - 1.0, grid, "above") if cond1 else np.nan
    outside = ~((q >= band_low) & (q <= band_high)) if cond1 else np.ones_like(q, dtype=bool)
    cond3_outside = bool(np.all(cond3[outside]))
    dims = ("q",)
    return xr.Dataset(
        {
            "phi": (dims, phi, {"long_name": "phi(q)", "equation": "eq 6"}),
            "lower": (dims, lower, {"long_name": "min(1, 1/q)"}),
            "upper": (dims, upper, {"long_name": "max(1, 1/q)"}),
            "condition3": (dims, cond3, {"long_name": "min(1, 1/q) < phi(q) < max(1, 1/q)", "equation": "eq 7"}),
            "epsilon": ((), eps, {"long_name": "phi(1) - 1"}),
            "Q1": ((), q1, {"long_name": "Q(1) = E[f(z)^2]"}),
            "condition1": ((), bool(cond1), {"long_name": "phi(1) = 1 + epsilon with epsilon > 0"}),
            "condition2": ((), bool(cond2), {"long_name": f"|Q(1) - 1| <= {atol:g}"}),
            "band_low": ((), band_low, {"long_name": "q < 1 solving q phi(q) = 1"}),
            "band_high": ((), band_high, {"long_name": "q > 1 solving phi(q) = 1"}),
            "condition3_outside_band": ((), cond3_outside),
            "satisfied": ((), bool(cond1 and cond2 and cond3_outside)),
        },
        coords={"q": q},
        attrs=dataset_attrs(act, "Definition 2, eq 7", atol=atol),
    )
