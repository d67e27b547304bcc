"""The squared singular values of a finite network's input–output Jacobian, beside the theory.

J = W_L D_{L−1} ⋯ W_1 D_0 at one input h_0 ~ N(0, q0) per unit (the convention of
``meanfield.theory.spectrum``: L weight matrices, L derivative matrices, the first at the input),
weights and biases drawn as ``sim.simulate`` draws them (``sim.engine.weight``, Gaussian or
orthogonal).  Two ways to measure it:

* ``eigen`` (N <= 1024): J formed explicitly, J_l = W_l D_{l−1} J_{l−1}, and the eigenvalues of
  J Jᵀ as the squares of its singular values, at every requested depth of one pass;
* ``probe`` (any N, J never formed): for probes v ~ N(0, I), ‖Jv‖²/N estimates m₁ and
  ‖JᵀJv‖²/N estimates m₂ (E vᵀ(JᵀJ)v = tr JᵀJ, E vᵀ(JᵀJ)²v = tr (JᵀJ)²): one forward-mode product
  (v pushed through the layers) and one reverse-mode product (back from the output) per probe.

Standard errors come from the scatter over independent draws (and, for probes, over probes
within a draw, through the draws' means).  A finite network's moments differ from the
infinite-width theory by O(L/N) (docs/spectrum.md measures it).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import xarray as xr

import meanfield as mf
from cuda_kernels import torch_ops
from meanfield.results import dataset_attrs
from meanfield.theory.spectrum import QUANTILES

from .arguments import positive_int
from .engine import DTYPES, WEIGHTS, NetworkConfig, _generator, bias, gaussian_input, weight

METHODS = ("auto", "eigen", "probe")
#: the widest network whose Jacobian is formed and diagonalised (N³ per layer; 1024 takes ~1 s per
#: layer-product on 2 cores in float64)
MAX_EIGEN_WIDTH = 1024
_STREAM_PROBE = 4


def _depths(depth):
    values = np.atleast_1d(np.asarray(depth))
    out = sorted({positive_int("depth", int(d) if float(d).is_integer() else d) for d in values.tolist()})
    if not out:
        raise ValueError("depth is empty; give one depth >= 1 or a list of them")
    return out


def jacobian_spectrum(activation, depth, width=256, q0=1.0, sigma_w2=1.0, sigma_b2=0.0, weights="gaussian",
                      draws=4, seed=0, method="auto", probes=16, dtype="float64", device="cpu",
                      theory=True, first_draw=0) -> xr.Dataset:
    """Measure the squared singular values of J at each depth in ``depth`` (see the module docstring).

    The draws are first_draw .. first_draw + draws − 1, each from (seed, draw) alone, so that a
    later call extends an earlier one with new, independent draws.

    Returns a Dataset over ``depth`` with ``m1``, ``m2``, ``nvar`` (and ``*_sem``), ``quantile_x``
    (explicit eigenvalues only), ``eigenvalues`` (draw, depth, eig) for ``eigen``, and with
    ``theory=True`` the infinite-width values ``*_theory`` and ``*_rel_error`` beside them.
    """
    act = mf.activation(activation)
    depths = _depths(depth)
    width = positive_int("width", width)
    draws = positive_int("draws", draws)
    first_draw = positive_int("first_draw", first_draw, minimum=0)
    probes = positive_int("probes", probes)
    if weights not in WEIGHTS:
        raise ValueError(f"unknown weights {weights!r}; valid: {', '.join(WEIGHTS)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    if method == "auto":
        method = "eigen" if width <= MAX_EIGEN_WIDTH else "probe"
    if method == "eigen" and width > MAX_EIGEN_WIDTH:
        raise ValueError(f"width {width} is too large for explicit eigenvalues (at most {MAX_EIGEN_WIDTH}: the "
                         "Jacobian is N x N and its SVD costs N^3); use method='probe' (the moments m1, m2 by "
                         "random probes, J never formed)")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    cfg = NetworkConfig(depth=max(depths), widths=(width,) * (max(depths) + 1), batch=1,
                        sigma_w2=mf.check_number("sigma_w2", sigma_w2, positive=True),
                        sigma_b2=mf.check_number("sigma_b2", sigma_b2, nonnegative=True),
                        q0=mf.check_number("q0", q0, positive=True), dtype=dtype, device=device,
                        seed=positive_int("seed", seed, minimum=0), weights=weights)
    f, df = torch_ops(act)
    runs = [_draw(cfg, f, df, k, depths, method, probes) for k in range(first_draw, first_draw + draws)]
    ds = _assemble(act, cfg, depths, runs, method, probes)
    if first_draw:
        ds = ds.assign_coords(draw=ds.draw + first_draw)
    if theory:
        ds = _beside_theory(ds, act, cfg, depths, method)
    return ds


def _draw(cfg, f, df, k, depths, method, n_probes):
    """One network: (m₁, m₂) per depth (per probe for ``probe``), eigenvalues for ``eigen``."""
    want = set(depths)
    with torch.no_grad():
        h = gaussian_input(cfg, k)[0]
        ws, ds_ = [], []
        out = {"m1": [], "m2": [], "eig": []}
        if method == "eigen":
            jac = torch.diag(df(h))  # J_0 = D_0 (J_1 = W_1 D_0 below)
        else:
            g = _generator(cfg, k, 0, _STREAM_PROBE)
            v = torch.randn(cfg.widths[0], n_probes, generator=g, dtype=cfg.torch_dtype, device=cfg.device)
            u = df(h)[:, None] * v
        for layer in range(1, cfg.depth + 1):
            w = weight(cfg, k, layer)
            d_prev = df(h)
            x = f(h)
            h = w @ x
            b = bias(cfg, k, layer)
            if b is not None:
                h = h + b
            ws.append(w)
            ds_.append(d_prev)
            if method == "eigen":
                jac = w @ jac if layer == 1 else w @ (d_prev[:, None] * jac)
                if layer in want:
                    s = torch.linalg.svdvals(jac)
                    eig = (s * s).cpu().numpy()
                    out["eig"].append(np.sort(eig))
                    out["m1"].append(eig.mean())
                    out["m2"].append(np.mean(eig * eig))
            else:
                u = w @ u if layer == 1 else w @ (d_prev[:, None] * u)
                if layer in want:
                    n = cfg.widths[layer]
                    back = u
                    for j in range(layer, 0, -1):  # Jᵀ J v: back through W_jᵀ, then D_{j−1}
                        back = ds_[j - 1][:, None] * (ws[j - 1].T @ back)
                    out["m1"].append((u * u).sum(dim=0).cpu().numpy() / n)
                    out["m2"].append((back * back).sum(dim=0).cpu().numpy() / cfg.widths[0])
    return out


def per_draw_nvar(m1, m2):
    """nvar = m₂/m₁² − 1 of each draw (draw, depth).  A draw's spectrum scales with its input's
    q_l, so nvar is taken within each draw and then averaged: mean m₂/(mean m₁)² − 1 over draws
    would add the scale's scatter, about CV²(m₁)(nvar + 1), to it (+1.4 % at N = 512, L = 8, SELU
    with Gaussian weights, where the draws' own nvar sit 1.0 % from the theory)."""
    with np.errstate(all="ignore"):
        return m2 / np.square(m1) - 1.0


def _sem(values):
    n = values.shape[0]
    return values.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full(values.shape[1:], np.nan)


def _assemble(act, cfg, depths, runs, method, n_probes):
    if method == "eigen":
        m1 = np.array([r["m1"] for r in runs])  # draw, depth
        m2 = np.array([r["m2"] for r in runs])
    else:
        m1 = np.array([[p.mean() for p in r["m1"]] for r in runs])  # probes averaged within a draw
        m2 = np.array([[p.mean() for p in r["m2"]] for r in runs])
    nvar = per_draw_nvar(m1, m2)
    data = {
        "m1": (("depth",), m1.mean(axis=0), {"long_name": "mean squared singular value of J, measured"}),
        "m1_sem": (("depth",), _sem(m1), {"long_name": "standard error of m1 (over draws)"}),
        "m2": (("depth",), m2.mean(axis=0), {"long_name": "mean of the squared singular values squared"}),
        "m2_sem": (("depth",), _sem(m2), {"long_name": "standard error of m2 (over draws)"}),
        "nvar": (("depth",), nvar.mean(axis=0), {"long_name": "normalized variance m2/m1^2 - 1, measured: each "
                                                               "draw's own, averaged over draws"}),
        "nvar_sem": (("depth",), _sem(nvar), {"long_name": "standard error of nvar (over draws)"}),
        "m1_draws": (("draw", "depth"), m1),
        "m2_draws": (("draw", "depth"), m2),
    }
    coords = {"depth": depths, "draw": np.arange(len(runs))}
    if method == "eigen":
        eig = np.array([r["eig"] for r in runs])  # draw, depth, eig
        pooled = eig.transpose(1, 0, 2).reshape(len(depths), -1)
        levels = np.asarray(QUANTILES)
        per_draw = np.quantile(eig, levels, axis=2).transpose(1, 2, 0)  # draw, depth, quantile
        data["eigenvalues"] = (("draw", "depth", "eig"), eig, {"long_name": "eigenvalues of J J^T, ascending"})
        data["quantile_x"] = (("depth", "quantile"), np.quantile(pooled, levels, axis=1).T,
                              {"long_name": "quantiles of the squared singular values (draws pooled)"})
        data["quantile_x_sem"] = (("depth", "quantile"), _sem(per_draw),
                                  {"long_name": "standard error of quantile_x (scatter of the draws' own)"})
        coords["quantile"] = levels
    attrs = dataset_attrs(act, "docs/spectrum.md §4 (what a network measures)", width=cfg.widths[0],
                          draws=len(runs), method=method, probes=n_probes if method == "probe" else 0,
                          weights=cfg.weights, q0=cfg.q0, sigma_w2=cfg.sigma_w2, sigma_b2=cfg.sigma_b2,
                          dtype=cfg.dtype, device=cfg.device, root_seed=cfg.seed)
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _beside_theory(ds, act, cfg, depths, method):
    theory = mf.spectrum(act, depths, q0=cfg.q0, sigma_w2=cfg.sigma_w2, sigma_b2=cfg.sigma_b2,
                         weights=cfg.weights, density=method == "eigen", points=400)
    names = ("m1", "m2", "nvar") + (("quantile_x",) if method == "eigen" else ())
    for name in names:
        t = theory[name].values.reshape(ds[name].shape)
        ds[f"{name}_theory"] = (ds[name].dims, t, {"long_name": f"{name}, infinite-width theory"})
        with np.errstate(all="ignore"):
            ds[f"{name}_rel_error"] = (ds[name].dims, ds[name].values / t - 1.0,
                                       {"long_name": f"{name} measured / theory - 1"})
    if method == "eigen":
        for name in ("upper_edge", "atom_zero"):
            ds[f"{name}_theory"] = (("depth",), theory[name].values.reshape(-1))
    return ds
