"""Spec strings: ``NAME`` or ``NAME:key=value,...``, read into a name and raw values.

This is the only place a spec string is read.  Reading calls nothing: what each name means, its
keys and their defaults come from the one table (:data:`meanfield.activations.registry.ENTRIES`),
and turning the raw values into an activation, solving for its parameters where the spec gives
``epsilon``, is :func:`meanfield.activations.resolve.activation`.
"""

from __future__ import annotations

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


def parse_boolean(name, key, raw) -> bool:
    """A spec's boolean value (``central=true``): true/false, yes/no or 1/0."""
    try:
        return _BOOL[raw.lower()]
    except KeyError:
        raise ValueError(f"{name}: {key} must be true or false, got {raw!r}") from None
