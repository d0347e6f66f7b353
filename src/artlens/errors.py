"""Errors that artlens reports to users as one line, with a stable exit code.

Library code raises these; the CLI catches :class:`ArtlensError`, prints ``error: <message>`` on
stderr and exits with :attr:`ArtlensError.exit_code`. Anything else is a bug and keeps its traceback.

Library messages describe parameters, not command-line flags: an error about one parameter carries
its name in :attr:`ArtlensError.param` (``InvalidParameterError("window_cm must be positive",
param="window_cm")``), and the CLI shows it under the flag that sets it (``--window-cm``; see
:func:`artlens.cli.common.error_message`). Advice that names a parameter which is a plain word, a
setting, or a library function writes it in backticks (``"give `data` and/or `synthetic`"``,
``"start over with `rebuild=True`"``, ``"build one with `build_index`"``); the CLI turns those into
``--data``, ``--rebuild`` and the ``artlens index`` command. ``tests/test_library_messages.py``
checks that no library message names a ``--flag``.

Example:
    >>> err = InvalidParameterError("window_cm must be positive, got -1", param="window_cm")
    >>> err.param, err.exit_code, str(err)
    ('window_cm', 7, 'window_cm must be positive, got -1')
"""

from __future__ import annotations

from typing import Any


class ArtlensError(Exception):
    """Base class of every error meant for the user (exit code 1).

    Args:
        *args: the message (and any further arguments of the built-in exception it also is).
        param: name of the parameter (a Python argument or config field) that the error is about,
            if any; the CLI maps it to its flag.
    """

    exit_code = 1
    param: str | None = None

    def __init__(self, *args: Any, param: str | None = None) -> None:
        super().__init__(*args)
        if param is not None:
            self.param = param  # in the instance __dict__, so pickling keeps it


class InputNotFoundError(ArtlensError, FileNotFoundError):
    """A file named by the user does not exist (exit code 3)."""

    exit_code = 3


class UnreadableInputError(ArtlensError):
    """A file exists but cannot be decoded: empty, truncated, corrupt or of an unsupported format
    (exit code 4)."""

    exit_code = 4


class InvalidImageError(ArtlensError):
    """An image decodes but its content cannot be used: NaN/inf pixels, too many pixels, too small
    for the requested window (exit code 5)."""

    exit_code = 5


class MissingResolutionError(ArtlensError):
    """The physical resolution (px/cm) is needed but neither the file nor the user gives it
    (exit code 6)."""

    exit_code = 6


class InvalidParameterError(ArtlensError, ValueError):
    """A parameter is out of its valid range (exit code 7)."""

    exit_code = 7


class CatalogError(ArtlensError):
    """The catalog database cannot be opened or written (exit code 8)."""

    exit_code = 8


class NetworkError(ArtlensError):
    """A remote source cannot be reached, refuses the request, or answers with something unusable
    (HTML or malformed JSON where JSON was expected) after the allowed retries (exit code 9)."""

    exit_code = 9


class MissingExtraError(ArtlensError, ImportError):
    """A command needs an optional part of artlens that is not installed, e.g. the learned models
    (``pip install 'artlens[dl]'``; see :mod:`artlens.extras`) (exit code 10)."""

    exit_code = 10
