"""Nothing silently wrong: each case a user or an adversary met, reproduced (issue: the mean-weight
gradient theory, overwritten files, full disks, NaN results, missing extras, honest messages)."""

import errno
import importlib.util
import json
import os

import numpy as np
import pytest

import meanfield as mf
from meanfield.cli import main


def _one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_mean_weight_marks_the_gradient_theory_invalid(capsys):
    sim = pytest.importorskip("sim")
    pytest.importorskip("torch")
    ds = sim.simulate("selu", depth=3, width=32, batch=8, seeds=2, mean_weight=0.5 / 32)
    assert np.all(np.isnan(ds.grad_theory.values)) and np.all(np.isnan(ds.grad_rel_error.values))
    assert ds.attrs["grad_theory_valid"].startswith("no")
    assert np.all(np.isfinite(ds.q_theory.values))  # the forward theory (Prop 3.2 with eq 12) still applies
    assert main(["simulate", "--activation", "selu", "--depth", "3", "--width", "32", "--batch", "8",
                 "--mean-weight", "0.0156", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "n/a" in out and "+nan%" not in out and "zero-mean weights" in out


def test_a_file_meanfield_did_not_write_is_not_overwritten(tmp_path, capsys):
    path = tmp_path / "notes.nc"
    path.write_text("my notes")
    assert main(["recursion", "selu", "--depth", "3", "--out", str(path)]) == 2
    assert "not a result meanfield wrote" in _one_line(capsys)
    assert path.read_text() == "my notes"
    ours = tmp_path / "ours.nc"
    assert main(["recursion", "selu", "--depth", "3", "--out", str(ours)]) == 0
    assert main(["recursion", "selu", "--depth", "4", "--out", str(ours)]) == 0  # its own file: replaced


def test_a_full_disk_keeps_the_result_elsewhere(tmp_path, monkeypatch, capsys):
    from meanfield import results

    real = results.write_netcdf
    target = str(tmp_path / "out.nc")

    def full(ds, path):
        if path == target:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real(ds, path)

    monkeypatch.setattr(results, "write_netcdf", full)
    assert main(["recursion", "selu", "--depth", "5", "--out", target]) == 1
    line = _one_line(capsys)
    assert "No space left on device" in line and "kept in" in line
    kept = line.split("kept in ")[1].split(":")[0]
    assert os.path.isfile(kept) and not os.path.exists(target)
    import xarray as xr

    assert xr.load_dataset(kept).sizes["layer"] == 6
    os.remove(kept)


@pytest.mark.parametrize("argv,message", [
    (["solve", "sselu:lambda=1e308,alpha=1e308,beta=1e308"], "non-finite moments"),
    (["solve", "elu:a=1e308"], "non-finite moments"),
    (["finite-width", "selu", "--depth", "4", "--width", "64", "--q0", "1e300", "--force"], "not finite"),
    (["moments", "selu", "--q", "1,,2"], "empty item"),
    (["sweep", "/dev/null", "--out", "OUT"], "not a regular file"),
    (["finite-width", "selu", "--depth", "64", "--width", "8"], "max Var s/(E s)^2 = "),
])
def test_no_quiet_nan_and_honest_messages(tmp_path, capsys, argv, message):
    pytest.importorskip("dask")
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    assert message in _one_line(capsys)
    assert not (tmp_path / "out").exists()


def test_the_finite_width_refusal_quotes_only_what_failed(capsys):
    main(["finite-width", "selu", "--depth", "64", "--width", "8"])
    import re

    quoted = re.findall(r"= ([0-9.]+) >= ([0-9.]+)", _one_line(capsys))
    assert quoted and all(float(value) >= float(limit) for value, limit in quoted)


def test_stat_layers_beyond_the_depth_are_refused_before_running(tmp_path, capsys):
    pytest.importorskip("dask")
    sweep = tmp_path / "s.toml"
    sweep.write_text('[grid]\nactivation = ["selu"]\ndepth = [4]\n[simulate]\nstat_layers = [99]\n')
    out = tmp_path / "run"
    assert main(["sweep", str(sweep), "--out", str(out)]) == 2
    assert "every layer must lie in 0..depth" in _one_line(capsys)
    assert not out.exists()


def test_one_draw_says_it_has_no_standard_error(capsys):
    pytest.importorskip("torch")
    assert main(["simulate", "--activation", "selu", "--depth", "2", "--width", "16", "--batch", "4", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "± nan" not in out and "one draw: no SE" in out


@pytest.mark.parametrize("argv,module,extra", [
    (["sweep", "FILE", "--out", "OUT"], "dask", "sweep"),
    (["figure", "1", "--out", "OUT"], "matplotlib", "figures"),
    (["simulate", "--activation", "selu", "--depth", "2", "--width", "8"], "torch", "sim"),
])
def test_a_missing_extra_names_its_install_before_making_anything(tmp_path, monkeypatch, capsys, argv, module,
                                                                   extra):
    sweep = tmp_path / "s.toml"
    sweep.write_text('[grid]\nactivation = ["selu"]\ndepth = [2]\n[theory]\n')
    argv = [str(tmp_path / "out") if a == "OUT" else str(sweep) if a == "FILE" else a for a in argv]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    assert main(argv) == 1
    assert f"pip install 'meanfield[{extra}]'" in _one_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kwargs", [dict(q0="1"), dict(sigma_w2="1.0"), dict(sigma_b2=["0"])])
def test_numbers_given_as_text_are_refused_as_depth_is(kwargs):
    with pytest.raises(ValueError, match="must be numeric"):
        mf.recursion("selu", 3, **kwargs)
    with pytest.raises(ValueError, match="depth must be an integer"):
        mf.recursion("selu", "3")


def test_validate_reports_progress(capsys):
    assert main(["validate", "--theory-only", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["passed"] is True
    assert "validate: theory:" in captured.err


@pytest.mark.parametrize("command", [["recursion", "selu", "--depth", "4"],
                                     ["finite-width", "selu", "--depth", "4", "--width", "256"]])
def test_the_netcdf_librarys_own_failure_keeps_the_result(tmp_path, monkeypatch, capsys, command):
    """A disk that fills inside the netCDF library ends in its RuntimeError ('NetCDF: HDF error'),
    not an OSError: one line, exit 1, the result kept elsewhere, nothing partial left at --out."""
    import xarray as xr

    real = xr.Dataset.to_netcdf
    target = tmp_path / "r.nc"

    def failing(self, path, *args, **kwargs):
        if str(path).startswith(str(tmp_path)):
            raise RuntimeError("NetCDF: HDF error")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", failing)
    assert main(command + ["--out", str(target)]) == 1
    line = _one_line(capsys)
    assert "HDF error" in line and "kept in" in line
    kept = line.split("kept in ")[1].split(":")[0]
    assert os.path.isfile(kept) and not os.listdir(tmp_path)
    os.remove(kept)


def test_simulate_at_a_huge_q0_flags_what_it_cannot_compare(capsys):
    """q0 = 1e300: the network's numbers are data; where the finite-width theory overflows its columns
    read n/a and a line says why, never '+nan%'."""
    pytest.importorskip("torch")
    assert main(["simulate", "--activation", "selu", "--depth", "3", "--width", "16", "--batch", "4", "--seeds", "2",
                 "--q0", "1e300", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "nan%" not in out and "n/a" in out and "not finite" in out
