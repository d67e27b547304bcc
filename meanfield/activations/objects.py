"""Activations: one object per activation, resolved once from a spec string.

A spec string names an activation everywhere (Python, command line, sweep
files): ``NAME`` or ``NAME:key=value,...``, e.g. ``selu``,
``leaky_relu:a=0.1``, ``sselu:lambda=1,alpha=2.46,beta=0.58``,
``sselu:epsilon=0.03`` (parameters solved by (eq 11)),
``lselu:epsilon=0.06,central=true`` (eq 13), ``dselu:epsilon=0.017`` (eq 5).

Two kinds of activation exist:

* :class:`ExpLinear` — the SELU and ReLU families, f(x) = λx for x > 0 and
  λ(α(e^{bx} − 1) + κx) for x <= 0.  Every Gaussian functional has a closed
  form (``closed_forms``).  Parameters may be arrays; they broadcast.
* :class:`Elementwise` — any other f (tanh, erf, gelu, softplus, swish, or a
  user's callable).  Functionals go through quadrature (``quadrature``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from . import registry
#: Entry-point group of the packages that build a torch module from an activation.
TORCH_MODULE_GROUP = "meanfield.torch_modules"  # PyTorch's and TensorFlow's default negative slope


@dataclasses.dataclass(frozen=True, eq=False)
class Activation:
    """Base of all activations: a name, its spec string, f and f'."""

    name: str

    @property
    def spec(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def f(self, x):  # pragma: no cover - overridden
        raise NotImplementedError

    def df(self, x):  # pragma: no cover - overridden
        raise NotImplementedError

    def f_and_df(self, x):
        """(f(x), f'(x)); an activation that computes both from one evaluation overrides it."""
        return self.f(x), self.df(x)

    def __call__(self, x):
        return self.f(x)

    @property
    def breakpoints(self) -> tuple[float, ...]:
        """x-locations where f or f' is not smooth (quadrature splits there)."""
        return ()

    @property
    def feature_scale(self) -> float:
        """x-scale of the activation's structure around 0 (quadrature grading)."""
        return 1.0

    def with_node_axis(self) -> "Activation":
        """This activation for arrays whose last axis is a quadrature node axis: array parameters
        gain a trailing axis so that they broadcast against the batch shape."""
        return self

    @property
    def analytic_strip(self) -> float | None:
        """Half-width of a strip |Im x| < d in which f and f' are analytic, None if not declared
        (then quadrature never uses the trapezoid rule, ``quadrature.trapezoid_orders``)."""
        return None

    def torch_module(self, **kwargs):
        """The matching ``torch.nn.Module``, from the package registered under the
        ``meanfield.torch_modules`` entry point (``cuda_kernels``; needs torch)."""
        from importlib.metadata import entry_points

        providers = list(entry_points(group=TORCH_MODULE_GROUP))
        if not providers:
            raise ValueError(f"no torch module provider is installed for {self.name!r}: "
                             "pip install 'meanfield[sim]' (cuda_kernels registers one)")
        return providers[0].load()(self, **kwargs)

    def __repr__(self):
        if not getattr(self, "scalar", True):
            return f"<{type(self).__name__} {self.name} with array parameters>"
        return f"activation({self.spec!r})"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class ExpLinear(Activation):
    """f(x) = λx (x > 0), λ(α(e^{b x} − 1) + κx) (x <= 0): eqs (3), (9), (10).

    ``lam``, ``alpha``, ``rate`` (b) and ``slope`` (κ) are floats or arrays
    that broadcast with each other and with every functional's arguments.
    ``solution`` holds the solver's report when the parameters came from ε.
    """

    lam: object = 1.0
    alpha: object = 0.0
    rate: object = 1.0
    slope: object = 0.0
    solution: object = None
    source_spec: str | None = None

    def __post_init__(self):
        for field in ("lam", "alpha", "rate", "slope"):
            try:
                value = np.asarray(getattr(self, field), dtype=float)
            except (TypeError, ValueError):
                raise ValueError(f"{self.name}: {field} must be a number or an array of numbers, "
                                 f"got {getattr(self, field)!r}") from None
            bad = ~np.isfinite(value)
            if bad.any():
                where = f"{field}[{', '.join(map(str, np.argwhere(bad)[0]))}]" if value.ndim else field
                raise ValueError(f"{self.name}: {field} must be finite, got {where} = {float(value[bad].ravel()[0])!r}")
            object.__setattr__(self, field, value[()] if value.ndim == 0 else value)

    def f(self, x):
        x = np.asarray(x, dtype=float)
        neg = self.alpha * np.expm1(self.rate * np.minimum(x, 0.0)) + self.slope * x
        return self.lam * np.where(x > 0, x, neg)

    def df(self, x):
        x = np.asarray(x, dtype=float)
        neg = self.alpha * self.rate * np.exp(self.rate * np.minimum(x, 0.0)) + self.slope
        return self.lam * np.where(x > 0, 1.0, neg)

    @property
    def breakpoints(self):
        return (0.0,)

    def with_node_axis(self) -> "ExpLinear":
        if self.scalar:
            return self
        return ExpLinear(name=self.name, **{field: np.asarray(getattr(self, field))[..., None]
                                            for field in ("lam", "alpha", "rate", "slope")})

    @property
    def params(self) -> dict:
        """Parameters under the spec keys of this activation's registry entry (the paper's names)."""
        return registry.public_parameters(self)

    @property
    def spec(self) -> str:
        """An explicit spec string that rebuilds this activation exactly."""
        if self.source_spec is not None:
            return self.source_spec
        return explicit_spec(self)

    @property
    def scalar(self) -> bool:
        return all(np.ndim(v) == 0 for v in (self.lam, self.alpha, self.rate, self.slope))


def explicit_spec(act: ExpLinear) -> str:
    """``NAME:key=value,...`` with every parameter at full precision."""
    if not act.scalar:
        raise ValueError("an activation with array parameters has no single spec string")
    items = [f"{k}={float(v)!r}" for k, v in act.params.items()]
    entry = registry.entry(act.name)
    if entry is not None and not entry.keys:
        return act.name
    return act.name + (":" + ",".join(items) if items else "")


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Elementwise(Activation):
    """An activation given by numpy callables; functionals by quadrature.

    ``df`` defaults to a fifth-order central difference of ``f`` (step
    ε^{1/5}·max(1, |x|), truncation and rounding errors both ~1e-12 relative
    for smooth f); pass it explicitly for full precision.  ``kinks`` lists
    the x-locations where f or f' is not smooth, so that quadrature splits
    there; ``scale`` is the x-scale of f's structure (default 1).
    ``closed`` (a :class:`meanfield.activations.registry.ClosedForms`) holds closed-form
    functionals where they exist (erf, GELU); they replace quadrature.
    ``strip`` is the half-width of a strip about the real axis in which f and
    f' are analytic (tanh: π/2), which lets quadrature use the trapezoid rule
    at moderate q; None (the default) claims nothing.  ``pair`` (x -> (f, f'))
    computes both from one evaluation where that is cheaper (tanh: one tanh),
    f' to an absolute error of rounding, which is what an expectation needs.
    ``parity`` ("odd" or "even", where f is) lets quadrature fold a symmetric
    rule onto its nodes z >= 0 for the even integrands f², f'², f'⁴ at zero mean.
    """

    func: Callable = None
    deriv: Callable | None = None
    kinks: tuple = ()
    scale: float = 1.0
    spec_string: str | None = None
    params: dict = dataclasses.field(default_factory=dict)
    closed: object = None
    strip: float | None = None
    pair: Callable | None = None
    parity: str | None = None

    def f(self, x):
        return np.asarray(self.func(np.asarray(x, dtype=float)), dtype=float)

    def __post_init__(self):
        if self.parity not in (None, "odd", "even"):
            raise ValueError(f"{self.name}: parity must be 'odd', 'even' or None, got {self.parity!r}")

    def f_and_df(self, x):
        """(f(x), f'(x)) for quadrature: from ``pair`` when given, else f and df."""
        if self.pair is not None:
            return self.pair(np.asarray(x, dtype=float))
        return self.f(x), self.df(x)

    def df(self, x):
        x = np.asarray(x, dtype=float)
        if self.deriv is not None:
            return np.asarray(self.deriv(x), dtype=float)
        return _finite_difference(self.f, x, self.kinks)

    @property
    def breakpoints(self):
        return tuple(float(k) for k in self.kinks)

    @property
    def feature_scale(self):
        return float(self.scale)

    @property
    def analytic_strip(self):
        return None if self.strip is None else float(self.strip)

    @property
    def spec(self):
        return self.spec_string or self.name


_FD_STEP = np.finfo(float).eps ** 0.2


def _finite_difference(f, x, kinks=()):
    """f'(x) by a five-point stencil (error O(h⁴) + O(ε/h)) that never crosses a kink.

    Central where the stencil x ± 2h is clear of every kink; otherwise the
    one-sided fourth-order stencil on x's side (the left side at a kink,
    matching f'(0) = f'(0⁻) of the exponential-linear family).
    """
    h = _FD_STEP * np.maximum(1.0, np.abs(x))
    central = (8.0 * (f(x + h) - f(x - h)) - (f(x + 2 * h) - f(x - 2 * h))) / (12.0 * h)
    if not kinks:
        return central
    near = np.zeros(x.shape, dtype=bool)
    side = np.ones(x.shape)
    for k in kinks:
        close = np.abs(x - k) < 2 * h
        near |= close
        side = np.where(close, np.where(x > k, 1.0, -1.0), side)
    if not near.any():
        return central
    d = side * h
    one_sided = (-25.0 * f(x) + 48.0 * f(x + d) - 36.0 * f(x + 2 * d) + 16.0 * f(x + 3 * d) - 3.0 * f(x + 4 * d)) / (12.0 * d)
    return np.where(near, one_sided, central)


def custom(f: Callable, df: Callable | None = None, *, name: str = "custom", kinks=(), scale: float = 1.0,
           strip: float | None = None):
    """An activation from a user's numpy callable ``f`` (and optionally ``df``).

    ``f`` must accept and return float arrays elementwise.  Without ``df`` the
    derivative is a fifth-order central finite difference (about 1e-11
    relative for smooth f).  Declare the x-locations of kinks in ``kinks`` so
    that quadrature splits there.  ``strip``: the half-width of a strip
    |Im x| < strip in which f and f' are analytic (the distance of their
    nearest complex singularity from the real axis), if known; quadrature then
    uses the faster trapezoid rule where it is exact to rounding.
    """
    if not callable(f):
        raise ValueError(f"custom activation: f must be callable, got {type(f).__name__}")
    if df is not None and not callable(df):
        raise ValueError(f"custom activation: df must be callable or None, got {type(df).__name__}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"custom activation: scale must be a positive number, got {scale!r}")
    kinks = _kinks(name, kinks)
    if strip is not None:
        if kinks:
            raise ValueError(f"custom activation {name!r}: an activation with kinks is analytic in no strip; "
                             f"got strip={strip!r} with kinks={kinks!r}")
        if not (isinstance(strip, (int, float, np.floating, np.integer)) and np.isfinite(strip) and strip > 0):
            raise ValueError(f"custom activation {name!r}: strip must be a positive number (the distance of f's "
                             f"nearest complex singularity from the real axis) or None, got {strip!r}")
    # A probe over the Gaussian bulk: f (and df) must act elementwise and return finite values there.
    probe = np.linspace(-8.0, 8.0, 33)
    for label, fn in (("f", f), ("df", df)):
        if fn is None:
            continue
        try:
            out = np.asarray(fn(probe), dtype=float)
        except Exception as exc:  # a user's callable may raise anything
            raise ValueError(f"custom activation {name!r}: {label} failed on a float array: {exc}") from exc
        if out.shape != probe.shape:
            raise ValueError(f"custom activation {name!r}: {label} must act elementwise, got shape {out.shape} "
                             f"for input {probe.shape}")
        bad = ~np.isfinite(out)
        if bad.any():
            raise ValueError(f"custom activation {name!r}: {label} returned {float(out[bad][0])!r} at x = "
                             f"{probe[bad][0]:g}; Gaussian expectations need finite values on the whole line")
    return Elementwise(name=name, func=f, deriv=df, kinks=kinks, scale=scale, strip=None if strip is None else float(strip))


def _kinks(name, kinks):
    """``kinks`` as a tuple of finite floats, or a ValueError naming the bad entry."""
    if isinstance(kinks, (str, bytes)) or not np.iterable(kinks):
        raise ValueError(f"custom activation {name!r}: kinks must be a sequence of numbers (x-locations), "
                         f"got {kinks!r}")
    out = []
    for k in kinks:
        try:
            value = float(k)
        except (TypeError, ValueError):
            raise ValueError(f"custom activation {name!r}: kinks must be numbers, got {k!r}") from None
        if not np.isfinite(value):
            raise ValueError(f"custom activation {name!r}: kinks must be finite, got {k!r}")
        out.append(value)
    return tuple(out)
