"""Where numba keeps the compiled code of this project: a per-user cache, never the installed package.

numba's default puts a ``cache=True`` function's machine code in ``__pycache__`` next to its
source, i.e. inside ``site-packages`` for an installed package, where ``pip`` leaves it behind on
uninstall (the stale folder then shadows a later editable install).  :func:`register` makes
numba cache the functions of a source folder under :func:`cache_root` instead:
``$MEANFIELD_CACHE_DIR``, else ``$XDG_CACHE_HOME/meanfield/numba``, else
``~/.cache/meanfield/numba``.  ``meanfield`` registers its own folder; packages built on it
register theirs.

numba keys a cached function on its own file only.  Compiled code that inlines another file's
compiled helpers (``mills_series`` inlines ``mills``, whose fitted coefficients numba freezes
into the machine code) would then survive a change to that file: ``register(folder, depends=...)``
adds those files to the stamp, so a change to any of them recompiles.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile

_FOLDERS: dict[str, tuple[str, ...]] = {}  # registered source folder -> files every stamp includes
#: used when the cache root cannot be written (a read-only home, say)
_FALLBACK_ROOT = os.path.join(tempfile.gettempdir(), f"meanfield-numba-{os.getuid()}")


def cache_root() -> str:
    """The folder compiled code goes to (created on first use; a per-user folder in the temporary
    directory when it cannot be written)."""
    explicit = os.environ.get("MEANFIELD_CACHE_DIR")
    if explicit:
        return os.path.abspath(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "meanfield", "numba")


def _digest(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def register(folder: str, depends: tuple[str, ...] = ()) -> None:
    """Cache the ``cache=True`` functions of the ``.py`` files in ``folder`` under :func:`cache_root`;
    ``depends`` are files whose content every stamp of the folder includes.  With numba not yet
    imported, the locator waits for :func:`install` (``meanfield.gauss.jit`` calls it before it compiles):
    registering does not import numba."""
    _FOLDERS[os.path.abspath(folder)] = tuple(os.path.abspath(p) for p in depends)
    if "numba" in sys.modules:
        install()


def install():
    """Put the locator first in numba's list (once; this imports numba).  Without numba's locator
    API (a future numba), nothing is installed and numba's own default applies."""
    try:
        from numba.core import caching
    except ImportError:  # pragma: no cover - numba is a dependency
        return
    impl = getattr(caching, "CacheImpl", None)
    if impl is None or not hasattr(impl, "_locator_classes") or not hasattr(caching, "_CacheLocator"):
        return  # pragma: no cover - numba's API changed; its default locator applies
    global _Locator
    if _Locator is None:
        _Locator = _make_locator(caching)
    if _Locator not in impl._locator_classes:
        impl._locator_classes.insert(0, _Locator)


_Locator = None


def _make_locator(caching):
    class ProjectCacheLocator(caching._CacheLocator):
        """numba cache locator for the registered folders (see the module docstring)."""

        def __init__(self, py_func, py_file, depends):
            self._py_file = py_file
            self._depends = depends
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = os.path.join(cache_root(), self.get_suitable_cache_subpath(py_file))

        def get_cache_path(self):
            return self._cache_path

        def get_source_stamp(self):
            return tuple(_digest(p) for p in (self._py_file, *self._depends))

        def get_disambiguator(self):
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func, py_file):
            folder = os.path.dirname(os.path.abspath(py_file))
            if folder not in _FOLDERS or not os.path.exists(py_file):
                return None
            self = cls(py_func, py_file, _FOLDERS[folder])
            for root in (None, _FALLBACK_ROOT):
                if root is not None:
                    self._cache_path = os.path.join(root, self.get_suitable_cache_subpath(py_file))
                try:
                    self.ensure_cache_path()
                    return self
                except OSError:
                    continue
            return None  # nothing writable: numba's own locators decide

    return ProjectCacheLocator


#: the files whose compiled helpers other files inline (the Mills ratio, its coefficients, the
#: vectorising log, exp and arctan): every stamp of a folder that compiles
#: against the Gaussian engine includes them (``meanfield.theory`` registers itself with these)
ENGINE_FILES = tuple(os.path.join(os.path.dirname(__file__), name) for name in ("mills.py", "mills_coefficients.py", "elementary.py"))

register(os.path.dirname(__file__), depends=ENGINE_FILES)
