"""``python -m meanfield.cli``: the command line."""

from .main import run

run()
