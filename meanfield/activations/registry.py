"""One table defines every named activation: its spec keys and defaults, f and f', kinks, its
closed forms, the solver that fills its parameters, its torch math and its figure label.

Spec resolution (``resolve``), ``meanfield activations``, the solvers' parameter names, the torch
modules (``cuda_kernels.torch_math``) and the figures' labels all read :data:`ENTRIES`.  Adding an
activation is one :class:`Entry` here plus its tests: CELU below is one.

Two kinds of entry:

* the exponential-linear family, f = λx (x > 0), λ(α(e^{bx} − 1) + κx) (x <= 0): ``fields`` maps
  each spec key to the :class:`~meanfield.activations.ExpLinear` field it sets (``lambda`` → λ,
  ``beta`` → b for sSELU, κ for lSELU), ``fixed`` sets the others; every Gaussian functional has a
  closed form (``closed_forms``) and the CUDA kernels run it;
* elementwise activations with numpy ``f`` and ``df`` (built from the spec's parameters), optional
  closed forms (:class:`ClosedForms`) and their torch math.

``torch`` is a function ``(torch_module, params) -> (f, f')`` of tensors: the table stays free of
torch, which only ``cuda_kernels`` imports and passes in.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from .spec import parse_spec

SQRT_2PI = math.sqrt(2.0 * math.pi)


def _special():
    """scipy.special, imported on first use: 0.2 s of start-up that the SELU family's commands
    (``meanfield solve selu``) do without."""
    from scipy import special

    return special


#: Klambauer et al. 2017, eq. (14): the SELU constants to double precision.
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
#: PyTorch's and TensorFlow's default negative slope of leaky ReLU.
LEAKY_SLOPE = 0.01

#: keys that apply together with ``epsilon`` for the families whose parameters are solved
SOLVE_KEYS = ("epsilon", "lambda_min", "central", "q_star", "sigma_w2")


@dataclasses.dataclass(frozen=True)
class ClosedForms:
    """Closed-form Gaussian functionals of an elementwise activation, x ~ N(0, q) unless noted.

    ``second_moment`` Q(q), ``second_moment_derivative`` dQ/dq, ``jacobian`` φ(q) = E f'², and
    ``jacobian_derivative`` dφ/dq; ``mean_map(m, s2)`` = E f(x), ``derivative_mean_map(m, s2)`` =
    E f'(x), x ~ N(m, s2); ``pair(k, q)`` = E f(u₁) f(u₂) and ``derivative_pair(k, q)`` =
    E f'(u₁) f'(u₂), (u₁, u₂) ~ N(0, [[q, k], [k, q]]) (the correlation map, χ_c);
    ``jacobian_fourth(q)`` = E f'⁴ (the singular-value spectrum's second moment).  ``layer`` names the
    compiled (Q, φ) of ``meanfield.gauss.smooth_closed`` that ``second_moment`` and ``jacobian`` are,
    on which the recursion runs its compiled layer loop (None: the recursion calls the two).
    """

    second_moment: Callable
    second_moment_derivative: Callable
    jacobian: Callable
    jacobian_derivative: Callable
    mean_map: Callable | None = None
    derivative_mean_map: Callable | None = None
    pair: Callable | None = None
    derivative_pair: Callable | None = None
    jacobian_fourth: Callable | None = None
    layer: str | None = None


def _compiled_layer(name):
    """``second_moment`` and ``jacobian`` from the compiled closed forms of ``name``
    (``meanfield.gauss.smooth_closed``), the recursion's own: one definition of each."""
    def values(q):
        from ..gauss import smooth_closed

        return smooth_closed.second_moment_and_jacobian(name, q)

    return dict(second_moment=lambda q: values(q)[0], jacobian=lambda q: values(q)[1], layer=name)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One named activation (see the module docstring)."""

    name: str
    description: str
    label: str
    keys: tuple = ()                       # explicit parameter keys of the spec string
    defaults: dict = dataclasses.field(default_factory=dict)  # keys that may be left out
    positive: tuple = ()                   # keys that must be > 0
    nonnegative: tuple = ()                # keys that must be >= 0
    fields: dict | None = None             # exponential-linear: parameter name -> ExpLinear field
    fixed: dict = dataclasses.field(default_factory=dict)     # exponential-linear: fields set by the entry
    solve_keys: tuple = ()                 # keys that apply with epsilon (parameters by meanfield.activations.solvers)
    functions: Callable | None = None      # elementwise: params -> (f, df), numpy
    closed: Callable | None = None         # elementwise: params -> ClosedForms
    torch: Callable | None = None          # elementwise: (torch, params) -> (f, df) on tensors
    kinks: tuple = ()
    strip: Callable | None = None          # elementwise: params -> half-width of f's strip of analyticity
    parity: str | None = None              # elementwise: "odd" or "even" where f is (quadrature folds)
    pair: Callable | None = None           # elementwise: params -> x -> (f, f') from one evaluation, for
    #                                        quadrature (f' to rounding of 1 in absolute terms)
    color: str | None = None

    @property
    def exp_linear(self) -> bool:
        return self.fields is not None

    @property
    def solved(self) -> bool:
        return bool(self.solve_keys)

    @property
    def spec_keys(self) -> tuple:
        return self.keys + self.solve_keys


# ---------------------------------------------------------------------------
# Smooth activations: f, f' and closed forms.
# ---------------------------------------------------------------------------


def _tanh_pair(x):
    """tanh and 1 − tanh², one tanh: the derivative to an absolute error of 2⁻⁵³ (its tail, where
    1 − tanh² cancels, weighs that little in an expectation; ``_sech2`` keeps it relative)."""
    t = np.tanh(x)
    return t, 1.0 - t * t


def _sech2(x):
    """sech²(x) = 4e^{−2|x|}/(1 + e^{−2|x|})², free of cosh overflow."""
    e = np.exp(-2.0 * np.abs(x))
    return 4.0 * e / np.square(1.0 + e)


def _gelu(x):
    return x * _special().ndtr(x)


def _gelu_deriv(x):
    return _special().ndtr(x) + x * np.exp(-0.5 * x * x) / SQRT_2PI


def _erf_closed(_params) -> ClosedForms:
    """erf: with 1 + 4q = det(I + 2Σ) of the pair's covariance at k = q (Williams 1997, the arcsine kernel).

    Q = (2/π) arctan(2q/√(1 + 4q)) (= (2/π) arcsin(2q/(1 + 2q)), in the form stable as q -> inf),
    dQ/dq = (4/π)/((1 + 2q)√(1 + 4q)), φ = (4/π)/√(1 + 4q), dφ/dq = −(8/π)(1 + 4q)^{−3/2};
    E erf(m + s z) = erf(m/√(1 + 2s²)), E erf'(m + s z) = (2/√π) e^{−m²/(1+2s²)}/√(1 + 2s²);
    E erf(u₁)erf(u₂) = (2/π) arctan(2k/√((1 + 2q)² − 4k²)), E erf'erf' = (4/π)/√((1 + 2q)² − 4k²);
    E erf'⁴ = (16/π²) E e^{−4x²} = (16/π²)/√(1 + 8q).
    """
    def disc(k, q):
        return np.sqrt(np.maximum(np.square(1.0 + 2.0 * q) - 4.0 * np.square(k), 0.0))

    return ClosedForms(
        **_compiled_layer("erf"),
        second_moment_derivative=lambda q: (4.0 / math.pi) / ((1.0 + 2.0 * q) * np.sqrt(1.0 + 4.0 * q)),
        jacobian_derivative=lambda q: -(8.0 / math.pi) * (1.0 + 4.0 * q) ** -1.5,
        mean_map=lambda m, s2: _special().erf(m / np.sqrt(1.0 + 2.0 * s2)),
        derivative_mean_map=lambda m, s2: (2.0 / math.sqrt(math.pi)) * np.exp(-np.square(m) / (1.0 + 2.0 * s2))
        / np.sqrt(1.0 + 2.0 * s2),
        pair=lambda k, q: (2.0 / math.pi) * np.arctan2(2.0 * k, disc(k, q)),
        derivative_pair=lambda k, q: (4.0 / math.pi) / disc(k, q),
        jacobian_fourth=lambda q: (16.0 / math.pi**2) / np.sqrt(1.0 + 8.0 * q),
    )


def _gelu_closed(_params) -> ClosedForms:
    """Exact GELU, f = xΦ(x) (Tsuchida et al. 2021, arXiv:2002.08517 for the pair; φ and the
    derivatives by the same Gaussian integrals, checked against mpmath).  With a = arctan(q/√(1 + 2q))
    (= arcsin(q/(1 + q)), stable as q -> inf):

    Q = q [1/4 + (q/((1 + q)√(1 + 2q)) + a/2)/π],
    dQ/dq = 1/4 + a/(2π) + q(4q² + 11q + 5)/(2π(1 + q)²(1 + 2q)^{3/2}),
    φ = 1/4 + a/(2π) + q/(π(1 + q)√(1 + 2q)) + q/(2π(1 + 2q)^{3/2}),
    dφ/dq = (4 + 12q + 9q² − q³)/(2π(1 + q)²(1 + 2q)^{5/2});
    E f(m + s z) = m Φ(μ) + s² n(μ)/√(1 + s²) and E f'(m + s z) = Φ(μ) + m n(μ)/(1 + s²)^{3/2},
    μ = m/√(1 + s²); the pair with Δ² = (1 + q)² − k², b = arctan(k/Δ):
    E f f = k/4 + [(k² + q²Δ²)/((1 + q)²Δ) + k b]/(2π),
    E f'f' = 1/4 + b/(2π) + k (1/Δ² + (1 − q²)/(1 + q)² + 1)/(2πΔ).
    """
    def angle(q):
        return np.arctan2(q, np.sqrt(1.0 + 2.0 * q))

    def delta(k, q):
        return np.sqrt(np.maximum(np.square(1.0 + q) - np.square(k), 0.0))

    def pair(k, q):
        d = delta(k, q)
        return 0.25 * k + ((np.square(k) + np.square(q) * np.square(d)) / (np.square(1.0 + q) * d)
                           + k * np.arctan2(k, d)) / (2.0 * math.pi)

    def derivative_pair(k, q):
        d = delta(k, q)
        first = (1.0 / np.square(d) + (1.0 - np.square(q)) / np.square(1.0 + q) + 1.0) * k / (2.0 * math.pi * d)
        return first + 0.25 + np.arctan2(k, d) / (2.0 * math.pi)

    def mean_map(m, s2):
        root = np.sqrt(1.0 + s2)
        mu = m / root
        return m * _special().ndtr(mu) + s2 * np.exp(-0.5 * mu * mu) / (SQRT_2PI * root)

    def derivative_mean_map(m, s2):
        root = np.sqrt(1.0 + s2)
        mu = m / root
        return _special().ndtr(mu) + m * np.exp(-0.5 * mu * mu) / (SQRT_2PI * root**3)

    return ClosedForms(
        **_compiled_layer("gelu"),
        second_moment_derivative=lambda q: 0.25 + angle(q) / (2.0 * math.pi) + q * (4.0 * q * q + 11.0 * q + 5.0)
        / (2.0 * math.pi * np.square(1.0 + q) * (1.0 + 2.0 * q) ** 1.5),
        jacobian_derivative=lambda q: (4.0 + 12.0 * q + 9.0 * q * q - q**3)
        / (2.0 * math.pi * np.square(1.0 + q) * (1.0 + 2.0 * q) ** 2.5),
        mean_map=mean_map,
        derivative_mean_map=derivative_mean_map,
        pair=pair,
        derivative_pair=derivative_pair,
    )


def _swish(params):
    beta = params["beta"]
    return (lambda x: x * _special().expit(beta * x),
            lambda x: _special().expit(beta * x) * (1.0 + beta * x * _special().expit(-beta * x)))


def _torch_gelu(torch, _params):
    root2 = math.sqrt(2.0)
    return (lambda x: 0.5 * x * (1.0 + torch.erf(x / root2)),
            lambda x: 0.5 * (1.0 + torch.erf(x / root2)) + x * torch.exp(-0.5 * x * x) / SQRT_2PI)


def _torch_swish(torch, params):
    beta = params["beta"]

    def df(x):
        s = torch.sigmoid(beta * x)
        return s * (1.0 + beta * x * (1.0 - s))

    return (lambda x: x * torch.sigmoid(beta * x)), df


# ---------------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------------

_ENTRIES = [
    Entry("relu", "max(x, 0)", "ReLU", fields={}, fixed={}),
    Entry("leaky_relu", f"x (x > 0), a·x (x <= 0); a defaults to {LEAKY_SLOPE}", "leaky ReLU", keys=("a",),
          defaults={"a": LEAKY_SLOPE}, fields={"a": "slope"}),
    Entry("elu", "x (x > 0), a(e^x − 1) (x <= 0); a defaults to 1", "ELU", keys=("a",), defaults={"a": 1.0},
          nonnegative=("a",), fields={"a": "alpha"}),
    Entry("celu", "x (x > 0), a(e^{x/a} − 1) (x <= 0), continuously differentiable ELU (Barron 2017); a defaults "
          "to 1", "CELU", keys=("a",), defaults={"a": 1.0}, positive=("a",), fields={"a": ("alpha", "inverse_rate")}),
    Entry("selu", "Klambauer's SELU (eq 3, constants from eq 4)", "SELU", fields={"lambda": "lam", "alpha": "alpha"},
          fixed={"lam": SELU_LAMBDA, "alpha": SELU_ALPHA}, color="#4c72b0"),
    Entry("dselu", "SELU form solved by eq 5", "dSELU", keys=("lambda", "alpha"), positive=("lambda",),
          nonnegative=("alpha",), fields={"lambda": "lam", "alpha": "alpha"}, solve_keys=("epsilon", "q_star", "sigma_w2"),
          color="#dd8452"),
    Entry("sselu", "eq 9, parameters by eq 11 or eq 13", "sSELU", keys=("lambda", "alpha", "beta"),
          positive=("lambda", "beta"), nonnegative=("alpha",), fields={"lambda": "lam", "alpha": "alpha", "beta": "rate"},
          solve_keys=SOLVE_KEYS, color="#55a868"),
    Entry("lselu", "eq 10, parameters by eq 11 or eq 13", "lSELU", keys=("lambda", "alpha", "beta"),
          positive=("lambda",), nonnegative=("alpha",), fields={"lambda": "lam", "alpha": "alpha", "beta": "slope"},
          solve_keys=SOLVE_KEYS, color="#c44e52"),
    # strip: the nearest complex singularity of f and f' from the real axis — tanh's poles at
    # ±iπ/2, softplus's and sigmoid(βx)'s branch points and poles at ±iπ (÷ β).
    Entry("tanh", "tanh(x)", "tanh", functions=lambda p: (np.tanh, _sech2), strip=lambda p: math.pi / 2.0,
          pair=lambda p: _tanh_pair, parity="odd",
          torch=lambda torch, p: (torch.tanh, lambda x: 1.0 - torch.tanh(x) ** 2)),
    Entry("erf", "erf(x); closed forms (the arcsine kernel)", "erf",
          functions=lambda p: (_special().erf, lambda x: 2.0 / math.sqrt(math.pi) * np.exp(-x * x)), closed=_erf_closed,
          torch=lambda torch, p: (torch.erf, lambda x: (2.0 / math.sqrt(math.pi)) * torch.exp(-x * x))),
    Entry("gelu", "x·Φ(x), exact; closed forms", "GELU", functions=lambda p: (_gelu, _gelu_deriv),
          closed=_gelu_closed, torch=_torch_gelu),
    Entry("softplus", "log(1 + e^x)", "softplus", functions=lambda p: (lambda x: np.logaddexp(0.0, x), _special().expit),
          strip=lambda p: math.pi, torch=lambda torch, p: (torch.nn.functional.softplus, torch.sigmoid)),
    Entry("swish", "x·sigmoid(beta·x); beta defaults to 1", "swish", keys=("beta",), defaults={"beta": 1.0},
          positive=("beta",), functions=_swish, strip=lambda p: math.pi / p["beta"], torch=_torch_swish),
]

#: name -> Entry, in the order ``meanfield activations`` lists them
ENTRIES = {e.name: e for e in _ENTRIES}
NAMES = tuple(ENTRIES)


def entry(name: str) -> Entry | None:
    """The table's entry for an activation name, None for a user's own activation."""
    return ENTRIES.get(name)


def exp_linear_fields(name: str, params: dict) -> dict:
    """ExpLinear fields (lam, alpha, rate, slope) from an exponential-linear entry's public parameters.

    A field given as ``(field, "inverse_rate")`` sets that field and b = 1/value (CELU's a).
    """
    e = ENTRIES[name]
    out = dict(e.fixed)
    for key, value in params.items():
        target = e.fields[key]
        if isinstance(target, tuple):
            out[target[0]] = value
            out["rate"] = 1.0 / value
        else:
            out[target] = value
    return out


def public_parameters(act) -> dict:
    """An ExpLinear's parameters under its entry's spec keys (all four fields for an unnamed one)."""
    values = {"lam": act.lam, "alpha": act.alpha, "rate": act.rate, "slope": act.slope}
    e = ENTRIES.get(act.name)
    if e is None or not e.exp_linear:
        return {"lambda": act.lam, "alpha": act.alpha, "rate": act.rate, "slope": act.slope}
    out = {}
    for key, target in e.fields.items():
        out[key] = values[target[0] if isinstance(target, tuple) else target]
    return out


def label(spec) -> str:
    """A figure label for an activation spec string: the entry's label, with ε when given."""
    name, items = parse_spec(str(spec))
    e = ENTRIES.get(name)
    text = e.label if e is not None else name
    return text + (f" (eps={items['epsilon']})" if "epsilon" in items else "")


def color(spec, default="#333333") -> str:
    e = ENTRIES.get(parse_spec(str(spec))[0])
    return e.color if e is not None and e.color else default


def describe() -> str:
    """One line per activation name: its parameters and what it is."""
    lines = []
    for e in _ENTRIES:
        keys = ", ".join(e.spec_keys) or "-"
        lines.append(f"{e.name:<11} {keys:<60} {e.description}")
    return "\n".join(lines)
