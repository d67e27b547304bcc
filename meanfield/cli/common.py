"""What every subcommand shares: the usage error, number lists, output as a table or JSON, and
the checks that an output path can be written before any work starts.

These are the command line's public interface for the packages that add subcommands through the
``meanfield.commands`` entry points (``sim``, ``figures``).
"""

from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input: one line on stderr, exit code 2."""


class MissingExtraError(Exception):
    """A command needs an optional dependency that is not installed: one line naming the ``pip install``
    that adds it, exit code 1 (a fault of the environment, not of the input), before anything is made."""


def require_extra(command, module, extra):
    """Raise :class:`MissingExtraError` unless ``module`` can be imported (checked without importing it)."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses the name: as good as absent
        found = False
    if not found:
        raise MissingExtraError(f"{command} needs {module}: pip install 'meanfield[{extra}]'")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (a :class:`UsageError`, exit code 2) instead of a usage dump."""

    def error(self, message):  # one line, no usage dump
        raise UsageError(f"{self.prog}: error: {message}")


def parse_floats(text: str, name: str) -> list[float]:
    """A comma- (or space-) separated list of numbers; an empty item is an error, not dropped."""
    items = [v for v in text.replace(" ", ",").split(",")]
    if " " not in text and any(v == "" for v in items) and text.strip():
        raise UsageError(f"{name} has an empty item in {text!r}; give numbers separated by single commas")
    try:
        values = [float(v) for v in items if v]
    except ValueError:
        raise UsageError(f"{name} must be a comma-separated list of numbers, got {text!r}") from None
    if not values:
        raise UsageError(f"{name} is empty")
    return values


def parse_dropped(text):
    """``--dropped``: alpha dropout's rule name ('saturation', 'mean'), or a number given as text; the
    theory (``meanfield.theory.dropout``) names what is not valid."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def scalar_or_list(values):
    return values[0] if len(values) == 1 else np.array(values)


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(type(obj).__name__)


def _clean(value):
    """NaN and inf as JSON null / strings are not valid JSON numbers: map them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def emit_json(obj):
    print(json.dumps(_clean(obj), default=_json_default, allow_nan=False))


def table(header, rows):
    cells = [list(map(str, header))] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(v):
    if isinstance(v, (float, np.floating)):
        return f"{v:.10g}"
    return str(v)


def check_output_folder(path, option="--out"):
    """Fail before any work if ``path`` cannot be the output folder: a file, a missing parent, or not
    writable (exit code 2).  The folder is created when its parent exists."""
    import tempfile

    _require_netcdf_writer()
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{option} {path!r} is a file; name a folder")
    if not os.path.isdir(os.path.dirname(path)):
        raise UsageError(f"{option}: parent folder {os.path.dirname(path)!r} does not exist")
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        raise UsageError(f"{option} {path!r} is not writable ({exc.strerror}); choose a folder you can write") from None


def check_output_path(path, suffix):
    """Fail before any work if ``path`` cannot be written (exit code 2), or if it names an existing file
    that meanfield did not write: a result never overwrites a user's other file."""
    _require_netcdf_writer()
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"--out: directory {directory!r} does not exist")
    if suffix and not path.endswith(suffix):
        raise UsageError(f"--out must name a file ending in {suffix}, got {path!r}")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"--out: directory {directory!r} is not writable")
    if os.path.lexists(path) and not _written_by_meanfield(path):
        raise UsageError(f"--out {path!r} exists and is not a result meanfield wrote; choose another name or "
                         "remove it first")


def _require_netcdf_writer():
    from ..results import netcdf_writer_missing

    reason = netcdf_writer_missing()
    if reason is not None:
        raise UsageError(f"--out: {reason}")


def _written_by_meanfield(path) -> bool:
    """Whether ``path`` is a netCDF file whose attributes carry meanfield's version stamp."""
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not (head.startswith(b"\x89HDF") or head.startswith(b"CDF")):
        return False
    try:
        import netCDF4

        with netCDF4.Dataset(path) as nc:
            return "meanfield_version" in nc.ncattrs()
    except Exception:  # unreadable: not ours to overwrite
        return False


def save_result(ds, path):
    """Write a computed result to ``path``; when the file system refuses (a full disk), keep it in the
    temporary folder instead and say where, in one line (exit code 1), so nothing computed is lost."""
    import tempfile

    from ..results import write_netcdf

    try:
        return write_netcdf(ds, path)
    except OSError as exc:
        keep = os.path.join(tempfile.gettempdir(), f"meanfield-{os.getpid()}-{os.path.basename(path)}")
        try:
            write_netcdf(ds, keep)
        except OSError:
            raise OSError(exc.errno, f"{exc.strerror or exc}; the result could not be kept elsewhere either",
                          path) from None
        raise OSError(exc.errno, f"{exc.strerror or exc}; the result is kept in {keep}: move it where there is "
                                 "room", path) from None


def parse_widths(text: str):
    """``--width``: one width N (an int), or N_0..N_L comma-separated (a list); non-integers are
    kept so that the library's check names them."""
    widths = [int(v) if float(v).is_integer() else v for v in parse_floats(text, "--width")]
    return widths[0] if len(widths) == 1 else widths


def network_arguments(c):
    """The options that shape one finite network (``finite-width``, ``simulate``, ``reduced-chain``):
    --depth, --width (``parse_widths``), --q0, --sigma-w2, --sigma-b2."""
    c.add_argument("--depth", type=int, required=True, help="number of layers L")
    c.add_argument("--width", required=True, help="one width N, or N_0..N_L comma-separated")
    c.add_argument("--q0", type=float, default=1.0, help="second moment of the input pre-activations (default 1)")
    c.add_argument("--sigma-w2", type=float, default=1.0, help="weight variance gain sigma_w^2 (default 1)")
    c.add_argument("--sigma-b2", type=float, default=0.0, help="bias variance sigma_b^2 (default 0)")


SPEC_HELP = "activation spec, e.g. 'selu', 'sselu:epsilon=0.03' ('meanfield activations' lists them)"
JSON_HELP = "print one JSON object instead of a table"

