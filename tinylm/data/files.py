"""Reading a user's data path (``--data``) with errors that name the flag, the expected and the
received value, instead of a traceback from deep inside a reader.

Every problem with a path the user gave raises :class:`DataError`, whose message starts with the
flag (``--data: no such file /x/y.txt (expected a UTF-8 text file)``); the examples' ``main``
(see :func:`tinylm.scripting.script_main`) prints it as one line and exits with status 2.

* :func:`check_file` / :func:`check_dir`: the path exists and is a file / a folder;
* :func:`read_text`: a UTF-8 text file's contents;
* :func:`reading`: a ``with`` block around a data set reader, turning the reader's own
  ``FileNotFoundError`` / ``ValueError`` (its message says what is wrong) into a :class:`DataError`;
* :func:`read_word_corpus`: lines of space-separated tokens from several files (word vectors).

Used by the scripts in examples/. Tests: tests/test_examples.py.
"""
from __future__ import annotations

import contextlib
import os
import pathlib

__all__ = ["DataError", "check_file", "check_dir", "read_text", "reading", "read_word_corpus"]


class DataError(Exception):
    """A data path given by the user is missing, of the wrong kind, or not in the expected format.
    The message starts with the flag that named it."""


def check_file(path, flag: str = "--data", expected: str = "a UTF-8 text file") -> pathlib.Path:
    """``path`` as a Path if it is an existing file; else :class:`DataError` naming ``flag``."""
    path = pathlib.Path(os.fspath(path))
    if not path.exists():
        raise DataError(f"{flag}: no such file {path} (expected {expected})")
    if not path.is_file():
        raise DataError(f"{flag}: {path} is a directory, not a file (expected {expected})")
    return path


def check_dir(path, flag: str = "--data", expected: str = "a folder") -> pathlib.Path:
    """``path`` as a Path if it is an existing folder; else :class:`DataError` naming ``flag``."""
    path = pathlib.Path(os.fspath(path))
    if not path.exists():
        raise DataError(f"{flag}: no such folder {path} (expected {expected})")
    if not path.is_dir():
        raise DataError(f"{flag}: {path} is a file, not a folder (expected {expected})")
    return path


def read_text(path, flag: str = "--data", expected: str = "a UTF-8 text file") -> str:
    """The contents of a UTF-8 text file; :class:`DataError` naming ``flag`` when it is missing, a
    folder, unreadable, not UTF-8 or empty."""
    path = check_file(path, flag, expected)
    with reading(flag, path, expected):
        text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise DataError(f"{flag}: {path} is empty (expected {expected})")
    return text


@contextlib.contextmanager
def reading(flag: str, path, expected: str = "a UTF-8 text file"):
    """Within the block, a reader's ``OSError`` (missing file, a folder, no permission),
    ``UnicodeDecodeError`` or ``ValueError`` (a line in the wrong format: these readers say which)
    becomes a :class:`DataError` naming ``flag``. Only those types: anything else is a bug and
    keeps its traceback."""
    try:
        yield
    except UnicodeDecodeError as e:
        raise DataError(f"{flag}: {path} is not UTF-8 text ({e.reason} at byte {e.start}; expected {expected})") from e
    except FileNotFoundError as e:     # the OS's (it has a filename) or a reader's own message
        if e.filename:
            raise DataError(f"{flag}: no such file {e.filename} (expected {expected})") from e
        raise DataError(f"{flag}: {e}") from e
    except OSError as e:               # IsADirectoryError, NotADirectoryError, PermissionError, ...
        raise DataError(f"{flag}: cannot read {e.filename or path}: {e.strerror or e} (expected {expected})") from e
    except ValueError as e:            # the readers' format errors: "file, line N: expected ..., got ..."
        raise DataError(f"{flag}: {e}") from e


def read_word_corpus(paths, lowercase: bool = True, flag: str = "--data") -> list[list[str]]:
    """Token lists, one per non-empty line of each file: tokens are separated by spaces, lines that
    start with ``=`` (WikiText headings such as `` = Title = ``) are skipped, and a ``.tsv`` file
    contributes the first column of each row after its header (SST-2's sentences)."""
    sentences = []
    for path in paths:
        lines = read_text(path, flag, "a UTF-8 text file of space-separated tokens, or a .tsv").splitlines()
        if pathlib.Path(path).suffix == ".tsv":          # header, then text<TAB>label
            lines = [line.split("\t")[0] for line in lines[1:]]
        for line in lines:
            tokens = line.split()
            if not tokens or tokens[0] == "=":           # blank line or WikiText heading
                continue
            sentences.append([t.lower() for t in tokens] if lowercase else tokens)
    if not sentences:
        raise DataError(f"{flag}: no text in {', '.join(map(str, paths))}")
    return sentences
