"""Figures from the Monte-Carlo engine (Fig 5) and from training (Figs 4 and 7)."""

from __future__ import annotations

import os
import sys

import numpy as np
import xarray as xr

import meanfield as mf

from .common import color, label, plt, stamp, title

# ---------------------------------------------------------------------------
# Fig 5: histograms of x_l at layers 1, 4, 16, 64 for λ < 1 against λ >= 1.
# ---------------------------------------------------------------------------

FIG5_LAYERS = (1, 4, 16, 64)


def fig5_compute(quick=False, epsilon=0.03, lambda_low=0.5, depth=64, width=None, batch=None, seed=0,
                 device="cpu", quiet=False, **_):
    """64-layer fully connected nets (eq 11 with λ_min = ``lambda_low`` against λ_min = 1)."""
    import sim

    width = (256 if quick else 1024) if width is None else width
    batch = (128 if quick else 512) if batch is None else batch
    layers = tuple(l for l in FIG5_LAYERS if l <= depth)
    edges = np.linspace(-5.0, 5.0, 201)
    specs = [f"{fam}:epsilon={epsilon:g}{extra}" for fam in ("sselu", "lselu")
             for extra in (f",lambda_min={lambda_low:g}", "")]
    density, means, lams = [], [], []
    bar = _progress_bar(len(specs), quiet)
    for spec in specs:
        ds = sim.simulate(spec, depth=depth, width=width, batch=batch, seeds=1, seed=seed, device=device,
                          dtype="float32", stat_layers=layers, quantiles=(), bin_edges=edges)
        counts = ds.x_histogram.isel(seed=0).values.astype(float)
        density.append(counts / (width * batch * np.diff(edges)))
        means.append(ds.x_mean.isel(seed=0).sel(layer=list(layers)).values)
        lams.append(float(mf.activation(spec).lam))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    ds = xr.Dataset(
        {
            "density": (("activation", "layer", "bin"), np.array(density), {"long_name": "density of x_l"}),
            "x_mean": (("activation", "layer"), np.array(means), {"long_name": "mean of x_l"}),
            "lam": (("activation",), np.array(lams)),
        },
        coords={"activation": specs, "layer": list(layers), "bin": 0.5 * (edges[1:] + edges[:-1])},
    )
    return stamp(ds, "5", "quick" if quick else "full", "Gaussian inputs (q0 = 1)",
                 {"epsilon": epsilon, "lambda_low": lambda_low, "depth": depth, "width": width, "batch": batch,
                  "seed": seed})


def fig5_plot(ds):
    n_act, n_layer = ds.sizes["activation"], ds.sizes["layer"]
    fig, axes = plt.subplots(n_act, n_layer, figsize=(3.2 * n_layer, 2.4 * n_act), sharex=True)
    axes = np.atleast_2d(axes)
    for i, spec in enumerate(ds.activation.values):
        lam = float(ds.lam.values[i])
        for j, layer in enumerate(ds.layer.values):
            ax = axes[i, j]
            ax.fill_between(ds.bin.values, ds.density.values[i, j], step="mid", color=color(str(spec)), alpha=0.6)
            m = float(ds.x_mean.values[i, j])
            ax.axvline(m, color="k", lw=1, ls="--")
            ax.text(0.97, 0.9, f"mean {m:+.3f}", transform=ax.transAxes, ha="right", fontsize=7)
            if i == 0:
                ax.set_title(f"layer {layer}")
            if j == 0:
                ax.set_ylabel(f"{label(str(spec)).split(' ')[0]}, lambda={lam:.2f}\ndensity", fontsize=8)
            if i == n_act - 1:
                ax.set_xlabel("x_l = f(h_l)")
    fig.suptitle(title(ds, "Fig 5: distribution of output activations (lambda < 1 against lambda >= 1)"))
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# Training figures.
# ---------------------------------------------------------------------------


#: Figs 4 and 7 at three sizes (docs/figures.md §2): ``quick`` for CI (under 2 minutes on 2 cores),
#: ``cpu`` the paper's depth, optimizer and epochs on digits at 16×16 (about 15 minutes on 2 cores),
#: ``paper`` Appendix C exactly, CIFAR-10 from --data-root at 32×32.  Fig 4's paper batch: its
#: 3,190 iterations in 10 epochs are 319 a epoch, ⌈50,000/157⌉ (Appendix C gives the count, not the batch).
TRAINING_MODES = {
    "4": {"quick": dict(depth=26, epochs=4, batch=64, size=16, data="digits"),
          "cpu": dict(depth=56, epochs=40, batch=128, size=16, data="digits"),
          "paper": dict(depth=56, epochs=10, batch=157, size=32, data="cifar10")},
    "7": {"quick": dict(depth=20, epochs=5, batch=64, size=16, data="digits"),
          "cpu": dict(depth=32, epochs=10, batch=128, size=16, data="digits"),
          "paper": dict(depth=32, epochs=10, batch=128, size=32, data="cifar10")},
}

#: where the paper's data set comes from, for the one-line error of --mode paper without it
CIFAR_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html (the python version)"


def training_mode(figure, quick, mode, data_root):
    """The mode's settings for Fig ``figure``: ``quick`` or ``mode`` (quick, cpu, paper), by default
    paper with --data-root and cpu without."""
    modes = TRAINING_MODES[figure]
    if quick and mode not in (None, "quick"):
        raise ValueError(f"--quick and --mode {mode} contradict each other; give one")
    mode = "quick" if quick else (mode or ("paper" if data_root else "cpu"))
    if mode not in modes:
        raise ValueError(f"unknown mode {mode!r} for Fig {figure}; valid: {', '.join(modes)}")
    if mode == "paper" and not data_root:
        raise ValueError(f"--mode paper trains on CIFAR-10: give --data-root, the folder holding "
                         f"cifar-10-batches-py, from {CIFAR_SOURCE}")
    return mode, dict(modes[mode])


def _data(data, data_root, size):
    from .data import load

    return load(data, data_root, size)


def _described(images, size):
    """The data set as the title and the Dataset name it: name, training images, image size."""
    return f"{images.name}, {len(images.train_y):,} training images at {size}x{size}"


def _progress_bar(total, quiet):
    if quiet:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, file=sys.stderr, disable=None, unit="it")


def fig4_compute(quick=False, mode=None, activations=None, epsilon=0.017, depth=None, epochs=None, lr=0.015,
                 batch=None, clip=2.0, weights="gaussian", data=None, data_root=None, out=None, seed=0, device="cpu",
                 quiet=False, **_):
    """Train the serial CNN with each activation; E[h²] and ‖∂L/∂W‖_F per layer per iteration, with
    the mean-field theory at initialization (:func:`sim.conv.cnn_theory`) on the first batch."""
    from sim.conv import cnn_theory

    from .training import TrainConfig, train

    mode, m = training_mode("4", quick, mode, data_root)
    activations = activations or ["selu", f"dselu:epsilon={epsilon:g}", f"sselu:epsilon={epsilon:g}",
                                  f"lselu:epsilon={epsilon:g}"]
    depth, epochs, batch = (m[key] if v is None else v for key, v in (("depth", depth), ("epochs", epochs),
                                                                       ("batch", batch)))
    TrainConfig(activations[0], depth=depth, epochs=epochs, lr=lr, batch=batch, clip=clip, weights=weights)  # validates
    images = _data(data or ("cifar10" if data_root else m["data"]), data_root, m["size"])
    cfgs = [TrainConfig(a, depth=depth, epochs=epochs, lr=lr, batch=batch, clip=clip, seed=seed, device=device,
                        weights=weights)
            for a in activations]
    per_run = epochs * -(-len(images.train_y) // batch)
    bar = _progress_bar(per_run * len(cfgs), quiet)
    q, grad, loss, acc, q_theory, grad_theory = [], [], [], [], [], []
    for i, cfg in enumerate(cfgs):
        rec = train(cfg, images, checkpoint_dir=os.path.join(out, "checkpoints") if out else None,
                    progress=None if bar is None else (lambda done, total, i=i: bar.update(i * per_run + done - bar.n)))
        q.append(rec.q)
        grad.append(rec.grad_norm)
        loss.append(rec.loss)
        acc.append(rec.test_accuracy)
        theory = cnn_theory(cfg.activation, rec.init_inputs, depth, cotangent_sq=rec.init_cotangent_sq, weights=weights)
        q_theory.append(theory["q"])
        grad_theory.append(theory["grad_norm"])
    if bar is not None:
        bar.close()
    dims = ("activation", "iteration", "layer")
    ds = xr.Dataset(
        {
            "q": (dims, np.array(q), {"long_name": "E[h^2] of the layer's pre-activations"}),
            "grad_norm": (dims, np.array(grad), {"long_name": "||dL/dW||_F of the layer's kernel"}),
            "q_theory": (("activation", "layer"), np.array(q_theory),
                         {"long_name": "E[h^2] at initialization, mean-field on the first batch (exact at infinite "
                                       "width; NaN for the classifier)", "equation": "sim.conv.cnn_theory"}),
            "grad_theory": (("activation", "layer"), np.array(grad_theory),
                            {"long_name": "||dL/dW||_F at initialization, mean-field on the first batch, diagonal "
                                          "approximation (no covariance across positions or samples)",
                             "equation": "sim.conv.cnn_theory"}),
            "loss": (("activation", "iteration"), np.array(loss)),
            "test_accuracy": (("activation", "epoch"), np.array(acc)),
        },
        coords={"activation": activations, "iteration": np.arange(len(q[0])), "layer": np.arange(1, depth + 1),
                "epoch": np.arange(1, epochs + 1)},
    )
    return stamp(ds, "4", mode, _described(images, m["size"]),
                 {"depth": depth, "epochs": epochs, "iterations": len(q[0]), "lr": lr, "batch": batch,
                  "momentum": 0.9, "weight_decay": 5e-4, "clip": clip, "weights": weights, "epsilon": epsilon,
                  "input_size": m["size"],
                  "data": images.name, "train_images": len(images.train_y), "seed": seed, "device": device})


def _bands(ax, ds, var, log):
    for spec in ds.activation.values:
        v = ds[var].sel(activation=spec).values  # (iteration, layer)
        lo, med, hi = np.nanpercentile(v, [10, 50, 90], axis=0)
        layers = ds.layer.values
        c = color(str(spec))
        ax.plot(layers, med, color=c, label=label(str(spec)))
        ax.fill_between(layers, lo, hi, color=c, alpha=0.2)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer index")


def _theory_at_init(ax, ds, var):
    """The theory at initialization (dashed) and the first iteration's measurement (dots)."""
    if f"{var}_theory" not in ds:  # a Dataset of an earlier version
        return
    for spec in ds.activation.values:
        c = color(str(spec))
        ax.plot(ds.layer.values, ds[f"{var}_theory"].sel(activation=spec).values, color=c, ls="--", lw=1)
        ax.plot(ds.layer.values, ds[var].sel(activation=spec).isel(iteration=0).values, ".", color=c, ms=3)


def fig4_plot(ds):
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    _bands(a, ds, "q", log=True)
    _theory_at_init(a, ds, "q")
    a.set(ylabel="E[h^2] of pre-activations", title="forward: second moment (median, 10-90% over iterations)")
    _bands(b, ds, "grad_norm", log=True)
    _theory_at_init(b, ds, "grad_norm")
    b.set(ylabel="||dL/dW||_F", title="backward: weight-gradient norm (median, 10-90%)")
    a.plot([], [], "k--", lw=1, label="theory at init")
    a.plot([], [], "k.", ms=3, label="iteration 0")
    a.legend(fontsize=8)
    fig.suptitle(title(ds, f"Fig 4: {ds.sizes['layer']}-layer serial CNN over {ds.sizes['iteration']} iterations"))
    fig.tight_layout()
    return fig


def fig7_compute(quick=False, mode=None, k_values=(1, 2, 4), activation="dselu:epsilon=0.017", depth=None,
                 epochs=None, lr=0.005, batch=None, weights="gaussian", data=None, data_root=None, out=None, seed=0,
                 device="cpu", quiet=False, **_):
    """μ_w N_{l−1} of every weight layer after every epoch, for channel multipliers k, and what
    Prop 3.2 makes of it: the mean's per-layer gain κ_l = μ_w N_{l−1} E f′ at the fixed point."""
    from .training import TrainConfig, train

    mode, m = training_mode("7", quick, mode, data_root)
    depth, epochs, batch = (m[key] if v is None else v for key, v in (("depth", depth), ("epochs", epochs),
                                                                       ("batch", batch)))
    TrainConfig(activation, depth=depth, epochs=epochs, lr=lr, batch=batch, weights=weights)  # validates first
    images = _data(data or ("cifar10" if data_root else m["data"]), data_root, m["size"])
    k_values = [int(k) for k in k_values]
    per_run = epochs * -(-len(images.train_y) // batch)
    bar = _progress_bar(per_run * len(k_values), quiet)
    gains, acc = [], []
    for i, k in enumerate(k_values):
        cfg = TrainConfig(activation, depth=depth, k=k, epochs=epochs, lr=lr, batch=batch, seed=seed, device=device,
                          weights=weights)
        rec = train(cfg, images, checkpoint_dir=os.path.join(out, "checkpoints") if out else None,
                    progress=None if bar is None else (lambda done, total, i=i: bar.update(i * per_run + done - bar.n)))
        gains.append(rec.mean_gain)
        acc.append(rec.test_accuracy)
    if bar is not None:
        bar.close()
    q_star = float(mf.fixed_point(activation).q_star)
    slope = float(mf.derivative_mean_map(activation, 0.0, q_star))
    ds = xr.Dataset(
        {
            "mean_gain": (("k", "epoch", "layer"), np.array(gains),
                          {"long_name": "mu_w N_{l-1} = mean(W) x fan-in", "equation": "Prop 3.2"}),
            "mean_contraction": (("k", "epoch", "layer"), np.array(gains) * slope,
                                 {"long_name": "kappa_l = mu_w N_{l-1} E f'(h), h ~ N(0, q*): the factor by which "
                                               "layer l carries a shift of the mean (|kappa| < 1: normalised)",
                                  "equation": "Prop 3.2 (eq 36) with eq 12 linearised at m = 0"}),
            "test_accuracy": (("k", "trained_epoch"), np.array(acc)),
        },
        coords={"k": k_values, "epoch": np.arange(0, epochs + 1), "layer": np.arange(1, depth + 1),
                "trained_epoch": np.arange(1, epochs + 1)},
        attrs={"q_star": q_star, "mean_slope": slope},
    )
    return stamp(ds, "7", mode, _described(images, m["size"]),
                 {"activation": activation, "depth": depth, "epochs": epochs, "lr": lr, "batch": batch,
                  "momentum": 0.9, "weight_decay": 5e-4, "clip": 2.0, "weights": weights, "input_size": m["size"],
                  "data": images.name,
                  "train_images": len(images.train_y), "seed": seed, "device": device})


def fig7_plot(ds):
    n = ds.sizes["k"]
    rows = 2 if "mean_contraction" in ds else 1
    fig, axes = plt.subplots(rows, n, figsize=(4.5 * n, 3.4 * rows), sharey="row", squeeze=False)
    cmap = plt.get_cmap("viridis")
    epochs = ds.epoch.values[1:]
    for j, k in enumerate(ds.k.values):
        for row, var, ylabel, ref in ((0, "mean_gain", "mu_w N_{l-1}", 1.0),
                                      (1, "mean_contraction", "kappa_l = mu_w N_{l-1} E f'", 1.0))[:rows]:
            ax = axes[row, j]
            for e in epochs:
                ax.plot(ds.layer.values, ds[var].sel(k=k, epoch=e).values, color=cmap(e / max(epochs)), lw=1,
                        label=f"epoch {e}" if e in (epochs[0], epochs[-1]) else None)
            ax.axhline(ref, color="k", ls=":", lw=0.8)
            if row == 1:
                ax.axhline(-ref, color="k", ls=":", lw=0.8)
            ax.set(xlabel="layer index", title=f"dSELU x{k}" if row == 0 else f"Prop 3.2: mean gain, x{k}")
            ax.legend(fontsize=7)
            if j == 0:
                ax.set_ylabel(ylabel)
    fig.suptitle(title(ds, "Fig 7: mu_w N_{l-1} with increasing fan-in (one line per epoch)"))
    fig.tight_layout()
    return fig
