"""neural-tangents' equivalents of the benchmarks' work, timed beside ours where it is installed
(``pip install ".[peers]"``: neural-tangents 0.6.5 with jax 0.4.38 and tf2jax 0.3.6).  Nothing in
the package or its tests imports it.

* ``recursion(spec, q0, depth)``: the NNGP kernel's diagonal through ``depth`` layers, one
  configuration per input norm, ``jax.vmap`` over configurations and ``jax.jit`` around it, with
  ``stax.repeat`` so that compilation does not grow with depth.  erf and exact GELU have closed
  forms there (``stax.Erf``, ``stax.Gelu``); anything else goes through ``stax.ElementwiseNumerical``,
  its Gauss–Hermite quadrature over the 2 × 2 covariance (``deg`` nodes per axis, default 25).
  It returns q_L only, and computes no backward pass.
* ``monte_carlo(depth, width, batch, dtype)``: ``nt.monte_carlo_kernel_fn`` on a SELU network of
  that shape, one sample: a draw of the weights and the forward pass (no backward pass; it has none).
"""

from __future__ import annotations

import os
import time
import warnings


def neural_tangents():
    """``(nt, stax, jax)`` with float64 enabled, or None where neural-tangents is not installed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import neural_tangents as nt
        from neural_tangents import stax
    except ImportError:
        return None
    warnings.filterwarnings("ignore", module="neural_tangents")  # ElementwiseNumerical's notice per layer
    return nt, stax, jax


def version():
    import jax
    import neural_tangents as nt

    return f"neural-tangents {nt.__version__}, jax {jax.__version__}"


def _activation(stax, jax, spec, deg):
    if spec == "erf":
        return stax.Erf()
    if spec == "gelu":
        return stax.Gelu(approximate=False)
    if spec == "tanh":
        return stax.ElementwiseNumerical(jax.numpy.tanh, deg=deg)
    if spec == "selu":
        return stax.ElementwiseNumerical(jax.nn.selu, deg=deg)
    raise ValueError(f"no neural-tangents equivalent of {spec!r} here; valid: erf, gelu, tanh, selu")


def recursion(peer, spec, q0, depth, deg=25):
    """A compiled ``run()`` returning neural-tangents' q_L for every q0 (numpy), and its compile time."""
    _, stax, jax = peer
    import numpy as np

    layer = stax.serial(_activation(stax, jax, spec, deg), stax.Dense(1))
    _, _, kernel_fn = stax.serial(stax.Dense(1), stax.repeat(layer, depth))
    x = jax.numpy.sqrt(jax.numpy.asarray(q0, dtype=float))[:, None, None]  # Dense(1) on x: q_0 = x²
    fn = jax.jit(jax.vmap(lambda xi: kernel_fn(xi, None, "nngp")[0, 0]))
    t = time.perf_counter()
    fn(x).block_until_ready()
    compile_s = time.perf_counter() - t
    return (lambda: np.asarray(fn(x).block_until_ready())), compile_s


def monte_carlo(peer, depth, width, batch, dtype, seed=0):
    """A compiled ``run()`` of one Monte-Carlo NNGP sample of a SELU network, and its compile time.
    The weights are cast to ``dtype`` ("float32" or "float64") before the forward pass."""
    nt, stax, jax = peer
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=1.0), stax.ElementwiseNumerical(jax.nn.selu, deg=25)]
    init_fn, apply_fn, _ = stax.serial(*layers)
    dt = jax.numpy.dtype(dtype)

    def init_cast(key, shape):
        out_shape, params = init_fn(key, shape)
        return out_shape, jax.tree_util.tree_map(lambda p: p.astype(dt), params)

    x = jax.random.normal(jax.random.PRNGKey(seed + 1), (batch, width), dtype=dt)
    kernel_fn = nt.monte_carlo_kernel_fn(init_cast, apply_fn, jax.random.PRNGKey(seed), n_samples=1,
                                         trace_axes=(-1,), implementation=1)
    t = time.perf_counter()
    kernel_fn(x, None, "nngp").block_until_ready()
    compile_s = time.perf_counter() - t
    return (lambda: kernel_fn(x, None, "nngp").block_until_ready()), compile_s
