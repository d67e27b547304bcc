"""Q(q) and φ(q) of erf and exact GELU in closed form, compiled, and the forward recursion on them.

The formulas (derivations in ``meanfield.activations.registry``: ``_erf_closed``, ``_gelu_closed``):

* erf: Q = (2/π) arctan(2q/√(1 + 4q)), φ = (4/π)/√(1 + 4q) (Williams 1997, the arcsine kernel);
* GELU, f = xΦ(x), with a = arctan(q/√(1 + 2q)) and t = q/((1 + q)√(1 + 2q)):
  Q = q [1/4 + (t + a/2)/π], φ = 1/4 + a/(2π) + t/π + q/(2π(1 + 2q)^{3/2}).

Each is one arctan (``elementary.atan_ratio``, branch-free, of a ratio without dividing it out)
and one square root, so that a loop over points vectorises: :func:`second_moment_and_jacobian`
fills arrays for the registry's functionals, and :func:`forward` runs eq 16 through every layer of
many configurations in one compiled pass (``meanfield.recursion``'s route for these two
activations).

As q -> ∞ the forms take their limits (erf: Q -> 1, φ -> 0; GELU: Q -> ∞, φ -> 1/2): a ratio whose
denominator has overflowed is replaced by its limit, and the GELU terms of order q^{−1/2} that
overflow there are below rounding of 1/4 long before.
"""

from __future__ import annotations

import math

import numpy as np

from .elementary import atan_ratio
from .jit import kernel

_SCALAR = {"cache": True, "nogil": True, "error_model": "numpy", "inline": "always"}
_COMPILE = {"cache": True, "nogil": True, "error_model": "numpy"}

#: the activations with compiled layers, and their codes inside the kernels
ERF, GELU = 0, 1
LAYERS = {"erf": ERF, "gelu": GELU}

_TWO_OVER_PI = 2.0 / math.pi
_FOUR_OVER_PI = 4.0 / math.pi
#: multiplied by rather than divided by π: a division costs several multiplications' time
_ONE_OVER_PI = 1.0 / math.pi
_ONE_OVER_TWO_PI = 0.5 / math.pi


@kernel(**_SCALAR)
def erf_layer(q):
    """(Q, φ) of erf at q >= 0 (module docstring)."""
    root = math.sqrt(1.0 + 4.0 * q)
    angle = atan_ratio(2.0 * q, root) if root < math.inf else 0.5 * math.pi
    return _TWO_OVER_PI * angle, _FOUR_OVER_PI / root


@kernel(**_SCALAR)
def gelu_layer(q):
    """(Q, φ) of exact GELU at q >= 0 (module docstring)."""
    one_2q = 1.0 + 2.0 * q
    root = math.sqrt(one_2q)
    a = atan_ratio(q, root) if root < math.inf else 0.5 * math.pi
    # t = q/((1 + q)√(1 + 2q)) and cube = q/(1 + 2q)^{3/2} from one division; where the common
    # denominator overflows both are far below rounding of 1/4 (module docstring)
    den = (1.0 + q) * one_2q * root
    finite = den < math.inf
    common = q / den
    t = common * one_2q if finite else 0.0
    cube = common * (1.0 + q) if finite else 0.0
    big_q = q * (0.25 + (t + 0.5 * a) * _ONE_OVER_PI)
    phi = 0.25 + (a + cube) * _ONE_OVER_TWO_PI + t * _ONE_OVER_PI
    return big_q, phi


@kernel(**_SCALAR)
def layer(kind, q):
    """(Q, φ) of the activation ``kind`` (:data:`LAYERS`) at q >= 0."""
    if kind == ERF:
        return erf_layer(q)
    return gelu_layer(q)


@kernel(**_COMPILE)
def _values(kind, q, out_q, out_phi):
    for i in range(q.size):
        out_q[i], out_phi[i] = layer(kind, q[i])


def second_moment_and_jacobian(name, q):
    """Q(q) and φ(q) of ``name`` ("erf" or "gelu") at the points q >= 0, arrays of q's shape (a few
    points interpreted, with the same bits: ``jit.Kernel.run``)."""
    q = np.asarray(q, dtype=float)
    flat = np.ascontiguousarray(q).ravel()
    out_q, out_phi = np.empty_like(flat), np.empty_like(flat)
    if flat.size:
        _values.run(flat.size, LAYERS[name], flat, out_q, out_phi)
    return out_q.reshape(q.shape), out_phi.reshape(q.shape)


@kernel(**_COMPILE)
def _next_row(kind, q, big_q, phi, w2, b2, q_next):
    """One layer: Q, φ at q, and q_next = σ_b² + σ_w² Q (eq 16).  A row loop of its own, so that
    LLVM vectorises it (nested inside the layer loop it does not)."""
    for i in range(q.size):
        x = q[i]
        value, slope = layer(kind, x)
        inside = x >= 0.0 and x < math.inf  # NaN and inf: outside
        big_q[i] = value if inside else (math.inf if x == math.inf else math.nan)
        phi[i] = slope if inside else math.nan
    for i in range(q_next.size):
        q_next[i] = b2[i] + w2[i] * big_q[i]


@kernel(**_COMPILE)
def _forward(kind, q, big_q, phi, w2, b2, start, stop):
    """:func:`forward` on the configurations (columns) start:stop."""
    layers = q.shape[0]
    for l in range(layers):
        _next_row(kind, q[l, start:stop], big_q[l, start:stop], phi[l, start:stop], w2[start:stop], b2[start:stop],
                  q[l + 1, start:stop] if l + 1 < layers else q[l, :0])


def forward(name, q, big_q, phi, sigma_w2, sigma_b2, start=0, stop=None):
    """eq 16 through every layer: q[l + 1] = σ_b² + σ_w² Q(q[l]), with Q[l] and φ[l] beside.

    ``q`` (layers, n) holds q_0 in its first row and is filled below it; ``big_q``, ``phi`` of the
    same shape are filled; ``sigma_w2``, ``sigma_b2`` are (n,).  Layer-major, so each layer's loop
    over configurations has unit stride and vectorises.  A q_l that is +inf gives Q = inf and
    φ = NaN, and NaN gives NaN (the recursion's convention for a diverged signal); q_l = 0 gives
    the closed forms' values there, f(0)² and f'(0)².  Only the configurations (columns)
    start:stop are computed (``jit.run_in_column_chunks`` runs chunks side by side).
    """
    stop = q.shape[1] if stop is None else stop
    if q.size and stop > start:
        _forward.run(q.shape[0] * (stop - start), LAYERS[name], q, big_q, phi, sigma_w2, sigma_b2, start, stop)
