"""The newcomer's path: every Python block of the README and the tutorial runs, docs/cli.md is
current, every command-line option has help text, the examples run, and an installed package
keeps no numba cache inside site-packages."""

import argparse
import os
import pathlib
import re
import subprocess
import sys

import pytest

import meanfield.cli as cli

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("page", ["README.md", "docs/tutorial.md", "docs/numerics.md"])
def test_every_python_block_runs(page, tmp_path, monkeypatch):
    """The blocks of a page run in order in one namespace, as a reader would paste them."""
    monkeypatch.chdir(tmp_path)
    namespace = {}
    blocks = _python_blocks(ROOT / page)
    assert blocks, page
    for i, block in enumerate(blocks):
        exec(compile(block, f"{page} block {i + 1}", "exec"), namespace)  # noqa: S102 - our own docs


def test_readme_is_a_map_not_a_wall():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    first_screen = "\n".join(text.splitlines()[:20])
    assert "meanfield validate" in first_screen and "python -m pytest -q" in first_screen


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"# install the test extras and run the tests\n(.*)\n", readme).group(1)
    assert command in (ROOT / ".ci" / "run").read_text()


def test_cli_reference_is_current():
    assert (ROOT / "docs" / "cli.md").read_text() == cli.reference_markdown(), (
        "regenerate: python -c \"import meanfield.cli as c; print(c.reference_markdown(), end='')\" > docs/cli.md")


def test_every_option_has_help_text():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {a.dest}" for name, command in sub.choices.items() for a in command._actions
               if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not missing, missing
    assert all(command.description for command in sub.choices.values())


EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_runs_at_its_default_size(example, tmp_path):
    """Each example writes a netCDF file and a PNG (its default size; CI runs them all)."""
    result = subprocess.run([sys.executable, str(ROOT / "examples" / example), "--out", str(tmp_path)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    written = [p.suffix for p in tmp_path.rglob("*") if p.is_file()]
    assert ".nc" in written and ".png" in written, written


@pytest.mark.slow
def test_installed_package_keeps_no_numba_cache(tmp_path):
    """A non-editable install (as the README's first command makes) compiles into the user cache,
    not into site-packages, so a later `pip install -e .` is not shadowed by leftovers."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, timeout=600)
    env = {**os.environ, "PYTHONPATH": str(target), "MEANFIELD_CACHE_DIR": str(tmp_path / "cache")}
    # enough points that the kernels compile (meanfield.gauss.jit.COLD_POINTS run interpreted)
    code = ("import numpy as np, meanfield as mf\nq0 = np.linspace(0.5, 2.0, 4096)\nmf.recursion('selu', 4, q0=q0)\n"
            "mf.finite_width('selu', 4, q0=q0, widths=16)\n"
            "assert mf.__file__.startswith(%r), mf.__file__\n" % str(target))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path, timeout=600)
    leftovers = [str(p) for p in target.rglob("*") if p.suffix in (".nbi", ".nbc")]
    assert not leftovers, leftovers
    assert list((tmp_path / "cache").rglob("*.nbi"))
