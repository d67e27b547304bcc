"""Monte-Carlo deep networks measured layer by layer (docs/theory.md §5).

A fully connected network of depth L: h_0 is the input pre-activation, and
layer l = 1..L computes h_l = W_l f(h_{l−1}) + b_l with
W_l[i, j] ~ N(μ_w, σ_w²/N_{l−1}) and b_l ~ N(0, σ_b²).  For each independent
draw (``seeds``) the engine pushes a batch forward, then a cotangent backward
(δ_L = g ~ N(0, 1) per element, or ∂loss/∂h_L), and reduces every measured
quantity per layer on the fly.  Draws run one after another, so memory does
not grow with their number.

Randomness.  Every tensor comes from its own generator seeded from
``numpy.random.SeedSequence(seed, spawn_key=(draw, layer, stream))`` (a CPU
weight matrix: one per row block, the block's index appended to the key): a
draw's numbers depend only on (seed, draw, layer), never on how many draws run,
in which order or on how many threads.  The same seed gives bit-identical
results on the same device, dtype and thread count (the thread count sets how
matrix products add up).  Float64 weights on the CPU come from numpy's PCG64
and its ziggurat sampler, 1.7× faster than torch's float64 ``normal_`` here
(the largest single cost of a draw); float32 weights, where torch's vectorised
sampler is 2.4× faster than numpy's, and everything on a GPU, from torch's
generators (measured at 2048 × 2048 on one core: numpy 63 ms float64, 41 ms
float32; torch 105 ms, 17 ms).  Both samplers run on one core, so the row
blocks are drawn on parallel threads (:data:`WEIGHT_BLOCK_NUMBERS`).

Memory.  Activations x_l and derivatives f'(h_l) of all layers are kept for
the backward pass (2·L·B·N numbers; the derivative also gives the draw's
tr(D_l D_lᵀ) of eq 24); weights are kept while they fit in ``weight_memory`` bytes
and regenerated from their generators in the backward pass otherwise, so a
width-4096, depth-256 network never holds its 17 GB of weights.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import torch

from cuda_kernels import torch_ops


_STREAM_WEIGHT, _STREAM_BIAS, _STREAM_INPUT, _STREAM_COTANGENT = range(4)
_STREAM_DROPOUT = 5  # (4 is the spectrum's probes)
DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: weight laws: i.i.d. Gaussian, or √σ_w² times a Haar (semi-)orthogonal matrix
WEIGHTS = ("gaussian", "orthogonal")


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """A fully connected network and how to drive it; validated on creation."""

    depth: int
    widths: tuple  # N_0..N_L
    batch: int
    sigma_w2: float = 1.0
    sigma_b2: float = 0.0
    mean_weight: float = 0.0
    q0: float = 1.0
    m0: float = 0.0
    dtype: str = "float64"
    device: str = "cpu"
    seed: int = 0
    weight_memory: int = 2 * 1024**3
    weights: str = "gaussian"
    #: alpha dropout after every activation but the output's (meanfield.theory.dropout): drop rate p,
    #: and y = a (d x + (1 − d) α′) + b
    dropout: float = 0.0
    dropout_a: float = 1.0
    dropout_b: float = 0.0
    dropout_alpha: float = 0.0

    @property
    def torch_dtype(self):
        return DTYPES[self.dtype]

    def fan_in(self, layer):
        return self.widths[layer - 1]


def derive_seed(seed: int, *key: int) -> int:
    """A 64-bit torch seed from the root seed and a spawn key (draw, layer, stream)."""
    state = np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key)).generate_state(2, np.uint32)
    return int(state[0]) | (int(state[1]) << 32)


def _generator(cfg, *key):
    g = torch.Generator(device=cfg.device)
    g.manual_seed(derive_seed(cfg.seed, *key))
    return g


#: Gaussian weights on the CPU are drawn in row blocks of about this many numbers, each block from
#: its own generator (spawn key (draw, layer, stream, block)), the blocks on parallel threads:
#: torch's CPU ``normal_`` and numpy's fill run on one core each, so on 2 cores a 2048 × 2048 draw
#: takes 8.5 instead of 17 ms (float32, torch).  The blocks depend on the shape alone, so the
#: numbers do not depend on how many threads draw them.
WEIGHT_BLOCK_NUMBERS = 2**20


def weight_blocks(n_out: int, n_in: int) -> list:
    """Row ranges [lo, hi) of W's blocks (one block for a small matrix)."""
    count = max(1, min(n_out, -(-n_out * n_in // WEIGHT_BLOCK_NUMBERS)))
    edges = [n_out * i // count for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _in_parallel(tasks):
    """Run the no-argument callables on a thread pool of torch's thread count (one per process)."""
    threads = max(1, torch.get_num_threads())
    if threads == 1 or len(tasks) == 1:
        for task in tasks:
            task()
        return
    from meanfield.gauss.jit import shared_pool

    pool = shared_pool(threads, "meanfield-draw")
    for future in [pool.submit(task) for task in tasks]:
        future.result()


def weight(cfg: NetworkConfig, draw: int, layer: int) -> torch.Tensor:
    """W_l of draw ``draw``, shape (N_l, N_{l−1}); regenerable.  Gaussian: N(μ_w, σ_w²/N_{l−1}),
    on the CPU in row blocks (:data:`WEIGHT_BLOCK_NUMBERS`), on a GPU in one piece.
    Orthogonal: the Q of a QR factorisation of the same Gaussian draw with the signs of R's diagonal
    taken out (Haar-distributed, Mezzadri 2007), scaled so that each entry has variance σ_w²/N_{l−1}
    as a Gaussian one does (√σ_w² for a square layer: ‖W x‖² = σ_w² ‖x‖² exactly), plus μ_w."""
    n_out, n_in = cfg.widths[layer], cfg.widths[layer - 1]
    std = math.sqrt(cfg.sigma_w2 / n_in)
    key = (draw, layer, _STREAM_WEIGHT)
    if cfg.weights == "orthogonal":
        return _orthogonal(cfg, key, n_out, n_in)
    if torch.device(cfg.device).type != "cpu":
        w = torch.empty(n_out, n_in, dtype=cfg.torch_dtype, device=cfg.device)
        # one pass: normal_ scales and shifts as it draws (randn, then mul_ and add_, would be three)
        return w.normal_(cfg.mean_weight, std, generator=_generator(cfg, *key))
    w = torch.empty(n_out, n_in, dtype=cfg.torch_dtype)
    blocks = weight_blocks(n_out, n_in)

    def fill(block, lo, hi):
        part = w[lo:hi]
        if cfg.dtype == "float64":  # numpy's PCG64 and ziggurat: 1.7x torch's float64 normal_ here
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(cfg.seed, spawn_key=key + (block,))))
            rng.standard_normal(out=part.numpy())
        else:  # torch's vectorised float32 sampler (2.4x numpy's) scales and shifts as it draws
            part.normal_(cfg.mean_weight, std, generator=_generator(cfg, *key, block))

    _in_parallel([functools.partial(fill, i, lo, hi) for i, (lo, hi) in enumerate(blocks)])
    if cfg.dtype == "float64":
        w.mul_(std)
        if cfg.mean_weight:
            w.add_(cfg.mean_weight)
    return w


def _orthogonal(cfg, key, n_out, n_in):
    """√(σ_w² max(1, N_out/N_in)) Q + μ_w, Q with orthonormal rows (N_out <= N_in) or columns."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(cfg.seed, spawn_key=key)))
    tall = n_out >= n_in
    g = torch.from_numpy(rng.standard_normal((n_out, n_in) if tall else (n_in, n_out))).to(cfg.device)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r)).masked_fill(torch.diagonal(r) == 0, 1.0)
    w = (q if tall else q.T).to(cfg.torch_dtype)
    w = w.mul_(math.sqrt(cfg.sigma_w2 * max(1.0, n_out / n_in))).contiguous()
    return w.add_(cfg.mean_weight) if cfg.mean_weight else w


#: resolution of the CPU masks' keep probability: a mask is u < round(k 2^32) for u uniform on
#: 32-bit integers, so the realised keep rate is k to 2.3e-10
_MASK_BITS = 32


def alpha_dropout(cfg: NetworkConfig, draw: int, layer: int, x: torch.Tensor, jacobian: torch.Tensor):
    """y = alpha dropout of x_l (``meanfield.theory.dropout``), a Bernoulli(1 − p) mask per unit and
    sample from the draw's own generator (stream 5); ``jacobian`` (f'(h_l)) is multiplied in place by
    ∂y/∂x = a d.  On the CPU numpy's PCG64 draws uniform integers and one compiled pass applies them
    (``sim.dropout_kernel``); on a GPU, torch's generator and elementwise operations."""
    dropped_output = cfg.dropout_a * cfg.dropout_alpha + cfg.dropout_b
    if torch.device(cfg.device).type == "cpu" and x.is_contiguous() and jacobian.is_contiguous():
        from .dropout_kernel import alpha_dropout_cpu

        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(cfg.seed, spawn_key=(draw, layer,
                                                                                             _STREAM_DROPOUT))))
        threshold = round((1.0 - cfg.dropout) * 2**_MASK_BITS)
        # PCG64's raw 64-bit outputs, each read as two uniform 32-bit integers (2.3x numpy's integers())
        u = rng.bit_generator.random_raw((x.numel() + 1) // 2).view(np.uint32)[: x.numel()]
        return torch.from_numpy(alpha_dropout_cpu(x.numpy(), jacobian.numpy(), u, threshold, cfg.dropout_a,
                                                  cfg.dropout_b, dropped_output))
    g = _generator(cfg, draw, layer, _STREAM_DROPOUT)
    drop = ~torch.empty(x.shape, dtype=torch.bool, device=x.device).bernoulli_(1.0 - cfg.dropout, generator=g)
    jacobian.mul_(cfg.dropout_a).masked_fill_(drop, 0.0)
    return x.mul(cfg.dropout_a).add_(cfg.dropout_b).masked_fill_(drop, dropped_output)


def bias(cfg: NetworkConfig, draw: int, layer: int) -> torch.Tensor | None:
    if cfg.sigma_b2 == 0:
        return None
    b = torch.randn(cfg.widths[layer], generator=_generator(cfg, draw, layer, _STREAM_BIAS),
                    dtype=cfg.torch_dtype, device=cfg.device)
    return b.mul_(math.sqrt(cfg.sigma_b2))


def gaussian_input(cfg: NetworkConfig, draw: int) -> torch.Tensor:
    """h_0 ~ N(m0, q0 − m0²) per element, shape (B, N_0)."""
    z = torch.randn(cfg.batch, cfg.widths[0], generator=_generator(cfg, draw, 0, _STREAM_INPUT),
                    dtype=cfg.torch_dtype, device=cfg.device)
    return z.mul_(math.sqrt(cfg.q0 - cfg.m0**2)).add_(cfg.m0)


def gaussian_cotangent(cfg: NetworkConfig, draw: int) -> torch.Tensor:
    return torch.randn(cfg.batch, cfg.widths[-1], generator=_generator(cfg, draw, 0, _STREAM_COTANGENT),
                       dtype=cfg.torch_dtype, device=cfg.device)


@dataclasses.dataclass
class Probes:
    """Which extra statistics to take: quantiles and histograms of x_l at some layers."""

    layers: tuple = ()
    quantiles: tuple = ()
    bin_edges: np.ndarray | None = None


def _quantiles(x: torch.Tensor, qs) -> np.ndarray:
    """The quantiles of every element of x (linear interpolation, as numpy and torch define them).

    On the CPU numpy's selection (one partial sort for all of them) is 3x faster than torch's
    full sort (40 against 120 ms for 10⁶ values, measured); on a GPU torch's sort is the fast one.
    """
    flat = x.reshape(-1)
    if not torch.isfinite(flat).all():
        return np.full(len(qs), np.nan)
    if flat.device.type == "cpu":
        return np.quantile(flat.numpy(), qs).astype(float)
    if flat.numel() > 2**24:  # torch.quantile's input limit: a fixed, evenly strided subsample
        flat = flat[:: math.ceil(flat.numel() / 2**24)]
    q = torch.tensor(qs, dtype=flat.dtype, device=flat.device)
    return torch.quantile(flat, q).cpu().numpy().astype(float)


def _uniform(edges) -> bool:
    steps = np.diff(edges)
    return bool(np.allclose(steps, steps[0], rtol=1e-12, atol=0.0))


def _histogram(x: torch.Tensor, edges: np.ndarray):
    """Counts in the fixed bins, plus the finite values below and above them (NaN and ±inf in none).

    Bin i holds e[i] <= v < e[i+1], the last bin also v = e[-1].  Equally spaced edges (the default)
    take torch.histc, one pass (5 against 25 ms for 10⁶ values); others a bucketize.
    """
    flat = x.reshape(-1)
    if _uniform(edges):  # histc leaves out NaN and what lies outside [lo, hi]
        lo, hi = float(edges[0]), float(edges[-1])
        counts = torch.histc(flat, bins=len(edges) - 1, min=lo, max=hi).to(torch.int64).cpu().numpy()
        below = int(torch.count_nonzero((flat < lo) & (flat != -math.inf)))
        above = int(torch.count_nonzero((flat > hi) & (flat != math.inf)))
        return counts, below, above
    e = torch.as_tensor(edges, dtype=flat.dtype, device=flat.device)
    finite = torch.isfinite(flat)
    vals = flat[finite]
    idx = torch.bucketize(vals, e, right=True) - 1  # bin i holds e[i] <= v < e[i+1]
    last = vals == e[-1]
    idx = torch.where(last, torch.full_like(idx, len(edges) - 2), idx)
    below = int((idx < 0).sum())
    above = int((idx >= len(edges) - 1).sum())
    inside = idx[(idx >= 0) & (idx < len(edges) - 1)]
    counts = torch.bincount(inside, minlength=len(edges) - 1).cpu().numpy()
    return counts, below, above


def _batch_correlation(x: torch.Tensor) -> float:
    """Mean cosine-free overlap of distinct samples: Σ_{b≠b'} x_b·x_b' / ((B−1) Σ_b ‖x_b‖²).

    0 for independent centred samples, 1 when every sample is the same; it
    sets how much a batch averages out a draw's weight noise.
    """
    b = x.shape[0]
    if b < 2:
        return float("nan")
    sq = float(torch.linalg.vector_norm(x)) ** 2
    total = float(torch.linalg.vector_norm(x.sum(dim=0))) ** 2
    return (total - sq) / ((b - 1) * sq)


#: rows of a block of the symmetric Gram products of :func:`_frobenius_of_outer`: products of
#: (256 × N)·(N × 256) and larger still run at the GEMM's rate on a CPU (measured on 2 cores)
GRAM_BLOCK = 256


def _gram_blocks(batch: int) -> int:
    """Blocks per side of the batch's Gram matrices (1: the whole matrix in one product)."""
    return max(1, batch // GRAM_BLOCK)


def _gram_flops(batch: int, n_out: int, n_in: int) -> float:
    """FLOPs of the upper block triangle of δδᵀ and xxᵀ: T(T+1)/2 of the T² blocks."""
    t = _gram_blocks(batch)
    return 2.0 * batch * batch * (n_out + n_in) * (t + 1) / (2 * t)


def _frobenius_flops(batch: int, n_out: int, n_in: int) -> float:
    """FLOPs of ‖δᵀ x‖_F by the cheaper of the direct product and the Gram matrices."""
    return min(2.0 * batch * n_out * n_in, _gram_flops(batch, n_out, n_in))


def _frobenius_of_outer(delta: torch.Tensor, x: torch.Tensor) -> float:
    """‖δᵀ x‖_F (= ‖∂L/∂W‖_F), by the cheaper of the direct product and the Gram matrices.

    ‖δᵀx‖²_F = Σ_bb' (δ_b·δ_b')(x_b·x_b') = Σ (δδᵀ) ⊙ (xxᵀ): both Gram matrices are symmetric, so
    with the batch cut into T blocks only the blocks on and above the diagonal are computed (row
    block i against blocks i..T−1 in one product each), the ones above the diagonal counted twice:
    T(T+1)/2 of the T² blocks, 62 % of the full Gram matrices' work at T = 4.
    """
    b, n_out = delta.shape
    n_in = x.shape[1]
    if _gram_flops(b, n_out, n_in) >= 2.0 * b * n_out * n_in:
        return float(torch.linalg.matrix_norm(delta.T @ x))
    edges = [b * i // _gram_blocks(b) for i in range(_gram_blocks(b) + 1)]
    total = delta.new_zeros(())
    for lo, hi in zip(edges[:-1], edges[1:]):
        products = (delta[lo:hi] @ delta[lo:].T).mul_(x[lo:hi] @ x[lo:].T)  # blocks i..T−1 of row block i
        total += 2.0 * products.sum() - products[:, : hi - lo].sum()  # the diagonal block once
    return float(torch.sqrt(torch.clamp(total, min=0.0)))


def flops_per_draw(cfg: NetworkConfig) -> float:
    """Matrix-product FLOPs of one draw: forward, backward to the input, ‖∂L/∂W‖_F."""
    total = 0.0
    b = cfg.batch
    for layer in range(1, cfg.depth + 1):
        n_in, n_out = cfg.widths[layer - 1], cfg.widths[layer]
        total += 2.0 * b * n_in * n_out * 2  # h = x Wᵀ and δ W
        total += _frobenius_flops(b, n_out, n_in)
    return total


#: Measurements beyond q_l and the gradient norms that sim.simulate(skip=...) can switch off by name.
OPTIONAL = ("weight_grad_norm", "x_batch_correlation", "traces", "mean_gain")


def run_draw(cfg: NetworkConfig, act, draw: int, probes: Probes, inputs=None, loss=None, skip=frozenset()) -> dict:
    """One network draw: forward, backward, and every per-layer statistic (numpy); the names in
    ``skip`` (of OPTIONAL) are not measured and stay NaN."""
    f, df = torch_ops(act)
    depth = cfg.depth
    out = {key: np.full(depth + 1, np.nan) for key in
           ("q", "h_mean", "x_mean", "x_second", "x_correlation", "grad_sq", "weight_grad_norm", "mean_gain",
            "weight_trace", "jacobian_trace", "y_mean")}
    n_probe = len(probes.layers)
    out["quantiles"] = np.full((n_probe, len(probes.quantiles)), np.nan)
    if probes.bin_edges is not None:
        out["histogram"] = np.zeros((n_probe, len(probes.bin_edges) - 1), dtype=np.int64)
        out["hist_below"] = np.zeros(n_probe, dtype=np.int64)
        out["hist_above"] = np.zeros(n_probe, dtype=np.int64)
    probe_index = {layer: i for i, layer in enumerate(probes.layers)}
    kept = {}
    budget = cfg.weight_memory
    itemsize = torch.tensor([], dtype=cfg.torch_dtype).element_size()

    with torch.no_grad():
        h = gaussian_input(cfg, draw) if inputs is None else inputs.to(device=cfg.device, dtype=cfg.torch_dtype)
        xs, jacobians = [], []  # x_l = f(h_l) and D_l = f'(h_l), kept for the backward pass
        for layer in range(depth + 1):
            if layer > 0:
                w = weight(cfg, draw, layer)
                if "mean_gain" not in skip:
                    out["mean_gain"][layer] = float(w.mean()) * cfg.fan_in(layer)
                if "traces" not in skip:
                    out["weight_trace"][layer] = float(torch.linalg.vector_norm(w)) ** 2 / w.shape[0]
                h = x @ w.T  # noqa: F821 - x is set at the end of the previous iteration
                b = bias(cfg, draw, layer)
                if b is not None:
                    h += b
                nbytes = w.numel() * itemsize
                if nbytes <= budget:
                    kept[layer] = w
                    budget -= nbytes
                del w
            x = f(h)
            numel = h.numel()
            gate = None  # f'(h_l), times dropout's ∂y/∂x where there is dropout
            if cfg.dropout > 0 and layer < depth:
                gate = df(h)
                y = alpha_dropout(cfg, draw, layer, x, gate)
                out["y_mean"][layer] = float(torch.mean(y))
            xs.append(x if gate is None else y)
            out["q"][layer] = float(torch.linalg.vector_norm(h)) ** 2 / numel
            out["h_mean"][layer] = float(torch.mean(h))
            out["x_mean"][layer] = float(torch.mean(x))
            out["x_second"][layer] = float(torch.linalg.vector_norm(x)) ** 2 / numel
            if "x_batch_correlation" not in skip:
                out["x_correlation"][layer] = _batch_correlation(x)
            if layer < depth:
                jacobians.append(df(h) if gate is None else gate)
                if "traces" not in skip:
                    out["jacobian_trace"][layer] = float(torch.linalg.vector_norm(jacobians[-1])) ** 2 / numel
            if layer in probe_index:
                i = probe_index[layer]
                if probes.quantiles:
                    out["quantiles"][i] = _quantiles(x, probes.quantiles)
                if probes.bin_edges is not None:
                    out["histogram"][i], out["hist_below"][i], out["hist_above"][i] = _histogram(x, probes.bin_edges)
            if gate is not None:
                x = y  # the next layer receives the dropout layer's output
        del x, gate
        h_last = h

    if loss is None:
        delta = gaussian_cotangent(cfg, draw)
    else:
        h_last = h_last.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            value = loss(h_last)
            (delta,) = torch.autograd.grad(value, h_last)
    with torch.no_grad():
        for layer in range(depth, 0, -1):
            out["grad_sq"][layer] = float(torch.linalg.vector_norm(delta)) ** 2 / cfg.batch
            if "weight_grad_norm" not in skip:
                out["weight_grad_norm"][layer] = _frobenius_of_outer(delta, xs[layer - 1])
            w = kept.pop(layer) if layer in kept else weight(cfg, draw, layer)
            delta = (delta @ w).mul_(jacobians[layer - 1])
            del w
            jacobians[layer - 1] = xs[layer] = None  # free as we go
        out["grad_sq"][0] = float(torch.linalg.vector_norm(delta)) ** 2 / cfg.batch
    return out
