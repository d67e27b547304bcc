"""The O(1/N) theory of a network of finite width (docs/finite-width.md).

Props A.1/A.2 are the infinite-width limit.  For one input, a network of
widths N_0..N_L is exactly a Markov chain in s_l, the variance of the units
of h_l given the layer below (docs/finite-width.md §1):

    s_{k+1} = σ_b² + σ_w² (1/N_k) Σ_i f²(√s_k z_i),     z_i iid N(0, 1),

and E[q̂_l] = E[s_l].  Expanding to first order in 1/N gives

* the forward closure (§3) for m_l = E[s_l] and v_l = Var[s_l], m_0 = q_0, v_0 = 0:

      m' = σ_b² + σ_w² [Q(m) + ½ Q''(m) v]
      v' = σ_w⁴ [Q'(m)² v + (Q4(m) − Q(m)²)/N]

* the backward closure (§4): u = (E c, Cov(a, c), Var b) of the covariance
  Σ = [[a, b], [b, c]] of (h, tangent) pairs evolves linearly, u' = T_k u,

      E c'     = σ_w² [(φ + ½φ''v) E c + φ' Cov(a, c) + (P/a² − φ/a) Var b]
      Cov(a,c)' = σ_w⁴ [Q' (φ' v E c + φ Cov(a, c)) + (S − Qφ) E c / N]
      Var b'   = σ_w⁴ [Q'² Var b + S E c / N]

  with every functional at a = m_k and N = N_k (the width the layer
  averages over), and E‖∂L/∂h_l‖²/E‖∂L/∂h_L‖² = e₁ᵀ T_{L−1} ⋯ T_l e₁, all l
  in one adjoint sweep.

The three couplings of the backward closure are three mechanisms, reported
separately: Jensen (the convexity of Q and φ along the draw's own s path:
the corrected mean path m_l and the ½φ''v term), forward–backward
correlation (φ' Cov(a, c)) and weight reuse (the Var b term: the same W_l
serves forward and backward).  The neglected terms are O(L/N²) while the
fluctuations saturate, σ_w² Q'(m) < 1 and σ_w² Q'²/φ < 1; near criticality
they grow like L²/N², which ``valid`` and a warning report.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr

from ..gauss import mills_series, quadrature
from ..gauss.jit import kernel, run_in_column_chunks
from ..results import dataset_attrs
from ..activations.objects import ExpLinear
from .functionals import resolve
from .inputs import broadcast_inputs, family_arrays
from .recursions import _depth, infinite_width_arrays, infinite_width_variables, recursion
from ..resources import require_layers

ORDERS = (0, 1, 2)

#: ``valid`` is False where a saturation factor reaches this: the fluctuations then
#: decay by less than 2% a layer, and the neglected O(1/N²) terms accumulate like L²/N²
#: instead of L/N² (docs/finite-width.md, "Validity").
SATURATION_LIMIT = 0.98
#: ... and where Var s / (E s)² reaches this: the standard deviation of s is then half its
#: mean, and the second-order terms the closure drops are a quarter of the first-order ones.
EXPANSION_LIMIT = 0.25


class FiniteWidthWarning(UserWarning):
    """The O(1/N) theory is outside its validity range for some configuration."""


def _widths_array(widths, depth):
    """Widths as (DataArray of config dims, or None) and a per-layer ndarray of shape config + (L + 1,)."""
    if widths is None:
        raise ValueError("finite_width needs widths: one number, N_0..N_L, or a DataArray with a 'width' dimension")
    if isinstance(widths, xr.DataArray):
        values = np.asarray(widths.values, dtype=float)
        if "layer" in widths.dims:
            if widths.sizes["layer"] != depth + 1:
                raise ValueError(f"widths' layer dimension must have depth + 1 = {depth + 1} entries, "
                                 f"got {widths.sizes['layer']}")
            config = widths.transpose(..., "layer")
        else:
            config = widths
        _check_widths(values)
        return config, None
    arr = np.asarray(widths, dtype=float) if not isinstance(widths, (list, tuple)) else np.array(widths, dtype=float)
    if arr.ndim == 0:
        arr = np.full(depth + 1, float(arr))
    if arr.shape != (depth + 1,):
        raise ValueError(f"widths must be one number, a list of depth + 1 = {depth + 1} numbers (N_0..N_L) or a "
                         f"DataArray with a 'width' dimension; got shape {arr.shape}")
    _check_widths(arr)
    return None, arr


def _check_widths(values):
    bad = ~np.isfinite(values) | (values < 1) | (values != np.round(values))
    if bad.any():
        raise ValueError(f"widths must be integers >= 1, got {float(values[bad].ravel()[0]):g}")


def _moments(act, m, params):
    """The finite-width functionals at m (config shape): closed form or quadrature."""
    if isinstance(act, ExpLinear):
        return mills_series.finite_width_moments(m, *params)
    return quadrature.finite_width_moments(act, m)


_COMPILE = {"cache": True, "nogil": True, "error_model": "numpy"}


@kernel(**_COMPILE)
def _backward_rows(m, var, n, w2, big_q, dq, d2q, phi, dphi, d2phi, p, s, chi, full, jensen, correlation,
                   res_q, res_g):
    """Per configuration (row), in one compiled pass: the transfer matrices T_k (docs/finite-width.md
    §4; ``chi`` = their (0, 0) entries), the adjoint sweeps and the residual estimates of
    :func:`_backward`."""
    configs, depth = big_q.shape
    t = np.empty((7, depth))
    for c in range(configs):
        w, w4 = w2[c], w2[c] * w2[c]
        for k in range(depth):  # T_k's entries (00, 01, 02, 10, 11, 20, 22)
            a, vk, nk = m[c, k], var[c, k], n[c, k]
            t[0, k] = w * (phi[c, k] + 0.5 * d2phi[c, k] * vk)
            t[1, k] = w * dphi[c, k]
            t[2, k] = w * (p[c, k] / (a * a) - phi[c, k] / a)
            t[3, k] = w4 * (dq[c, k] * dphi[c, k] * vk + (s[c, k] - big_q[c, k] * phi[c, k]) / nk)
            t[4, k] = w4 * dq[c, k] * phi[c, k]
            t[5, k] = w4 * s[c, k] / nk
            t[6, k] = w4 * dq[c, k] * dq[c, k]
            chi[c, k] = t[0, k]
        # the adjoint sweeps w_k = T_kᵀ w_{k+1}, renormalised to w[0] = 1, the scale kept as a log
        w0, w1, wb = 1.0, 0.0, 0.0   # every coupling
        u0, u1 = 1.0, 0.0            # without weight reuse (T_02 = 0: Var b never feeds E c)
        full[c, depth] = jensen[c, depth] = correlation[c, depth] = 0.0
        for k in range(depth - 1, -1, -1):
            n0 = t[0, k] * w0 + t[3, k] * w1 + t[5, k] * wb
            n1 = t[1, k] * w0 + t[4, k] * w1
            n2 = t[2, k] * w0 + t[6, k] * wb
            full[c, k] = full[c, k + 1] + math.log(n0)
            w0, w1, wb = 1.0, n1 / n0, n2 / n0
            m0 = t[0, k] * u0 + t[3, k] * u1
            m1 = t[1, k] * u0 + t[4, k] * u1
            correlation[c, k] = correlation[c, k + 1] + math.log(m0)
            u0, u1 = 1.0, m1 / m0
            jensen[c, k] = jensen[c, k + 1] + math.log(t[0, k])
        # the residual estimates
        res_q[c, 0] = 0.0
        mu, cov, vb = 1.0, 0.0, 0.0
        for k in range(depth):
            a, v = m[c, k], var[c, k]
            x = v / (a * a)
            slope = w * dq[c, k] * a / m[c, k + 1]
            res_q[c, k + 1] = slope * res_q[c, k] + abs(0.5 * d2q[c, k] * v) / big_q[c, k] * x
            base = w * phi[c, k]
            coupled = abs((t[0, k] - base) * mu) + abs(t[1, k] * cov) + abs(t[2, k] * vb)
            res_g[c, k] = coupled / (base * mu) * x
            mu, cov, vb = (t[0, k] * mu + t[1, k] * cov + t[2, k] * vb,
                           t[3, k] * mu + t[4, k] * cov, t[5, k] * mu + t[6, k] * vb)
        res_g[c, depth] = 0.0
        for k in range(depth - 1, -1, -1):  # the steps above l add up
            res_g[c, k] += res_g[c, k + 1]


def _backward(m, var, n, w2, fn):
    """The backward closure (docs/finite-width.md §4) from the forward one: ``chi`` = (T_k)_00,
    k = 0..L−1, and log grad_l by the adjoint sweep w_k = T_kᵀ w_{k+1}, w_L = e₁, grad_l = w_l[0],
    three ways: with every coupling, with the diagonal alone (Jensen) and without the weight-reuse
    coupling; and ``(res_q, res_g)``, the size of the terms the O(1/N) closure drops, estimated from
    the closure itself.

    Each sweep step is renormalised so that w[0] = 1 and the scale kept as a log, so deep networks
    neither over- nor underflow.  One compiled pass per configuration.

    The residuals: each layer's first-order terms are relative corrections ε_k of the step
    (forward: ½Q''v/Q; backward: the three couplings over φ E c); the terms of next order are those
    times the expansion parameter x_k = v_k/m_k².  Forward, each such error is carried on by the
    map's log-slope σ_w² Q'(m) m / m'; backward, the errors of the steps above layer l add (the
    tangent is started at layer 0, where its couplings are largest).  Both are O(L/N²) while the
    fluctuations saturate and grow faster near criticality.  Against the exact reduced chain (depth
    64, widths 64–256, SELU, sSELU, lSELU, dSELU; docs/finite-width.md) the gradient estimate
    exceeded the measured residual by 1.1–4.3x in every case.
    """
    shape = m.shape[:-1]
    layers = [_rows_of(a, shape) for a in (m, var, n)]
    names = ("Q", "dQ", "d2Q", "phi", "dphi", "d2phi", "P", "S")
    functionals = [_rows_of(fn[name], shape) for name in names]
    w2 = np.ascontiguousarray(np.broadcast_to(w2, shape), dtype=float).reshape(-1)
    configs, depth = functionals[0].shape
    chi = np.empty((configs, depth))
    full, jensen, correlation, res_q, res_g = (np.empty((configs, depth + 1)) for _ in range(5))
    _backward_rows.run(chi.size, *layers, w2, *functionals, chi, full, jensen, correlation, res_q, res_g)
    return tuple(o.reshape(shape + o.shape[1:]) for o in (chi, full, jensen, correlation, res_q, res_g))


def _rows_of(a, shape):
    """``a`` broadcast to ``shape`` + its last axis, as C-contiguous float64 (configurations, layers)."""
    return np.ascontiguousarray(np.broadcast_to(a, shape + a.shape[-1:]), dtype=float).reshape(-1, a.shape[-1])


def _per_layer_widths(width_config, width_list, v, dims, shape, depth):
    """N_l of every configuration, shape config + (L + 1,)."""
    if width_config is None:
        return np.broadcast_to(width_list, shape + (depth + 1,))
    if "layer" in width_config.dims:
        per_layer = width_config.broadcast_like(xr.DataArray(np.zeros(shape), dims=dims)).transpose(*dims, "layer")
        return np.asarray(per_layer.values, dtype=float)
    return np.broadcast_to(v["widths"][..., None], shape + (depth + 1,))


def _forward_closure(act, params, q0, w2, b2, n, orthogonal=False):
    """m_l, v_l (docs/finite-width.md §3) and the functionals at m_k, k = 0..L−1 (§2).

    The exponential-linear family runs it as one compiled loop over configurations and layers
    (``mills_series.forward_closure_into``); any other activation layer by layer, its functionals
    by quadrature over all configurations at once.

    ``orthogonal`` (σ_b² = 0, equal widths; docs/finite-width.md §8): past the input layer h is
    uniform on the sphere of radius σ_w‖x‖, so s_l = q̂_l and the step from layer k >= 1 is

        m' = σ_w² [Q(m) − m² Q''(m)/N + ½ Q''(m) v],   v' = σ_w⁴ [Q'(m)² v + (Q4 − Q² − 2m² Q'²)/N]

    (the sphere's coordinates against Gaussian ones: E g(√N u₁) = E g(z) − E[g He₄]/(4N) and the
    sum's variance loses its component along Σ z_i² = N); the input layer's step is the Gaussian one.
    """
    if params is not None and not orthogonal:
        return _forward_closure_compiled(params, q0, w2, b2, n)
    shape, depth = q0.shape, n.shape[-1] - 1
    m = np.empty(shape + (depth + 1,))
    var = np.zeros_like(m)
    names = mills_series.FINITE_WIDTH_QUANTITIES
    fn = {name: np.full(shape + (depth,), np.nan) for name in names}
    m[..., 0] = q0
    w4 = np.square(w2)
    for k in range(depth):
        mk, vk, nk = m[..., k], var[..., k], n[..., k]
        ok = np.isfinite(mk) & (mk > 0)
        if not ok.any():
            m[..., k + 1] = var[..., k + 1] = np.nan
            continue
        values = _moments(act, np.where(ok, mk, 1.0), params)
        for name in names:
            fn[name][..., k] = np.where(ok, values[name], np.nan)
        big_q, q4, dq, d2q = (fn[name][..., k] for name in ("Q", "Q4", "dQ", "d2Q"))
        sphere = orthogonal and k > 0
        m[..., k + 1] = b2 + w2 * (big_q + 0.5 * d2q * vk - (np.square(mk) * d2q / nk if sphere else 0.0))
        var[..., k + 1] = w4 * (np.square(dq) * vk + (q4 - np.square(big_q)
                                                      - (2.0 * np.square(mk * dq) if sphere else 0.0)) / nk)
    return m, var, fn


#: one point of the compiled forward closure (nine functionals by the Mills series) in the unit of
#: ``jit.PARALLEL_POINTS``, a recursion kernel's point: 16 ms for 1,000 × 64 points here against
#: some 2 ms for 2¹⁷ (measured with ``benchmarks/bench_finite_width.py``)
CLOSURE_POINT_WORK = 16


def _forward_closure_compiled(params, q0, w2, b2, n):
    shape, depth = q0.shape, n.shape[-1] - 1
    flat = [np.ascontiguousarray(np.broadcast_to(a, shape), dtype=float).reshape(-1) for a in (q0, w2, b2, *params)]
    widths = np.ascontiguousarray(np.broadcast_to(n, shape + (depth + 1,)), dtype=float).reshape(-1, depth + 1)
    configs = flat[0].size
    m, var = np.empty((configs, depth + 1)), np.empty((configs, depth + 1))
    names = mills_series.FINITE_WIDTH_QUANTITIES
    table = np.empty((configs, depth, len(names)))

    def chunk(start, stop):  # rows are configurations: each chunk its own rows, the same bits
        rows = slice(start, stop)
        mills_series.forward_closure_into.run(
            (stop - start) * depth, *(a[rows] for a in flat[:3]), widths[rows], *(a[rows] for a in flat[3:]),
            mills_series.SERIES, mills_series.DIFFERENCE_WEIGHTS, mills_series.DIFFERENCE_ORDER, m[rows], var[rows],
            table[rows])

    run_in_column_chunks(chunk, configs, configs * depth * CLOSURE_POINT_WORK)
    fn = {name: table[:, :, j].reshape(shape + (depth,)) for j, name in enumerate(names)}
    return m.reshape(shape + (depth + 1,)), var.reshape(shape + (depth + 1,)), fn


def _sample_var(m, var, n, orthogonal):
    """Var q̂_l of one input's q̂_l = mean_i h_{l,i}²: given s_l the N_l units are iid N(0, s_l), so
    v_l + 2(m_l² + v_l)/N_l exactly; with orthogonal weights q̂_l = s_l past the input."""
    if not orthogonal:
        return var + 2.0 * (np.square(m) + var) / n
    sample_var = var.copy()
    sample_var[..., 0] = 2.0 * np.square(m[..., 0]) / n[..., 0]
    return sample_var


def _family_member(act, params):
    """``act`` with its parameters broadcast per configuration (an exponential-linear sweep), for
    quadrature; ``act`` itself otherwise."""
    if params is None:
        return act
    return ExpLinear(name=act.name, **dict(zip(("lam", "alpha", "rate", "slope"), params)))


def _second_order_closure(act, params, q0, w2, b2, n):
    """m_l, v_l and μ3_l = E[(s_l − m_l)³] to O(1/N²) (docs/finite-width.md §3b), every functional
    at the second-order mean m_k.  With δ = s − m, E δ² = v = O(1/N), E δ³ = μ3 = O(1/N²) and
    E δ⁴ = 3v² + O(1/N³) (a mean over N units has cumulants κ_j = O(N^{1−j})), one step is

        m'  = σ_b² + σ_w² [Q + ½Q''v + Q⁽³⁾μ3/6 + Q⁽⁴⁾v²/8]
        v'  = σ_w⁴ [Q'²v + Q'Q''μ3 + (½Q''² + Q'Q⁽³⁾)v² + (V + ½V''v)/N]
        μ3' = σ_w⁶ [Q'³μ3 + 3Q'²Q''v² + 3Q'V'v/N + K3/N²]

    with V = Q4 − Q² (a unit's variance of f² given s) and K3 = Q6 − 3Q4·Q + 2Q³ (its third
    central moment).  The first-order functionals come as in :func:`_forward_closure`, the further
    ones (``quadrature.second_order_moments``) by quadrature for every activation."""
    shape, depth = q0.shape, n.shape[-1] - 1
    m, var, mu3 = np.empty(shape + (depth + 1,)), np.zeros(shape + (depth + 1,)), np.zeros(shape + (depth + 1,))
    m[..., 0] = q0
    member = _family_member(act, params)
    w4 = np.square(w2)
    for k in range(depth):
        mk, vk, tk, nk = m[..., k], var[..., k], mu3[..., k], n[..., k]
        ok = np.isfinite(mk) & (mk > 0)
        if not ok.any():
            m[..., k + 1] = var[..., k + 1] = mu3[..., k + 1] = np.nan
            continue
        at = np.where(ok, mk, 1.0)
        fn = {**_moments(act, at, params), **quadrature.second_order_moments(member, at)}
        fn = {name: np.where(ok, value, np.nan) for name, value in fn.items()}
        big_q, dq, d2q, d3q, d4q = fn["Q"], fn["dQ"], fn["d2Q"], fn["d3Q"], fn["d4Q"]
        unit_var = fn["Q4"] - np.square(big_q)
        d_unit_var = fn["dQ4"] - 2.0 * big_q * dq
        d2_unit_var = fn["d2Q4"] - 2.0 * (np.square(dq) + big_q * d2q)
        unit_third = fn["Q6"] - 3.0 * fn["Q4"] * big_q + 2.0 * big_q**3
        v2 = np.square(vk)
        m[..., k + 1] = b2 + w2 * (big_q + 0.5 * d2q * vk + d3q * tk / 6.0 + 0.125 * d4q * v2)
        var[..., k + 1] = w4 * (np.square(dq) * vk + dq * d2q * tk + (0.5 * np.square(d2q) + dq * d3q) * v2
                                + (unit_var + 0.5 * d2_unit_var * vk) / nk)
        mu3[..., k + 1] = w4 * w2 * (dq**3 * tk + 3.0 * np.square(dq) * d2q * v2 + 3.0 * dq * d_unit_var * vk / nk
                                     + unit_third / np.square(nk))
    return m, var, mu3


def _warn_outside(valid):
    if np.all(valid):
        return
    warnings.warn(
        f"finite_width: {int(np.size(valid) - np.count_nonzero(valid))} of {np.size(valid)} configurations are "
        f"outside the O(1/N) theory's validity range (near criticality: a saturation factor sigma_w2 Q' or "
        f"sigma_w2 Q'^2/phi >= {SATURATION_LIMIT}; or fluctuations too large: Var s / (E s)^2 >= "
        f"{EXPANSION_LIMIT}, i.e. L/N too large; or a non-finite q); see 'valid', 'residual_q' and "
        "'residual_grad'", FiniteWidthWarning, stacklevel=3)


#: the weight laws the O(1/N) theory covers: i.i.d. Gaussian (§3, §4), orthogonal (§8: forward only)
WEIGHTS = ("gaussian", "orthogonal")


def _check_orthogonal(weights, v, n):
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    if weights == "gaussian":
        return False
    if np.any(v["sigma_b2"] != 0):
        raise ValueError("the finite-width theory with orthogonal weights is derived for sigma_b2 = 0, got "
                         f"{float(np.max(v['sigma_b2'])):g}")
    if np.any(n != n[..., :1]) or np.any(n < 2):
        raise ValueError("the finite-width theory with orthogonal weights needs one width >= 2 at every layer "
                         "(square orthogonal matrices)")
    return True


def finite_width(act, depth, q0=1.0, widths=None, sigma_w2=1.0, sigma_b2=0.0, order=1,
                 weights="gaussian") -> xr.Dataset:
    """What a network of finite width measures, to O(1/N) (docs/finite-width.md §3, §4).

    ``widths`` is one number (every layer), N_0..N_L, or a DataArray: without
    a ``layer`` dimension its dimensions (e.g. ``width``) become configuration
    dimensions with that width at every layer; with one (of length L + 1) it
    gives per-layer widths per configuration.  ``q0``, ``sigma_w2`` and
    ``sigma_b2`` broadcast as in :func:`meanfield.recursion`.  ``order=0``
    returns :func:`meanfield.recursion` itself.

    ``order=2`` carries the forward closure to O(1/N²) (§3b): the first-order one gets the mean to
    relative O(1/N²) but v_l, itself O(1/N), only to relative O(x_l), x_l = v_l/m_l²; the second
    order brings ``s_var`` and ``q_sample_var`` to relative O(x_l²) (dSELU at N = 512, L = 32: the
    first order reads 2.7 % low there) and adds ``s_third`` = E[(s_l − m_l)³].  Its extra functionals
    come by quadrature, one call per layer.  The gradients, ``chi_mean`` and ``residual_grad`` stay
    those of the O(1/N) closure.

    Variables (dims: configuration dims + ``layer`` = 0..L):

    * ``q``, ``grad``: the infinite-width Props A.1 and A.2 (as ``recursion``);
    * ``q_mean`` = E[q̂_l] = m_l and ``s_var`` = v_l (§3);
    * ``q_sample_var``: the variance of one sample's q̂_l = mean_i h_{l,i}²,
      v_l + 2(m_l² + v_l)/N_l (given s_l the units are iid N(0, s_l));
    * ``grad_mean``: E‖∂L/∂h_l‖² / E‖∂L/∂h_L‖² (§4), and ``log_grad_mean``;
    * ``chi_mean``: E[tr(W_l W_lᵀ) tr(D_{l−1} D_{l−1}ᵀ)] = σ_w²(φ + ½φ''v)(m_{l−1}),
      comparable with ``sim.simulate``'s ``chi_measured``;
    * ``grad_correction_jensen``, ``grad_correction_correlation``,
      ``grad_correction_reuse``: the relative gradient correction of each
      mechanism; (1 + each) multiply to grad_mean / grad exactly;
    * ``residual_q``, ``residual_grad``, ``residual_var``: the estimated relative size of the terms
      the closure drops in ``q_mean``, ``grad_mean`` and ``q_sample_var`` (order 1: the next order
      as each step's correction times x_l, and x_l·v_l/``q_sample_var``; order 2: the second-order
      change of ``q_mean`` and ``q_sample_var`` times x_l);
    * ``saturation`` = σ_w² Q'(m_l) and ``reuse_saturation`` = σ_w² Q'(m_l)²/φ(m_l),
      the per-layer decay factors of the fluctuations (NaN at the output);
    * ``valid``: both factors below ``SATURATION_LIMIT`` at every layer.

    ``weights="orthogonal"`` (σ_b² = 0, one width; docs/finite-width.md §8): ``q_mean``, ``s_var``
    and ``q_sample_var`` of a network with Haar orthogonal weights; its backward closure is not
    derived, so ``grad_mean``, ``chi_mean`` and the gradient corrections are NaN (the exact reduced
    chain, ``sim.reduced_chain(..., weights="orthogonal")``, measures them).
    """
    if order not in ORDERS:
        raise ValueError(f"order must be 0 (infinite width), 1 (O(1/N)) or 2 (the forward closure to O(1/N^2)), "
                         f"got {order!r}")
    act = resolve(act)
    depth = _depth(depth)
    require_layers("finite_width", 1, depth)  # before anything of size depth is built
    width_config, width_list = _widths_array(widths, depth)
    if order == 0:
        return recursion(act, depth, q0=q0, sigma_w2=sigma_w2, sigma_b2=sigma_b2,
                         widths=None if width_list is None else width_list.astype(int).tolist())
    inputs = dict(q0=(q0, True, False), sigma_w2=(sigma_w2, True, False), sigma_b2=(sigma_b2, True, True))
    if width_config is not None:
        inputs["widths"] = (width_config if "layer" not in width_config.dims
                            else width_config.isel(layer=0, drop=True), True, False)
    dims, v, coords = broadcast_inputs(act, **inputs)
    shape = v["q0"].shape
    require_layers("finite_width", np.prod(shape, dtype=float), depth)
    n = _per_layer_widths(width_config, width_list, v, dims, shape, depth)
    coords.pop("widths", None)
    params = family_arrays(act, v) if isinstance(act, ExpLinear) else None
    params = None if params is None else tuple(np.broadcast_to(p, shape) for p in params)
    orthogonal = _check_orthogonal(weights, v, n)
    if orthogonal and order == 2:
        raise ValueError("order=2 (the forward closure to O(1/N^2)) is derived for Gaussian weights; use order=1 "
                         "with weights='orthogonal'")
    arrays = infinite_width_arrays(act, v, params, depth)  # Props A.1, A.2, as recursion() has them
    infinite = {k: v_ for k, v_ in infinite_width_variables(arrays, dims).items()
                if k in ("q", "grad", "log_grad", "chi", "diverged_at")}
    w2, b2 = v["sigma_w2"], v["sigma_b2"]
    with np.errstate(all="ignore"):
        m, var, fn = _forward_closure(act, params, v["q0"], w2, b2, n, orthogonal)
        t00, log_full, log_jensen, log_correlation, residual_q, residual_grad = _backward(m, var, n, w2, fn)
        if orthogonal:  # only the forward closure is derived for orthogonal weights (docs/finite-width.md §8)
            t00, log_full, log_jensen, log_correlation, residual_grad = (
                np.full_like(a, np.nan) for a in (t00, log_full, log_jensen, log_correlation, residual_grad))
        log_infinite = arrays["log_grad"]
        w2l = w2[..., None]
        saturation = np.concatenate([w2l * fn["dQ"], np.full(shape + (1,), np.nan)], axis=-1)
        reuse = np.concatenate([w2l * np.square(fn["dQ"]) / fn["phi"], np.full(shape + (1,), np.nan)], axis=-1)
        chi_mean = np.concatenate([np.full(shape + (1,), np.nan), t00], axis=-1)
        sample_var = _sample_var(m, var, n, orthogonal)
        expansion = var / np.square(m)
        # the next order's size: x_l relative to v_l, the part of q̂_l's variance the closure expands
        residual_var = expansion * var / sample_var
        third = None
        if order == 2:  # the forward closure to O(1/N²); the backward one stays O(1/N) (§3b)
            m2, var2, third = _second_order_closure(act, params, v["q0"], w2, b2, n)
            sample_var2 = _sample_var(m2, var2, n, orthogonal)
            expansion = var2 / np.square(m2)
            residual_q = np.abs(m2 / m - 1.0) * expansion
            residual_var = np.abs(sample_var2 / sample_var - 1.0) * expansion
            m, var, sample_var = m2, var2, sample_var2
    valid = ((np.nanmax(saturation, axis=-1) < SATURATION_LIMIT) & (np.nanmax(reuse, axis=-1) < SATURATION_LIMIT)
             & (np.max(expansion, axis=-1) < EXPANSION_LIMIT) & np.all(np.isfinite(m), axis=-1))
    _warn_outside(valid)

    variables = dict(m=m, var=var, sample_var=sample_var, third=third, residual_var=residual_var,
                     log_full=log_full, log_jensen=log_jensen,
                     log_correlation=log_correlation, log_infinite=log_infinite, chi_mean=chi_mean,
                     saturation=saturation, reuse=reuse, expansion=expansion, residual_q=residual_q,
                     residual_grad=residual_grad, valid=valid)
    ds = _dataset(act, depth, order, infinite, dims, coords, v, n, width_config, width_list, variables)
    ds.attrs["weights"] = weights
    return ds


def _dataset(act, depth, order, infinite, dims, coords, v, n, width_config, width_list, variables):
    """The result: the infinite-width variables beside the finite-width ones, with coordinates."""
    m, var, sample_var = variables["m"], variables["var"], variables["sample_var"]
    closure = "O(1/N^2)" if order == 2 else "O(1/N)"
    section = "docs/finite-width.md section 3b" if order == 2 else "docs/finite-width.md section 3"
    log_full, log_jensen = variables["log_full"], variables["log_jensen"]
    log_correlation, log_infinite = variables["log_correlation"], variables["log_infinite"]
    chi_mean, saturation, reuse = variables["chi_mean"], variables["saturation"], variables["reuse"]
    expansion, residual_q, residual_grad = variables["expansion"], variables["residual_q"], variables["residual_grad"]
    valid = variables["valid"]
    layer_dims = dims + ("layer",)
    data = dict(infinite)
    data.update({
        "q_mean": (layer_dims, m, {"long_name": f"E[q_l] of a width-N network, {closure}", "equation": section}),
        "s_var": (layer_dims, var, {"long_name": f"Var[s_l], s_l the unit variance of h_l given layer l-1, {closure}",
                                    "equation": section}),
        "q_sample_var": (layer_dims, sample_var, {"long_name": "variance of one sample's mean_i h_{l,i}^2"}),
        "residual_var": (layer_dims, variables["residual_var"],
                         {"long_name": "estimated relative size of the neglected terms in q_sample_var"}),
        "grad_mean": (layer_dims, np.exp(log_full), {"long_name": "E||dL/dh_l||^2 / E||dL/dh_L||^2, O(1/N)",
                                                     "equation": "docs/finite-width.md section 4"}),
        "log_grad_mean": (layer_dims, log_full, {"long_name": "log of grad_mean"}),
        "chi_mean": (layer_dims, chi_mean, {"long_name": "E[tr(W_l W_l^T) tr(D_{l-1} D_{l-1}^T)]",
                                            "equation": "eq 24 at finite width"}),
        "grad_correction_jensen": (layer_dims, np.expm1(log_jensen - log_infinite),
                                   {"long_name": "gradient correction from the convexity of Q and phi"}),
        "grad_correction_correlation": (layer_dims, np.expm1(log_correlation - log_jensen),
                                        {"long_name": "gradient correction from the forward-backward correlation"}),
        "grad_correction_reuse": (layer_dims, np.expm1(log_full - log_correlation),
                                  {"long_name": "gradient correction from weight reuse (W_l forward and backward)"}),
        "saturation": (layer_dims, saturation, {"long_name": "sigma_w2 Q'(m_l): decay of the forward fluctuations"}),
        "reuse_saturation": (layer_dims, reuse, {"long_name": "sigma_w2 Q'(m_l)^2 / phi(m_l): decay of Var b"}),
        "expansion": (layer_dims, expansion, {"long_name": "Var[s_l] / E[s_l]^2, the expansion parameter"}),
        **({} if variables["third"] is None else {"s_third": (
            layer_dims, variables["third"], {"long_name": "E[(s_l - E s_l)^3], O(1/N^2)", "equation": section})}),
        "residual_q": (layer_dims, residual_q, {"long_name": "estimated relative size of the neglected terms in q_mean"}),
        "residual_grad": (layer_dims, residual_grad,
                          {"long_name": "estimated relative size of the neglected terms in grad_mean"}),
        "valid": (dims, valid, {"long_name": f"saturation factors < {SATURATION_LIMIT} and expansion < "
                                             f"{EXPANSION_LIMIT} at every layer"}),
    })
    coords = {name: c for name, c in coords.items() if name in ("q0", "sigma_w2", "sigma_b2")
              or name in ("lambda", "alpha", "rate", "slope")}
    coords["layer"] = np.arange(depth + 1)
    if width_config is not None and "layer" not in width_config.dims:
        coords.update({d: width_config[d] for d in width_config.dims if d in width_config.coords})
        coords["widths"] = xr.DataArray(v["widths"], dims=dims)
    else:
        coords["width"] = (layer_dims if n.ndim > 1 and width_config is not None else ("layer",),
                           n if width_config is not None else np.asarray(width_list))
    attrs = dataset_attrs(act, "docs/finite-width.md sections 3-4 (O(1/N)); q, grad: Prop A.1 (eq 16), Prop A.2 "
                          "(eq 24)", depth=depth, order=order,
                          residual="neglected terms are O(L/N^2) while both saturation factors are < 1",
                          saturation_limit=SATURATION_LIMIT, expansion_limit=EXPANSION_LIMIT)
    return xr.Dataset(data, coords=coords, attrs=attrs)
