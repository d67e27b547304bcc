"""The ``meanfield`` command line.

* ``main``: the parser, the entry-point subcommands of other packages, ``main(argv) -> exit code``;
* ``theory_commands``: the theory's subcommands (solve, moments, recursion, finite-width, ...);
* ``common``: what every subcommand shares, the public interface for packages that add
  subcommands (:class:`UsageError`, :func:`parse_floats`, :func:`emit_json`, :func:`table`,
  :func:`check_output_path`, :func:`check_output_folder`, :func:`parse_widths`,
  :func:`network_arguments`).

The command line sits on top: it may import every other part of ``meanfield``, and only when a
handler runs, so that ``meanfield --help`` starts in a fraction of a second.
"""

from .common import (EXIT_FAIL, EXIT_OK, EXIT_USAGE, JSON_HELP, SPEC_HELP, MissingExtraError, UsageError,
                     check_output_folder, require_extra,
                     check_output_path, emit_json, network_arguments, parse_dropped, parse_floats, parse_widths,
                     save_result, table)
from .main import build_parser, main, reference_markdown

__all__ = ["EXIT_FAIL", "EXIT_OK", "EXIT_USAGE", "JSON_HELP", "SPEC_HELP", "MissingExtraError", "UsageError",
           "build_parser", "require_extra",
           "check_output_folder", "check_output_path", "emit_json", "main", "network_arguments", "parse_floats",
           "parse_dropped", "parse_widths", "reference_markdown", "save_result", "table"]
