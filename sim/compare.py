"""Measured means, their standard errors, and the theory beside them.

Both Monte-Carlo engines (``sim.simulate``: full networks, ``sim.reduced_chain``:
one input, the backward pass integrated out) report, per layer, the
infinite-width theory (``*_theory``, Props A.1/A.2) and the finite-width one
(``*_theory_fw``, :func:`meanfield.finite_width`), the relative errors against
each, and the standard error of every measured mean.

Standard errors come from independent replicas only: the draws (or chains),
never the samples of a batch, which share a draw's weights and are
correlated.  A mean over replicas has SE = sd/√S; the pooled gradient
Σ_s y_s / Σ_s x_s (y = ‖∂L/∂h_l‖², x = ‖∂L/∂h_L‖² per draw) is a ratio
estimator, whose SE by the delta method is sd(y − R x)/(√S x̄).
"""

from __future__ import annotations

import math

import numpy as np


def mean_and_sem(values):
    """Mean over the first axis (the replicas) and its standard error; SE is NaN with one replica."""
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    with np.errstate(all="ignore"):
        mean = values.mean(axis=0)
        sem = values.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full(values.shape[1:], np.nan)
    return mean, sem


def ratio_and_sem(numerator, denominator):
    """R = Σ y / Σ x over replicas (first axis) and its delta-method standard error."""
    y, x = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    n = y.shape[0]
    with np.errstate(all="ignore"):
        ratio = y.sum(axis=0) / x.sum(axis=0)
        if n < 2:
            return ratio, np.full(ratio.shape, np.nan)
        residual = y - ratio * x
        sem = residual.std(axis=0, ddof=1) / (math.sqrt(n) * np.abs(x.mean(axis=0)))
    return ratio, sem


def theory_columns(fw, q_mean, q_sem, grad_mean, grad_sem) -> dict:
    """Per-layer ``*_theory``, ``*_theory_fw``, ``*_rel_error``, ``*_rel_error_fw`` and ``*_rel_error_sem``.

    ``fw`` is a :func:`meanfield.finite_width` Dataset of the same network;
    the relative errors' standard error is the measured mean's SE over the
    finite-width theory (it is the same for both errors to O(1/N)).
    """
    l = ("layer",)
    q_inf, g_inf = fw.q.values, fw.grad.values
    q_fw, g_fw = fw.q_mean.values, fw.grad_mean.values
    g_scale = np.where(np.isfinite(g_fw), g_fw, g_inf)  # orthogonal weights: no finite-width gradient theory
    with np.errstate(all="ignore"):
        return {
            "q_theory": (l, q_inf, {"long_name": "q_l from Prop A.1 (eq 16), infinite width"}),
            "grad_theory": (l, g_inf, {"long_name": "prod chi_i, 1 at the output (Prop A.2), infinite width"}),
            "q_theory_fw": (l, q_fw, {"long_name": "E[q_l] at finite width, O(1/N)",
                                      "equation": "docs/finite-width.md section 3"}),
            "grad_theory_fw": (l, g_fw, {"long_name": "gradient norm ratio at finite width, O(1/N)",
                                         "equation": "docs/finite-width.md section 4"}),
            "chi_theory_fw": (l, fw.chi_mean.values, {"long_name": "E[chi_l] at finite width, O(1/N)"}),
            "q_rel_error": (l, q_mean / q_inf - 1.0, {"long_name": "q_measured_mean / q_theory - 1"}),
            "grad_rel_error": (l, grad_mean / g_inf - 1.0, {"long_name": "grad_measured_mean / grad_theory - 1"}),
            "q_rel_error_fw": (l, q_mean / q_fw - 1.0, {"long_name": "q_measured_mean / q_theory_fw - 1"}),
            "grad_rel_error_fw": (l, grad_mean / g_fw - 1.0,
                                  {"long_name": "grad_measured_mean / grad_theory_fw - 1"}),
            "q_rel_error_sem": (l, q_sem / q_fw, {"long_name": "standard error of q_rel_error and q_rel_error_fw"}),
            "q_theory_fw_residual": (l, fw.residual_q.values,
                                     {"long_name": "estimated relative size of the terms q_theory_fw neglects"}),
            "grad_theory_fw_residual": (l, fw.residual_grad.values,
                                        {"long_name": "estimated relative size of the terms grad_theory_fw neglects"}),
            "grad_rel_error_sem": (l, grad_sem / g_scale,
                                   {"long_name": "standard error of grad_rel_error and grad_rel_error_fw"}),
            "fw_valid": ((), bool(np.all(fw.valid)),
                         {"long_name": "the finite-width theory is inside its validity range"}),
        }
