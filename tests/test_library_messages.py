"""Library errors describe parameters, not command-line flags (issue 22).

An error raised by the library (everything under ``src/artlens`` but the front ends ``cli/`` and
``web/``) names the Python argument or config field it is about (``window_cm``, `` `rebuild=True` ``)
and carries it in ``param=``; the CLI shows it as its flag (:func:`artlens.cli.common.error_message`).
This test reads the source with :mod:`ast` (nothing is imported) and refuses a ``--flag`` in the
string literals and f-strings given to an exception raised, or to ``warnings.warn``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "artlens"
FRONT_ENDS = ("cli", "web")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _message_strings(call: ast.Call) -> list[ast.Constant]:
    """The string constants of a call's arguments, f-string parts and concatenations included."""
    found = []
    for arg in [*call.args, *(k.value for k in call.keywords if k.arg in (None, "message", "msg"))]:
        found += [n for n in ast.walk(arg) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return found


def flag_mentions(source: str, filename: str = "<string>") -> list[tuple[int, str]]:
    """``(line, flag)`` for every ``--flag`` in a message given to ``raise X(...)`` or ``warnings.warn(...)``."""
    hits = []
    for node in ast.walk(ast.parse(source, filename)):
        calls: list[ast.Call] = []
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            calls.append(node.exc)
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("warnings.warn", "warn"):
            calls.append(node)
        for call in calls:
            for const in _message_strings(call):
                hits += [(const.lineno, m.group(0)) for m in FLAG.finditer(const.value)]
    return hits


def test_the_checker_finds_flags_in_raised_messages() -> None:
    src = '''
def f(x, n):
    if x:
        raise ValueError(f"--window-cm {x} is too small; use --window-cm 2")
    if n:
        raise InvalidParameterError("nothing to train on: give --data DIR " "or more", param="data")
    warnings.warn(f"{n} left out (pass --drop-rare)", stacklevel=2)
    raise InvalidParameterError(f"window_cm {x} is too small; start over with `rebuild=True`", param="window_cm")
'''
    assert [flag for _, flag in flag_mentions(src)] == ["--window-cm", "--window-cm", "--data", "--drop-rare"]
    # a docstring or a comment about the CLI is no message; minus signs and ranges are no flags
    assert flag_mentions('"""``artlens threads count --out DIR``."""\nraise ValueError("x must be > -1, got --1")\n'
                         "# --out\n") == []


def test_library_errors_name_parameters_not_flags() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] in FRONT_ENDS:
            continue
        rel = path.relative_to(SRC.parent)
        offenders += [f"{rel}:{line}: {flag}" for line, flag in flag_mentions(path.read_text(), str(path))]
    assert not offenders, ("library messages name command-line flags; name the parameter (in backticks where it "
                           "is a plain word) and pass param=, the CLI shows the flag:\n" + "\n".join(offenders))
