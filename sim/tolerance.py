"""How far a finite network may sit from the infinite-width theory.

A draw's q_l departs from the mean-field value by a random step at every
layer, which the map then contracts by χ_q = σ_w² Q'(q*) per layer:

* step noise: the N rows of W_l see the same batch; the batch averages the
  weight noise down only as far as its samples are independent.  With ρ the
  batch correlation of x (``x_batch_correlation``: 0 for independent centred
  samples, near 1 when a non-central activation such as dSELU gives every
  sample a shared component), the step is √(2/N·(ρ² + 1/B)), plus
  0.2/√N for the heterogeneity of the units (fitted once on SELU, sSELU,
  lSELU and dSELU at N = 512, B = 256: predicted 1.3% / 5.0% against
  measured 1.0–1.2% / 5.2%).
* accumulation: Σ_k χ_q^{2k} = 1/(1 − χ_q²); S draws average it by √S.
* bias: units are not exactly Gaussian at finite N and the pre-activations
  fluctuate, which a convex φ turns into a draw's χ_l sitting 0.5/N to 1/N
  above σ_w² φ(q_{l−1}) (measured at N = 1024 and 256): q_l is off by a few /N
  and gradient norms by up to L/N.

The bounds are 4σ (a maximum over layers) plus the bias.
"""

from __future__ import annotations

import math


def step_noise(width: int, batch: int, rho: float = 0.0) -> float:
    """Relative noise one layer adds to a draw's q_l."""
    rho = min(max(float(rho), 0.0), 1.0)
    return math.sqrt(2.0 / width * (rho**2 + 1.0 / batch)) + 0.2 / math.sqrt(width)


def q_tolerance(width: int, batch: int, seeds: int, rho: float = 0.0, chi_q: float = 0.8) -> float:
    """Bound on max_l |q_measured_mean / q_theory − 1|."""
    chi_q = min(abs(float(chi_q)), 0.99)
    sigma = step_noise(width, batch, rho) / math.sqrt(1.0 - chi_q**2) / math.sqrt(seeds)
    return 4.0 / width + 4.0 * sigma


def grad_tolerance(width: int, batch: int, seeds: int, depth: int, rho: float = 0.0) -> float:
    """Bound on max_l |grad_measured_mean / grad_theory − 1|: the L/N bias plus 4σ of a √L walk."""
    return depth / width + 4.0 * step_noise(width, batch, rho) * math.sqrt(depth / seeds)


def grad_chi_tolerance(width: int, batch: int, seeds: int, depth: int) -> float:
    """Bound on max_l |pooled gradient / pooled ∏ χ_i of the draws − 1| (eq 24 with
    each draw's own χ_i): the draw's χ carries its q-trajectory, so the batch
    correlation's amplification drops out and the ρ = 0 bound applies."""
    return grad_tolerance(width, batch, seeds, depth, rho=0.0)


def tolerances(ds) -> tuple[float, float]:
    """(q, grad) tolerances for a ``sim.simulate`` Dataset, from its size, its
    measured batch correlation and the theory's χ_q at its (σ_w², σ_b²)."""
    import numpy as np

    import meanfield as mf

    width = int(min(ds.width.values))
    batch, seeds, depth = int(ds.attrs["batch"]), ds.sizes["seed"], ds.sizes["layer"] - 1
    rho = float(np.nanmean(ds.x_batch_correlation.values[:, 1:]))
    fp = mf.fixed_point(mf.activation(ds.attrs["activation"]), ds.attrs["sigma_w2"], ds.attrs["sigma_b2"])
    chi_q = float(fp.chi_q) if np.isfinite(float(fp.chi_q)) else 0.99
    return q_tolerance(width, batch, seeds, rho, chi_q), grad_tolerance(width, batch, seeds, depth, rho)
