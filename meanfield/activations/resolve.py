"""Resolution: a spec string (or a callable, or an Activation) → an :class:`Activation`.

The one function both sides call: the command line, the simulator, the kernels and sweep files
resolve through :func:`activation`; the spec is read by :func:`meanfield.activations.spec.parse_spec`,
its names and keys come from the registry, and a solved family's parameters from
:mod:`meanfield.activations.solvers`.
"""

from __future__ import annotations

import functools
from typing import Callable

from . import objects as A
from . import registry, solvers
from ..arguments import check_number
from .spec import parse_boolean, parse_spec

NAMES = registry.NAMES


def activation(spec, df: Callable | None = None, **kwargs) -> A.Activation:
    """Resolve a spec string (or a callable, or an Activation) to an Activation.

    >>> activation("sselu:epsilon=0.03").params  # doctest: +SKIP
    {'lambda': 1.0, 'alpha': 2.6187..., 'beta': 0.5608...}

    A callable ``spec`` makes a custom activation (``df`` and the keyword
    arguments of :func:`meanfield.activations.custom` apply).  Unknown names
    or keys, missing or contradictory parameters and out-of-range values
    raise ``ValueError`` naming the bad part and the valid choices; an
    infeasible solver request raises :class:`~meanfield.activations.solvers.InfeasibleError`.
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
                         strip=entry.strip(params) if entry.strip else None,
                         pair=entry.pair(params) if entry.pair else None, parity=entry.parity)


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
        kwargs["central"] = parse_boolean(name, "central", items["central"])
    solution = solvers.solve(name, epsilon, **kwargs)
    act = solution.activation()
    return A.ExpLinear(name=name, lam=act.lam, alpha=act.alpha, rate=act.rate, slope=act.slope,
                       solution=solution, source_spec=spec)


def describe() -> str:
    """One line per activation name: its parameters and what it is."""
    return registry.describe()
