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


def _data(data, data_root, size):
    from .data import load

    return load(data or ("cifar10" if data_root else "digits"), data_root, size)


def _progress_bar(total, quiet):
    if quiet:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, file=sys.stderr, disable=None, unit="it")


def fig4_compute(quick=False, activations=None, epsilon=0.017, depth=None, epochs=None, lr=0.015, batch=None,
                 data=None, data_root=None, out=None, seed=0, device="cpu", quiet=False, **_):
    """Train the serial CNN with each activation; E[h²] and ‖∂L/∂W‖_F per layer per iteration."""
    from .training import TrainConfig, train

    activations = activations or ["selu", f"dselu:epsilon={epsilon:g}", f"sselu:epsilon={epsilon:g}",
                                  f"lselu:epsilon={epsilon:g}"]
    depth = (26 if quick else 56) if depth is None else depth
    epochs = (4 if quick else 10) if epochs is None else epochs
    batch = (64 if quick else 128) if batch is None else batch
    size = 16 if quick else 32
    TrainConfig(activations[0], depth=depth, epochs=epochs, lr=lr, batch=batch)  # validates before any work
    images = _data(data, data_root, size)
    cfgs = [TrainConfig(a, depth=depth, epochs=epochs, lr=lr, batch=batch, seed=seed, device=device)
            for a in activations]
    per_run = epochs * -(-len(images.train_y) // batch)
    bar = _progress_bar(per_run * len(cfgs), quiet)
    q, grad, loss, acc = [], [], [], []
    for i, cfg in enumerate(cfgs):
        rec = train(cfg, images, checkpoint_dir=os.path.join(out, "checkpoints") if out else None,
                    progress=None if bar is None else (lambda done, total, i=i: bar.update(i * per_run + done - bar.n)))
        q.append(rec.q)
        grad.append(rec.grad_norm)
        loss.append(rec.loss)
        acc.append(rec.test_accuracy)
    if bar is not None:
        bar.close()
    dims = ("activation", "iteration", "layer")
    ds = xr.Dataset(
        {
            "q": (dims, np.array(q), {"long_name": "E[h^2] of the layer's pre-activations"}),
            "grad_norm": (dims, np.array(grad), {"long_name": "||dL/dW||_F of the layer's kernel"}),
            "loss": (("activation", "iteration"), np.array(loss)),
            "test_accuracy": (("activation", "epoch"), np.array(acc)),
        },
        coords={"activation": activations, "iteration": np.arange(len(q[0])), "layer": np.arange(1, depth + 1),
                "epoch": np.arange(1, epochs + 1)},
    )
    return stamp(ds, "4", "quick" if quick else "full", images.name,
                 {"depth": depth, "epochs": epochs, "lr": lr, "batch": batch, "momentum": 0.9, "weight_decay": 5e-4,
                  "clip": 2.0, "input_size": size, "seed": seed})


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


def fig4_plot(ds):
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    _bands(a, ds, "q", log=True)
    a.set(ylabel="E[h^2] of pre-activations", title="forward: second moment (median, 10-90% over iterations)")
    _bands(b, ds, "grad_norm", log=True)
    b.set(ylabel="||dL/dW||_F", title="backward: weight-gradient norm (median, 10-90%)")
    a.legend(fontsize=8)
    fig.suptitle(title(ds, f"Fig 4: {ds.sizes['layer']}-layer serial CNN over {ds.sizes['iteration']} iterations"))
    fig.tight_layout()
    return fig


def fig7_compute(quick=False, k_values=(1, 2, 4), activation="dselu:epsilon=0.017", depth=None, epochs=None,
                 lr=0.005, batch=None, data=None, data_root=None, out=None, seed=0, device="cpu", quiet=False, **_):
    """μ_w N_{l−1} of every weight layer after every epoch, for channel multipliers k."""
    from .training import TrainConfig, train

    depth = (20 if quick else 32) if depth is None else depth
    epochs = (5 if quick else 10) if epochs is None else epochs
    batch = (64 if quick else 128) if batch is None else batch
    size = 16 if quick else 32
    TrainConfig(activation, depth=depth, epochs=epochs, lr=lr, batch=batch)  # validates before any work
    images = _data(data, data_root, size)
    k_values = [int(k) for k in k_values]
    per_run = epochs * -(-len(images.train_y) // batch)
    bar = _progress_bar(per_run * len(k_values), quiet)
    gains, acc = [], []
    for i, k in enumerate(k_values):
        cfg = TrainConfig(activation, depth=depth, k=k, epochs=epochs, lr=lr, batch=batch, seed=seed, device=device)
        rec = train(cfg, images, checkpoint_dir=os.path.join(out, "checkpoints") if out else None,
                    progress=None if bar is None else (lambda done, total, i=i: bar.update(i * per_run + done - bar.n)))
        gains.append(rec.mean_gain)
        acc.append(rec.test_accuracy)
    if bar is not None:
        bar.close()
    ds = xr.Dataset(
        {
            "mean_gain": (("k", "epoch", "layer"), np.array(gains),
                          {"long_name": "mu_w N_{l-1} = mean(W) x fan-in", "equation": "Prop 3.2"}),
            "test_accuracy": (("k", "trained_epoch"), np.array(acc)),
        },
        coords={"k": k_values, "epoch": np.arange(0, epochs + 1), "layer": np.arange(1, depth + 1),
                "trained_epoch": np.arange(1, epochs + 1)},
    )
    return stamp(ds, "7", "quick" if quick else "full", images.name,
                 {"activation": activation, "depth": depth, "epochs": epochs, "lr": lr, "batch": batch,
                  "input_size": size, "seed": seed})


def fig7_plot(ds):
    n = ds.sizes["k"]
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 3.6), sharey=True)
    axes = np.atleast_1d(axes)
    cmap = plt.get_cmap("viridis")
    epochs = ds.epoch.values[1:]
    for ax, k in zip(axes, ds.k.values):
        for e in epochs:
            ax.plot(ds.layer.values, ds.mean_gain.sel(k=k, epoch=e).values, color=cmap(e / max(epochs)), lw=1,
                    label=f"epoch {e}" if e in (epochs[0], epochs[-1]) else None)
        ax.axhline(1.0, color="k", ls=":", lw=0.8)
        ax.set(xlabel="layer index", title=f"dSELU x{k}")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("mu_w N_{l-1}")
    fig.suptitle(title(ds, "Fig 7: mu_w N_{l-1} with increasing fan-in (one line per epoch)"))
    fig.tight_layout()
    return fig
