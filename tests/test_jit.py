"""Kernels compiled on first use and the same source interpreted: the same bits (meanfield/gauss/jit.py).

Every comparison here is bitwise (NaN equal to NaN): the claim is identity, not closeness.
"""

import itertools
import math
import pickle
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from meanfield.gauss import closed_forms, jit
from meanfield.gauss.jit import Kernel, fma, kernel


def _bits(x):
    """float64 values as their bit patterns, every NaN one pattern."""
    x = np.where(np.isnan(x), np.nan, np.asarray(x, dtype=float))
    return x.view(np.int64)


def _assert_same_bits(a, b):
    differ = _bits(a) != _bits(b)
    assert not differ.any(), f"{differ.sum()} of {differ.size} differ, first at {np.argmax(differ.ravel())}"


_RNG = np.random.default_rng(20261201)
#: q from 1e-12 to 1e12 (t = b√q from 1e-8 to 3e7: every regime of the Mills-ratio fits), and the edges
_Q = np.concatenate([10.0 ** _RNG.uniform(-12.0, 12.0, 600), [0.0, 5e-324, 1e-300, 1.0, 1e300, np.inf, np.nan]])


def _parameters(uniform, linear):
    n = 1 if uniform else _Q.size
    lam, alpha, rate = _RNG.uniform(0.5, 2.0, n), _RNG.uniform(0.0, 3.0, n), 10.0 ** _RNG.uniform(-2.0, 1.5, n)
    slope = _RNG.uniform(-0.5, 0.5, n) if linear else np.zeros(n)
    return lam, alpha, rate, slope


def _run_loop(loop, call, params, wanted):
    outputs = [np.full(_Q.size, -1.0) if w else np.empty(0) for w in wanted]
    call(_Q, *params, 1.0, *outputs)
    return [out for out in outputs if out.size]


#: every output together, and each alone (each alone takes other branches of the loop)
_SUBSETS = [(True,) * 5] + [tuple(i == j for j in range(5)) for i in range(5)]


@pytest.mark.parametrize("uniform,linear", list(itertools.product([True, False], repeat=2)))
@pytest.mark.parametrize("wanted", _SUBSETS, ids=["all", "Q", "dQ", "phi", "dphi", "mean"])
def test_closed_form_loop_interpreted_gives_the_compiled_bits(uniform, linear, wanted):
    loop = closed_forms._exp_linear_loop(*wanted, uniform, linear)
    params = _parameters(uniform, linear)
    for compiled, interpreted in zip(_run_loop(loop, loop.compiled, params, wanted),
                                     _run_loop(loop, loop.interpreted, params, wanted)):
        _assert_same_bits(compiled, interpreted)


def test_the_bitwise_check_sees_a_fused_multiply_add():
    """Negative control: the same loop compiled with LLVM free to fuse (fastmath "contract") no
    longer matches the interpreted source, so the test above would see a kernel that fuses."""
    loop = closed_forms._exp_linear_loop(True, True, True, True, True, False, True)
    fused = Kernel(loop.py_func, {**loop.options, "fastmath": {"contract"}, "cache": False})
    params = _parameters(False, True)
    differ = 0
    for compiled, interpreted in zip(_run_loop(fused, fused.compiled, params, (True,) * 5),
                                     _run_loop(loop, loop.interpreted, params, (True,) * 5)):
        differ += int((_bits(compiled) != _bits(interpreted)).sum())
    assert differ > 0


#: (a, b, c, a·b + c rounded once): cancellation the unfused form loses, and IEEE's special cases
_TINY = 2.0 ** -30
_FMA_CASES = [
    (1.0 + _TINY, 1.0 - _TINY, -1.0, -(2.0 ** -60)),       # exact: −2⁻⁶⁰; a·b rounds to 1, so unfused: 0
    (0.1, 10.0, -1.0, 5.551115123125783e-17),               # 0.1 = 0.1000000000000000055511151231257827…
    (1e308, 10.0, -math.inf, -math.inf),                    # a·b overflows; fused, c decides (unfused: NaN)
    (1e308, 10.0, -1e308, math.inf),                        # 9e308 exceeds the largest double
    (-0.0, 1.0, -0.0, -0.0), (-0.0, 1.0, 0.0, 0.0), (2.0, 3.0, -6.0, 0.0),
    (math.inf, 0.0, 1.0, math.nan), (math.nan, 1.0, 1.0, math.nan), (1.0, 1.0, math.nan, math.nan),
    (5e-324, 0.5, 0.0, 0.0), (5e-324, 1.5, 0.0, 1e-323),     # subnormal results, ties to even
]


@pytest.mark.parametrize("a,b,c,expected", _FMA_CASES)
def test_fma_is_rounded_once_interpreted_and_compiled(a, b, c, expected):
    interpreted = fma.interpreted(a, b, c)
    assert _bits(interpreted) == _bits(expected), (interpreted, expected)
    compiled = _fma_array.compiled(np.array([a]), np.array([b]), np.array([c]))
    assert _bits(compiled[0]) == _bits(expected), (compiled[0], expected)


def test_fma_differs_from_the_unfused_form():
    a, b, c = 1.0 + _TINY, 1.0 - _TINY, -1.0
    assert a * b + c == 0.0 and fma.interpreted(a, b, c) == -(2.0 ** -60)


@kernel(cache=False, error_model="numpy")
def _fma_array(a, b, c):
    out = np.empty(a.size)
    for i in range(a.size):
        out[i] = fma(a[i], b[i], c[i])
    return out


def test_fma_at_random_triples():
    """Products of random signs and magnitudes against sums that cancel them to every degree."""
    n = 2000
    a = _RNG.choice([-1.0, 1.0], n) * 10.0 ** _RNG.uniform(-150.0, 150.0, n)
    b = _RNG.choice([-1.0, 1.0], n) * 10.0 ** _RNG.uniform(-150.0, 150.0, n)
    c = -a * b * (1.0 + _RNG.choice([0.0, 1e-17, 1e-12, 1e-3, 1.0], n))
    interpreted = np.array([fma.interpreted(x, y, z) for x, y, z in zip(a, b, c)])
    _assert_same_bits(_fma_array.compiled(a, b, c), interpreted)


@kernel(cache=False, error_model="numpy")
def _edges(x, out):
    for i in range(x.size):
        out[i, 0] = 1.0 / x[i]
        out[i, 1] = math.sqrt(x[i])
        out[i, 2] = math.exp(x[i])
        out[i, 3] = math.log(x[i])
        out[i, 4] = x[i] * 1e308


def test_interpreted_kernels_return_what_numba_returns_where_python_raises():
    """1/0, √(−1), e^1000, log 0 and log(−1) raise in Python; under numba's error model they are
    ±inf and NaN, and so they are interpreted."""
    x = np.array([0.0, -0.0, -1.0, 1000.0, -1000.0, 1e-300, 2.5, np.inf, -np.inf, np.nan])
    compiled, interpreted = np.empty((x.size, 5)), np.empty((x.size, 5))
    _edges.compiled(x, compiled)
    _edges.interpreted(x, interpreted)
    _assert_same_bits(compiled, interpreted)


def test_run_interprets_a_few_points_then_compiles(monkeypatch):
    monkeypatch.setitem(jit._cold, "numba_started", True)  # numba is up: each kernel's own budget
    k = Kernel(_fma_array.py_func, {"cache": False})
    a = np.ones(3)
    k.run(3, a, a, a)
    assert not k.warm  # interpreted: nothing compiled
    k.run(jit.INTERPRETED_POINTS, a, a, a)  # over the budget: compiled
    assert k.warm


def test_run_shares_the_cold_budget_until_numba_starts(monkeypatch):
    monkeypatch.setitem(jit._cold, "numba_started", False)
    monkeypatch.setitem(jit._cold, "points", 0)
    k = Kernel(_fma_array.py_func, {"cache": False})
    a = np.ones(jit.INTERPRETED_POINTS + 1)  # over a kernel's own budget, within the cold one
    k.run(a.size, a, a, a)
    assert not k.warm
    k.run(jit.COLD_POINTS, a, a, a)  # the cold budget spent: compiled, and numba has started
    assert k.warm and jit._cold["numba_started"]


def test_a_short_recursion_and_its_finite_width_theory_never_start_numba():
    """What ``meanfield simulate`` computes beside one network (depth 32, one configuration) runs
    interpreted: numba's start (0.7 s) would be most of the theory's time."""
    script = ("import sys, meanfield as mf; mf.recursion('selu', 32, q0=1.0); "
              "mf.finite_width('selu', 32, q0=1.0, widths=2048); mf.mean_map('selu', 0.0, [0.5, 1.0]); "
              "print('numba' in sys.modules, 'scipy.optimize' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"  # nor scipy.optimize (0.3 s), which solves no root here


def test_a_kernel_pickles_by_reference():
    """As a function does (dask ships functions to workers by pickle): the same object comes back."""
    from meanfield.gauss import mills

    assert pickle.loads(pickle.dumps(mills._map_into)) is mills._map_into
    assert pickle.loads(pickle.dumps(fma)) is fma


def test_empty_large_is_an_ordinary_writable_array_on_huge_page_boundaries():
    """A large array lies in its own mapping, 2 MiB aligned where the system offers huge pages; it
    behaves as np.empty's (shape, dtype, C order, writable, pickles) and its memory lives as long as
    any view of it does."""
    import gc
    import mmap

    small = jit.empty_large((3, 4))
    assert small.shape == (3, 4) and small.dtype == np.float64 and small.flags.c_contiguous
    big = jit.empty_large((1001, 1000))
    assert big.shape == (1001, 1000) and big.dtype == np.float64 and big.flags.c_contiguous and big.flags.writeable
    if hasattr(mmap, "MADV_HUGEPAGE"):
        assert big.ctypes.data % (2 << 20) == 0
    big[:] = np.arange(1000.0)
    column = np.moveaxis(big, 0, -1)[7]
    del big
    gc.collect()
    assert np.all(column == 7.0)
    assert np.array_equal(pickle.loads(pickle.dumps(column)), column)


@pytest.mark.skipif(not hasattr(__import__("mmap"), "MADV_HUGEPAGE"), reason="no huge-page mappings here")
def test_a_freed_large_mapping_is_reused_only_after_its_last_view_is_freed():
    """The pool of freed mappings: a view keeps its mapping out of the pool (a new array of the
    same size lies elsewhere); once the last view is freed the next array of that size reuses it."""
    import gc

    shape = (777, 1001)  # a size no other test allocates
    a = jit.empty_large(shape)
    view = np.moveaxis(a, 0, -1)[3]
    address = a.ctypes.data
    del a
    gc.collect()
    b = jit.empty_large(shape)
    assert b.ctypes.data != address and not np.shares_memory(b, view)
    del view
    gc.collect()
    c = jit.empty_large(shape)
    assert c.ctypes.data == address
    del b, c


def test_recursions_on_reused_memory_give_the_same_bits(monkeypatch):
    """Results written into mappings that earlier arrays left full of NaN and garbage are the same
    bits as into fresh (zeroed) memory: every element of every result is written."""
    import gc

    import meanfield as mf
    from meanfield.theory import recursions

    q0 = np.geomspace(1e-3, 1e3, 1000)  # 601 × 1000 and 602 × 1000 float64: above LARGE_ARRAY_BYTES
    depth = 600
    monkeypatch.setattr(jit, "POOL_BYTES", 0)
    fresh = {spec: mf.recursion(spec, depth, q0=q0, sigma_w2=1.3) for spec in ("gelu", "sselu:epsilon=0.03")}
    monkeypatch.setattr(jit, "POOL_BYTES", 1 << 30)
    garbage = [jit.empty_large((rows, q0.size)) for rows in (depth + 1, depth + 2) for _ in range(16)]
    for i, g in enumerate(garbage):
        g[:] = np.nan if i % 2 else -1.2345e300
    garbage_bytes = garbage[0].nbytes
    del g, garbage
    gc.collect()
    for spec, expected in fresh.items():
        poisoned = []

        def allocate(shape):
            out = jit.empty_large(shape)
            poisoned.append(bool(np.isnan(out[0, 0]) or out[0, 0] == -1.2345e300))
            return out

        monkeypatch.setattr(recursions, "empty_large", allocate)
        reused = mf.recursion(spec, depth, q0=q0, sigma_w2=1.3)
        assert len(poisoned) >= 7 and all(poisoned)  # every array came from a poisoned mapping
        xr.testing.assert_identical(reused, expected)
    assert garbage_bytes > jit.LARGE_ARRAY_BYTES
    jit._LARGE_POOL.clear()


def test_column_chunks_cover_the_columns_once():
    for columns, points, threads in [(1000, 10**6, 2), (1000, 10**6, 3), (100, 10**6, 8), (10, 10**9, 4),
                                     (1000, 10, 4), (0, 10**6, 2)]:
        chunks = jit.column_chunks(columns, points, threads)
        covered = [i for start, stop in chunks for i in range(start, stop)]
        assert covered == list(range(columns))
        assert len(chunks) == (1 if points < jit.PARALLEL_POINTS else max(1, min(threads, columns // jit.MIN_CHUNK_COLUMNS)))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_runs_chunks_on_a_pool_of_its_own():
    """The chunk pool's threads do not survive a fork: a child that inherited the parent's pool
    would wait on them for ever; it makes its own and finishes."""
    import os

    import time

    done = []
    for _ in range(3):  # tasks that take a while, so that both threads start and wait idle
        jit.run_in_column_chunks(lambda a, b: (time.sleep(0.05), done.append((a, b))), 256, jit.PARALLEL_POINTS,
                                 threads=2)
    assert sorted(done) == [(0, 128)] * 3 + [(128, 256)] * 3
    pid = os.fork()
    if pid == 0:  # the child: exit 0 once its chunks ran (the parent's timeout below catches a hang)
        child = []
        jit.run_in_column_chunks(lambda a, b: child.append(a), 256, jit.PARALLEL_POINTS, threads=2)
        os._exit(0 if sorted(child) == [0, 128] else 1)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung on the parent's pool")
