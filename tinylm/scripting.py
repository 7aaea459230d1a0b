"""What the example scripts share on the command line: argparse types that reject out-of-range
numbers with one usage line, and :func:`script_main`, which turns the errors a user can fix into
one line and exit status 2 instead of a traceback.

    from tinylm.scripting import positive_int, script_main

    @script_main
    def main(argv=None):
        p = argparse.ArgumentParser()
        p.add_argument("--steps", type=positive_int, default=100)
        ...

The errors :func:`script_main` reports (and only these; anything else is a bug and keeps its
traceback): :class:`tinylm.data.files.DataError` (a ``--data`` path that is missing, of the wrong
kind or in the wrong format), :class:`ScriptError` (any other bad input or missing optional
package a script detects), :class:`tinylm.BackendUnavailableError` (``--backend cupy`` without
CuPy or a GPU), and an unknown ``TINYLM_BACKEND``, checked before ``main`` runs.

Not the ``tinylm`` command (``tinylm/cli.py`` is reserved for that). Tests: tests/test_examples.py.
"""
from __future__ import annotations

import argparse
import functools
import inspect
import math
import os
import pathlib
import sys

from tinylm.backend import BACKEND_NAMES, BackendUnavailableError
from tinylm.data.files import DataError

__all__ = ["ScriptError", "positive_int", "nonnegative_int", "positive_float", "nonnegative_float",
           "check_backend_env", "script_main"]


class ScriptError(Exception):
    """Bad input a script detects itself (the message names the flag), or a missing optional package."""


def _number(kind, text: str, ok, expected: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an int >= 1 (steps, epochs, sizes)."""
    return _number(int, text, lambda v: v >= 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    """argparse type: an int >= 0 (a seed, or a size where 0 means "all")."""
    return _number(int, text, lambda v: v >= 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0 (minutes, learning rates)."""
    return _number(float, text, lambda v: math.isfinite(v) and v > 0, "a positive number")


def nonnegative_float(text: str) -> float:
    """argparse type: a finite float >= 0 (dropout, weight decay, a clipping norm where 0 means off)."""
    return _number(float, text, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")


def check_backend_env() -> None:
    """:class:`ScriptError` if the environment variable TINYLM_BACKEND names no backend."""
    name = os.environ.get("TINYLM_BACKEND", "").strip().lower()
    if name and name not in BACKEND_NAMES:
        raise ScriptError(f"TINYLM_BACKEND: expected one of {', '.join(BACKEND_NAMES)}, "
                          f"got {os.environ['TINYLM_BACKEND']!r}")


def script_main(main):
    """Decorate a script's ``main(argv=None)``: a :class:`DataError`, :class:`ScriptError` or
    :class:`BackendUnavailableError` is printed as ``<script>: error: <message>`` on stderr and
    ends the process with status 2 (argparse's status for a usage error), like a bad flag."""
    prog = pathlib.Path(inspect.getsourcefile(main) or sys.argv[0]).name

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            check_backend_env()
            return main(*args, **kwargs)
        except (DataError, ScriptError, BackendUnavailableError) as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
    return wrapper
