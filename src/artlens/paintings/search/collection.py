"""The images of a collection, with their labels: :func:`load_collection`, the one loader behind
``artlens index``, ``verify --background`` and :func:`~artlens.paintings.search.build_index`.

Folders and CSV files are read by :mod:`artlens.paintings.datasets` (a folder is listed by
:func:`artlens.io.scan.scan_images`); this module only decides which reader a source goes to and
turns its records into a :class:`Collection`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from artlens.errors import InputNotFoundError, InvalidParameterError
from artlens.io.scan import is_image_file
from artlens.paintings.datasets import PaintingDataset
from artlens.provenance import resolve_path

__all__ = ["RESERVED", "Collection", "clean_label", "load_collection"]

RESERVED = ("path", "sha256", "vector")
"""Column names of ``vectors.parquet`` that a label column may not take (such labels are dropped)."""

LABELS_CSV = "labels.csv"
"""A folder holding this file is read through it (the images it lists, with its columns as labels)."""


class _Record(Protocol):
    @property
    def path(self) -> str: ...


class _Dataset(Protocol):
    @property
    def records(self) -> Sequence[_Record]: ...


@dataclass
class Collection:
    """Images to index with their labels.

    Attributes:
        paths: absolute image paths, in order, without duplicates.
        labels: ``{absolute path: {column: value}}``.
        source: what the collection was read from (folder, CSV or ``None``).
        missing: ``(path, reason)`` of listed images that do not exist (reported as failures).
    """

    paths: list[str]
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    source: str | None = None
    missing: list[tuple[str, str]] = field(default_factory=list)


def clean_label(v: Any) -> str | None:
    """A label value as a stripped string; ``None`` for a missing, NaN or blank value."""
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    s = str(v).strip()
    return s or None


def _from_dataset(dataset: _Dataset, root: Path | None = None, source: str | None = None) -> Collection:
    """A :class:`Collection` from anything with ``.records`` of ``(path, labels)``; relative record paths
    resolve against ``root`` when the file is there."""
    paths: list[str] = []
    labels: dict[str, dict[str, str]] = {}
    for rec in dataset.records:
        p = Path(rec.path).expanduser()
        if not p.is_absolute() and root is not None and (root / p).exists():
            p = root / p
        full = resolve_path(p)
        paths.append(full)
        rec_labels = {str(k): c for k, v in (getattr(rec, "labels", None) or {}).items()
                      if str(k) not in RESERVED and (c := clean_label(v)) is not None}
        if rec_labels:
            labels[full] = rec_labels
    missing = [(str(p), str(r)) for p, r in (getattr(dataset, "missing", None) or [])]
    return Collection(paths, labels, source if source is not None else (None if root is None else str(root)), missing)


def _from_path(p: Path) -> Collection:
    if not p.exists():
        raise InputNotFoundError(f"{p}: no such folder or file")
    if p.is_dir():
        labels_csv = p / LABELS_CSV
        ds = PaintingDataset.from_csv(labels_csv) if labels_csv.is_file() else PaintingDataset.from_folder(p)
        return _from_dataset(ds, p, str(p))
    if is_image_file(p):
        return Collection([resolve_path(p)], {}, str(p))
    return _from_dataset(PaintingDataset.from_csv(p), p.parent, str(p))


def load_collection(source: Any) -> Collection:
    """The images (and labels) of a collection.

    One rule per kind of source:

    - a folder holding ``labels.csv``: that CSV (below), so the images it lists;
    - any other folder: every image in it at any depth (:func:`artlens.io.scan.scan_images`: by suffix,
      hidden entries skipped, sorted), the first-level sub-folder's name as the ``label`` column
      (:meth:`PaintingDataset.from_folder <artlens.paintings.datasets.PaintingDataset.from_folder>`);
    - an image file (by suffix): that image alone;
    - any other file: a CSV with an image column (``path``, ``file``, ``filename``, ``image`` or
      Painter by Numbers' ``new_filename``; relative paths resolve against the CSV's folder), every
      other column a label; rows whose image is absent become :attr:`Collection.missing`
      (:meth:`PaintingDataset.from_csv <artlens.paintings.datasets.PaintingDataset.from_csv>`);
    - a dataset with ``.records`` of ``(path, labels)`` (a
      :class:`~artlens.paintings.datasets.PaintingDataset`), or a :class:`Collection`;
    - any other iterable: image paths, without labels.

    Args:
        source: one of the above.

    Returns:
        The :class:`Collection`, paths made absolute, duplicates dropped; label columns named like
        :data:`RESERVED` are left out.

    Raises:
        InputNotFoundError: the folder or file does not exist, or none of the images a CSV lists does.
        InvalidParameterError: a folder without images, a CSV without an image column, or a source that
            is none of the above.
        UnreadableInputError: a malformed CSV (the message names the file and line).
    """
    if isinstance(source, Collection):
        coll = source
    elif hasattr(source, "records"):
        root = getattr(source, "root", None)
        coll = _from_dataset(source, Path(root) if root else None)
    elif isinstance(source, (str, os.PathLike)):
        coll = _from_path(Path(source).expanduser())
    elif isinstance(source, Iterable):
        coll = Collection([resolve_path(x) for x in source], {}, None)
    else:
        raise InvalidParameterError(f"a collection is a folder, a CSV file, a dataset or image paths, not "
                                    f"{type(source).__name__}")
    seen: set[str] = set()
    paths = []
    for p in coll.paths:
        if p not in seen:
            seen.add(p)
            paths.append(p)
    return Collection(paths, coll.labels, coll.source, list(coll.missing))
