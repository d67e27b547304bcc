"""The ``meanfield`` command line: the parser and ``main``.

Every subcommand prints a readable table, or one JSON object with ``--json``.
Bad input prints one line on stderr naming the problem and exits with 2.

The theory's subcommands are in :mod:`.theory_commands`.  Packages built on ``meanfield``
add theirs through the ``meanfield.commands`` entry-point group: each entry
is a function ``register(command)`` that calls ``command(name, handler,
help)`` and adds arguments to the parser it returns.  Registering imports
only that light module; a handler imports what it needs (torch, matplotlib)
when it runs.  Handlers may use the helpers of :mod:`.common`
(:class:`UsageError`, :func:`parse_floats`, :func:`emit_json`, :func:`table`,
:func:`check_output_path`), the command line's public interface.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

from .._version import __version__
from . import theory_commands
from .common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, MissingExtraError, Parser, UsageError


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="meanfield", description="Mean-field signal propagation: theory, Monte-Carlo and figures.")
    p.add_argument("--version", action="version", version=f"meanfield {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")

    def command(name, func, help_text):
        c = sub.add_parser(name, help=help_text, description=help_text)
        c.set_defaults(func=func)
        return c

    theory_commands.register(command)
    _register_extensions(sub, command)
    return p


COMMAND_GROUP = "meanfield.commands"


def _register_extensions(sub, command):
    """Subcommands registered by other installed packages (``meanfield.commands`` entry points)."""
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        entry.load()(command)


def reference_markdown() -> str:
    """docs/cli.md: every command and option, from the parser itself.

    Regenerate with ``python -c "import meanfield.cli as c; print(c.reference_markdown(), end='')" > docs/cli.md``;
    a test checks that the file is current.
    """
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    lines = ["# Command line reference", "",
             "Generated from the parser (`meanfield.cli.reference_markdown`); every command prints a table, "
             "or one JSON object with `--json`. Bad input prints one line on stderr and exits with 2.", ""]
    for name, command in sub.choices.items():
        command.formatter_class = functools.partial(argparse.HelpFormatter, width=100)  # not the terminal's
        lines += [f"## `meanfield {name}`", "", command.description or "", "", "```", command.format_usage().strip(),
                  "```", ""]
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flags = ", ".join(f"`{o}`" for o in action.option_strings) or f"`{action.dest}`"
            lines.append(f"* {flags}: {action.help}")
        lines.append("")
    return "\n".join(lines)


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    return f"meanfield: warning: {message}\n"


#: The package's commands that never use dask (every one but ``sweep``).  xarray imports dask's
#: array module whenever it builds a variable and ``dask.distributed`` whenever it writes a netCDF
#: file, if dask is installed (to test for dask's types and scheduler: 1.1 s here, a tenth of
#: ``meanfield simulate`` at width 2048), although these commands hold numpy arrays only.  Their
#: process tells Python that dask is absent (``sys.modules["dask"] = None``, which makes
#: ``import dask`` raise ImportError and ``importlib.util.find_spec`` return None), and xarray
#: takes its path without dask.  Only :func:`run`, which owns its process, does this.
DASK_FREE_COMMANDS = frozenset({"solve", "moments", "recursion", "dropout", "finite-width", "criticality",
                                "fixedpoint", "table5", "validate", "activations", "figure", "simulate", "spectrum",
                                "reduced-chain"})


def _command_name(argv):
    """The subcommand named on the command line (the first argument not an option), or None."""
    return next((a for a in argv if not a.startswith("-")), None)


def run():
    """The ``meanfield`` console command: :func:`main`, then the process ends without tearing the
    interpreter down when nothing is left to wait for.  A command of :data:`DASK_FREE_COMMANDS`
    runs with dask marked absent.

    Python's shutdown after torch has been imported takes 0.4-0.5 s (measured here: clearing
    torch's modules), paid after the work is done and the file written.  So once the command has
    finished, the exit handlers run (``atexit``: logging's flush, multiprocessing's children,
    temporary folders), stdout and stderr are flushed and the process exits with ``os._exit``;
    with a non-daemon thread still running, Python's ordinary exit waits for it instead."""
    import atexit
    import threading

    if _command_name(sys.argv[1:]) in DASK_FREE_COMMANDS and "dask" not in sys.modules:
        sys.modules["dask"] = None
    code = main()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    try:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        pass
    os._exit(code)


def main(argv=None) -> int:
    """Run the command line; returns the exit code: 0 done, 1 a check failed or a fault during
    the work (disk full, a lost scheduler: one line naming the path or address), 2 bad input."""
    import warnings

    formatwarning, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        return args.func(args)
    except MissingExtraError as exc:
        print(f"meanfield: error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except UsageError as exc:
        message = str(exc)
        prefix = "meanfield: error: "
        print(message if message.startswith("meanfield") else prefix + message, file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"meanfield: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("meanfield: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as Unix tools do
        sys.stdout = open(os.devnull, "w")
        return EXIT_OK
    except OSError as exc:  # a fault of the filesystem or the network during the work
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"meanfield: error: {where}{exc.strerror or exc}; nothing partial was left behind", file=sys.stderr)
        return EXIT_FAIL
    finally:
        warnings.formatwarning = formatwarning

