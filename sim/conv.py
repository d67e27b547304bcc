"""The serial convolutional network of the paper's Table 4, and its per-layer statistics.

Table 4: conv1 (3×3, c), then three stages of 3×3 convolution pairs at c, 2c
and 4c channels, the first pair of stages 2 and 3 with stride 2, then
average pooling and a fully connected layer.  With n pairs per stage the
network has 6n + 2 weight layers (n = 9: the 56-layer network of Sections
6.1/6.2; n = 5: the 32-layer network of Appendix A.5).  Table 4 prints "×8"
beside the stage-1 pairs, which would make 54; we follow the layer count in
the network's name.  ``k`` multiplies every hidden channel count (the
"dSELU×k" networks of Fig 7).

Weights are N(0, σ_w²/(k_h k_w c_in)) (Appendix C), or delta-orthogonal (Xiao et al. 2018): every
tap zero but the centre, which is √(σ_w² c_out/c_in) times a Haar matrix with orthonormal columns
(c_out >= c_in here), so that each position's pre-activation has the norm σ_w² (c_out/c_in)‖x‖²
exactly and the per-unit second moment of the Gaussian law; biases start at 0.
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


#: the convolutions' kernel size (Table 4: 3×3, padding 1)
KERNEL = 3

#: the kernels' initial laws: i.i.d. Gaussian (Appendix C), or delta-orthogonal (Xiao et al. 2018)
CNN_WEIGHTS = ("gaussian", "delta-orthogonal")


def check_weights(weights):
    if weights not in CNN_WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(CNN_WEIGHTS)}, got {weights!r}")
    return weights


def layer_plan(depth: int, base_channels: int = 16, k: int = 1, in_channels: int = 3) -> list:
    """(c_in, c_out, stride) of each convolution of the 6n + 2 layer network (Table 4): conv1, then
    n pairs per stage at c, 2c and 4c channels (c = k · base_channels), the first convolution of
    stages 2 and 3 with stride 2."""
    n = pairs_for_depth(depth)
    plan = [(in_channels, base_channels * k, 1)]
    for stage in range(3):
        c = base_channels * k * 2**stage
        for pair in range(n):
            plan.append((plan[-1][1], c, 2 if (stage > 0 and pair == 0) else 1))
            plan.append((c, c, 1))
    return plan


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
                 sigma_w2=1.0, trainable_lambda=False, centralize_weights=False, weights="gaussian"):
        super().__init__()
        self.weights = check_weights(weights)
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
        self.convs = nn.ModuleList()
        self.acts = nn.ModuleList()
        for c_in, c_out, stride in layer_plan(depth, base_channels, k, in_channels):
            self.convs.append(nn.Conv2d(c_in, c_out, KERNEL, stride=stride, padding=KERNEL // 2, bias=True))
            self.acts.append(module_for(activation, trainable_lambda=trainable_lambda))
        self.fc = nn.Linear(self.convs[-1].out_channels, num_classes)
        self.reset_parameters()

    @property
    def weight_layers(self):
        return list(self.convs) + [self.fc]

    def reset_parameters(self, generator: torch.Generator | None = None):
        """W ~ N(0, σ_w²/fan_in) (Appendix C), or delta-orthogonal convolutions (the classifier stays
        Gaussian); biases 0."""
        with torch.no_grad():
            for layer in self.weight_layers:
                w = layer.weight
                if self.weights == "delta-orthogonal" and w.ndim == 4:
                    c_out, c_in = w.shape[:2]
                    w.zero_()
                    centre = torch.empty(c_out, c_in, dtype=w.dtype)
                    torch.nn.init.orthogonal_(centre, math.sqrt(self.sigma_w2 * c_out / c_in), generator=generator)
                    w[:, :, KERNEL // 2, KERNEL // 2] = centre
                else:
                    w.normal_(0.0, math.sqrt(self.sigma_w2 / w[0].numel()), generator=generator)
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


def _taps(like, weights="gaussian"):
    """The taps a kernel's initial law spreads the signal over, as a (1, 1, 3, 3) mask: all nine
    (Gaussian), the centre alone (delta-orthogonal)."""
    mask = torch.ones(1, 1, KERNEL, KERNEL, dtype=like.dtype)
    if weights == "delta-orthogonal":
        mask.zero_()[..., KERNEL // 2, KERNEL // 2] = 1.0
    return mask


def _tap_sum(x, stride, weights="gaussian"):
    """Σ over the taps of a zero-padded map (B, 1, H, W): what a convolution's fan-in sees."""
    return nn.functional.conv2d(x, _taps(x, weights), stride=stride, padding=KERNEL // 2)


def cnn_theory(activation, inputs, depth=56, k=1, base_channels=16, sigma_w2=1.0, cotangent_sq=None,
               weights="gaussian") -> dict:
    """Mean-field theory of the freshly initialised serial CNN, position by position (docs/figures.md §1).

    With W ~ N(0, σ_w²/(9 c_in)) and zero biases, h_l(b, p) over a layer's channels is Gaussian with
    variance q_l(b, p) = (σ_w²/9) Σ_t X_{l−1}(b, p·s + t), the sum over the 3×3 taps t inside the
    image (zero padding: a border position sees fewer), s the stride, X_0 = the input's mean square
    over channels and X_l = Q(q_l) (eq 16, position by position).  Exact at infinite width for any
    input batch; the measured E[h²] of a layer is the mean of q_l over samples and positions.

    Backward (Prop A.2 through the transposed convolutions), for the logits' cotangent g_b of squared
    norm ``cotangent_sq[b]``: the average pooling gives E δ_L² = φ(q_L) σ_w² ‖g_b‖²/(c_L P_L²) per unit
    (P_L positions), and E δ_{l−1}²(j) = φ(q_{l−1}(j)) σ_w² (c_out/(9 c_in)) Σ_{(p, t): p·s + t = j}
    E δ_l²(p).
    The kernel gradient ∂L/∂W_l = Σ_{b,p} δ_l(b, p) ⊗ patch(b, p) then has
    E‖∂L/∂W_l‖² = c_out c_in Σ_{b,p} E δ_l²(b, p) Σ_t X_{l−1}(b, p·s + t) when its terms are
    uncorrelated across samples and positions: the diagonal approximation, which neglects
    E[δ δ′] E[x x′] between different (b, p) (small for inputs uncorrelated across positions and
    activations of zero mean; not for natural images).

    Returns numpy arrays over the ``depth`` weight layers: ``q`` (E[h²]) and ``grad_norm``
    (√E‖∂L/∂W_l‖², NaN without ``cotangent_sq``); the classifier (last entry) is NaN in both: its
    input, the pooled features, depends on the covariance between positions, which this
    position-by-position theory does not carry.

    Delta-orthogonal kernels (``weights``) carry the signal through the centre tap alone, with the
    same per-unit gains: q_l(b, p) = σ_w² X_{l−1}(b, p·s), no padding loss, and the backward pass
    through the centre only (E‖Hᵀv‖² = (c_in/c_out)‖v‖² for Haar H with orthonormal columns); the
    kernel gradient still has all nine taps.
    """
    check_weights(weights)
    spread = KERNEL**2 if weights == "gaussian" else 1
    act = mf.activation(activation)
    x = torch.as_tensor(np.asarray(inputs, dtype=float))
    if x.ndim != 4:
        raise ValueError(f"inputs must be a batch of images (B, C, H, W), got shape {tuple(x.shape)}")
    plan = layer_plan(depth, base_channels, k, x.shape[1])
    X = x.square().mean(1, keepdim=True)  # X_0
    qs, xs, phis = [], [X], []
    for _, _, stride in plan:
        q = sigma_w2 / spread * _tap_sum(xs[-1], stride, weights)
        qs.append(q)
        qn = q.numpy()
        zero, safe = qn == 0, np.where(qn > 0, qn, 1.0)  # a position that sees only zeros: h = 0 there
        xs.append(torch.from_numpy(np.where(zero, float(act.f(0.0)) ** 2, mf.second_moment(act, safe))))
        phis.append(torch.from_numpy(np.where(zero, float(act.df(0.0)) ** 2, mf.jacobian_second_moment(act, safe))))
    q_mean = np.array([float(q.mean()) for q in qs] + [np.nan])
    grad = np.full(depth, np.nan)
    if cotangent_sq is not None:
        g2 = torch.as_tensor(np.broadcast_to(np.asarray(cotangent_sq, dtype=float), (x.shape[0],)).copy())
        c_last = plan[-1][1]
        positions = qs[-1].shape[2] * qs[-1].shape[3]
        d = phis[-1] * (sigma_w2 * g2 / (c_last * positions**2))[:, None, None, None]
        for l in range(len(plan) - 1, -1, -1):
            c_in, c_out, stride = plan[l]
            grad[l] = math.sqrt(c_out * c_in * float((d * _tap_sum(xs[l], stride)).sum()))
            if l:
                back = nn.grad.conv2d_input(qs[l - 1].shape, _taps(d, weights), d, stride=stride,
                                            padding=KERNEL // 2)
                d = phis[l - 1] * back * (sigma_w2 * c_out / (spread * c_in))
    return {"q": q_mean, "grad_norm": grad}


def simulate_cnn(activation="selu", depth=56, k=1, batch=32, seeds=1, input_size=32, in_channels=3, num_classes=10,
                 base_channels=16, sigma_w2=1.0, seed=0, dtype="float32", device="cpu", inputs=None,
                 weights="gaussian") -> xr.Dataset:
    """Per-layer statistics of freshly initialised serial CNNs on Gaussian (or given) inputs.

    Measures, per weight layer and draw, E[h²] and E[h] of the pre-activations,
    ‖∂L/∂W‖_F for a standard Gaussian cotangent on the logits (E‖g_b‖² = num_classes), and
    μ_w N_{l−1}; sets beside them :func:`cnn_theory` on each draw's inputs (zero padding and
    strides position by position), averaged over the draws.
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    torch_dtype = getattr(torch, dtype)
    for name, value in (("batch", batch), ("seeds", seeds), ("input_size", input_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    q, h_mean, grad, gain, q_theory, grad_theory = [], [], [], [], [], []
    for draw in range(seeds):
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence(seed, spawn_key=(draw,)).generate_state(1)[0]))
        model = SerialCNN(activation, depth, base_channels, k, in_channels, num_classes, sigma_w2, weights=weights)
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
        theory = cnn_theory(activation, x.detach().cpu().double().numpy(), depth, k, base_channels, sigma_w2,
                            cotangent_sq=float(num_classes), weights=weights)
        q_theory.append(theory["q"])
        grad_theory.append(theory["grad_norm"])
    layer = np.arange(1, depth + 1)
    dims = ("seed", "layer")
    return xr.Dataset(
        {
            "q_measured": (dims, np.array(q), {"long_name": "E[h^2] of each weight layer's output"}),
            "h_mean": (dims, np.array(h_mean)),
            "weight_grad_norm": (dims, np.array(grad), {"long_name": "||dL/dW||_F"}),
            "mean_gain": (dims, np.array(gain), {"long_name": "mean(W) x fan-in", "equation": "Prop 3.2"}),
            "q_theory": (("layer",), np.mean(q_theory, axis=0),
                         {"long_name": "E[h^2] at infinite width, position by position (cnn_theory); NaN for "
                                       "the classifier", "equation": "eq 16 through the convolutions"}),
            "grad_theory": (("layer",), np.sqrt(np.mean(np.square(grad_theory), axis=0)),
                            {"long_name": "sqrt E||dL/dW||_F^2, diagonal approximation (cnn_theory)",
                             "equation": "Prop A.2 through the transposed convolutions"}),
        },
        coords={"layer": layer, "seed": np.arange(seeds)},
        attrs=dataset_attrs(mf.activation(activation), "Table 4; Prop A.1", depth=depth, k=k, batch=batch,
                            input_size=input_size, sigma_w2=sigma_w2, weights=weights),
    )
