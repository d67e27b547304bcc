"""A small, reusable trainer over the serial CNN, with per-layer statistics.

Used by Fig 4 (E[h²] of every pre-activation and ‖∂L/∂W‖_F of every kernel at
every iteration) and Fig 7 (μ_w N_{l−1} of every weight layer after every
epoch).  Options from Section 5: mixup with Beta(a, a), weight
centralization, trainable λ.  SGD with momentum and weight decay, gradients
clipped elementwise to [−clip, clip] (Appendix C).

Checkpoints: after every epoch the model, optimiser, random state and the
statistics so far are written atomically to ``<checkpoint_dir>/<key>.pt``
(``key`` hashes the configuration and the data set); a run that finds its
checkpoint resumes after the last finished epoch and gives the same numbers
as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os

import numpy as np
import torch

from sim.conv import SerialCNN, check_weights

from .data import ImageData


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    activation: str
    depth: int = 56
    k: int = 1
    epochs: int = 10
    lr: float = 0.015
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch: int = 128
    clip: float = 2.0
    mixup: float | None = None
    centralize_weights: bool = False
    trainable_lambda: bool = False
    seed: int = 0
    max_iterations_per_epoch: int | None = None
    device: str = "cpu"
    weights: str = "gaussian"

    def __post_init__(self):
        for name in ("depth", "k", "epochs", "batch"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("lr", "clip"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        check_weights(self.weights)
        if self.mixup is not None and not self.mixup > 0:
            raise ValueError(f"mixup must be a Beta parameter > 0 or None, got {self.mixup!r}")

    def key(self, data_name: str) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True) + data_name
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclasses.dataclass
class TrainRecord:
    """Statistics of one training run (numpy arrays)."""

    q: np.ndarray            # (iterations, weight layers): E[h²] of each layer's pre-activation
    grad_norm: np.ndarray    # (iterations, weight layers): ‖∂L/∂W‖_F before clipping
    loss: np.ndarray         # (iterations,)
    mean_gain: np.ndarray    # (epochs + 1, weight layers): μ_w N_{l−1}, at init and after each epoch
    test_accuracy: np.ndarray  # (epochs,)
    lam: np.ndarray          # (epochs + 1,): mean trainable λ (NaN if fixed)
    init_inputs: np.ndarray  # (batch, C, H, W): the first iteration's inputs (after mixup), for the theory
    init_cotangent_sq: np.ndarray  # (batch,): ‖∂L/∂z_b‖² of the first iteration's logits


def _empty_record():
    return {"q": [], "grad_norm": [], "loss": [], "mean_gain": [], "test_accuracy": [], "lam": [],
            "init_inputs": None, "init_cotangent_sq": None}


def _mean_lambda(model):
    lams = [float(m.lam.detach()) for m in model.acts if isinstance(getattr(m, "lam", None), torch.nn.Parameter)]
    return float(np.mean(lams)) if lams else float("nan")


def _accuracy(model, x, y, batch=512):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            correct += int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    model.train()
    return correct / max(len(y), 1)


def train(cfg: TrainConfig, data: ImageData, checkpoint_dir: str | None = None, progress=None) -> TrainRecord:
    """Train the serial CNN and record its per-layer statistics.

    ``progress(iteration, total)`` is called after every iteration when given.
    """
    device = torch.device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = SerialCNN(cfg.activation, cfg.depth, k=cfg.k, in_channels=data.in_channels,
                      num_classes=data.num_classes, trainable_lambda=cfg.trainable_lambda,
                      centralize_weights=cfg.centralize_weights, weights=cfg.weights)
    model.reset_parameters(gen)
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    record = _empty_record()
    start_epoch = 0
    path = None
    if checkpoint_dir:
        os.makedirs(checkpoint_dir, exist_ok=True)
        path = os.path.join(checkpoint_dir, f"{cfg.key(data.name)}.pt")
        state = _load_checkpoint(path, cfg)
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            record = {**_empty_record(), **state["record"]}  # a checkpoint of an earlier version lacks newer keys
            start_epoch = state["epoch"] + 1
    if start_epoch == 0:
        record["mean_gain"].append(model.weight_statistics()[1])
        record["lam"].append(_mean_lambda(model))
    n = len(data.train_y)
    per_epoch = math.ceil(n / cfg.batch)
    if cfg.max_iterations_per_epoch:
        per_epoch = min(per_epoch, cfg.max_iterations_per_epoch)
    total = per_epoch * cfg.epochs
    x_all, y_all = data.train_x.to(device), data.train_y.to(device)
    for epoch in range(start_epoch, cfg.epochs):
        perm = torch.randperm(n, generator=gen)
        for it in range(per_epoch):
            idx = perm[it * cfg.batch:(it + 1) * cfg.batch]
            x, y = x_all[idx], y_all[idx]
            if cfg.mixup:
                # γx_i + (1 − γ)x_j with γ ~ Beta(a, a) (Zhang et al. 2018); one γ per batch.
                gamma = beta_sample(cfg.mixup, gen)
                pair = torch.randperm(len(idx), generator=gen)
                x = gamma * x + (1 - gamma) * x[pair]
            stats = {}
            logits = model(x, stats)
            if cfg.mixup:
                loss = gamma * torch.nn.functional.cross_entropy(logits, y) + \
                    (1 - gamma) * torch.nn.functional.cross_entropy(logits, y[pair])
            else:
                loss = torch.nn.functional.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            if record["init_inputs"] is None:  # what the theory at initialization needs (cnn_theory)
                logits.retain_grad()
            loss.backward()
            if record["init_inputs"] is None:
                record["init_inputs"] = x.detach().cpu().double().numpy()
                record["init_cotangent_sq"] = logits.grad.detach().cpu().double().square().sum(1).numpy()
            grad_norm, _ = model.weight_statistics()
            torch.nn.utils.clip_grad_value_(model.parameters(), cfg.clip)
            opt.step()
            record["q"].append(np.array([float(v) for v in stats["q"]]))
            record["grad_norm"].append(grad_norm)
            record["loss"].append(float(loss.detach()))
            if progress is not None:
                progress(epoch * per_epoch + it + 1, total)
        record["mean_gain"].append(model.weight_statistics()[1])
        record["test_accuracy"].append(_accuracy(model, data.test_x.to(device), data.test_y.to(device)))
        record["lam"].append(_mean_lambda(model))
        if path:
            tmp = path + ".tmp"
            try:
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                            "generator": gen.get_state(), "record": record, "epoch": epoch,
                            "config": dataclasses.asdict(cfg)}, tmp)
            except BaseException:
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise
            if os.path.exists(path):
                os.replace(path, path + PREVIOUS)  # the last good one stays until the new one is in place
            os.replace(tmp, path)
    return TrainRecord(
        q=np.array(record["q"]),
        grad_norm=np.array(record["grad_norm"]),
        loss=np.array(record["loss"]),
        mean_gain=np.array(record["mean_gain"]),
        test_accuracy=np.array(record["test_accuracy"]),
        lam=np.array(record["lam"]),
        init_inputs=record["init_inputs"],
        init_cotangent_sq=record["init_cotangent_sq"],
    )


#: suffix of the checkpoint kept from the epoch before (the fallback when the latest does not load)
PREVIOUS = ".previous"


class CheckpointWarning(UserWarning):
    """A checkpoint did not load; it was set aside and training resumed from an earlier one."""


def _load_checkpoint(path, cfg):
    """The newest checkpoint of ``cfg`` that loads: ``path``, else the one before it; a damaged file
    is renamed ``*.corrupt`` (kept for inspection) with a warning.  None: start from epoch 0."""
    import warnings

    for candidate in (path, path + PREVIOUS):
        if not os.path.exists(candidate):
            continue
        try:
            state = torch.load(candidate, weights_only=False)
            if state.get("config") != dataclasses.asdict(cfg) or not {"model", "optimizer", "generator", "record",
                                                                      "epoch"} <= set(state):
                raise ValueError("it belongs to another configuration or misses entries")
            return state
        except Exception as exc:  # torch raises many kinds for a truncated or foreign file
            aside = candidate + ".corrupt"
            os.replace(candidate, aside)
            warnings.warn(f"checkpoint {candidate} does not load ({type(exc).__name__}: {str(exc)[:80]}); set aside "
                          f"as {aside}; resuming from the one before it, or from the start", CheckpointWarning,
                          stacklevel=3)
    return None


def beta_sample(a: float, gen: torch.Generator) -> float:
    """γ ~ Beta(a, a) as G₁/(G₁ + G₂), G ~ Gamma(a), drawn from the run's own generator
    (torch.distributions would use the global one and break resumption)."""
    g1, g2 = _gamma(a, gen), _gamma(a, gen)
    return g1 / (g1 + g2)


def _gamma(a, gen):
    """Gamma(a, 1) by Marsaglia and Tsang (2000), boosted for a < 1, from ``gen``."""
    boost = 1.0
    if a < 1:
        boost = float(torch.rand(1, generator=gen, dtype=torch.float64)) ** (1.0 / a)
        a += 1.0
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = float(torch.randn(1, generator=gen, dtype=torch.float64))
        v = (1.0 + c * x) ** 3
        if v <= 0:
            continue
        u = float(torch.rand(1, generator=gen, dtype=torch.float64))
        if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
            return d * v * boost
