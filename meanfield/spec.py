"""Spec strings: ``NAME`` or ``NAME:key=value,...`` → an :class:`Activation`.

This is the only place a spec string is read; the command line, the
simulator, the kernels and sweep files all go through :func:`activation`.
"""

from __future__ import annotations

import functools
from typing import Callable

from . import activations as A
from . import solvers
from ._validate import check_number

_SOLVE_KEYS = ("epsilon", "lambda_min", "central", "q_star", "sigma_w2")

#: name -> (explicit parameter keys, solver keys, description)
_REGISTRY = {
    "relu": ((), (), "max(x, 0)"),
    "leaky_relu": (("a",), (), f"x (x > 0), a·x (x <= 0); a defaults to {A._DEFAULT_LEAKY_SLOPE}"),
    "elu": (("a",), (), "x (x > 0), a(e^x − 1) (x <= 0); a defaults to 1"),
    "selu": ((), (), "Klambauer's SELU (eq 3, constants from eq 4)"),
    "dselu": (("lambda", "alpha"), ("epsilon", "q_star", "sigma_w2"), "SELU form solved by eq 5"),
    "sselu": (("lambda", "alpha", "beta"), _SOLVE_KEYS, "eq 9, parameters by eq 11 or eq 13"),
    "lselu": (("lambda", "alpha", "beta"), _SOLVE_KEYS, "eq 10, parameters by eq 11 or eq 13"),
    "tanh": ((), (), "tanh(x)"),
    "erf": ((), (), "erf(x)"),
    "gelu": ((), (), "x·Φ(x)"),
    "softplus": ((), (), "log(1 + e^x)"),
    "swish": (("beta",), (), "x·sigmoid(beta·x); beta defaults to 1"),
}

NAMES = tuple(_REGISTRY)
_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split a spec string into its name and raw ``key -> value`` strings."""
    if not isinstance(spec, str):
        raise ValueError(f"an activation spec must be a string, got {type(spec).__name__}")
    text = spec.strip()
    name, sep, rest = text.partition(":")
    name = name.strip().lower()
    if not name:
        raise ValueError(f"empty activation name in spec {spec!r}; expected NAME or NAME:key=value,...")
    items: dict[str, str] = {}
    if sep:
        if not rest.strip():
            raise ValueError(f"malformed activation spec {spec!r}: nothing after ':'; expected NAME:key=value,...")
        for part in rest.split(","):
            key, eq, value = part.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not eq or not key or not value:
                raise ValueError(
                    f"malformed activation spec {spec!r}: {part.strip()!r} is not key=value; "
                    "expected NAME:key=value,..."
                )
            if key in items:
                raise ValueError(f"activation spec {spec!r} gives {key!r} twice")
            items[key] = value
    return name, items


def _number(name, key, raw, *, positive=False, nonnegative=False):
    return check_number(f"{name}: {key}", raw, positive=positive, nonnegative=nonnegative)


def _boolean(name, key, raw):
    try:
        return _BOOL[raw.lower()]
    except KeyError:
        raise ValueError(f"{name}: {key} must be true or false, got {raw!r}") from None


def activation(spec, df: Callable | None = None, **kwargs) -> A.Activation:
    """Resolve a spec string (or a callable, or an Activation) to an Activation.

    >>> activation("sselu:epsilon=0.03").params  # doctest: +SKIP
    {'lambda': 1.0, 'alpha': 2.6187..., 'beta': 0.5608...}

    A callable ``spec`` makes a custom activation (``df`` and the keyword
    arguments of :func:`meanfield.activations.custom` apply).  Unknown names
    or keys, missing or contradictory parameters and out-of-range values
    raise ``ValueError`` naming the bad part and the valid choices; an
    infeasible solver request raises :class:`~meanfield.solvers.InfeasibleError`.
    """
    if isinstance(spec, A.Activation):
        return spec
    if callable(spec):
        return A.custom(spec, df, **kwargs)
    if df is not None or kwargs:
        raise ValueError("df and keyword options apply only to a callable activation, not to a spec string")
    if not isinstance(spec, str):
        raise ValueError(
            f"an activation is a spec string, a callable or an Activation, got {type(spec).__name__}"
        )
    return _from_spec(spec.strip())


@functools.lru_cache(maxsize=256)
def _from_spec(spec: str) -> A.Activation:
    name, items = parse_spec(spec)
    if name not in _REGISTRY:
        raise ValueError(f"unknown activation {name!r} in spec {spec!r}; valid names: {', '.join(NAMES)}")
    explicit, solve_keys, _ = _REGISTRY[name]
    valid = explicit + solve_keys
    for key in items:
        if key not in valid:
            choices = ", ".join(valid) if valid else "none"
            raise ValueError(f"{name}: unknown parameter {key!r} in spec {spec!r}; valid parameters: {choices}")
    if name in A._SMOOTH:
        f, df = A._SMOOTH[name]
        return A.Elementwise(name=name, func=f, deriv=df, spec_string=spec)
    if name == "swish":
        beta = _number(name, "beta", items.get("beta", "1"), positive=True)
        f, df = A._swish(beta)
        return A.Elementwise(name=name, func=f, deriv=df, spec_string=spec, params={"beta": beta})
    if name == "relu":
        return A.ExpLinear(name=name, source_spec=spec)
    if name == "leaky_relu":
        a = _number(name, "a", items.get("a", repr(A._DEFAULT_LEAKY_SLOPE)))
        return A.ExpLinear(name=name, slope=a, source_spec=spec)
    if name == "elu":
        a = _number(name, "a", items.get("a", "1"), nonnegative=True)
        return A.ExpLinear(name=name, alpha=a, source_spec=spec)
    if name == "selu":
        return A.ExpLinear(name=name, lam=A.SELU_LAMBDA, alpha=A.SELU_ALPHA, source_spec=spec)
    return _solved_family(name, spec, items, explicit)


def _solved_family(name, spec, items, explicit):
    given = [k for k in explicit if k in items]
    options = [k for k in _SOLVE_KEYS if k in items and k != "epsilon"]
    if "epsilon" in items:
        if given:
            raise ValueError(
                f"{name}: spec {spec!r} gives both epsilon and {', '.join(given)}; give either epsilon "
                f"(parameters solved) or all of {', '.join(explicit)} (parameters explicit), not both"
            )
        epsilon = _number(name, "epsilon", items["epsilon"], positive=True)
        kwargs = {}
        if "lambda_min" in items:
            kwargs["lambda_min"] = _number(name, "lambda_min", items["lambda_min"], positive=True)
        if "central" in items:
            kwargs["central"] = _boolean(name, "central", items["central"])
        if "q_star" in items:
            kwargs["q_star"] = _number(name, "q_star", items["q_star"], positive=True)
        if "sigma_w2" in items:
            kwargs["sigma_w2"] = _number(name, "sigma_w2", items["sigma_w2"], positive=True)
        solution = solvers.solve(name, epsilon, **kwargs)
        act = solution.activation()
        return A.ExpLinear(
            name=name, lam=act.lam, alpha=act.alpha, rate=act.rate, slope=act.slope,
            solution=solution, source_spec=spec,
        )
    if options:
        raise ValueError(f"{name}: {', '.join(options)} only apply together with epsilon (spec {spec!r})")
    missing = [k for k in explicit if k not in items]
    if missing:
        raise ValueError(
            f"{name} needs epsilon=... (parameters solved) or all of {', '.join(explicit)}; "
            f"spec {spec!r} is missing {', '.join(missing)}"
        )
    lam = _number(name, "lambda", items["lambda"], positive=True)
    alpha = _number(name, "alpha", items["alpha"], nonnegative=True)
    if name == "dselu":
        return A.ExpLinear(name=name, lam=lam, alpha=alpha, source_spec=spec)
    if name == "sselu":
        beta = _number(name, "beta", items["beta"], positive=True)
        return A.ExpLinear(name=name, lam=lam, alpha=alpha, rate=beta, source_spec=spec)
    beta = _number(name, "beta", items["beta"])
    return A.ExpLinear(name=name, lam=lam, alpha=alpha, slope=beta, source_spec=spec)


def describe() -> str:
    """One line per activation name: its parameters and what it is."""
    lines = []
    for name, (explicit, solve_keys, text) in _REGISTRY.items():
        keys = ", ".join(explicit + solve_keys) or "-"
        lines.append(f"{name:<11} {keys:<60} {text}")
    return "\n".join(lines)
