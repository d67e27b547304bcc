"""``sim.reduced_chain``: the exact reduced Monte-Carlo of one input (docs/finite-width.md §5).

For one input the forward pass of a fully connected network is exactly a
Markov chain: given layer k, the units of h_{k+1} = W_{k+1} x_k + b_{k+1} are
iid N(0, s_{k+1}) with s_{k+1} = σ_b² + σ_w² ‖x_k‖²/N_k.  A chain draws N
normals per layer instead of an N × N weight matrix.

The backward pass is integrated out.  Given the whole forward path, the rows
w_i of W_{k+1} are Gaussian conditioned on w_i·x_k + b_i = h_{k+1,i}:

    W = ρ h xᵀ + W̃ (σ_w²/N (I − κ P))^{1/2},   ρ = σ_w²/(N s),   κ = σ_w²‖x‖²/(N s) = 1 − σ_b²/s,

with x = x_k, h = h_{k+1}, s = s_{k+1}, N = N_k, P = x xᵀ/‖x‖² and W̃ standard
normal.  So the cotangent's conditional second moment G_k = E[δ_k δ_kᵀ | path]
(δ_L = g ~ N(0, I), δ_k = D_k W_{k+1}ᵀ δ_{k+1}, D_k = diag f'(h_k)) stays of
the form D_k (α_k x_k x_kᵀ + ζ_k I) D_k:

    E[Wᵀ G W] = ρ² (hᵀ G h) x xᵀ + (σ_w²/N) tr(G) (I − κ P),
    α_k = ρ² A_{k+1} − σ_w² κ T_{k+1} / (N ‖x_k‖²),     ζ_k = σ_w² T_{k+1} / N,
    T_k = tr G_k = α_k Σ d²x² + ζ_k Σ d²,     A_k = h_kᵀ G_k h_k = α_k (Σ d h x)² + ζ_k Σ d² h²,

with d = f'(h_k), from T_L = N_L, A_L = ‖h_L‖².  E[‖δ_l‖² | path] = T_l for
every l in one backward sweep of scalars: O(N) work per layer and no
cotangent noise.  (With σ_b² = 0, κ = 1 and ρ = 1/‖x‖²: §5's form.)

Randomness: chain c draws from ``numpy.random.Generator(PCG64(SeedSequence(seed,
spawn_key=(c,))))``, layer after layer, N_l normals each, so a chain's numbers
depend only on (seed, c), whatever the number of chains or threads.  The
exponential-linear family runs as one compiled loop per chain; any other
activation runs the same chain with numpy (same draws, same numbers up to
rounding).
"""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import xarray as xr
from llvmlite import ir
from numba.core import types
from numba.core.extending import intrinsic

import meanfield as mf
from meanfield.gauss import compile_cache
from meanfield.theory.dropout import network_constants

from .arguments import layer_widths, positive_int
from .compare import mean_and_sem, theory_columns

compile_cache.register(os.path.dirname(__file__))  # numba's cache in the user's cache folder, not site-packages
_COMPILE = {"nogil": True, "fastmath": {"contract"}, "error_model": "numpy", "cache": True}
#: The forward loop may reorder its sums (so that they vectorise): the
#: numbers are then those of this machine's vector width, the same every run.
_COMPILE_REASSOCIATED = {**_COMPILE, "fastmath": {"contract", "reassoc"}}


#: the spawn key's second entry of a chain's dropout masks (its normals use the chain's own key)
_MASK_STREAM = 1


def chain_generator(seed: int, chain: int) -> np.random.Generator:
    """The generator of chain ``chain``: PCG64 seeded by SeedSequence(seed, spawn_key=(chain,))."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(chain,))))


# ---------------------------------------------------------------------------
# One chain.  Per layer k the forward pass leaves six sums: ‖h‖², ‖x‖², Σ d h x,
# Σ d² h², Σ d² x², Σ d² (d = f'(h_k)); the backward sweep needs nothing else.
# ---------------------------------------------------------------------------

_H2, _X2, _DHX, _D2H2, _D2X2, _D2 = range(6)


# exp(y) for y <= 0 in a form LLVM vectorises (numba has no vector exp without
# Intel's SVML, absent here): y = n ln2 + r, |r| <= ln2/2, e^r by its Taylor
# polynomial of degree 13 (remainder 0.347^14/14! < 5e-18), 2^n as two
# exponent fields (so that n down to −1075 stays exact through subnormals).
# 2.2e-16 relative against numpy.exp over [−745, 0].  With it and the sums
# reassociated, the loop below vectorises: 70 -> 179 M unit-layers/s on one
# core (AMD EPYC, AVX-512).
_LOG2E = 1.4426950408889634
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # fdlibm's split of ln 2
_EXP_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(13, -1, -1))


@intrinsic
def _bits_as_double(typingctx, bits):
    """Reinterpret an int64 as a float64 (an LLVM bitcast)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@numba.njit(**_COMPILE, inline="always")
def _exp_nonpositive(y):
    """e^y for y <= 0 (0 below −745), branch-free."""
    y = max(y, -745.0)
    n = math.floor(y * _LOG2E + 0.5)
    r = (y - n * _LN2_HI) - n * _LN2_LO
    p = 0.0
    for c in _EXP_TAYLOR:
        p = p * r + c
    half = np.int64(n) // 2
    rest = np.int64(n) - half
    return p * _bits_as_double((half + 1023) << 52) * _bits_as_double((rest + 1023) << 52)


@numba.njit(**_COMPILE_REASSOCIATED)
def _forward_exp_linear(gen, widths, q0, sigma_w2, sigma_b2, lam, alpha, rate, slope, sums, orthogonal):
    """The forward chain of f = λx (x > 0), λ(α(e^{bx} − 1) + κx) (x <= 0); sums[k, :] per layer.

    The normals of a layer are drawn first (the generator is sequential), then
    one branch-free pass evaluates f, f' and the six sums.  ``orthogonal``: past the input layer,
    h = √(s N) z/‖z‖, uniform on the sphere of radius σ_w‖x‖ (module docstring).
    """
    s = q0
    z = np.empty(widths.max())
    for k in range(widths.size):
        n = widths[k]
        z2 = 0.0
        for i in range(n):
            z[i] = gen.standard_normal()
            z2 += z[i] * z[i]
        root = math.sqrt(s * n / z2) if orthogonal and k > 0 else math.sqrt(s)
        h2 = x2 = dhx = d2h2 = d2x2 = d2 = 0.0
        for i in range(n):
            h = root * z[i]
            e = _exp_nonpositive(rate * min(h, 0.0))
            w = 1.0 if h > 0.0 else 0.0
            x = lam * (w * h + (1.0 - w) * (alpha * (e - 1.0) + slope * h))
            d = lam * (w + (1.0 - w) * (alpha * rate * e + slope))
            dd = d * d
            h2 += h * h
            x2 += x * x
            dhx += d * h * x
            d2h2 += dd * h * h
            d2x2 += dd * x * x
            d2 += dd
        sums[k, 0], sums[k, 1], sums[k, 2], sums[k, 3], sums[k, 4], sums[k, 5] = h2, x2, dhx, d2h2, d2x2, d2
        s = sigma_b2 + sigma_w2 * x2 / n


def _forward_numpy(act, gen, widths, q0, sigma_w2, sigma_b2, sums, dropout=None, masks=None, orthogonal=False):
    """The same chain for any activation, with numpy (the same draws as the compiled loop).

    ``dropout`` (the constants of ``meanfield.alpha_dropout``: p, a, b, α′) puts alpha dropout after
    every activation but the output's: the next layer's input is y = a x + b on the kept units and
    a α′ + b on the dropped ones (masks from ``masks``, a generator of its own, so that the chain's
    normals stay those of the chain without dropout), and the derivative entering the backward sweep
    is f'(h) a d.  The chain then holds with y in place of x (its rows of W are conditioned on y).
    """
    s = q0
    last = len(widths) - 1
    for k, n in enumerate(widths):
        z = gen.standard_normal(n)
        if orthogonal and k > 0:
            z *= math.sqrt(n / (z @ z))
        h = math.sqrt(s) * z if np.isfinite(s) else np.full(n, s)
        x, d = act.f(h), act.df(h)
        if dropout is not None and k < last:
            keep = masks.random(n) < 1.0 - dropout["p"]
            x = np.where(keep, dropout["a"] * x + dropout["b"], dropout["a"] * dropout["alpha_p"] + dropout["b"])
            d = np.where(keep, d * dropout["a"], 0.0)
        dd = d * d
        sums[k] = (h @ h, x @ x, np.sum(d * h * x), np.sum(dd * h * h), np.sum(dd * x * x), np.sum(dd))
        s = sigma_b2 + sigma_w2 * sums[k, _X2] / n


@numba.njit(**_COMPILE)
def backward_sweep(sums, widths, sigma_w2, sigma_b2, grad, orthogonal=False):
    """grad[l] = E[‖δ_l‖² | path] / N_L for l = 0..L, from the forward sums (module docstring)."""
    depth = widths.size - 1
    n_out = float(widths[depth])
    trace, quad = n_out, sums[depth, _H2]
    grad[depth] = 1.0
    for k in range(depth - 1, -1, -1):
        n = float(widths[k])
        x2 = sums[k, _X2]
        if orthogonal:  # W = σ_w O given O x̂ = ĥ (docs/finite-width.md §8):
            # E[WᵀGW] = σ_w² [(A/‖h‖²) P + (T − A/‖h‖²)/(N − 1) (I − P)]
            radial = quad / sums[k + 1, _H2]
            rest = (trace - radial) / (n - 1.0)
            alpha = sigma_w2 * (radial - rest) / x2
            zeta = sigma_w2 * rest
        else:
            s = sigma_b2 + sigma_w2 * x2 / n
            rho = sigma_w2 / (n * s)
            kappa = sigma_w2 * x2 / (n * s)
            alpha = rho * rho * quad - sigma_w2 * kappa * trace / (n * x2)
            zeta = sigma_w2 * trace / n
        trace, quad = alpha * sums[k, _D2X2] + zeta * sums[k, _D2], alpha * sums[k, _DHX] ** 2 + zeta * sums[k, _D2H2]
        grad[k] = trace / n_out


def _is_exp_linear(act):
    return isinstance(act, mf.ExpLinear) and act.scalar


def _run_chain(act, seed, chain, widths, q0, sigma_w2, sigma_b2, q_out, grad_out, dropout=None, orthogonal=False):
    gen = chain_generator(seed, chain)
    sums = np.empty((widths.size, 6))
    with np.errstate(all="ignore"):
        if dropout is not None:
            masks = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(chain, _MASK_STREAM))))
            _forward_numpy(act, gen, widths, q0, sigma_w2, sigma_b2, sums, dropout, masks, orthogonal)
        elif _is_exp_linear(act):
            _forward_exp_linear(gen, widths, q0, sigma_w2, sigma_b2, float(act.lam), float(act.alpha),
                                float(act.rate), float(act.slope), sums, orthogonal)
        else:
            _forward_numpy(act, gen, widths, q0, sigma_w2, sigma_b2, sums, orthogonal=orthogonal)
        q_out[:] = sums[:, _H2] / widths
        backward_sweep(sums, widths, sigma_w2, sigma_b2, grad_out, orthogonal)


def reduced_chain(activation, depth: int, width=256, chains: int = 1000, q0: float = 1.0, sigma_w2: float = 1.0,
                  sigma_b2: float = 0.0, seed: int = 0, threads: int | None = None, progress=None, dropout: float = 0.0,
                  dropped=None, weights: str = "gaussian") -> xr.Dataset:
    """The exact single-input Monte-Carlo of a width-N network, the backward pass integrated out.

    Parameters: ``depth`` L, ``width`` N (one number or N_0..N_L), ``chains``
    independent networks, each with one Gaussian input h_0 ~ N(0, q0) per
    unit; W ~ N(0, σ_w²/N_{l−1}), b ~ N(0, σ_b²); ``seed`` the root seed;
    ``threads`` worker threads (default: the cores available; the numbers do
    not depend on it); ``progress(done, total)`` is called as chains finish.
    ``dropout``, ``dropped``: alpha dropout after every activation (drop rate p and the dropped
    value's rule, ``meanfield.alpha_dropout``), masks per unit from each chain's own generator; the
    theory columns are then the recursion with dropout (no finite-width columns); p = 0 is exactly
    the chain without dropout.
    ``weights="orthogonal"``: W = σ_w O with O Haar orthogonal (σ_b² = 0, one width): past the input
    layer h_{k+1} = σ_w ‖x_k‖ u, u uniform on the sphere, and the backward pass integrated out with
    O conditioned on O x̂ = ĥ (docs/finite-width.md §8); the finite-width columns are then the
    orthogonal forward closure (the gradient's is not derived: NaN).

    Returns a Dataset in the layout of :func:`sim.simulate` (dimension
    ``chain`` for the independent networks, ``layer`` = 0..L):
    ``q_measured`` (mean_i h_{l,i}²), ``grad_measured`` (E[‖∂L/∂h_l‖² | path]
    / N_L, 1 at the output), their chain means ``*_mean`` and standard errors
    ``*_sem``, the infinite-width ``*_theory`` (Props A.1, A.2) and finite-width
    ``*_theory_fw`` (:func:`meanfield.finite_width`), ``*_rel_error`` and
    ``*_rel_error_fw`` with their standard errors ``*_rel_error_sem``, and
    ``diverged_at`` per chain.
    """
    act = mf.activation(activation)
    depth = positive_int("depth", depth)
    widths = np.asarray(layer_widths(width, depth), dtype=np.int64)
    chains = positive_int("chains", chains)
    seed = positive_int("seed", seed, minimum=0)
    q0 = _number("q0", q0, positive=True)
    sigma_w2 = _number("sigma_w2", sigma_w2, positive=True)
    sigma_b2 = _number("sigma_b2", sigma_b2, nonnegative=True)
    threads = len(os.sched_getaffinity(0)) if threads is None else positive_int("threads", threads)
    if weights not in ("gaussian", "orthogonal"):
        raise ValueError(f"weights must be gaussian or orthogonal, got {weights!r}")
    orthogonal = weights == "orthogonal"
    if orthogonal and (sigma_b2 != 0 or np.any(widths != widths[0]) or widths[0] < 2):
        raise ValueError("the reduced chain with orthogonal weights needs sigma_b2 = 0 and one width >= 2 at every "
                         f"layer (square orthogonal matrices); got sigma_b2 = {sigma_b2:g}, widths "
                         f"{sorted(set(widths.tolist()))}")
    if progress is not None and not callable(progress):
        raise ValueError("progress must be a callable progress(done, total) or None")
    need = 2 * chains * (depth + 1) * 8
    if need > _available_bytes():
        raise ValueError(f"{chains} chains x {depth + 1} layers need {need / 2**30:.1f} GiB for their results, more "
                         f"than is free; use fewer chains")

    constants = network_constants(act, dropout, dropped, sigma_w2, sigma_b2)
    q = np.empty((chains, depth + 1))
    grad = np.empty((chains, depth + 1))
    lock, done = threading.Lock(), [0]

    def work(block):
        for c in block:
            _run_chain(act, seed, c, widths, q0, sigma_w2, sigma_b2, q[c], grad[c], constants, orthogonal)
            if progress is not None:
                with lock:
                    done[0] += 1
                    progress(done[0], chains)

    started = time.perf_counter()
    blocks = [range(i, chains, threads) for i in range(min(threads, chains))]
    if len(blocks) == 1:
        work(blocks[0])
    else:
        with ThreadPoolExecutor(len(blocks)) as pool:
            list(pool.map(work, blocks))
    elapsed = time.perf_counter() - started
    return _assemble(act, widths, q, grad, q0, sigma_w2, sigma_b2, seed, elapsed, constants, weights)


def _number(name, value, positive=False, nonnegative=False):
    return mf.check_number(name, value, positive=positive, nonnegative=nonnegative)


def _available_bytes():
    from .memory import available_memory

    return available_memory("cpu")


def _dropout_columns(act, depth, widths, q0, sigma_w2, sigma_b2, constants, q_mean, q_sem, g_mean, g_sem):
    """The infinite-width theory with dropout beside the chains, and the O(1/N) forward one
    (``meanfield.finite_width_dropout``, one width) with it."""
    rec = mf.recursion(act, depth, q0=q0, sigma_w2=sigma_w2, sigma_b2=sigma_b2, widths=widths.tolist(),
                       dropout=constants["p"], dropped=constants["alpha_p"])
    l = ("layer",)
    q_inf, g_inf = rec.q.values, rec.grad.values
    finite = {}
    if np.all(widths == widths[0]):
        fw = mf.finite_width_dropout(act, depth, int(widths[0]), constants["p"], constants["alpha_p"], q0=q0,
                                     sigma_w2=sigma_w2, sigma_b2=sigma_b2)
        with np.errstate(all="ignore"):
            finite = {"q_theory_fw": (l, fw.q_mean.values, {"long_name": "E[q_l] at finite width with dropout, "
                                                                           "O(1/N)"}),
                      "q_rel_error_fw": (l, q_mean / fw.q_mean.values - 1.0,
                                         {"long_name": "q_measured_mean / q_theory_fw - 1"})}
    with np.errstate(all="ignore"):
        return finite | {
            "q_theory": (l, q_inf, {"long_name": "q_l with alpha dropout (docs/dropout.md), infinite width"}),
            "grad_theory": (l, g_inf, {"long_name": "prod chi_p, 1 at the output, infinite width"}),
            "q_rel_error": (l, q_mean / q_inf - 1.0, {"long_name": "q_measured_mean / q_theory - 1"}),
            "grad_rel_error": (l, g_mean / g_inf - 1.0, {"long_name": "grad_measured_mean / grad_theory - 1"}),
            "q_rel_error_sem": (l, q_sem / q_inf, {"long_name": "standard error of q_rel_error"}),
            "grad_rel_error_sem": (l, g_sem / g_inf, {"long_name": "standard error of grad_rel_error"}),
        }


def _assemble(act, widths, q, grad, q0, sigma_w2, sigma_b2, seed, elapsed, dropout=None, weights="gaussian"):
    depth = widths.size - 1
    chains = q.shape[0]
    fw = None
    if dropout is None:
        with warnings.catch_warnings():  # the Dataset's fw_valid says it
            warnings.simplefilter("ignore", mf.FiniteWidthWarning)
            fw = mf.finite_width(act, depth, q0=q0, widths=widths.tolist(), sigma_w2=sigma_w2, sigma_b2=sigma_b2,
                                 weights=weights)
    q_mean, q_sem = mean_and_sem(q)
    g_mean, g_sem = mean_and_sem(grad)
    c, l = ("chain", "layer"), ("layer",)
    data = {
        "q_measured": (c, q, {"long_name": "mean_i h_{l,i}^2 of the chain"}),
        "grad_measured": (c, grad, {"long_name": "E[||dL/dh_l||^2 | path] / N_L, 1 at the output"}),
        "q_measured_mean": (l, q_mean, {"long_name": "q_measured over chains"}),
        "q_measured_sem": (l, q_sem, {"long_name": "standard error of q_measured_mean"}),
        "grad_measured_mean": (l, g_mean, {"long_name": "grad_measured over chains"}),
        "grad_measured_sem": (l, g_sem, {"long_name": "standard error of grad_measured_mean"}),
        "diverged_at": (("chain",), _first_nonfinite(q), {"long_name": "first layer with non-finite q, -1 if none"}),
    }
    if fw is not None:
        data.update(theory_columns(fw, q_mean, q_sem, g_mean, g_sem))
    else:
        data.update(_dropout_columns(act, depth, widths, q0, sigma_w2, sigma_b2, dropout, q_mean, q_sem, g_mean,
                                     g_sem))
    extra = {} if dropout is None else dict(dropout=dropout["p"], dropout_a=dropout["a"], dropout_b=dropout["b"],
                                            dropped_value=dropout["alpha_p"], dropped_rule=dropout["rule"])
    attrs = mf.dataset_attrs(act, "docs/finite-width.md section 5 (exact reduced chain); theory: Props A.1, A.2 and "
                             "docs/finite-width.md sections 3-4", depth=depth, chains=chains, q0=q0,
                             sigma_w2=sigma_w2, sigma_b2=sigma_b2, root_seed=seed, seconds=round(elapsed, 3),
                             unit_layers=int(chains * widths.sum()), weights=weights, **extra)
    return xr.Dataset(data, coords={"chain": np.arange(chains), "layer": np.arange(depth + 1),
                                    "width": (l, widths)}, attrs=attrs)


def _first_nonfinite(q):
    bad = ~np.isfinite(q)
    return np.where(bad.any(axis=-1), np.argmax(bad, axis=-1), -1)
