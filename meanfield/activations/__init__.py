"""Activations: what an activation is, the table of named ones, spec strings and parameter solvers.

* ``spec``: reads a spec string ``NAME:key=value,...`` into a name and raw values (calls nothing);
* ``registry``: the one table of named activations (keys, defaults, f, f', closed forms, labels);
* ``objects``: :class:`Activation`, :class:`ExpLinear` (the SELU and ReLU families, eqs 3, 9, 10),
  :class:`Elementwise` (any other f) and :func:`custom` (a user's callable);
* ``solvers``: the parameters of SELU (eq 4), dSELU (eq 5), sSELU and lSELU (eqs 11, 13);
* ``resolve``: :func:`activation`, spec → Activation, the one function every caller resolves through.

Imports point down the list: ``resolve`` → ``solvers`` → ``objects`` → ``registry`` → ``spec``.
This package may import :mod:`meanfield.gauss` and the package's foundation modules
(``arguments``, ``results``), never :mod:`meanfield.theory` or anything above it.
"""

from .._lazy import lazy_exports

_EXPORTS = {
    "objects": ("TORCH_MODULE_GROUP", "Activation", "Elementwise", "ExpLinear", "custom", "explicit_spec"),
    "registry": ("SELU_ALPHA", "SELU_LAMBDA"),
    "resolve": ("activation", "describe"),
    "spec": ("parse_spec",),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
