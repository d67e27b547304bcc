"""Layer-to-layer recursions: Props A.1, A.2, 3.1 and 3.2 (docs/theory.md §4).

Network convention (docs/theory.md §4): h_0 is the input pre-activation with second
moment q_0; layer l = 1..L computes h_l = W_l f(h_{l−1}) + b_l with
W_l[i, j] ~ N(μ_w, σ_w²/N_{l−1}) (fan-in scaling) and b_l ~ N(0, σ_b²).

Vectorisation.  ``q0``, ``sigma_w2``, ``sigma_b2`` (and ``m0``,
``mean_weight``) may be scalars, arrays or ``xarray.DataArray``s, and the
activation's parameters may be arrays: all broadcast.  A DataArray keeps its
dimension names; a 1-D numpy array gets the dimension ``config``, an N-D one
``config_0, config_1, ...``.  The result has those dimensions plus ``layer``
(0..L), every input as a coordinate, and attributes naming the equation and
the package version.  1,000 configurations × 1,000 layers is one call.

Divergence is data: once q_l overflows, the following layers hold inf/NaN,
and ``diverged_at`` gives the first non-finite layer (−1 if none).  So is a
vanishing signal: q_l that underflows is 0 there and after (the activation's
Q(0) = f(0)² and φ(0) = f'(0)² carry the recursion on), with ``vanished_at``
its first layer.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ..gauss import closed_forms, quadrature
from ..gauss.elementary import frexp, ldexp, log_scaled, scaled_product
from ..gauss.jit import empty_large, kernel, run_in_column_chunks
from ..gauss.smooth_closed import forward as smooth_forward
from ..results import dataset_attrs
from ..activations.objects import ExpLinear
from .functionals import resolve, smooth_closed
from .inputs import broadcast_inputs, family_arrays
from ..arguments import check_depth
from ..resources import require_layers

def layer_maps(act, q, params=None):
    """Q(q) and φ(q) for the layer loop (closed forms, or quadrature)."""
    if isinstance(act, ExpLinear):
        return closed_forms.second_moment_and_jacobian(q, *params)
    smooth = smooth_closed(act)
    if smooth is not None:
        return smooth.second_moment(q), smooth.jacobian(q)
    return quadrature.expectation(act, ("f2", "df2"), 0.0, q)


_depth = check_depth


def _widths(widths, depth):
    if widths is None:
        return None
    arr = np.atleast_1d(np.asarray(widths))
    if arr.size == 1:
        arr = np.full(depth + 1, arr.item())
    if arr.shape != (depth + 1,):
        raise ValueError(f"widths must be one number or a list of depth + 1 = {depth + 1} numbers (N_0..N_L), "
                         f"got {arr.size}")
    if not np.all(np.isfinite(arr.astype(float))) or np.any(arr < 1) or np.any(arr != np.round(arr)):
        raise ValueError(f"widths must be positive integers, got {arr.tolist()}")
    return arr.astype(int)


def _first_nonfinite(x, axis=-1):
    bad = ~np.isfinite(x)
    return np.where(bad.any(axis=axis), np.argmax(bad, axis=axis), -1)


def recursion(act, depth, q0=1.0, sigma_w2=1.0, sigma_b2=0.0, widths=None, dropout=None, dropped=None) -> xr.Dataset:
    """Forward second moments (Prop A.1), backward gradient norms (Prop A.2) and Prop 3.1.

    Variables (dimension ``layer`` = 0..L, plus the configuration dims):

    * ``q``: q_l = σ_b² + σ_w² Q(q_{l−1}) (eq 16), the second moment of h_l.
    * ``chi``: χ_l = σ_w² φ(q_{l−1}) (NaN at layer 0), the per-layer gain of
      the squared gradient norm (eq 24).
    * ``explosion_factor``: 1 + δ_{q_l} = q_l φ(q_l)/Q(q_l) (eq 2).
    * ``grad``: E‖∂L/∂h_l‖² / E‖∂L/∂h_L‖² = ∏_{i=l+1}^{L} χ_i (Prop A.2),
      normalised to 1 at the output.  ``log_grad`` is its logarithm, which
      stays finite when the product over- or underflows (the product is kept
      as mantissa and exponent, ``gauss.elementary.scaled_product``).
    * ``grad_per_unit``: the mean square per unit, ``grad`` · N_L/N_l.
      Unequal widths: with fan-in scaling E‖W_lᵀ g‖² = σ_w² ‖g‖², so the
      *summed* squared norm obeys ∂‖·‖²_{l−1} = χ_l ‖·‖²_l whatever the
      widths; the per-unit mean square picks up the ratio N_l/N_{l−1}.
    * ``explosion_product``: ∏_{i=1}^{l} (1 + δ_{q_{i−1}}) (Prop 3.1).
    * ``prop31``: q_l ∏(1 + δ) E‖∂L/∂h_l‖² / (q_0 E‖∂L/∂h_0‖²), which
      (eq 27) says equals 1; exact whenever σ_b² = 0 (any σ_w²).  Where a
      vanishing q_l falls below the smallest normal float (2.2e-308) it keeps
      fewer significant digits, and prop31 with it: ±50 % at q_l = 5e-324,
      the last value before ``vanished_at``.
    * ``diverged_at``: first layer whose q_l is not finite, −1 if none.

    ``dropout`` (a drop rate p in [0, 1), with scalar σ_w² and σ_b²) puts alpha dropout after every
    activation, its constants fixed at the fixed point q* by the rule ``dropped`` ('saturation',
    'mean' or a number; :mod:`meanfield.theory.dropout`): q_l then follows the dropout map, ``chi``
    is χ_p, ``y_mean`` is E y_l (the mean of what the next layer receives) and ``prop31`` is NaN
    (eq 27 holds without dropout).  p = 0 gives exactly the recursion without dropout.

    A large grid (from 2¹⁷ configuration-layers) runs its compiled passes over chunks of the
    configurations on the CPUs this process may use, with the same numbers as on one thread;
    ``NUMBA_NUM_THREADS=1`` keeps it on the calling thread (``gauss.jit.run_in_column_chunks``).
    """
    act = resolve(act)
    depth = _depth(depth)
    require_layers("recursion", 1, depth)  # before anything of size depth is built
    widths = _widths(widths, depth)
    dims, v, coords = broadcast_inputs(
        act,
        q0=(q0, True, False),
        sigma_w2=(sigma_w2, True, False),
        sigma_b2=(sigma_b2, True, True),
    )
    params = family_arrays(act, v) if isinstance(act, ExpLinear) else None
    shape = v["q0"].shape
    require_layers("recursion", np.prod(shape, dtype=float), depth)
    constants = c = None
    if dropout is not None:
        from .dropout import dropout_constants

        if np.ndim(dropout) or np.size(np.unique(v["sigma_w2"])) > 1 or np.size(np.unique(v["sigma_b2"])) > 1:
            raise ValueError("with dropout, give one drop rate p and one sigma_w2 and sigma_b2 (the constants a, b "
                             "are fixed at their fixed point); loop over them, or use meanfield.alpha_dropout for "
                             "many p")
        c = dropout_constants(act, dropout, dropped, float(np.ravel(v["sigma_w2"])[0]),
                              float(np.ravel(v["sigma_b2"])[0]))
        constants = c if float(c["p"]) > 0.0 else None  # p = 0: exactly the network without dropout
    arrays = infinite_width_arrays(act, v, params, depth, dropout=constants)
    data = infinite_width_variables(arrays, dims)
    if c is not None:
        layer_dims = dims + ("layer",)
        y_mean = arrays.get("y_mean")
        if y_mean is None:  # p = 0: the layer passes x through, E y = E f
            q = arrays["q"]
            y_mean = np.where(np.isfinite(q) & (q > 0), _zero_mean_mean(act, np.where(q > 0, q, 1.0)), np.nan)
        data["y_mean"] = (layer_dims, y_mean, {"long_name": "E y_l, the mean of the dropout layer's output",
                                               "equation": "docs/dropout.md"})
        if constants is not None:
            data["prop31"] = (layer_dims, np.full_like(arrays["q"], np.nan), {"long_name": "eq 27 (not with dropout)"})
    grad = arrays["grad"]
    layer_dims = dims + ("layer",)
    if widths is not None:
        data["grad_per_unit"] = (layer_dims, grad * widths[-1] / widths,
                                 {"long_name": "E||dL/dh_l||^2 / N_l, 1 at the output layer"})
    coords = dict(coords)
    coords["layer"] = np.arange(depth + 1)
    if widths is not None:
        coords["width"] = ("layer", widths)
    extra = {}
    if c is not None:
        extra = dict(dropout=float(c["p"]), dropped_rule=c["rule"], dropout_a=float(c["a"]), dropout_b=float(c["b"]),
                     alpha_prime=c["alpha_p"])
    return xr.Dataset(data, coords=coords,
                      attrs=dataset_attrs(act, "Prop A.1 (eq 16), Prop A.2 (eq 24), Prop 3.1 (eq 27)", depth=depth,
                                          **extra))


def mean_recursion(act, depth, q0=1.0, m0=0.0, mean_weight=0.0, widths=1, sigma_w2=1.0, sigma_b2=0.0) -> xr.Dataset:
    """The mean through a weight matrix (Prop 3.2) combined with the mean map (eq 12).

    With W_l[i, j] ~ N(μ_w, σ_w²/N_{l−1}) and h_{l−1} ~ N(m, v) per unit
    (independent units), x = f(h) has mean M(m, v) and second moment
    S(m, v) (closed forms or quadrature), and

        m_l = μ_w N_{l−1} M,                                 (Prop 3.2, eq 36)
        v_l = σ_b² + σ_w² S + μ_w² N_{l−1} (S − M²),
        q_l = m_l² + v_l.

    ``mean_gain`` = μ_w N_{l−1}: the mean is normalised when it is below 1
    (the proof's "1/N_l" should read 1/N_{l−1}, the fan-in).  ``widths`` is
    one number or N_0..N_L; ``q0`` must exceed ``m0²``.
    """
    act = resolve(act)
    depth = _depth(depth)
    require_layers("mean_recursion", 1, depth)
    widths = _widths(widths, depth)
    dims, v, coords = broadcast_inputs(
        act,
        q0=(q0, True, False),
        m0=(m0, False, False),
        mean_weight=(mean_weight, False, False),
        sigma_w2=(sigma_w2, True, False),
        sigma_b2=(sigma_b2, True, True),
    )
    if np.any(v["q0"] <= np.square(v["m0"])):
        raise ValueError("q0 must exceed m0**2 (q0 is the second moment, q0 - m0**2 the variance of h_0)")
    shape = v["q0"].shape
    require_layers("mean_recursion", np.prod(shape, dtype=float), depth)
    m = np.empty(shape + (depth + 1,))
    var = np.empty_like(m)
    mean_x = np.full_like(m, np.nan)
    second_x = np.full_like(m, np.nan)
    m[..., 0] = v["m0"]
    var[..., 0] = v["q0"] - np.square(v["m0"])
    with np.errstate(all="ignore"):
        for layer in range(1, depth + 1):
            fan_in = widths[layer - 1]
            ok = np.isfinite(m[..., layer - 1]) & np.isfinite(var[..., layer - 1]) & (var[..., layer - 1] > 0)
            mx = np.full(shape, np.nan)
            sx = np.full(shape, np.nan)
            if ok.any():
                mx[ok], sx[ok] = _mean_and_second(act, m[..., layer - 1][ok], var[..., layer - 1][ok], v, ok)
            mean_x[..., layer - 1], second_x[..., layer - 1] = mx, sx
            mu_n = v["mean_weight"] * fan_in
            m[..., layer] = mu_n * mx
            var[..., layer] = v["sigma_b2"] + v["sigma_w2"] * sx + v["mean_weight"] ** 2 * fan_in * (sx - mx**2)
        last_ok = np.isfinite(var[..., -1]) & (var[..., -1] > 0) & np.isfinite(m[..., -1])
        if last_ok.any():
            mean_x[..., -1][last_ok], second_x[..., -1][last_ok] = _mean_and_second(
                act, m[..., -1][last_ok], var[..., -1][last_ok], v, last_ok)
    layer_dims = dims + ("layer",)
    gain = np.concatenate([[np.nan], np.asarray(widths[:-1], dtype=float)])
    mean_gain = v["mean_weight"][..., None] * gain
    q = np.square(m) + var
    data = {
        "h_mean": (layer_dims, m, {"long_name": "E[h_l]", "equation": "Prop 3.2, eq 36"}),
        "h_variance": (layer_dims, var, {"long_name": "Var[h_l]"}),
        "q": (layer_dims, q, {"long_name": "E[h_l^2]"}),
        "x_mean": (layer_dims, mean_x, {"long_name": "E[x_l] = M(E[h_l], Var[h_l])", "equation": "eq 12"}),
        "x_second_moment": (layer_dims, second_x, {"long_name": "E[x_l^2]"}),
        "mean_gain": (layer_dims, mean_gain, {"long_name": "mu_w N_{l-1}", "equation": "Prop 3.2"}),
        "diverged_at": (dims, _first_nonfinite(q), {"long_name": "first layer with non-finite q, -1 if none"}),
    }
    coords = dict(coords)
    coords["layer"] = np.arange(depth + 1)
    coords["width"] = ("layer", widths)
    return xr.Dataset(data, coords=coords, attrs=dataset_attrs(act, "Prop 3.2 (eq 36) with eq 12", depth=depth))


def _mean_and_second(act, m, var, values, mask):
    if isinstance(act, ExpLinear):
        params = [np.broadcast_to(p, mask.shape)[mask] for p in family_arrays(act, values)]
        out = closed_forms.mean_map_all(m, var, *params)
        return out["mean"], out["second"]
    return quadrature.expectation(act, "f", m, var), quadrature.expectation(act, "f2", m, var)


def infinite_width_arrays(act, v, params, depth, dropout=None) -> dict:
    """Props A.1, A.2 and 3.1 as arrays of shape config + (L + 1,), from broadcast inputs ``v``
    (q0, sigma_w2, sigma_b2) and the family's parameter arrays (None for quadrature): the core of
    :func:`recursion`, which :func:`meanfield.finite_width` shares.  Keys: q, chi, factor, log_grad,
    grad, explosion, prop31 (config + (L + 1,)), diverged_at, vanished_at (config), and y_mean with
    dropout."""
    shape = v["q0"].shape
    # Layer-major inside (each layer's values contiguous, so that the loops over configurations have
    # unit stride), the layer axis moved last on return: the strided columns of a config-major
    # layout cost more than the closed forms themselves.  Q(q_l) is computed into the array that
    # becomes 1 + δ, and φ(q_l) into row l + 1 of the one that becomes χ (χ_{l+1} = gain φ(q_l)),
    # converted in place: each array is fresh memory the system zeroes, which costs about as much
    # as the closed forms.
    q = empty_large((depth + 1,) + shape)
    big_q = empty_large(q.shape)
    chi_phi = empty_large((depth + 2,) + shape)
    phi = chi_phi[1:]
    q[0] = v["q0"]
    y_mean = None
    smooth = smooth_closed(act)
    gain = 1.0 if dropout is None else dropout["a"] ** 2 * dropout["keep"]  # ∂y/∂x = a d: E (a d)² = a² k
    derived = _DerivedArrays(q, big_q, chi_phi, v["sigma_w2"] * gain)
    columns = derived.columns
    with np.errstate(all="ignore"):
        if dropout is None and smooth is not None and smooth.layer is not None:
            # erf, GELU: every layer in one compiled pass, then the derived pass, per chunk of
            # configurations on the kernel threads
            flat = (depth + 1, columns)
            w2, b2 = (np.ascontiguousarray(np.broadcast_to(v[k], shape)).ravel() for k in ("sigma_w2", "sigma_b2"))

            def chunk(start, stop):
                smooth_forward(smooth.layer, q.reshape(flat), big_q.reshape(flat), phi.reshape(flat), w2, b2,
                               start, stop)
                derived.fill(start, stop)

            run_in_column_chunks(chunk, columns, q.size)
        else:
            y_mean = _layer_loop(act, v, params, depth, dropout, q, big_q, phi)
            run_in_column_chunks(derived.fill, columns, q.size)
    out = derived.arrays()
    out = {key: np.moveaxis(a, 0, -1) if a.ndim == q.ndim else a for key, a in out.items()}
    out["q"] = np.moveaxis(q, 0, -1)
    if dropout is not None:
        out["y_mean"] = np.moveaxis(y_mean, 0, -1)
    return out


def _layer_loop(act, v, params, depth, dropout, q, big_q, phi):
    """Fill q, Q and φ (layer-major) one layer at a time, numpy over the configurations (the family's
    compiled closed forms per layer, or quadrature), with alpha dropout after each activation where
    ``dropout`` gives its constants; returns E y_l there (None without dropout)."""
    shape = q.shape[1:]
    second = np.empty_like(q)
    y_mean = np.empty_like(q) if dropout is not None else None
    for layer in range(depth + 1):
        cur = q[layer]
        finite = np.isfinite(cur) & (cur > 0)
        if finite.all():
            big_q[layer], phi[layer] = layer_maps(act, cur, params)
        else:
            bq = np.full(shape, np.nan)
            ph = np.full(shape, np.nan)
            if finite.any():
                sub = [None if p is None else np.broadcast_to(p, shape)[finite] for p in (params or ())]
                bq[finite], ph[finite] = layer_maps(act, cur[finite], tuple(sub) if params else None)
            bq[np.isposinf(cur)] = np.inf
            zero = cur == 0  # vanished (underflowed): x = 0 exactly, so Q = f(0)², φ = f'(0)²
            if zero.any():
                bq[zero] = np.broadcast_to(np.square(act.f(0.0)), shape)[zero]
                ph[zero] = np.broadcast_to(np.square(act.df(0.0)), shape)[zero]
            big_q[layer], phi[layer] = bq, ph
        if dropout is not None:
            # alpha dropout after the activation (theory.dropout): E y² replaces Q, and E y = μ + a k (m₁ − μ)
            m1 = np.full(shape, np.nan)
            ok = np.isfinite(cur) & (cur > 0)
            if ok.any():
                m1[ok] = _zero_mean_mean(act, cur[ok])
            a, b, k, p, alpha_p = (dropout[key] for key in ("a", "b", "keep", "p", "alpha_p"))
            second[layer] = a * a * (k * big_q[layer] + p * alpha_p**2) + 2 * a * b * (k * m1 + p * alpha_p) + b * b
            y_mean[layer] = dropout["mu"] + a * k * (m1 - dropout["mu"])
        if layer < depth:
            q[layer + 1] = v["sigma_b2"] + v["sigma_w2"] * (big_q[layer] if dropout is None else second[layer])
    return y_mean


class _DerivedArrays:
    """χ_l, 1 + δ_{q_l}, the gradient and Prop 3.1's product from q_l, Q(q_l) and φ(q_l): q and
    ``big_q`` layer-major arrays (L + 1,) + config, φ(q_l) in row l + 1 of ``chi_phi``, (L + 2,) +
    config, all C-contiguous; ``sigma_w2`` (config-shaped or scalar) is the per-layer gain's factor
    (σ_w², times a² k with alpha dropout).  :meth:`fill` runs the compiled pass (:func:`_derived`)
    over a chunk of configurations, turning ``big_q`` into 1 + δ and ``chi_phi[:L + 1]`` into χ in
    place; :meth:`arrays` returns those and the others layer-major, diverged_at and vanished_at
    config-shaped.  A class because the output arrays are filled chunk by chunk, from threads."""

    _NAMES = ("log_grad", "grad", "explosion", "prop31")

    def __init__(self, q, big_q, chi_phi, sigma_w2):
        layers, self.shape = q.shape[0], q.shape[1:]
        self.columns = int(np.prod(self.shape, dtype=int))
        self.flat = (layers, self.columns)
        self.gain = np.ascontiguousarray(np.broadcast_to(np.asarray(sigma_w2, dtype=float), self.shape)).ravel()
        self.q, self.big_q, self.chi_phi = q, big_q, chi_phi
        self.out = {name: empty_large(q.shape) for name in self._NAMES}
        self.first = np.empty((2, self.columns), dtype=np.int64)

    def fill(self, start, stop):
        layers, columns = self.flat
        if stop > start:
            _derived.run(layers * (stop - start), self.q.reshape(self.flat), self.big_q.reshape(self.flat),
                         self.chi_phi.reshape((layers + 1, columns)), self.gain,
                         *(self.out[name].reshape(self.flat) for name in self._NAMES), self.first, start, stop)

    def arrays(self) -> dict:
        out = dict(self.out)
        out["factor"], out["chi"] = self.big_q, self.chi_phi[:self.flat[0]]
        out["diverged_at"], out["vanished_at"] = self.first[0].reshape(self.shape), self.first[1].reshape(self.shape)
        return out


_COMPILE = {"cache": True, "nogil": True, "error_model": "numpy"}

# One layer's rows (1-D, unit stride), each loop a function of its own: LLVM vectorises these, and
# the same loops nested inside the layer loop it does not (nor a loop over more arrays than it
# checks for overlap at run time).


@kernel(**_COMPILE)
def _factor_row(q, phi, big_q):
    """big_q ← 1 + δ_q = q φ/Q (eq 2) in place, 1 at q = Q = 0 (its limit)."""
    for i in range(q.size):
        value = q[i] * phi[i] / big_q[i]
        big_q[i] = 1.0 if (q[i] == 0.0 and big_q[i] == 0.0) else value


@kernel(**_COMPILE)
def _first_layers_row(layer, q, bad_at, zero_at):
    """Record ``layer`` where q is first non-finite, and where it is first 0."""
    for i in range(q.size):
        bad = bad_at[i] < 0 and not (q[i] - q[i] == 0.0)  # inf or NaN
        bad_at[i] = layer if bad else bad_at[i]
    for i in range(q.size):
        zero_at[i] = layer if (zero_at[i] < 0 and q[i] == 0.0) else zero_at[i]


@kernel(**_COMPILE)
def _scale_row(gain, phi):
    """phi ← χ = gain φ in place."""
    for i in range(phi.size):
        phi[i] = gain[i] * phi[i]


@kernel(**_COMPILE)
def _product_row(m, k, x, m_out, k_out):
    """(m_out, k_out) = (m, k)·x as a scaled product (elementary.scaled_product)."""
    for i in range(x.size):
        m_out[i], k_out[i] = scaled_product(m[i], k[i], x[i])


@kernel(**_COMPILE)
def _product_in_place_row(m, k, x):
    """(m, k) ← (m, k)·x as a scaled product."""
    for i in range(x.size):
        m[i], k[i] = scaled_product(m[i], k[i], x[i])


@kernel(**_COMPILE)
def _reference_row(q, m_g, k_g, m_ref, k_ref):
    """(m_ref, k_ref) = q·g scaled, unnormalised (the denominator q_0 g_0 of eq 27)."""
    for i in range(q.size):
        m_q, k_q = frexp(q[i])
        m_ref[i] = m_q * m_g[i]
        k_ref[i] = k_q + k_g[i]


@kernel(**_COMPILE)
def _prop31_row(q, m_e, k_e, m_g, k_g, m_ref, k_ref, out):
    """eq 27's ratio q_l·explosion_l·g_l/(q_0 g_0) from the scaled factors, rounded once at the end."""
    for i in range(q.size):
        m_q, k_q = frexp(q[i])
        out[i] = ldexp(m_q * m_e[i] * (m_g[i] / m_ref[i]), (k_q + k_e[i]) + (k_g[i] - k_ref[i]))


@kernel(**_COMPILE)
def _unscale_row(m, k, out):
    """out = m·2^k."""
    for i in range(m.size):
        out[i] = ldexp(m[i], k[i])


@kernel(**_COMPILE)
def _unscale_with_log_row(m, k):
    """(m, k) ← (m·2^k, log(m·2^k)) in place."""
    for i in range(m.size):
        value, log_value = ldexp(m[i], k[i]), log_scaled(m[i], k[i])
        m[i], k[i] = value, log_value


@kernel(**_COMPILE)
def _derived(q, factor, chi, gain, log_grad, grad, explosion, prop31, first, start, stop):
    """The body of :meth:`_DerivedArrays.fill`, over the configurations (columns) start:stop:
    ``q``, ``factor`` (holding Q on entry), ``log_grad``, ``grad``, ``explosion``, ``prop31``
    (L + 1, n) and ``chi`` (L + 2, n, holding φ(q_l) in row l + 1 on entry) layer-major, ``gain``
    (n,); ``first`` (2, n) receives the first non-finite and the first zero layer of q (−1 if none).

    factor 1 + δ = q φ/Q (1 at q = Q = 0, its limit); chi_l = gain φ(q_{l−1}); grad the reverse
    cumulative product of χ (Prop A.2) and log_grad its log; explosion = Π_{i<l} (1 + δ_i);
    prop31 = (q_l/q_0) explosion_l (g_l/g_0) (eq 27).  The products are kept as mantissa and
    exponent (``elementary.scaled_product``), so that they over- or underflow only where their
    value does, and rounded once where read; every step is a row loop without a branch, which
    LLVM vectorises.  grad and log_grad hold the gradient's mantissa and exponent until the last
    pass converts them in place."""
    layers = q.shape[0]
    depth = layers - 1
    n = stop - start
    c = slice(start, stop)
    first[:, c] = -1
    # backward: 1 + δ while row l + 1 of chi is still φ(q_l), then χ, and g_l = Π_{i>l} χ_i scaled
    # into (grad, log_grad)
    _factor_row(q[depth, c], chi[depth + 1, c], factor[depth, c])
    grad[depth, c] = 1.0
    log_grad[depth, c] = 0.0
    for l in range(depth - 1, -1, -1):
        _factor_row(q[l, c], chi[l + 1, c], factor[l, c])
        _scale_row(gain[c], chi[l + 1, c])
        _product_row(grad[l + 1, c], log_grad[l + 1, c], chi[l + 1, c], grad[l, c], log_grad[l, c])
    chi[0, c] = math.nan
    m_ref = np.empty(n)
    k_ref = np.empty(n)
    _reference_row(q[0, c], grad[0, c], log_grad[0, c], m_ref, k_ref)
    # forward: the explosion product (scaled, in two rows), eq 27, and the unscaling
    m_e = np.ones(n)
    k_e = np.zeros(n)
    for l in range(layers):
        _first_layers_row(l, q[l, c], first[0, c], first[1, c])
        _prop31_row(q[l, c], m_e, k_e, grad[l, c], log_grad[l, c], m_ref, k_ref, prop31[l, c])
        _unscale_row(m_e, k_e, explosion[l, c])
        _unscale_with_log_row(grad[l, c], log_grad[l, c])
        _product_in_place_row(m_e, k_e, factor[l, c])


def _zero_mean_mean(act, q):
    """E f(√q z) at the points q (closed form or quadrature)."""
    from .functionals import mean_map

    return mean_map(act, 0.0, q)


def infinite_width_variables(arrays, dims) -> dict:
    """The Dataset variables of :func:`recursion` from :func:`infinite_width_arrays`."""
    q, chi, factor, grad, log_grad = (arrays[k] for k in ("q", "chi", "factor", "grad", "log_grad"))
    explosion, prop31 = arrays["explosion"], arrays["prop31"]
    layer_dims = dims + ("layer",)
    data = {
        "q": (layer_dims, q, {"long_name": "second moment of pre-activations q_l", "equation": "Prop A.1, eq 16"}),
        "chi": (layer_dims, chi, {"long_name": "chi_l = sigma_w2 phi(q_{l-1})", "equation": "eq 24"}),
        "explosion_factor": (layer_dims, factor, {"long_name": "1 + delta_{q_l}", "equation": "eq 2"}),
        "grad": (layer_dims, grad, {"long_name": "E||dL/dh_l||^2, 1 at the output layer", "equation": "Prop A.2, eq 19"}),
        "log_grad": (layer_dims, log_grad, {"long_name": "log of grad"}),
        "explosion_product": (layer_dims, explosion,
                              {"long_name": "prod_{i<=l} (1 + delta_{q_{i-1}})", "equation": "Prop 3.1"}),
        "prop31": (layer_dims, prop31, {"long_name": "q_l prod(1+delta) g_l / (q_0 g_0); 1 when sigma_b2 = 0",
                                        "equation": "Prop 3.1, eq 27"}),
        "diverged_at": (dims, arrays["diverged_at"], {"long_name": "first layer with non-finite q, -1 if none"}),
        "vanished_at": (dims, arrays["vanished_at"], {"long_name": "first layer where q underflows to 0, -1 if none; "
                                                             "q is 0 there and after, not NaN"}),
    }
    return data
