"""The benchmark scripts' own behaviour (their numbers live in their output, not in tests)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine runs the script itself")
def test_gpu_script_without_a_gpu_says_so_in_one_line_and_exits_nonzero():
    page = (ROOT / "docs" / "performance.md").read_text()
    out = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh")], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert out.stdout == "" and len(out.stderr.strip().splitlines()) == 1 and "no NVIDIA GPU" in out.stderr
    assert (ROOT / "docs" / "performance.md").read_text() == page  # nothing written


def test_figure_timing_runs_on_a_fixture_cifar10_folder():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_figures.py"), "--images-per-batch", "40",
                          "--iterations", "4", "--size", "8"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "200 training images" in out.stdout and "Fig 7, all k" in out.stdout and " min " in out.stdout
