"""Provenance records written next to every result: what produced it, with which settings."""

from __future__ import annotations

import hashlib
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from artlens import __version__


def sha256_file(path: str | os.PathLike[str], chunk_bytes: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in chunks so that multi-GB plates never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def provenance(method: str, parameters: dict[str, Any], model_checksum: str | None = None) -> dict[str, Any]:
    """A JSON-ready record of how a result was made.

    Args:
        method: name of the method (``"spectral"``, ``"cnn"``, ...).
        parameters: every setting that changes the result, in physical units.
        model_checksum: SHA-256 of the weights file for learned methods; ``None`` for methods
            without a model.
    """
    return {
        "method": method,
        "parameters": parameters,
        "artlens_version": __version__,
        "model_checksum": model_checksum,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
    }


def resolve_path(path: str | os.PathLike[str]) -> str:
    """Absolute path as a string, for records."""
    return str(Path(path).expanduser().resolve())
