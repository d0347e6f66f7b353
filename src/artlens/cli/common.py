"""Small helpers shared by several commands."""

from __future__ import annotations

import csv
from pathlib import Path

from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError


def read_pairs_csv(path: Path) -> list[tuple[str, str]]:
    """Pairs ``(a, b)`` from a CSV with columns ``a,b``; relative paths resolve against the CSV's folder
    (or the working directory when they exist there)."""
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UnreadableInputError(f"{path}: not a readable CSV ({exc})") from None
    if rows and not {"a", "b"} <= set(rows[0]):
        raise InvalidParameterError(f"{path}: needs columns 'a' and 'b'")

    def where(p: str) -> str:
        q = Path(p)
        return str(q if q.is_absolute() or q.exists() else path.parent / q)

    return [(where(r["a"] or ""), where(r["b"] or "")) for r in rows]
