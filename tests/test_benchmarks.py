"""The benchmark scripts' own behaviour (their numbers live in their output, not in tests)."""

from __future__ import annotations

import shutil
import subprocess
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
