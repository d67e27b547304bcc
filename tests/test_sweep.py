"""Sweeps on dask: bad files rejected up front, failing points, worker-count
invariance, and kill -9 mid-sweep then resume."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from meanfield.cli import main
from sim.sweep import SweepFileError, load_sweep, point_id, points, sweep

SMALL = """
[grid]
depth = [3, 5]
activation = ["selu", "lselu:epsilon=0.03"]
q0 = [0.5, 2.0]
seed = [0, 1]
[simulate]
width = 24
batch = 8
stat_layers = []
"""


def _write(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _assert_same(a, b):
    for var in ("q_measured", "grad_sq", "weight_grad_norm", "q_theory"):
        np.testing.assert_array_equal(a[var].values, b[var].transpose(*a[var].dims).values)


@pytest.mark.parametrize("text,match", [
    ("[grid]\ndepht = [3]\nactivation = ['selu']\n", "key 'depht' is not a parameter of sim.simulate"),
    ("[grid]\ndepth = []\nactivation = ['selu']\n", "axis 'depth' is empty"),
    ("[grid]\ndepth = [3]\nactivation = ['sselu:epsilon']\n", r"\[grid\] activation: malformed activation spec"),
    ("[grid]\ndepth = [3]\nactivation = ['foo']\n", "unknown activation 'foo'"),
    ("[grid]\ndepth = [3]\nactivation = ['selu']\n[simulate]\nbatch = 8\nwidht = 3\n", r"\[simulate\] key 'widht'"),
    ("[grid]\ndepth = 3\nactivation = ['selu']\n", "must be a list"),
    ("[grid]\ndepth = [3, 3]\nactivation = ['selu']\n", "repeats a value"),
    ("[grid\ndepth = [3]\n", "not valid TOML"),
    ("[grids]\ndepth = [3]\n", r"unknown section \[grids\]"),
    ("[sweep]\nkind = 'train'\n[grid]\ndepth = [3]\n", "valid kinds: simulate, reduced_chain, theory"),
    ("[grid]\ndepth = [3]\n[simulate]\ndepth = 4\nactivation = 'selu'\n", "both a \\[grid\\] axis and a fixed"),
    ("[grid]\ndepth = [3]\n", "no activation"),
])
def test_bad_sweep_files_are_rejected_before_work(tmp_path, text, match):
    out = tmp_path / "out"
    with pytest.raises(SweepFileError, match=match):
        sweep(_write(tmp_path, text), str(out), workers=0)
    assert not out.exists()


def test_bad_sweep_file_on_the_command_line(tmp_path, capsys):
    code = main(["sweep", _write(tmp_path, "[grid]\ndepth = []\nactivation = ['selu']\n"), "--out",
                 str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "empty" in err[0]


def test_result_has_a_dimension_per_axis_and_provenance(tmp_path):
    ds = sweep(_write(tmp_path, SMALL), str(tmp_path / "out"), workers=0)
    assert ds.q_measured.dims[:4] == ("depth", "activation", "q0", "seed")
    assert ds.sizes["layer"] == 6  # union of depths 3 and 5 (0..5), NaN-padded
    assert np.isnan(ds.q_measured.sel(depth=3).isel(layer=5)).all()
    again = xr.open_dataset(tmp_path / "out" / "sweep.nc", engine="netcdf4")
    assert again.attrs["meanfield_version"] and again.attrs["started"] <= again.attrs["ended"]
    assert "[grid]" in again.attrs["sweep_file"] and json.loads(again.attrs["failed_points_json"]) == []
    # Seeds come from each point's own configuration: the seed axis changes the numbers.
    assert not np.array_equal(ds.q_measured.sel(seed=0).values, ds.q_measured.sel(seed=1).values)


def test_failing_point_is_recorded_and_others_finish(tmp_path, capsys):
    text = SMALL.replace('"lselu:epsilon=0.03"', '"lselu:epsilon=0.03,lambda_min=7"')
    code = main(["sweep", _write(tmp_path, text), "--out", str(tmp_path / "out"), "--workers", "0", "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.count("failed:") == 8 and "InfeasibleError" in captured.err
    ds = xr.open_dataset(tmp_path / "out" / "sweep.nc", engine="netcdf4")
    assert int(ds.ok.sum()) == 8 and np.all(np.isfinite(ds.q_measured.sel(activation="selu").isel(layer=0)))
    assert len(glob.glob(str(tmp_path / "out" / "points" / "*.err.json"))) == 8


@pytest.mark.slow
def test_worker_count_does_not_change_the_numbers(tmp_path):
    path = _write(tmp_path, SMALL)
    a = sweep(path, str(tmp_path / "a"), workers=0)
    b = sweep(path, str(tmp_path / "b"), workers=2)
    _assert_same(a, b)


KILL = """
[grid]
activation = ["selu", "sselu:epsilon=0.017", "lselu:epsilon=0.017", "dselu:epsilon=0.017"]
q0 = [0.5, 1.0, 2.0]
seed = [0, 1, 2, 3]
[simulate]
depth = 24
width = 192
batch = 96
stat_layers = []
"""


@pytest.mark.slow
def test_kill_mid_sweep_then_resume(tmp_path):
    """kill -9 the driver and its LocalCluster (2 workers) mid-sweep; rerun; same result as uninterrupted."""
    path = _write(tmp_path, KILL)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "meanfield.cli", "sweep", path, "--out", str(out), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    folder = out / "points"
    while time.time() < deadline:
        done = glob.glob(str(folder / "*.nc"))
        if len(done) >= 6:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    finished_before = {os.path.basename(p) for p in glob.glob(str(folder / "*.nc"))}
    assert 6 <= len(finished_before) < 48, "the sweep should have been killed part-way"
    # A half-written point and a stale temporary from the killed run are detected and redone.
    spec = load_sweep(path)
    victim = point_id(spec, points(spec)[0])
    (folder / f"{victim}.nc").write_bytes(b"\x89HDF\r\n truncated")
    (folder / ".tmp-stale").write_bytes(b"partial")
    mtimes = {p: os.path.getmtime(folder / p) for p in finished_before if p != f"{victim}.nc"}
    resumed = sweep(path, str(out), workers=2)
    assert not (folder / ".tmp-stale").exists()
    for p, t in mtimes.items():  # finished points were not recomputed
        assert os.path.getmtime(folder / p) == t
    assert resumed.attrs["computed_this_run"] == 48 - len(mtimes)
    reference = sweep(path, str(tmp_path / "ref"), workers=0)
    _assert_same(resumed, reference)
