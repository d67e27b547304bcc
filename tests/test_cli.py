"""The command line: every subcommand, JSON output, and bad input (exit 2, one line)."""

import json
import re

import numpy as np
import pytest
import xarray as xr

from meanfield import SELU_ALPHA, SELU_LAMBDA
from meanfield.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_solve_json(capsys):
    code, out, _ = run(capsys, "solve", "sselu:epsilon=0.03", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"lambda", "alpha", "beta", "gamma1", "residuals"}
    assert data["gamma1"] < 0.855  # better than Table 5's printed row (docs/theory.md §3)


def test_solve_selu_text(capsys):
    code, out, _ = run(capsys, "solve", "selu")
    assert code == 0 and f"{SELU_LAMBDA:.10g}" in out and f"{SELU_ALPHA:.10g}" in out


def test_moments_json_arrays(capsys):
    code, out, _ = run(capsys, "moments", "lselu:epsilon=0.03", "--q", "0.5,1,2", "--json")
    data = json.loads(out)
    assert code == 0 and data["q"] == [0.5, 1.0, 2.0]
    assert len(data["phi"]) == 3 and data["gamma"][1] is None  # γ undefined at q = 1


def test_recursion_writes_netcdf(capsys, tmp_path):
    path = tmp_path / "rec.nc"
    code, out, _ = run(capsys, "recursion", "selu", "--depth", "20", "--q0", "0.5,3", "--out", str(path))
    assert code == 0 and path.exists()
    ds = xr.open_dataset(path, engine="netcdf4")
    assert ds.q.shape == (2, 21) and ds.attrs["activation"] == "selu"
    np.testing.assert_allclose(ds.prop31.values, 1.0, atol=1e-12)


def test_recursion_json(capsys):
    code, out, _ = run(capsys, "recursion", "tanh", "--depth", "5", "--q0", "1", "--sigma-w2", "1.5",
                       "--sigma-b2", "0.1", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["q"]) == 6 and data["chi"][0] is None


def test_criticality_and_fixedpoint(capsys):
    code, out, _ = run(capsys, "criticality", "tanh", "--sigma-b2", "0", "--json")
    assert code == 0 and abs(json.loads(out)["sigma_w2"][0] - 1) < 1e-8
    code, out, _ = run(capsys, "fixedpoint", "selu", "--json")
    data = json.loads(out)
    assert code == 0 and abs(data["spectral_norm"] - 0.7877) < 5e-5 and data["attracting"] is True


def test_table5_text_flags_rows(capsys):
    code, out, _ = run(capsys, "table5")
    assert code == 0
    assert out.count("paper not optimal") == 2 and "MISMATCH" not in out


def test_validate_theory_only(capsys):
    code, out, _ = run(capsys, "validate", "--theory-only")
    assert code == 0 and "FAIL" not in out


@pytest.mark.parametrize("argv,match", [
    (["solve", "foo"], "unknown activation 'foo'"),
    (["solve", "sselu:epsilon=-1"], "epsilon must be > 0"),
    (["moments", "selu", "--q", "x"], "--q must be a comma-separated list"),
    (["moments", "selu", "--q", "0"], "q must be finite and > 0"),
    (["recursion", "selu", "--depth", "0"], "depth must be an integer >= 1"),
    (["validate", "--theory-only", "--seed", "-1"], "seed must be an integer >= 0, got -1"),
    (["recursion", "selu", "--depth", "abc"], "invalid int value"),
    (["recursion", "selu", "--depth", "3", "--out", "/nonexistent/dir/x.nc"], "does not exist"),
    (["fixedpoint", "selu", "--tau", "0"], "tau must be > 0"),
    (["bogus"], "invalid choice"),
    (["solve"], "required"),
])
def test_bad_input_one_line_exit_2(capsys, argv, match):
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and match in lines[0] and "Traceback" not in err


@pytest.mark.parametrize("args,match", [
    (["selu", "--depth", "64", "--width", "0"], "widths must be integers >= 1, got 0"),
    (["selu", "--depth", "64", "--width", "64", "--q0", "-1"], "q0 must be finite and > 0"),
    (["selu", "--depth", "64", "--width", "64", "--order", "3"], "order must be 0"),
    (["dselu:epsilon=0.017", "--depth", "64", "--width", "64"], "validity range.*--force"),
])
def test_finite_width_bad_input_is_one_line_exit_2(args, match, capsys):
    assert main(["finite-width", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(match, err[0]), err


def test_finite_width_command_outputs(tmp_path, capsys):
    out = tmp_path / "fw.nc"
    assert main(["finite-width", "selu", "--depth", "8", "--width", "256", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Jensen" in text and out.exists()
    assert main(["finite-width", "dselu:epsilon=0.017", "--depth", "64", "--width", "64", "--force", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["valid"] is False and len(data["grad_mean"]) == 65
    # order 2: the forward closure to O(1/N²), its variance in the table and the JSON
    assert main(["finite-width", "dselu:epsilon=0.017", "--depth", "16", "--width", "256", "--order", "2"]) == 0
    assert "sd q / E q (O(1/N^2))" in capsys.readouterr().out
    assert main(["finite-width", "selu", "--depth", "4", "--width", "256", "--order", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["q_sample_var"]) == 5 and data["residual_var"][0] == 0.0


def test_reduced_chain_command(capsys):
    assert main(["reduced-chain", "--activation", "selu", "--depth", "4", "--width", "32", "--chains", "50",
                 "--quiet", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["q_measured_mean"]) == 5 and "grad_rel_error_fw" in data
    assert main(["reduced-chain", "--activation", "selu", "--depth", "4", "--width", "32", "--chains", "0"]) == 2


def _console(*args, tmp_path):
    """The console command as a user runs it: ``python -m meanfield.cli`` (``run``), a fresh process."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "meanfield.cli", *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)


def test_console_command_runs_without_dask_and_keeps_its_exit_codes(tmp_path):
    """``run`` marks dask absent for the commands that never use it and ends the process with
    os._exit after the exit handlers: the file is complete, the output flushed, the codes kept."""
    from meanfield.cli.main import DASK_FREE_COMMANDS, _command_name

    assert "sweep" not in DASK_FREE_COMMANDS and "simulate" in DASK_FREE_COMMANDS
    assert _command_name(["simulate", "--depth", "2"]) == "simulate"
    out = _console("simulate", "--activation", "selu", "--depth", "3", "--width", "32", "--batch", "8",
                   "--seeds", "2", "--out", "t.nc", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip().endswith("wrote t.nc")
    ds = xr.open_dataset(tmp_path / "t.nc")
    assert ds.q_measured.shape == (2, 4)
    ds.close()
    bad = _console("simulate", "--activation", "selu", "--depth", "0", "--width", "32", tmp_path=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["recursion", "selu", "--depth", "3", "--out", "{tmp}/r.nc"],
                                  ["simulate", "--activation", "selu", "--depth", "2", "--width", "8", "--out",
                                   "{tmp}/s.nc"],
                                  ["figure", "1", "--quick", "--out", "{tmp}/figs"]])
def test_a_missing_netcdf_writer_is_refused_before_any_work(argv, capsys, tmp_path, monkeypatch):
    """Without netCDF4 (a dependency; a bare GPU image can lack it) a command with --out stops at
    once with one line naming the package, instead of failing its write after the run."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "netCDF4" else find_spec(name, *a))
    code = main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install netCDF4" in err[0]
    assert not list(tmp_path.rglob("*.nc")) and not list(tmp_path.rglob("*.png"))
