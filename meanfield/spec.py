"""Spec strings: ``NAME`` or ``NAME:key=value,...`` → an :class:`Activation`.

This is the only place a spec string is read; the command line, the
simulator, the kernels, sweep files and figure labels all go through
:func:`activation` or :func:`parse_spec`.  What each name means, its keys and
their defaults come from the one table, :data:`meanfield.registry.ENTRIES`.
"""

from __future__ import annotations

import functools
from typing import Callable

from . import activations as A
from . import registry, solvers
from ._validate import check_number

NAMES = registry.NAMES
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


def _parameter(entry, key, raw):
    return check_number(f"{entry.name}: {key}", raw, positive=key in entry.positive,
                        nonnegative=key in entry.nonnegative)


@functools.lru_cache(maxsize=256)
def _from_spec(spec: str) -> A.Activation:
    name, items = parse_spec(spec)
    entry = registry.entry(name)
    if entry is None:
        raise ValueError(f"unknown activation {name!r} in spec {spec!r}; valid names: {', '.join(NAMES)}")
    for key in items:
        if key not in entry.spec_keys:
            choices = ", ".join(entry.spec_keys) if entry.spec_keys else "none"
            raise ValueError(f"{name}: unknown parameter {key!r} in spec {spec!r}; valid parameters: {choices}")
    if entry.solved:
        solved = _solved(entry, spec, items)
        if solved is not None:
            return solved
    missing = [k for k in entry.keys if k not in items and k not in entry.defaults]
    if missing:
        how = (f"{name} needs epsilon=... (parameters solved) or all of {', '.join(entry.keys)}"
               if entry.solved else f"{name} needs {', '.join(missing)}")
        raise ValueError(f"{how}; spec {spec!r} is missing {', '.join(missing)}")
    params = {k: _parameter(entry, k, items[k]) if k in items else float(entry.defaults[k]) for k in entry.keys}
    if entry.exp_linear:
        return A.ExpLinear(name=name, source_spec=spec, **registry.exp_linear_fields(name, params))
    f, df = entry.functions(params)
    return A.Elementwise(name=name, func=f, deriv=df, kinks=entry.kinks, spec_string=spec, params=params,
                         closed=entry.closed(params) if entry.closed else None,
                         strip=entry.strip(params) if entry.strip else None)


def _solved(entry, spec, items):
    """The activation of a solved family from epsilon, or None when its parameters are explicit."""
    name = entry.name
    given = [k for k in entry.keys if k in items]
    options = [k for k in entry.solve_keys if k in items and k != "epsilon"]
    if "epsilon" not in items:
        if options:
            raise ValueError(f"{name}: {', '.join(options)} only apply together with epsilon (spec {spec!r})")
        return None
    if given:
        raise ValueError(
            f"{name}: spec {spec!r} gives both epsilon and {', '.join(given)}; give either epsilon "
            f"(parameters solved) or all of {', '.join(entry.keys)} (parameters explicit), not both"
        )
    epsilon = check_number(f"{name}: epsilon", items["epsilon"], positive=True)
    kwargs = {key: check_number(f"{name}: {key}", items[key], positive=True)
              for key in ("lambda_min", "q_star", "sigma_w2") if key in items}
    if "central" in items:
        kwargs["central"] = _boolean(name, "central", items["central"])
    solution = solvers.solve(name, epsilon, **kwargs)
    act = solution.activation()
    return A.ExpLinear(name=name, lam=act.lam, alpha=act.alpha, rate=act.rate, slope=act.slope,
                       solution=solution, source_spec=spec)


def describe() -> str:
    """One line per activation name: its parameters and what it is."""
    return registry.describe()
