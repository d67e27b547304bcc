"""Start-up benchmark: the command line's first commands, warm, against Python's and numpy's own start.

    python benchmarks/bench_startup.py

Each command runs in a fresh interpreter, ten times after one warm-up run (which fills numba's
cache and the OS's file cache), and the median wall time is printed beside two floors measured in
the same run: a bare ``python -c pass`` and ``python -c "import numpy"`` (the least any command of
a numpy package can cost).  ``meanfield`` is the installed console script next to this
interpreter.  The commands are interleaved, run by run, so a slow spell of a shared machine falls
on all of them.  The issue's target: ``meanfield --help`` and ``meanfield solve selu``
each within 0.6 s.  The heavy packages each command's code leaves loaded (run once more in-process
under ``python -c``) are listed: neither may load numba, scipy, torch or matplotlib
(tests/test_architecture.py asserts it too).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from _common import machine, table

RUNS = 10
TARGET_S = 0.6
#: top-level packages whose import the first commands must not pay for
HEAVY = ("numba", "scipy", "torch", "matplotlib", "xarray", "dask")
_LOADED = ("import sys; print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & set(%r))) or '-', "
           "file=sys.stderr)" % (HEAVY,))

#: the installed console script, beside this interpreter
MEANFIELD = os.path.join(os.path.dirname(sys.executable), "meanfield")
#: (label, the command timed, the code whose leftover modules stand for it (None: the command's
#: own code), whether the target applies)
COMMANDS = [
    ("python -c pass (floor)", [sys.executable, "-c", "pass"], "pass", False),
    ('python -c "import numpy" (floor)', [sys.executable, "-c", "import numpy"], "import numpy", False),
    ("meanfield --help", [MEANFIELD, "--help"],
     "import meanfield.cli as c\ntry:\n    c.main(['--help'])\nexcept SystemExit:\n    pass", True),
    ("meanfield solve selu", [MEANFIELD, "solve", "selu"],
     "import meanfield.cli as c; c.main(['solve', 'selu'])", True),
    ('python -c "import meanfield.theory.functionals"', [sys.executable, "-c", "import meanfield.theory.functionals"],
     "import meanfield.theory.functionals", False),
]


def _wall_time(argv):
    """Wall time of one run of ``argv`` (output discarded)."""
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True)
    return time.perf_counter() - started


def _heavy_loaded(code):
    """The packages of HEAVY that a fresh interpreter running ``code`` leaves loaded."""
    done = subprocess.run([sys.executable, "-c", f"{code}\n{_LOADED}"], capture_output=True, text=True, check=True)
    return done.stderr.strip().splitlines()[-1]


def main():
    print(f"machine: {machine()}")
    for _, argv, _, _ in COMMANDS:  # warm-up: numba's cache and the file cache filled
        _wall_time(argv)
    times = {label: [] for label, _, _, _ in COMMANDS}
    for _ in range(RUNS):
        for label, argv, _, _ in COMMANDS:
            times[label].append(_wall_time(argv))
    loaded = {label: _heavy_loaded(code) for label, _, code, _ in COMMANDS}
    rows = []
    for label, _, _, targeted in COMMANDS:
        t = sorted(times[label])
        verdict = ("PASS" if statistics.median(t) <= TARGET_S else "miss") if targeted else ""
        rows.append([label, f"{statistics.median(t):.2f} s", f"{t[0]:.2f}-{t[-1]:.2f} s", loaded[label],
                     f"<= {TARGET_S} s: {verdict}" if targeted else ""])
    print(table(["command (fresh interpreter)", f"median of {RUNS}", "range", "heavy packages loaded", "target"],
                rows))


if __name__ == "__main__":
    main()
