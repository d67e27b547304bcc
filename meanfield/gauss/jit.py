"""Compiled kernels that numba builds on first use, and the same source run in Python.

``@kernel(**options)`` keeps a function and hands it to ``numba.njit(**options)`` the first time it
is called.  numba itself is imported then, not with the package: importing it takes 0.4 s and
loading the first cached function 0.3 s more (numba starts its compiler target), which would be
most of the time of a command that evaluates a closed form at a few points (``meanfield solve``).

Inside another kernel, a kernel is numba's dispatcher (inlined where its options say so): when a
kernel is compiled, the kernels among the globals it names are replaced by their dispatchers in
the copy numba compiles.  :meth:`Kernel.interpreted` runs the source in Python the same way, the
kernels it names interpreted too, on numpy float64 scalars (so that x/0 is ±inf, as under numba's
``error_model="numpy"``) and with :data:`_MATH` for ``math``.  Kernels compiled with IEEE
arithmetic (no ``fastmath``: no fused multiply-adds, no reordering) then give the same bits either
way, which tests/test_jit.py checks; a caller may take the interpreted path for a handful of
points without its result depending on that choice.  Where a fused multiply-add pays (Horner's
steps), a kernel asks for it by name, :data:`fma`: LLVM's ``llvm.fma`` compiled (one instruction
with FMA hardware), the exactly rounded value interpreted.

Two helpers serve kernels over many configurations: :func:`run_in_column_chunks` runs a ``nogil``
kernel over chunks of columns on a shared pool of threads (the same bits as one call), and
:func:`empty_large` places a large result array on transparent huge pages, where the system's
zeroing of fresh memory costs less.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import types
import weakref

import numpy as np

from . import compile_cache


#: Points a kernel runs interpreted (:meth:`Kernel.run`) before it is compiled: 64 points of the
#: closed-form loop take 2-11 ms interpreted (0.03-0.17 ms a point, by outputs; AMD EPYC), about
#: what loading one cached function costs once numba is up (3 ms) and far less than numba's start
#: (0.7 s).
INTERPRETED_POINTS = 64

#: Points all kernels together run interpreted while numba has not started in this process: at
#: 0.03-0.17 ms a point at most 0.35 s, half of numba's start, which a command that needs no
#: more (a recursion of a few configurations, ``meanfield simulate``'s theory) then never pays.
COLD_POINTS = 2048

#: interpreted points spent from COLD_POINTS, and whether any kernel has created its dispatcher
#: (numba imported: from then on each kernel has its own INTERPRETED_POINTS)
_cold = {"points": 0, "numba_started": False}


def _exp(x):
    """math.exp, +inf past its overflow (numba's compiled exp returns inf; Python's raises)."""
    try:
        return np.float64(math.exp(x))
    except OverflowError:
        return np.float64(math.inf)


def _log(x):
    """math.log with numba's values where Python's raises: −inf at 0, NaN below."""
    if x > 0.0:
        return np.float64(math.log(x))
    return np.float64(-math.inf if x == 0.0 else math.nan)


#: ``math`` as interpreted kernels see it: what numba's compiled code returns (float64, inf and NaN
#: in place of Python's exceptions), bit for bit: sqrt is correctly rounded everywhere; exp and log
#: are the C library's, which numba's compiled code calls too.  A kernel that needs another
#: function of ``math`` interpreted gets an AttributeError naming it.
_MATH = types.SimpleNamespace(sqrt=lambda x: np.sqrt(np.float64(x)), exp=_exp, log=_log,
                              inf=math.inf, nan=math.nan, pi=math.pi)


def _names(code):
    """The global names a code object and the code nested in it refer to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _rebound(func, replace, **extra):
    """A copy of ``func`` whose globals have each :class:`Kernel` it names replaced by
    ``replace(kernel)``, and ``extra`` set."""
    namespace = dict(func.__globals__)
    for name in _names(func.__code__):
        if isinstance(namespace.get(name), Kernel):
            namespace[name] = replace(namespace[name])
    namespace.update(extra)
    copy = types.FunctionType(func.__code__, namespace, func.__name__, func.__defaults__, func.__closure__)
    copy.__qualname__, copy.__doc__, copy.__module__ = func.__qualname__, func.__doc__, func.__module__
    return copy


def _by_name(module, qualname):
    """The object a module holds under a dotted qualified name (unpickling a :class:`Kernel`)."""
    import importlib

    value = importlib.import_module(module)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


#: held while a dispatcher is created (one per kernel, whichever thread asks first)
_CREATING = threading.RLock()


class Kernel:
    """A function compiled by numba on its first call (see the module docstring)."""

    def __init__(self, py_func, options):
        self.py_func = py_func
        self.options = dict(options)
        self._compiled = None
        self._python = None
        self._interpreted_points = 0
        functools.update_wrapper(self, py_func)

    def __call__(self, *args):
        return self.compiled(*args)

    def __reduce__(self):
        """Pickled by reference, as a function is: its module and qualified name."""
        return _by_name, (self.__module__, self.__qualname__)

    @property
    def compiled(self):
        """numba's dispatcher (created, not yet compiled, on first access)."""
        if self._compiled is None:
            with _CREATING:
                if self._compiled is None:
                    self._compiled = self._dispatcher()
        return self._compiled

    def _dispatcher(self):
        import numba

        _cold["numba_started"] = True
        compile_cache.install()
        return numba.njit(**self.options)(_rebound(self.py_func, lambda k: k.compiled))

    @property
    def warm(self) -> bool:
        """Whether compiled code is loaded, so that a call costs no start-up."""
        return self._compiled is not None and bool(self._compiled.overloads)

    def _interpretable(self):
        if self._python is None:
            self._python = _rebound(self.py_func, lambda k: k._interpretable(), math=_MATH)
        return self._python

    def interpreted(self, *args):
        """The kernel's source run in Python; arrays as for the compiled call (see the module docstring)."""
        with np.errstate(all="ignore"):
            return self._interpretable()(*args)

    def run(self, points, *args):
        """The kernel on ``points`` points: interpreted while numba has not started and all kernels
        together have interpreted at most :data:`COLD_POINTS`, or while this kernel is not yet
        compiled and its points interpreted so far, these included, number at most
        :data:`INTERPRETED_POINTS`; compiled after.  Either gives the same bits (for an IEEE
        kernel), so only the time depends on it."""
        if not self.warm:
            if not _cold["numba_started"] and _cold["points"] + points <= COLD_POINTS:
                _cold["points"] += points
                return self.interpreted(*args)
            if self._interpreted_points + points <= INTERPRETED_POINTS:
                self._interpreted_points += points
                return self.interpreted(*args)
        return self.compiled(*args)


def kernel(**options):
    """Decorator: a :class:`Kernel` compiled with ``numba.njit(**options)`` on first call."""
    return lambda func: Kernel(func, options)


class _Primitive(Kernel):
    """A kernel whose compiled form is built by ``build()`` (a numba intrinsic, say) and whose
    interpreted form is ``py_func`` itself."""

    def __init__(self, py_func, build, name):
        super().__init__(py_func, {})
        self._build = build
        self.__name__ = self.__qualname__ = name  # the module's name for it (pickling goes by it)

    def _dispatcher(self):
        from numba.core import config

        return self.py_func if config.DISABLE_JIT else self._build()  # NUMBA_DISABLE_JIT=1: all in Python

    def _interpretable(self):
        return self.py_func


def _fused_multiply_add(a, b, c):
    """a·b + c rounded once, as IEEE 754's fusedMultiplyAdd: the exact value as a ratio of integers
    (each float's ``as_integer_ratio``, whose denominators are powers of two), rounded to nearest
    by the integer division, which CPython rounds correctly."""
    a, b, c = float(a), float(b), float(c)
    if not (math.isfinite(a) and math.isfinite(b)):
        return np.float64(a) * np.float64(b) + np.float64(c)  # an inf or NaN product is exact
    if not math.isfinite(c):
        return np.float64(c)
    (na, da), (nb, db), (nc, dc) = a.as_integer_ratio(), b.as_integer_ratio(), c.as_integer_ratio()
    numerator = na * nb * dc + nc * da * db
    if numerator == 0:  # IEEE's sign of an exact zero: −0 only for (±0)(∓x) + (−0); +0 after cancellation
        return np.float64(a) * np.float64(b) + np.float64(c) if a == 0 or b == 0 else np.float64(0.0)
    try:
        return np.float64(numerator / (da * db * dc))
    except OverflowError:
        return np.float64(math.inf if numerator > 0 else -math.inf)


def _llvm_fma():
    """``fma(a, b, c)`` for compiled kernels: LLVM's llvm.fma.f64 on float64 arguments."""
    from llvmlite import ir
    from numba.core import types as nbtypes
    from numba.core.extending import intrinsic

    @intrinsic
    def llvm_fma(typingctx, a, b, c):
        def codegen(context, builder, signature, args):
            values = [context.cast(builder, v, t, nbtypes.float64) for v, t in zip(args, signature.args)]
            double = ir.DoubleType()
            fn = builder.module.declare_intrinsic("llvm.fma", [double], ir.FunctionType(double, [double] * 3))
            return builder.call(fn, values)

        return nbtypes.float64(a, b, c), codegen

    return llvm_fma


#: a·b + c with one rounding, in compiled and interpreted kernels alike.
fma = _Primitive(_fused_multiply_add, _llvm_fma, "fma")


def _float_bits(x):
    """The IEEE 754 bit pattern of a float64, as a signed 64-bit integer."""
    return int(np.float64(x).view(np.int64))


def _bits_float(bits):
    """The float64 whose IEEE 754 bit pattern is ``bits`` modulo 2⁶⁴ (as the compiled shifts wrap)."""
    return np.uint64(int(bits) & 0xFFFFFFFFFFFFFFFF).view(np.float64)


def _llvm_bitcast(source, target):
    """A numba intrinsic that reinterprets a ``source`` scalar's bits as ``target`` (LLVM's bitcast:
    no instruction, so a loop around it still vectorises)."""
    from llvmlite import ir
    from numba.core import types as nbtypes
    from numba.core.extending import intrinsic

    to_type = {"int64": (nbtypes.int64, ir.IntType(64)), "float64": (nbtypes.float64, ir.DoubleType())}
    source_type, (target_type, target_ir) = to_type[source][0], to_type[target]

    @intrinsic
    def bitcast(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.bitcast(context.cast(builder, args[0], signature.args[0], source_type), target_ir)

        return target_type(x), codegen

    return bitcast


#: a float64's bits as an int64, and back, in compiled and interpreted kernels alike
float_bits = _Primitive(_float_bits, lambda: _llvm_bitcast("float64", "int64"), "float_bits")
bits_float = _Primitive(_bits_float, lambda: _llvm_bitcast("int64", "float64"), "bits_float")


#: work (points) below which :func:`run_in_column_chunks` stays on the calling thread: a thread
#: hand-off costs some 50 µs, the work of 2¹⁷ points of a recursion's kernels some 2 ms
PARALLEL_POINTS = 1 << 17
#: configurations (columns) per chunk at least, so that each row loop runs many vector iterations
MIN_CHUNK_COLUMNS = 64

#: the shared pools (:func:`shared_pool`), created on first use, by (process, threads, name)
_POOL = {}


def kernel_threads() -> int:
    """The threads :func:`run_in_column_chunks` uses: the CPUs this process may run on, capped by
    numba's ``NUMBA_NUM_THREADS`` where it is set (numba's own setting for its threads)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    setting = os.environ.get("NUMBA_NUM_THREADS", "")
    return max(1, min(cpus, int(setting))) if setting.isdigit() and int(setting) > 0 else max(1, cpus)


def column_chunks(columns, points, threads=None):
    """[(start, stop)] splitting ``columns`` configurations into one chunk per thread, or one chunk
    where ``points`` is below :data:`PARALLEL_POINTS` or the chunks would be narrower than
    :data:`MIN_CHUNK_COLUMNS`."""
    threads = kernel_threads() if threads is None else threads
    count = 1 if points < PARALLEL_POINTS else max(1, min(threads, columns // MIN_CHUNK_COLUMNS))
    edges = [columns * i // count for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


def run_in_column_chunks(task, columns, points, threads=None):
    """``task(start, stop)`` for each of :func:`column_chunks`, on a shared pool of
    :func:`kernel_threads` threads (the calling thread waits), so that ``nogil`` kernels over
    disjoint columns run side by side; the results are the same bits as one call over all columns.
    Callers that run in many threads at once (a dask sweep) share the one pool, so that at most
    that many chunks run at a time."""
    cpus = kernel_threads()
    chunks = column_chunks(columns, points, cpus if threads is None else threads)
    if len(chunks) == 1:
        task(*chunks[0])
        return
    pool = shared_pool(cpus, "meanfield-kernel")
    for future in [pool.submit(task, start, stop) for start, stop in chunks]:
        future.result()


def shared_pool(threads: int, name: str):
    """A ``ThreadPoolExecutor`` of ``threads`` threads named ``name``, created once per process and
    shared: a forked child inherits a pool but not its threads, and would wait on them for ever, so
    each process makes its own."""
    from concurrent.futures import ThreadPoolExecutor

    key = (os.getpid(), threads, name)
    with _CREATING:
        pool = _POOL.get(key)
        if pool is None:
            pool = _POOL[key] = ThreadPoolExecutor(threads, thread_name_prefix=name)
    return pool


#: arrays from this size on are placed on transparent huge pages by :func:`empty_large`
LARGE_ARRAY_BYTES = 4 << 20
#: a transparent huge page on x86-64 and arm64 Linux
_HUGE_PAGE = 2 << 20
#: the most bytes of freed large mappings kept for reuse (a 1,000 × 1,000 recursion's ten arrays,
#: its results and their scratch, take 80 MB); what is freed beyond it goes back to the system
POOL_BYTES = 128 << 20
#: freed mappings by size (under _POOL_LOCK: a finalizer can run in any thread)
_LARGE_POOL: dict = {}
_POOL_LOCK = threading.RLock()


def empty_large(shape) -> np.ndarray:
    """``np.empty(shape)`` (float64, C order), on transparent huge pages where it is large and the
    system has them (Linux with THP set to ``always`` or ``madvise``): a mapping aligned to 2 MiB
    and advised ``MADV_HUGEPAGE``, so that the system zeroes it 2 MiB per page fault instead of
    4 KiB.  A recursion's result arrays are fresh memory each call (the C library returns freed
    heap to the system), and their page faults on small pages took longer than the closed forms
    that fill them (docs/performance.md).  When the last array that views a mapping is freed, the
    mapping is kept for the next call of the same size (at most :data:`POOL_BYTES` in all), whose
    pages are then already in place: a sweep of recursions faults its memory in once."""
    import mmap

    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * 8
    if nbytes < LARGE_ARRAY_BYTES or not hasattr(mmap, "MADV_HUGEPAGE"):
        return np.empty(shape)
    size = nbytes + _HUGE_PAGE
    with _POOL_LOCK:
        free = _LARGE_POOL.get(size)
        region = free.pop() if free else None
    if region is None:
        try:
            region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            region.madvise(mmap.MADV_HUGEPAGE)
        except (OSError, ValueError):
            return np.empty(shape)
    # Every view of ``raw`` (slices, reshapes, xarray's) keeps ``raw`` as its base: numpy stops
    # collapsing a view's base at the last array before a non-array (the mapping), so ``raw`` is
    # freed only with the last view, and only then does the mapping go back to the pool.
    raw = np.frombuffer(region, dtype=np.uint8)
    weakref.finalize(raw, _keep_for_reuse, region, size).atexit = False
    offset = (-raw.ctypes.data) % _HUGE_PAGE
    return raw[offset:offset + nbytes].view(np.float64).reshape(shape)


def _keep_for_reuse(region, size):
    """A freed mapping into the pool, or back to the system (dropped) beyond POOL_BYTES."""
    with _POOL_LOCK:
        held = sum(n * len(regions) for n, regions in _LARGE_POOL.items())
        if held + size <= POOL_BYTES:
            _LARGE_POOL.setdefault(size, []).append(region)
