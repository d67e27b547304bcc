"""``sim.simulate``: Monte-Carlo networks beside the mean-field theory.

The returned Dataset holds, per layer, the measured quantities of docs/theory.md §5
(dimension ``seed`` for the independent draws) and their ``*_theory`` twins
from ``meanfield``, so that ``ds.q_measured_mean / ds.q_theory − 1`` is the
error of Prop A.1 in one line.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings

import numpy as np
import torch
import xarray as xr

import meanfield as mf
from meanfield.results import activation_attrs, dataset_attrs
from meanfield import check_number
from meanfield.theory.dropout import network_constants
from meanfield.theory.functionals import explosion_factor

from .arguments import layer_widths, positive_int
from .compare import mean_and_sem, ratio_and_sem, theory_columns
from .engine import DTYPES, OPTIONAL, WEIGHTS, NetworkConfig, Probes, flops_per_draw, run_draw
from .memory import require_simulation_memory

DEFAULT_QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
DEFAULT_BIN_EDGES = np.linspace(-4.0, 6.0, 201)


def _is_count(value):
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= 1


def _device(device):
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch sees no CUDA GPU; use device='cpu'")
    return str(device)


def _probe_layers(stat_layers, depth):
    if stat_layers is None:
        stat_layers = sorted({1, max(1, depth // 4), max(1, depth // 2), depth})
    layers = tuple(int(l) for l in stat_layers)
    for l in layers:
        if not 0 <= l <= depth:
            raise ValueError(f"stat_layers must lie in 0..depth = 0..{depth}, got {l}")
    return layers


def _config(depth, width, batch, q0, m0, sigma_w2, sigma_b2, mean_weight, dtype, device, seed, weight_memory,
            inputs, weights="gaussian"):
    depth = positive_int("depth", depth)
    widths = layer_widths(width, depth)
    batch = positive_int("batch", batch)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    q0 = check_number("q0", q0, positive=True)
    m0 = check_number("m0", m0)
    if inputs is None and q0 <= m0**2:
        raise ValueError(f"q0 must exceed m0**2 (q0 is the second moment of h_0), got q0={q0!r}, m0={m0!r}")
    if weights not in WEIGHTS:
        raise ValueError(f"unknown weights {weights!r}; valid: {', '.join(WEIGHTS)}")
    cfg = NetworkConfig(
        depth=depth,
        widths=widths,
        batch=batch,
        sigma_w2=check_number("sigma_w2", sigma_w2, positive=True),
        sigma_b2=check_number("sigma_b2", sigma_b2, nonnegative=True),
        mean_weight=check_number("mean_weight", mean_weight),
        q0=q0,
        m0=m0,
        dtype=dtype,
        device=_device(device),
        seed=positive_int("seed", seed, minimum=0),
        weight_memory=positive_int("weight_memory", weight_memory, minimum=0),
        weights=weights,
    )
    return cfg


def _check_inputs(inputs, cfg):
    if inputs is None:
        return None
    t = torch.as_tensor(inputs)
    if t.shape != (cfg.batch, cfg.widths[0]):
        raise ValueError(f"input must have shape (batch, N_0) = ({cfg.batch}, {cfg.widths[0]}), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("input contains NaN or inf")
    return t


def simulate(
    activation,
    depth: int,
    width=256,
    batch: int = 128,
    seeds: int = 1,
    q0: float = 1.0,
    m0: float = 0.0,
    sigma_w2: float = 1.0,
    sigma_b2: float = 0.0,
    mean_weight: float = 0.0,
    dtype: str = "float64",
    device: str = "cpu",
    seed: int = 0,
    first_draw: int = 0,
    input=None,
    loss=None,
    stat_layers=None,
    quantiles=DEFAULT_QUANTILES,
    bin_edges=DEFAULT_BIN_EDGES,
    weight_memory: int = 2 * 1024**3,
    progress=None,
    skip=(),
    weights: str = "gaussian",
    dropout: float = 0.0,
    dropped=None,
    dropout_constants: dict | None = None,
) -> xr.Dataset:
    """Measure a deep random network per layer and set the theory beside it.

    Parameters
    ----------
    activation : spec string or ``meanfield`` Activation.
    depth, width : L and N (one number or N_0..N_L).
    batch, seeds : inputs per draw and number of independent network draws.
    q0, m0 : second moment and mean of the Gaussian input pre-activation h_0
        (ignored when ``input``, a (batch, N_0) tensor, is given).
    sigma_w2, sigma_b2, mean_weight : W ~ N(μ_w, σ_w²/N_{l−1}), b ~ N(0, σ_b²).
    dropout, dropped : alpha dropout after every activation (drop rate p in [0, 1) and the dropped
        value's rule, 'saturation', 'mean' or a number; ``meanfield.alpha_dropout``): masks per unit and
        sample; ``y_mean`` is measured and the theory (q, gradients, E y) carries the dropout.
    dropout_constants : the layer's a, b and α′ as given (a dict with keys a, b, alpha_p) instead of
        the activation's own, e.g. ``meanfield.theory.dropout.torch_selu_constants(p)``: a network
        with another layer than the theory's (a negative control); the theory columns stay the
        activation's own.
    weights : 'gaussian' (i.i.d. entries) or 'orthogonal' (√σ_w² times a Haar orthogonal matrix, the
        same entry variance; ``sim.engine.weight``).  The infinite-width theory is the same for
        both; the finite-width columns (``*_fw``) are each law's own: for orthogonal weights the
        forward closure of docs/finite-width.md §8 (σ_b² = 0, one width; the gradient's is NaN,
        not derived), left out otherwise.
    dtype, device : 'float32' / 'float64'; 'cpu' / 'cuda'.
    seed : root seed; draw k uses only (seed, k), so results do not depend on
        ``seeds`` or on where a draw runs.
    first_draw : the draws are first_draw .. first_draw + seeds − 1 (the ``seed`` coordinate):
        a later call extends an earlier one with new, independent draws.
    loss : optional callable h_L -> scalar; its gradient replaces the
        Gaussian cotangent at the output.
    stat_layers, quantiles, bin_edges : where and which quantiles and fixed-bin
        histograms of x_l = f(h_l) to take (default: layers 1, L/4, L/2, L).
    weight_memory : bytes of weights kept for the backward pass; the rest are
        regenerated from their seeds.
    progress : a callable ``progress(done, total)`` called after each draw.
    skip : measurements not to take, by name (their variables are NaN): any of
        ``weight_grad_norm`` (the ‖∂L/∂W‖_F product), ``x_batch_correlation``,
        ``traces`` (χ_l of eq 24 and its product) and ``mean_gain``; quantiles and
        histograms are switched off with ``stat_layers=[]`` or ``bin_edges=None``.

    Returns an ``xarray.Dataset`` with dimensions ``seed`` and ``layer``
    (0..L): ``q_measured``, ``q_theory``, ``grad_measured``, ``grad_theory``
    (E‖∂L/∂h_l‖², 1 at the output layer), their seed-pooled ``*_mean`` and
    ``*_rel_error``, means of h_l and x_l, ``weight_grad_norm``, ``mean_gain``
    (μ_w N_{l−1}, measured and nominal), ``prop31_measured``, the draw's own
    χ_l of eq 24 (``chi_measured``), the gradient their product predicts
    (``grad_chi_product``) and its ``grad_chi_rel_error``, quantiles and
    histograms, and ``diverged_at`` (first layer with a non-finite q, −1 if
    none).  Divergence is recorded, never raised.
    """
    act = mf.activation(activation)
    seeds = positive_int("seeds", seeds)
    first_draw = positive_int("first_draw", first_draw, minimum=0)
    if dtype in DTYPES and device == "cpu" and all(_is_count(v) for v in (depth, width, batch)):
        # a hopeless size is refused before anything of size depth exists (bad values: _config says why)
        require_simulation_memory(int(depth), int(width), int(batch), seeds, dtype, "cpu", weight_memory)
    cfg = _config(depth, width, batch, q0, m0, sigma_w2, sigma_b2, mean_weight, dtype, device, seed,
                  weight_memory, input, weights)
    dropped_theory = None  # the dropped value of the theory's layer: the activation's own
    if dropout is not None and not (isinstance(dropout, (int, float)) and not isinstance(dropout, bool)
                                    and float(dropout) == 0.0) and (cfg.mean_weight != 0 or cfg.m0 != 0):
        raise ValueError("dropout with a nonzero mean weight or input mean has no theory here; use mean_weight=0 "
                         "and m0=0")
    c = network_constants(act, dropout, dropped, cfg.sigma_w2, cfg.sigma_b2)
    if c is not None:
        dropped_theory = c["alpha_p"]
        layer = {**c, **(dropout_constants or {})}
        cfg = dataclasses.replace(cfg, dropout=c["p"], dropout_a=layer["a"], dropout_b=layer["b"],
                                  dropout_alpha=layer["alpha_p"])
    inputs = _check_inputs(input, cfg)
    probes = Probes(
        layers=_probe_layers(stat_layers, cfg.depth),
        quantiles=tuple(float(q) for q in quantiles),
        bin_edges=None if bin_edges is None else np.asarray(bin_edges, dtype=float),
    )
    if any(not 0 <= q <= 1 for q in probes.quantiles):
        raise ValueError(f"quantiles must lie in [0, 1], got {list(probes.quantiles)}")
    if probes.bin_edges is not None and (probes.bin_edges.ndim != 1 or probes.bin_edges.size < 2
                                         or np.any(np.diff(probes.bin_edges) <= 0)):
        raise ValueError("bin_edges must be an increasing 1-D array of at least 2 edges")
    require_simulation_memory(cfg.depth, cfg.widths, cfg.batch, seeds, cfg.dtype, cfg.device, cfg.weight_memory)
    if progress is not None and not callable(progress):
        raise ValueError("progress must be a callable progress(done, total) or None")
    skip = frozenset([skip] if isinstance(skip, str) else skip)
    unknown = sorted(skip - set(OPTIONAL))
    if unknown:
        raise ValueError(f"skip names measurements; {unknown[0]!r} is not one of {', '.join(OPTIONAL)}")
    if loss is not None and not callable(loss):
        raise ValueError(f"loss must be a callable h_L -> scalar tensor, or None for a Gaussian cotangent; "
                         f"got {loss!r}")

    started = time.perf_counter()
    draws = [run_draw(cfg, act, k, probes, inputs, loss, skip)
             for k in _with_progress(range(first_draw, first_draw + seeds), progress, seeds)]
    elapsed = time.perf_counter() - started
    ds = _assemble(act, cfg, draws, probes, inputs, loss, elapsed, dropped_theory)
    return ds.assign_coords(seed=ds.seed + first_draw) if first_draw else ds


def _with_progress(iterable, progress, total):
    for i, item in enumerate(iterable):
        yield item
        if progress is not None:
            progress(i + 1, total)


def _stack(draws, key):
    return np.stack([d[key] for d in draws])


def realised_chi(weight_trace, jacobian_trace):
    """Prop A.2 (eq 24) with the draw's own χ_l = tr(W_l W_lᵀ) tr(D_{l−1} D_{l−1}ᵀ)
    (normalised traces, as the paper defines χ_l) instead of σ_w² φ(q_{l−1}).

    Returns (χ, ∏_{i>l} χ_i), per draw and layer; χ at layer 0 is NaN and the
    product is 1 at the output.  The product is the gradient that the draw's
    own forward pass predicts: the theory's q-trajectory is taken out, and
    what remains between it and the measured gradient is the gradient
    independence assumption (Theorem A.1).
    """
    chi = np.full_like(weight_trace, np.nan)
    chi[:, 1:] = weight_trace[:, 1:] * jacobian_trace[:, :-1]
    with np.errstate(all="ignore"):
        tail = np.cumprod(chi[:, :0:-1], axis=1)[:, ::-1]
    return chi, np.concatenate([tail, np.ones_like(chi[:, :1])], axis=1)


def _first_nonfinite(q):
    bad = ~np.isfinite(q)
    return np.where(bad.any(axis=-1), np.argmax(bad, axis=-1), -1)


def _theory(act, cfg, q0, m0, dropped=None):
    """Prop A.1/A.2 (zero-mean) or the mean recursion (Prop 3.2 with eq 12)."""
    drop = dict(dropout=cfg.dropout, dropped=dropped) if cfg.dropout > 0 else {}
    rec = mf.recursion(act, cfg.depth, q0=q0, sigma_w2=cfg.sigma_w2, sigma_b2=cfg.sigma_b2, widths=list(cfg.widths),
                       **drop)
    out = {"q": rec.q.values, "grad": rec.grad.values, "grad_per_unit": rec.grad_per_unit.values,
           "explosion": rec.explosion_factor.values}
    if drop:
        out["y_mean"] = rec.y_mean.values
    if cfg.mean_weight != 0 or m0 != 0:
        mean = mf.mean_recursion(act, cfg.depth, q0=q0, m0=m0, mean_weight=cfg.mean_weight, widths=list(cfg.widths),
                                 sigma_w2=cfg.sigma_w2, sigma_b2=cfg.sigma_b2)
        out.update(q=mean.q.values, h_mean=mean.h_mean.values, x_mean=mean.x_mean.values)
    else:
        h_mean = np.zeros(cfg.depth + 1)
        h_mean[0] = m0
        x_mean = np.full(out["q"].shape, np.nan)  # NaN where the theory's q has diverged or vanished
        finite = np.isfinite(out["q"]) & (out["q"] > 0)
        x_mean[finite] = mf.mean_map(act, 0.0, out["q"][finite])
        out.update(h_mean=h_mean, x_mean=x_mean)
    return out


def _finite_width_theory(act, cfg, q0, m0, inputs):
    """The O(1/N) theory of the same network, where it applies: zero-mean weights and a zero-mean
    Gaussian input (its first step assumes h_0 ~ N(0, q0) per unit); with orthogonal weights only
    for σ_b² = 0 and one width, and only forward (docs/finite-width.md §8)."""
    if inputs is not None or cfg.mean_weight != 0 or m0 != 0 or cfg.dropout > 0:  # dropout: _assemble's own
        return None
    if cfg.weights == "orthogonal" and (cfg.sigma_b2 != 0 or len(set(cfg.widths)) > 1 or cfg.widths[0] < 2):
        return None
    with warnings.catch_warnings():  # the Dataset's fw_valid says it
        warnings.simplefilter("ignore", mf.FiniteWidthWarning)
        return mf.finite_width(act, cfg.depth, q0=q0, widths=list(cfg.widths), sigma_w2=cfg.sigma_w2,
                               sigma_b2=cfg.sigma_b2, weights=cfg.weights)


def _assemble(act, cfg, draws, probes, inputs, loss, elapsed, dropped_theory=None):
    seeds = len(draws)
    layer = np.arange(cfg.depth + 1)
    q = _stack(draws, "q")
    grad_sq = _stack(draws, "grad_sq")
    weight_trace, jacobian_trace = _stack(draws, "weight_trace"), _stack(draws, "jacobian_trace")
    with np.errstate(all="ignore"):
        grad = grad_sq / grad_sq[:, -1:]
    q_mean, q_sem = mean_and_sem(q)
    grad_mean, grad_sem = ratio_and_sem(grad_sq, grad_sq[:, -1:])
    if inputs is None:
        q0, m0 = cfg.q0, cfg.m0
    else:  # theory starts from the measured input moments
        q0, m0 = float(q[:, 0].mean()), float(_stack(draws, "h_mean")[:, 0].mean())
    theory = _theory(act, cfg, q0, m0, dropped_theory) if np.isfinite(q0) and q0 > 0 else None

    # Prop 3.1 with measured q_l and gradients, δ at the measured q (eq 27).
    with np.errstate(all="ignore"):
        factor = np.where(np.isfinite(q) & (q > 0), explosion_factor(act, np.where(np.isfinite(q) & (q > 0), q, 1.0)),
                          np.nan)
        log_prod = np.concatenate([np.zeros((seeds, 1)), np.cumsum(np.log(factor[:, :-1]), axis=1)], axis=1)
        prop31 = q * np.exp(log_prod) * grad_sq / (q[:, :1] * grad_sq[:, :1])
        chi, chi_product = realised_chi(weight_trace, jacobian_trace)
        grad_chi_error = grad_sq.sum(axis=0) / (grad_sq[:, -1:] * chi_product).sum(axis=0) - 1.0

    s, l = ("seed", "layer"), ("layer",)
    data = {
        "q_measured": (s, q, {"long_name": "mean(h_l^2) per draw", "equation": "Prop A.1"}),
        "q_measured_mean": (l, q_mean, {"long_name": "mean(h_l^2) over draws"}),
        "h_mean": (s, _stack(draws, "h_mean"), {"long_name": "mean(h_l)"}),
        "x_mean": (s, _stack(draws, "x_mean"), {"long_name": "mean(x_l), x_l = f(h_l)"}),
        "y_mean": (s, _stack(draws, "y_mean"), {"long_name": "mean(y_l), the dropout layer's output (NaN without "
                                                              "dropout)"}),
        "x_second_moment": (s, _stack(draws, "x_second"), {"long_name": "mean(x_l^2)"}),
        "x_batch_correlation": (s, _stack(draws, "x_correlation"),
                                {"long_name": "sum_{b != b'} x_b . x_b' / ((B - 1) sum_b |x_b|^2)"}),
        "grad_sq": (s, grad_sq, {"long_name": "E||dL/dh_l||^2 (mean over the batch of per-sample squared norms)"}),
        "grad_measured": (s, grad, {"long_name": "E||dL/dh_l||^2, 1 at the output layer", "equation": "Prop A.2"}),
        "grad_measured_mean": (l, grad_mean, {"long_name": "grad_measured pooled over draws"}),
        "weight_grad_norm": (s, _stack(draws, "weight_grad_norm"), {"long_name": "||dL/dW_l||_F"}),
        "mean_gain": (s, _stack(draws, "mean_gain"), {"long_name": "measured mean(W_l) N_{l-1}", "equation": "Prop 3.2"}),
        "mean_gain_nominal": (l, np.concatenate([[np.nan], cfg.mean_weight * np.asarray(cfg.widths[:-1], float)]),
                              {"long_name": "mu_w N_{l-1}"}),
        "weight_trace": (s, weight_trace, {"long_name": "tr(W_l W_l^T) = ||W_l||_F^2 / N_l"}),
        "jacobian_trace": (s, jacobian_trace, {"long_name": "tr(D_l D_l^T) = mean over units and batch of "
                                                            "f'(h_l)^2 (NaN at the output: no backward step uses it)"}),
        "chi_measured": (s, chi, {"long_name": "chi_l = tr(W_l W_l^T) tr(D_{l-1} D_{l-1}^T) of the draw",
                                  "equation": "Prop A.2, eq 24"}),
        "grad_chi_product": (s, chi_product, {"long_name": "prod_{i>l} chi_measured_i, 1 at the output",
                                              "equation": "Prop A.2, eq 24 with the draw's own chi_i"}),
        "grad_chi_rel_error": (l, grad_chi_error, {"long_name": "pooled grad_sq_l / pooled grad_sq_L "
                                                                "grad_chi_product_l - 1"}),
        "prop31_measured": (s, prop31, {"long_name": "q_l prod(1+delta) g_l / (q_0 g_0), measured",
                                        "equation": "Prop 3.1, eq 27"}),
        "diverged_at": (("seed",), _first_nonfinite(q), {"long_name": "first layer with non-finite q, -1 if none"}),
    }
    data["diverged"] = (("seed",), data["diverged_at"][1] >= 0)
    if theory is not None:
        with np.errstate(all="ignore"):
            data.update({
                "q_theory": (l, theory["q"], {"long_name": "q_l from Prop A.1 (eq 16)"}),
                "grad_theory": (l, theory["grad"], {"long_name": "prod chi_i, 1 at the output (Prop A.2)"}),
                "h_mean_theory": (l, theory["h_mean"], {"long_name": "E[h_l] (Prop 3.2 with eq 12)"}),
                "x_mean_theory": (l, theory["x_mean"], {"long_name": "E[x_l] (eq 12)"}),
                "y_mean_theory": (l, theory.get("y_mean", np.full(cfg.depth + 1, np.nan)),
                                  {"long_name": "E[y_l] with alpha dropout (docs/dropout.md)"}),
                "q_rel_error": (l, q_mean / theory["q"] - 1.0, {"long_name": "q_measured_mean / q_theory - 1"}),
                "grad_rel_error": (l, grad_mean / theory["grad"] - 1.0,
                                   {"long_name": "grad_measured_mean / grad_theory - 1"}),
            })
            if cfg.mean_weight != 0:
                # Prop A.2 assumes zero-mean weights: with μ_w != 0 the gradient picks up the mean
                # field μ_w N 1 1ᵀ (networks measure 4-7x the product of χ_l), which no theory here
                # carries: the columns are marked invalid rather than left beside the measurement
                for name in ("grad_theory", "grad_rel_error"):
                    values, attrs = data[name][1], dict(data[name][2])
                    attrs["valid"] = "no: Prop A.2 assumes zero-mean weights (mean_weight != 0)"
                    data[name] = (l, np.full_like(values, np.nan), attrs)
    data["q_measured_sem"] = (l, q_sem, {"long_name": "standard error of q_measured_mean (from the draws)"})
    data["grad_measured_sem"] = (l, grad_sem, {"long_name": "standard error of grad_measured_mean (from the draws, "
                                                            "delta method for the pooled ratio)"})
    fw = _finite_width_theory(act, cfg, q0, m0, inputs)
    if fw is not None:
        columns = theory_columns(fw, q_mean, q_sem, grad_mean, grad_sem)
        data.update({k: v for k, v in columns.items() if k not in ("q_theory", "grad_theory", "q_rel_error",
                                                                   "grad_rel_error")})
    if (cfg.dropout > 0 and theory is not None and inputs is None and len(set(cfg.widths)) == 1
            and cfg.weights == "gaussian"):
        fw = mf.finite_width_dropout(act, cfg.depth, int(cfg.widths[0]), cfg.dropout, dropped_theory, q0=q0,
                                     sigma_w2=cfg.sigma_w2, sigma_b2=cfg.sigma_b2)
        with np.errstate(all="ignore"):
            data.update({
                "q_theory_fw": (l, fw.q_mean.values, {"long_name": "E[q_l] at finite width with dropout, O(1/N)",
                                                      "equation": "meanfield.finite_width_dropout"}),
                "chi_theory_fw": (l, fw.chi_mean.values, {"long_name": "E[chi_l] at finite width with dropout, "
                                                                       "O(1/N)"}),
                "q_rel_error_fw": (l, q_mean / fw.q_mean.values - 1.0,
                                   {"long_name": "q_measured_mean / q_theory_fw - 1"}),
            })
    coords = {"layer": layer, "seed": np.arange(seeds), "width": (l, np.asarray(cfg.widths))}
    _add_probes(data, coords, draws, probes)
    attrs = _run_attrs(act, cfg, seeds, q0, m0, inputs, loss, elapsed)
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _add_probes(data, coords, draws, probes):
    """Quantiles and fixed-bin histograms of x_l at the probe layers, with their coordinates."""
    if not probes.layers:
        return
    coords["stat_layer"] = np.asarray(probes.layers)
    if probes.quantiles:
        coords["quantile"] = np.asarray(probes.quantiles)
        data["x_quantiles"] = (("seed", "stat_layer", "quantile"), _stack(draws, "quantiles"),
                               {"long_name": "quantiles of x_l"})
    if probes.bin_edges is not None:
        edges = probes.bin_edges
        coords["bin"] = 0.5 * (edges[:-1] + edges[1:])
        coords["bin_lower"] = ("bin", edges[:-1])
        coords["bin_upper"] = ("bin", edges[1:])
        data["x_histogram"] = (("seed", "stat_layer", "bin"), _stack(draws, "histogram"),
                               {"long_name": "counts of x_l per fixed bin"})
        data["x_histogram_below"] = (("seed", "stat_layer"), _stack(draws, "hist_below"))
        data["x_histogram_above"] = (("seed", "stat_layer"), _stack(draws, "hist_above"))


def _run_attrs(act, cfg, seeds, q0, m0, inputs, loss, elapsed):
    """The run's settings and provenance as netCDF-safe attributes."""
    attrs = dataset_attrs(
        act,
        "Prop A.1 (eq 16), Prop A.2 (eq 24), Prop 3.1 (eq 27), Prop 3.2 (eq 36), eq 12",
        depth=cfg.depth,
        batch=cfg.batch,
        seeds=seeds,
        q0=q0,
        m0=m0,
        sigma_w2=cfg.sigma_w2,
        sigma_b2=cfg.sigma_b2,
        mean_weight=cfg.mean_weight,
        dtype=cfg.dtype,
        device=cfg.device,
        root_seed=cfg.seed,
        weights=cfg.weights,
        dropout=cfg.dropout,
        dropout_a=cfg.dropout_a,
        dropout_b=cfg.dropout_b,
        dropped_value=cfg.dropout_alpha,
        grad_theory_valid=("no: Prop A.2 assumes zero-mean weights; with mean_weight != 0 the gradient "
                           "theory does not hold and grad_theory is NaN") if cfg.mean_weight != 0 else "yes",
        input_source="given tensor" if inputs is not None else "gaussian",
        cotangent="gradient of a given loss" if loss is not None else "gaussian N(0, 1)",
        torch_version=torch.__version__,
        seconds=round(elapsed, 3),
        matmul_flops=flops_per_draw(cfg) * seeds,
    )
    attrs.update({k: v for k, v in activation_attrs(act).items() if k not in attrs})
    attrs["widths_json"] = json.dumps(list(cfg.widths))
    return attrs
