"""The serial convolutional network of the paper's Table 4, and its per-layer statistics.

Table 4: conv1 (3×3, c), then three stages of 3×3 convolution pairs at c, 2c
and 4c channels, the first pair of stages 2 and 3 with stride 2, then
average pooling and a fully connected layer.  With n pairs per stage the
network has 6n + 2 weight layers (n = 9: the 56-layer network of Sections
6.1/6.2; n = 5: the 32-layer network of Appendix A.5).  Table 4 prints "×8"
beside the stage-1 pairs, which would make 54; we follow the layer count in
the network's name.  ``k`` multiplies every hidden channel count (the
"dSELU×k" networks of Fig 7).

Weights are N(0, σ_w²/(k_h k_w c_in)) (Appendix C); biases start at 0.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import xarray as xr
from torch import nn

import meanfield as mf
from cuda_kernels.modules import module_for
from meanfield.results import dataset_attrs


def pairs_for_depth(depth: int) -> int:
    """n pairs per stage for a 6n + 2 layer network."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"serial CNN depth must be 6n + 2 with n >= 1 (8, 14, 20, 26, 32, ..., 56), got {depth!r}")
    return (depth - 2) // 6


class SerialCNN(nn.Module):
    """Table 4's serial CNN with a chosen activation.

    Parameters: ``activation`` (spec string, Activation or Module factory),
    ``depth`` (6n + 2), ``base_channels`` (16 in Table 4), ``k`` (channel
    multiplier), ``in_channels``, ``num_classes``, ``sigma_w2``,
    ``trainable_lambda`` (SELU family), ``centralize_weights`` (use
    Ŵ = W − mean(W) in every layer, Section 5).  ``convs`` lists the
    convolutions in order; ``weight_layers`` the convolutions and the final
    linear layer.
    """

    def __init__(self, activation="selu", depth=56, base_channels=16, k=1, in_channels=3, num_classes=10,
                 sigma_w2=1.0, trainable_lambda=False, centralize_weights=False):
        super().__init__()
        self.centralize_weights = bool(centralize_weights)
        n = pairs_for_depth(depth)
        for name, value in (("base_channels", base_channels), ("k", k), ("in_channels", in_channels),
                            ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not (math.isfinite(sigma_w2) and sigma_w2 > 0):
            raise ValueError(f"sigma_w2 must be a finite number > 0, got {sigma_w2!r}")
        self.spec = mf.activation(activation).spec
        self.depth = depth
        self.k = k
        self.sigma_w2 = float(sigma_w2)
        widths = [base_channels * k * 2**s for s in range(3)]
        c_in = in_channels
        self.convs = nn.ModuleList()
        self.acts = nn.ModuleList()

        def add(c_out, stride):
            nonlocal c_in
            conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=True)
            self.convs.append(conv)
            self.acts.append(module_for(activation, trainable_lambda=trainable_lambda))
            c_in = c_out

        add(widths[0], 1)
        for stage, c in enumerate(widths):
            for pair in range(n):
                add(c, 2 if (stage > 0 and pair == 0) else 1)
                add(c, 1)
        self.fc = nn.Linear(c_in, num_classes)
        self.reset_parameters()

    @property
    def weight_layers(self):
        return list(self.convs) + [self.fc]

    def reset_parameters(self, generator: torch.Generator | None = None):
        """W ~ N(0, σ_w²/fan_in) (Appendix C), biases 0."""
        with torch.no_grad():
            for layer in self.weight_layers:
                fan_in = layer.weight[0].numel()
                layer.weight.normal_(0.0, math.sqrt(self.sigma_w2 / fan_in), generator=generator)
                layer.bias.zero_()

    def forward(self, x, record=None):
        """Logits; with ``record`` (a dict), also each layer's pre-activation moments."""
        for conv, act in zip(self.convs, self.acts):
            h = self._conv(conv, x)
            if record is not None:
                record.setdefault("q", []).append(h.detach().pow(2).mean())
                record.setdefault("h_mean", []).append(h.detach().mean())
            x = act(h)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        w = self.fc.weight
        logits = nn.functional.linear(x, w - w.mean() if self.centralize_weights else w, self.fc.bias)
        if record is not None:
            record.setdefault("q", []).append(logits.detach().pow(2).mean())
            record.setdefault("h_mean", []).append(logits.detach().mean())
        return logits

    def _conv(self, conv, x):
        """conv(x), with Ŵ = W − mean(W) under weight centralization (Section 5)."""
        if not self.centralize_weights:
            return conv(x)
        w = conv.weight
        return nn.functional.conv2d(x, w - w.mean(), conv.bias, conv.stride, conv.padding)

    def weight_statistics(self):
        """Per weight layer: ‖∂L/∂W‖_F (after a backward pass) and μ_w N_{l−1} (mean weight × fan-in)."""
        grad_norm, mean_gain = [], []
        for layer in self.weight_layers:
            w = layer.weight
            grad_norm.append(float(torch.linalg.vector_norm(w.grad)) if w.grad is not None else float("nan"))
            mean_gain.append(float(w.detach().mean()) * w[0].numel())
        return np.array(grad_norm), np.array(mean_gain)


def _dense_theory(activation, depth, q_in, sigma_w2):
    """Prop A.1 with the fan-in as width: q_1 = σ_w² E[x²] (conv1 sees the raw
    input, no f), then q_l = σ_w² Q(q_{l−1}).  It ignores zero padding (border
    positions have fewer taps) and is NaN for the final linear layer, which
    follows average pooling."""
    theory = mf.recursion(activation, depth - 2, q0=sigma_w2 * q_in, sigma_w2=sigma_w2)
    return np.concatenate([theory.q.values, [np.nan]])


def simulate_cnn(activation="selu", depth=56, k=1, batch=32, seeds=1, input_size=32, in_channels=3, num_classes=10,
                 base_channels=16, sigma_w2=1.0, seed=0, dtype="float32", device="cpu", inputs=None) -> xr.Dataset:
    """Per-layer statistics of freshly initialised serial CNNs on Gaussian (or given) inputs.

    Measures, per weight layer and draw, E[h²] and E[h] of the pre-activations,
    ‖∂L/∂W‖_F for a Gaussian cotangent on the logits, and μ_w N_{l−1}; sets
    beside them the fully connected theory (Prop A.1) started from the
    measured input second moment — the fan-in scaling makes a convolution
    act on the second moment like a dense layer away from the borders; zero
    padding lowers the fan-in of border positions, which the theory ignores
    (it matters for small images: 16×16 inputs reach 4×4 in stage 3).
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    torch_dtype = getattr(torch, dtype)
    for name, value in (("batch", batch), ("seeds", seeds), ("input_size", input_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    q, h_mean, grad, gain = [], [], [], []
    for draw in range(seeds):
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence(seed, spawn_key=(draw,)).generate_state(1)[0]))
        model = SerialCNN(activation, depth, base_channels, k, in_channels, num_classes, sigma_w2)
        model.reset_parameters(gen)
        model = model.to(device=device, dtype=torch_dtype)
        x = (torch.randn(batch, in_channels, input_size, input_size, generator=gen, dtype=torch_dtype)
             if inputs is None else torch.as_tensor(inputs, dtype=torch_dtype))
        x = x.to(device)
        record = {}
        logits = model(x, record)
        cot = torch.randn(logits.shape, generator=gen, dtype=torch_dtype).to(device)
        (logits * cot).sum().backward()
        g, m = model.weight_statistics()
        q.append([float(v) for v in record["q"]])
        h_mean.append([float(v) for v in record["h_mean"]])
        grad.append(g)
        gain.append(m)
        q_in = float(x.pow(2).mean())
    layer = np.arange(1, depth + 1)
    q_theory = _dense_theory(activation, depth, q_in, sigma_w2)
    dims = ("seed", "layer")
    return xr.Dataset(
        {
            "q_measured": (dims, np.array(q), {"long_name": "E[h^2] of each weight layer's output"}),
            "h_mean": (dims, np.array(h_mean)),
            "weight_grad_norm": (dims, np.array(grad), {"long_name": "||dL/dW||_F"}),
            "mean_gain": (dims, np.array(gain), {"long_name": "mean(W) x fan-in", "equation": "Prop 3.2"}),
            "q_theory": (("layer",), q_theory,
                         {"long_name": "Prop A.1 with the fan-in as width; ignores zero padding"}),
        },
        coords={"layer": layer, "seed": np.arange(seeds)},
        attrs=dataset_attrs(mf.activation(activation), "Table 4; Prop A.1", depth=depth, k=k, batch=batch,
                            input_size=input_size, sigma_w2=sigma_w2, q_input=q_in),
    )
