"""Record what a command computed in the catalog: one analysis per result, with the image it is about.

Commands that produce results (``index``, ``search``, ``classify predict``, ...) call :func:`record`
once at the end, so the web app and ``artlens catalog`` see every analysis. Each analysis carries the
method, the resolved parameters, the artlens version, the model checksum (learned methods), the
summary and the paths of the files written.

Example:
    >>> from artlens.catalog.record import Analysis, record
    >>> ids = record("/tmp/doc.db", [Analysis("paintings.search", {"k": 5}, {"results": []}, [])])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Analysis:
    """One result to record.

    Attributes:
        method: e.g. ``paintings.search``.
        parameters: every setting that changes the result (JSON-ready).
        summary: the result (JSON-ready).
        outputs: paths of the files written.
        image: the image the result is about, if any; recorded with its SHA-256 when the file exists.
        modality: of that image (``rgb``, ``xray``, ...).
        model_checksum: SHA-256 of the model weights, for learned methods.
    """

    method: str
    parameters: dict[str, Any]
    summary: dict[str, Any]
    outputs: list[str] = field(default_factory=list)
    image: str | os.PathLike[str] | None = None
    modality: str = "rgb"
    model_checksum: str | None = None


def record(catalog: str | os.PathLike[str] | None, analyses: Iterable[Analysis]) -> list[int]:
    """Add the analyses (and their images) to the catalog in ``catalog``; returns the analysis ids.

    Args:
        catalog: a SQLite file or a ``postgresql://`` URL; ``None``: ``$ARTLENS_CATALOG`` or ``./artlens.db``.
        analyses: what to record.

    Raises:
        CatalogError: the catalog cannot be opened or written.
    """
    from artlens.catalog import Catalog

    with Catalog(catalog) as cat:
        return add_analyses(cat, analyses)


def add_analyses(cat: Any, analyses: Iterable[Analysis]) -> list[int]:
    """:func:`record` into an open :class:`~artlens.catalog.Catalog` (a batch keeps one open while its items finish)."""
    from artlens import __version__
    from artlens.provenance import sha256_file

    ids = []
    for a in analyses:
        image_id = None
        if a.image is not None and Path(a.image).is_file():
            image_id = cat.add_image(a.image, sha256_file(a.image), a.modality)
        ids.append(cat.add_analysis(image_id, a.method, a.parameters, __version__, a.summary,
                                    [os.fspath(p) for p in a.outputs], model_checksum=a.model_checksum))
    return ids


def recorded_item_keys(cat: Any, method: str) -> set[str]:
    """The ``item_key`` of every analysis of ``method`` that a batch recorded (its summary carries the key of
    :func:`artlens.engine.item_key`), so that an item redone after a kill is not recorded twice."""
    return {str(a["summary"]["item_key"]) for a in cat.analyses(method=method)
            if isinstance(a.get("summary"), dict) and a["summary"].get("item_key")}
