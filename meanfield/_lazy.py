"""Names a package exports, imported on first use (PEP 562).

``import meanfield`` and the command line start fast because a package's public names are found
by module path and imported only when first read; ``dir()`` lists them all the same.
"""

from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]], namespace: dict):
    """``(__getattr__, __dir__, __all__)`` for ``package`` whose public names live in submodules.

    ``exports`` maps a submodule path relative to ``package`` (``"theory.functionals"``) to the
    names it defines; ``namespace`` is the package's ``globals()``, where a name is cached once read.
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name):
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__, sorted(where)
