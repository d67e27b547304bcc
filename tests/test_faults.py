"""Faults and hopeless requests: one line on stderr, the documented exit code, no traceback, nothing
computed twice, nothing partial left behind.

Read-only folders and full disks are real where the platform allows it (a read-only or a tiny
tmpfs, mounted when the tests run as root; a chmod 555 folder otherwise) and a fake that raises
OSError(ENOSPC) where it does not.
"""

import contextlib
import errno
import fcntl
import json
import os
import shutil
import subprocess
import time
import warnings

import numpy as np
import pytest
import xarray as xr

import meanfield as mf
import sim
from meanfield.cli import main
from sim import sweep as S


def _one_line(capsys, code, expected_code, match):
    captured = capsys.readouterr()
    lines = [l for l in captured.err.strip().splitlines() if not l.startswith("meanfield: warning")]
    assert code == expected_code, captured.err
    assert len(lines) == 1 and match in lines[0], captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@contextlib.contextmanager
def _tmpfs(path, options):
    """A tmpfs at ``path`` (root only); yields False where it cannot be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        yield False
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], capture_output=True)


@pytest.fixture
def readonly_dir(tmp_path):
    path = tmp_path / "readonly"
    with _tmpfs(path, "ro,size=64k") as mounted:
        if not mounted:
            if os.geteuid() == 0:
                pytest.skip("root without mount: no read-only folder to test with")
            path.chmod(0o555)
        yield path
        if not mounted:
            path.chmod(0o755)


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """A folder whose disk is full: a 256 KiB tmpfs filled up, or a fake ENOSPC from netCDF writes."""
    path = tmp_path / "full"
    with _tmpfs(path, "size=256k") as mounted:
        if mounted:
            with open(path / "filler", "wb") as fh:
                with contextlib.suppress(OSError):
                    fh.write(b"\0" * (1 << 20))
        else:
            def no_space(self, target=None, *args, **kwargs):
                raise OSError(errno.ENOSPC, "No space left on device", str(target))

            monkeypatch.setattr(xr.Dataset, "to_netcdf", no_space)
        yield path


def _leftovers(folder):
    return sorted(p for p in os.listdir(folder) if ".tmp" in p) if os.path.isdir(folder) else []


# ---------------------------------------------------------------------------
# Hopeless requests are refused by their estimate, before any allocation, in under a second.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("argv,match", [
    (["recursion", "selu", "--depth", "1000000000", "--q0", "1"], "GiB"),
    (["finite-width", "selu", "--depth", "1000000000", "--width", "64"], "GiB"),
    (["simulate", "--activation", "selu", "--depth", "1000000000", "--width", "32", "--batch", "8"], "GiB"),
    (["simulate", "--activation", "selu", "--depth", "8", "--width", "32", "--batch", "8", "--seeds", "1000000000"],
     "fewer draws"),
])
def test_hopeless_command_is_refused_in_under_a_second(argv, match, capsys):
    started = time.perf_counter()
    code = main(argv)
    assert time.perf_counter() - started < 1.0
    _one_line(capsys, code, 2, match)


@pytest.mark.parametrize("call", [
    lambda: mf.recursion("selu", 10**9),
    lambda: mf.finite_width("selu", 10**9, widths=64),
    lambda: mf.mean_recursion("selu", 10**9),
    lambda: sim.simulate("selu", 10**9, width=32, batch=8),
    lambda: sim.simulate("selu", 8, width=32, batch=8, seeds=10**9),
    lambda: sim.reduced_chain("selu", 10**6, width=8, chains=10**7),
])
def test_hopeless_python_call_is_refused_in_under_a_second(call):
    import sim.reduced  # noqa: F401 - imported first: the second counts the refusal, not loading torch
    import sim.simulation  # noqa: F401

    started = time.perf_counter()
    with pytest.raises(ValueError, match="GiB"):
        call()
    assert time.perf_counter() - started < 1.0


def _sweep_file(path, grid, kind="simulate", fixed=None):
    fixed = {"activation": "selu", **(fixed or {})}
    lines = ["[sweep]", f'kind = "{kind}"', "[grid]"] + [f"{k} = {json.dumps(v)}" for k, v in grid.items()]
    lines += [f"[{kind}]"] + [f"{k} = {json.dumps(v)}" for k, v in fixed.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_huge_sweep_grid_is_refused_before_any_point(tmp_path, capsys):
    grid = {"q0": [round(0.5 + i * 1e-4, 6) for i in range(10000)], "seed": list(range(1000))}  # 10^7 points
    started = time.perf_counter()
    code = main(["sweep", _sweep_file(tmp_path / "s.toml", grid, fixed={"depth": 16, "width": 64}), "--out",
                 str(tmp_path / "out"), "--workers", "0"])
    assert time.perf_counter() - started < 5.0  # parsing 11,000 grid values included
    _one_line(capsys, code, 2, "10000000 points")
    assert not os.listdir(tmp_path / "out" / "points")


def test_theory_sweep_with_a_hopeless_depth_is_refused(tmp_path, capsys):
    code = main(["sweep", _sweep_file(tmp_path / "s.toml", {"depth": [8, 10**9]}, kind="theory"), "--out",
                 str(tmp_path / "out"), "--workers", "0"])
    _one_line(capsys, code, 2, "GiB")
    assert not os.listdir(tmp_path / "out" / "points")


@pytest.mark.parametrize("grid,match", [({"depth": [4, -1]}, "depth = -1"), ({"batch": [8, "eight"]}, "batch = 'eight'"),
                                        ({"q0": [1.0, 0.0]}, "q0 = 0.0")])
def test_bad_grid_values_are_rejected_before_any_point(tmp_path, capsys, grid, match):
    fixed = {"depth": 4, "width": 16, "batch": 8}
    for key in grid:
        fixed.pop(key, None)
    code = main(["sweep", _sweep_file(tmp_path / "s.toml", grid, fixed=fixed), "--out", str(tmp_path / "out"),
                 "--workers", "0"])
    _one_line(capsys, code, 2, match)
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out" / "points")


# ---------------------------------------------------------------------------
# Filesystem faults are one line.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["figure", "5", "--quick"], ["figure", "4", "--quick"]])
def test_figure_into_a_readonly_folder_fails_before_computing(argv, readonly_dir, capsys):
    started = time.perf_counter()
    code = main([*argv, "--out", str(readonly_dir / "figs")])
    assert time.perf_counter() - started < 5.0  # refused before the figure is computed (minutes)
    _one_line(capsys, code, 2, "figs")


def test_out_naming_a_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("x")
    _one_line(capsys, main(["figure", "2", "--quick", "--out", str(target)]), 2, "is a file")
    sweep_file = _sweep_file(tmp_path / "s.toml", {"depth": [2]}, kind="theory")
    _one_line(capsys, main(["sweep", sweep_file, "--out", str(target), "--workers", "0"]), 2, "is a file")
    assert target.read_text() == "x"


def test_sweep_into_a_readonly_folder(readonly_dir, tmp_path, capsys):
    sweep_file = _sweep_file(tmp_path / "s.toml", {"depth": [2]}, kind="theory")
    _one_line(capsys, main(["sweep", sweep_file, "--out", str(readonly_dir / "out"), "--workers", "0"]), 2,
              "not writable")
    with pytest.raises(ValueError, match="not writable"):
        S.sweep(sweep_file, str(readonly_dir / "out"), workers=0)


def test_dead_scheduler_is_one_line_within_seconds(tmp_path, capsys):
    sweep_file = _sweep_file(tmp_path / "s.toml", {"depth": [2]}, kind="theory")
    started = time.perf_counter()
    code = main(["sweep", sweep_file, "--out", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:1"])
    assert time.perf_counter() - started < S.SCHEDULER_TIMEOUT + 2
    _one_line(capsys, code, 2, "tcp://127.0.0.1:1")


@pytest.mark.parametrize("argv", [
    ["simulate", "--activation", "selu", "--depth", "3", "--width", "16", "--batch", "4", "--quiet"],
    ["recursion", "selu", "--depth", "3"],
])
def test_full_disk_on_out_is_one_line_and_leaves_nothing(argv, full_disk, capsys):
    out = full_disk / "result.nc"
    code = main([*argv, "--out", str(out)])
    _one_line(capsys, code, 1, "result.nc")
    assert not out.exists() and not _leftovers(full_disk)


def test_full_disk_in_a_sweep_leaves_nothing_the_rerun_does_not_clean(full_disk, tmp_path, capsys, monkeypatch):
    sweep_file = _sweep_file(tmp_path / "s.toml", {"depth": [2, 3]}, kind="theory")
    out = full_disk / "out"
    code = main(["sweep", sweep_file, "--out", str(out), "--workers", "0", "--quiet"])
    assert code in (1, 2)  # a point that could not be written is a failure (1), or no room up front (2)
    assert "Traceback" not in capsys.readouterr().err
    assert not _leftovers(out / "points") if (out / "points").exists() else True
    assert not _leftovers(out) if out.exists() else True


def test_sweep_cleans_stale_temporaries(tmp_path):
    sweep_file = _sweep_file(tmp_path / "s.toml", {"depth": [2]}, kind="theory")
    out = tmp_path / "out"
    (out / "points").mkdir(parents=True)
    for name in ("points/.tmp-abc-123", "points/x.err.json.tmp-9", ".sweep.nc.tmp-7"):
        (out / name).write_text("")
    S.sweep(sweep_file, str(out), workers=0)
    assert not _leftovers(out) and not _leftovers(out / "points")


def _train_config():
    from figures.training import TrainConfig

    return TrainConfig("selu", depth=8, epochs=2, lr=0.01, batch=16, max_iterations_per_epoch=2)


def test_truncated_checkpoint_is_set_aside_and_training_resumes(tmp_path):
    from figures.data import load
    from figures.training import CheckpointWarning, train

    data = load("synthetic", None, 8)
    cfg = _train_config()
    reference = train(cfg, data)
    train(cfg, data, checkpoint_dir=str(tmp_path))
    (path,) = [p for p in tmp_path.iterdir() if p.suffix == ".pt"]
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.warns(CheckpointWarning, match="set aside"):
        again = train(cfg, data, checkpoint_dir=str(tmp_path))
    np.testing.assert_array_equal(again.loss, reference.loss)  # resumed from the previous epoch: same numbers
    assert any(p.name.endswith(".corrupt") for p in tmp_path.iterdir())


# ---------------------------------------------------------------------------
# Sweeps you can trust.
# ---------------------------------------------------------------------------


def test_second_sweep_into_a_locked_folder_refuses(tmp_path, capsys):
    sweep_file = _sweep_file(tmp_path / "s.toml", {"depth": [2, 3]}, kind="theory")
    out = tmp_path / "out"
    (out / "points").mkdir(parents=True)
    with open(out / ".lock", "a+") as fh:  # another sweep holds the folder
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fh.write("pid 1 on elsewhere")
        fh.flush()
        _one_line(capsys, main(["sweep", sweep_file, "--out", str(out), "--workers", "0"]), 2,
                  "another sweep is writing")
        assert not os.listdir(out / "points")  # nothing computed
    S.sweep(sweep_file, str(out), workers=0)  # once it is released, the sweep runs
    assert len([p for p in os.listdir(out / "points") if p.endswith(".nc")]) == 2


def _tamper_copy(path, other):
    shutil.copy(other, path)


def _tamper_truncate(path, other):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _tamper_flip(path, other):
    data = bytearray(path.read_bytes())
    with xr.open_dataset(path, engine="netcdf4") as ds:  # flip a bit inside the stored q values
        needle = np.ascontiguousarray(ds.q.values).tobytes()[8:16]
    at = bytes(data).find(needle)
    assert at > 0
    data[at + 3] ^= 0x10
    path.write_bytes(bytes(data))


def _tamper_strip(path, other):
    ds = xr.load_dataset(path, engine="netcdf4")
    ds.attrs = {}
    path.unlink()
    ds.to_netcdf(path, engine="netcdf4")


@pytest.mark.parametrize("tamper", [_tamper_copy, _tamper_truncate, _tamper_flip, _tamper_strip])
def test_tampered_point_file_is_detected_and_recomputed(tmp_path, tamper):
    sweep_file = _sweep_file(tmp_path / "s.toml", {"q0": [0.5, 2.0]}, kind="theory", fixed={"depth": 4})
    out = tmp_path / "out"
    good = S.sweep(sweep_file, str(out), workers=0)
    spec = S.load_sweep(sweep_file)
    first, second = (out / "points" / f"{S.point_id(spec, p)}.nc" for p in S.points(spec))
    tamper(first, second)
    with pytest.warns(S.SweepWarning, match="recomputing"):
        again = S.sweep(sweep_file, str(out), workers=0)
    assert again.attrs["computed_this_run"] == 1
    xr.testing.assert_identical(again.q, good.q)


# ---------------------------------------------------------------------------
# No silently wrong answer.
# ---------------------------------------------------------------------------


def test_from_file_of_another_figure_is_an_error(tmp_path, capsys):
    assert main(["figure", "1", "--quick", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    _one_line(capsys, main(["figure", "5", "--from", str(tmp_path / "fig1.nc")]), 2, "holds figure 1, not figure 5")


@pytest.mark.parametrize("spec,match", [("sselu:epsilon=0.03,q_star=1e300", "edge"),
                                        ("sselu:epsilon=1e-300", "epsilon is too small")])
def test_solver_requests_outside_double_precision_are_refused(spec, match, capsys):
    _one_line(capsys, main(["solve", spec]), 2, match)


def test_divergence_in_simulate_is_data_whatever_sigma_w2(capsys):
    assert main(["simulate", "--activation", "selu", "--depth", "40", "--width", "32", "--batch", "8",
                 "--sigma-w2", "1e12", "--quiet", "--json"]) == 0
    # The theory overflows float64 at layer 27 (q_26 = 3.5e305); a width-32 network's q fluctuates by
    # about a factor 10^0.5 over 26 layers (sd of log chi-squared/32 per layer), one layer either way.
    theory = int(mf.recursion("selu", 40, sigma_w2=1e12).diverged_at)
    assert abs(json.loads(capsys.readouterr().out)["diverged_at"][0] - theory) <= 1


@pytest.mark.parametrize("call,match", [
    (lambda: sim.simulate("selu", 3, width=8, batch=2, loss="foo"), "loss must be a callable"),
    (lambda: mf.activation(lambda x: x, kinks="abc"), "kinks must be a sequence"),
    (lambda: mf.ExpLinear(name="sselu", alpha=[2, float("nan")]), r"alpha\[1\] = nan"),
    (lambda: mf.activation(lambda x: np.log(x)), "returned nan"),
])
def test_bad_values_are_rejected_at_the_boundary(call, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log of negatives in the user's f
        with pytest.raises(ValueError, match=match):
            call()


def test_marginal_fixed_point_says_marginal(capsys):
    assert main(["fixedpoint", "tanh"]) == 0
    assert "(marginal" in capsys.readouterr().out
    assert main(["fixedpoint", "selu"]) == 0
    assert "(attracting)" in capsys.readouterr().out


def test_criticality_explains_or_finds_the_boundary(capsys):
    assert main(["criticality", "relu", "--sigma-b2", "0,0.05"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.split("\n", 3)[3].split()[1:2]  # ReLU's boundary is sigma_w2 = 2 at both
    assert main(["criticality", "tanh", "--sigma-b2", "0.05", "--json"]) == 0
    assert abs(json.loads(capsys.readouterr().out)["sigma_w2"][0] - 1.76095464) < 1e-6
