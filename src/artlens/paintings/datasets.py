"""Labelled painting collections: import from a folder tree or a CSV, balance classes, split without leaks.

A :class:`PaintingDataset` is a list of :class:`PaintingRecord` (an absolute image path plus string labels
such as ``artist``, ``style``, ``split``). It is built by :func:`load_dataset` from either

- a folder tree ``root/<class>/**/<image>`` (the class folder's name goes into one label column), or
- a CSV file with an image column named ``path``, ``file``, ``filename`` or ``image`` (relative paths resolve
  against the CSV's folder, or ``images_dir``), or Painter by Numbers' ``new_filename`` (images in
  ``<csv folder>/train/`` or ``<csv folder>/test/``); every other column becomes a label.

Rows whose image file is absent are skipped and listed in :attr:`PaintingDataset.missing`, with one
summary warning. Malformed CSV files raise :class:`~artlens.errors.UnreadableInputError` naming the file
and line.

Balancing (:func:`downsample_majority`, :func:`class_weights`, :func:`sample_weights`) and leak-free
splits (:func:`group_split`, :func:`seen_unseen_split`) work on plain label lists, so they serve any
dataset, not only paintings.

Example:
    >>> ds = load_dataset("peopleart_artists/labels.csv")  # doctest: +SKIP
    >>> len(ds), len(ds.classes("label"))  # doctest: +SKIP
    (1328, 29)
    >>> keep = downsample_majority(ds, "label", seed=0)  # doctest: +SKIP
    >>> parts = seen_unseen_split(ds.labels("label"), n_unseen=5, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError
from artlens.io.scan import IMAGE_SUFFIXES, scan_images

IMAGE_COLUMNS = ("path", "file", "filename", "image", "new_filename")
"""Names (case-insensitive) of the CSV column holding the image file, in order of preference."""

PBN_IMAGE_COLUMN = "new_filename"
"""Painter by Numbers' image column: bare file names inside ``train/`` or ``test/`` next to the CSV."""

ARTWORK_COLUMNS = ("title", "date", "style", "genre", "medium")
"""Label columns copied onto catalog artworks by :meth:`PaintingDataset.to_catalog` (besides the artist)."""


# --- records and datasets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PaintingRecord:
    """One image of a labelled collection.

    Args:
        path: absolute path of the image file.
        labels: column name → value (strings), e.g. ``{"artist": "monet", "style": "Impressionism"}``.
    """

    path: str
    labels: dict[str, str] = field(default_factory=dict, hash=False)

    def get(self, column: str, default: str | None = None) -> str | None:
        """The value of ``column``, or ``default`` when this record has none."""
        return self.labels.get(column, default)


class PaintingDataset:
    """A labelled collection of painting images.

    Attributes:
        records: the images, in a deterministic order (file order of the CSV, sorted paths for folders).
        root: folder that relative image paths are measured from (catalog ``source_id``).
        source: what was read (the CSV file or the folder), as a string.
        missing: ``(path, reason)`` of each CSV row skipped because its image is absent.

    Use :func:`load_dataset`, :meth:`from_folder` or :meth:`from_csv` to build one.
    """

    def __init__(self, records: Sequence[PaintingRecord], root: str | os.PathLike[str], source: str,
                 missing: Sequence[tuple[str, str]] = (), columns: Sequence[str] | None = None) -> None:
        self.records: list[PaintingRecord] = list(records)
        self.root = Path(root)
        self.source = str(source)
        self.missing: list[tuple[str, str]] = list(missing)
        self._columns = list(columns) if columns is not None else _columns_of(self.records)

    # constructors -------------------------------------------------------------------------------------
    @classmethod
    def from_folder(cls, root: str | os.PathLike[str], label_column: str = "label") -> PaintingDataset:
        """Images in ``root/<class>/...`` (any depth below the class folder), labelled by class folder.

        Images lying directly in ``root`` get no label; hidden files and folders (``.name``) and files
        that are not images (by suffix, see :data:`~artlens.io.scan.IMAGE_SUFFIXES`) are ignored: the
        folder is listed by :func:`~artlens.io.scan.scan_images`.

        Args:
            root: the collection folder.
            label_column: name of the label column that receives the class folder's name.

        Returns:
            The dataset, records sorted by path relative to ``root``.

        Raises:
            InputNotFoundError: ``root`` does not exist.
            InvalidParameterError: ``root`` is not a folder, or holds no image.
        """
        base = Path(os.path.abspath(Path(root).expanduser()))
        if not base.exists():
            raise InputNotFoundError(f"{base}: no such folder")
        if not base.is_dir():
            raise InvalidParameterError(f"{base}: not a folder")
        if not label_column:
            raise InvalidParameterError("label column name must not be empty")
        records = []
        for image in scan_images(base):
            parts = image.relative_to(base).parts
            labels = {label_column: parts[0]} if len(parts) > 1 else {}
            records.append(PaintingRecord(str(image), labels))
        if not records:
            raise InvalidParameterError(f"no images found in {base} (looked for {', '.join(IMAGE_SUFFIXES)} files at "
                                        f"any depth, e.g. {base}/<class>/<image>)")
        return cls(records, base, str(base), columns=[label_column])

    @classmethod
    def from_csv(cls, csv_path: str | os.PathLike[str],
                 images_dir: str | os.PathLike[str] | None = None) -> PaintingDataset:
        """Images and labels listed in a CSV file (UTF-8, optional BOM, comma separated, header row).

        Args:
            csv_path: the CSV file. Its image column is the first of :data:`IMAGE_COLUMNS` present.
            images_dir: folder that relative image paths resolve against (default: the CSV's folder).
                For Painter by Numbers (``new_filename``) the images are looked up in ``images_dir``,
                then its ``train/`` and ``test/`` subfolders; without it in ``<csv folder>/train/``,
                ``<csv folder>/test/`` and the CSV's folder.

        Returns:
            The dataset; every column except the image column is a label (stripped string). Rows
            whose image is absent are skipped and listed in :attr:`missing` (one warning in all).

        Raises:
            InputNotFoundError: the CSV or ``images_dir`` does not exist, or no listed image exists.
            UnreadableInputError: empty file, header only, binary or non-UTF-8 content, a row with the
                wrong number of fields (the message names the file and line).
            InvalidParameterError: no image column.
        """
        path = Path(os.path.abspath(Path(csv_path).expanduser()))
        header, rows = _read_csv(path)
        image_col = _image_column(header)
        if image_col is None:
            raise InvalidParameterError(
                f"{path}: no image column (expected one of {', '.join(IMAGE_COLUMNS)}); "
                f"columns are: {', '.join(header)}"
            )
        base = None
        if images_dir is not None:
            base = Path(os.path.abspath(Path(images_dir).expanduser()))
            if not base.is_dir():
                raise InputNotFoundError(f"{base}: no such images folder")
        root = base if base is not None else path.parent
        pbn = header[image_col].lower() == PBN_IMAGE_COLUMN
        label_names = [name for k, name in enumerate(header) if k != image_col]
        records, missing = [], []
        for line_no, row in rows:
            value = row[image_col].strip()
            labels = {name: row[k].strip() for k, name in enumerate(header) if k != image_col}
            if not value:
                missing.append((f"{path}:{line_no}", "empty image path"))
                continue
            candidates = _pbn_candidates(value, path.parent, base, labels) if pbn else [_resolve(value, root)]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                missing.append((str(candidates[0]), "no such file"))
                continue
            records.append(PaintingRecord(str(found), labels))
        if missing and not records:
            hint = "" if images_dir is not None else " (give the images folder as `images_dir`)"
            raise InputNotFoundError(
                f"{path}: none of the {len(missing)} images listed was found, e.g. {missing[0][0]}{hint}",
                param=None if images_dir is not None else "images_dir",
            )
        if missing:
            warnings.warn(
                f"{path.name}: skipped {len(missing)} of {len(missing) + len(records)} rows whose image is "
                f"missing (first: {missing[0][0]})",
                stacklevel=2,
            )
        return cls(records, root, str(path), missing=missing, columns=label_names)

    # container protocol -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[PaintingRecord]:
        return iter(self.records)

    def __getitem__(self, index: int | slice) -> Any:
        """A record by position, or a sub-dataset for a slice."""
        if isinstance(index, slice):
            return self.subset(range(len(self.records))[index])
        return self.records[index]

    def __repr__(self) -> str:
        return f"PaintingDataset({len(self)} images from {self.source!r}, columns={self._columns})"

    # labels -------------------------------------------------------------------------------------------
    def paths(self) -> list[str]:
        """Absolute image paths, in record order."""
        return [r.path for r in self.records]

    def columns(self) -> list[str]:
        """Names of the label columns (CSV header order without the image column)."""
        return list(self._columns)

    def _check_column(self, column: str) -> None:
        if column not in self._columns:
            have = ", ".join(self._columns) or "none"
            raise InvalidParameterError(f"unknown label column {column!r} in {self.source}; columns are: {have}")

    def labels(self, column: str) -> list[str]:
        """The value of ``column`` for every record (``""`` where a record has none).

        Raises:
            InvalidParameterError: no such column; the message lists the available ones.
        """
        self._check_column(column)
        return [r.labels.get(column, "") for r in self.records]

    def classes(self, column: str) -> list[str]:
        """The distinct values of ``column``, sorted."""
        return sorted(set(self.labels(column)))

    def counts(self, column: str) -> dict[str, int]:
        """Number of records per value of ``column``, keys sorted."""
        counter = Counter(self.labels(column))
        return {k: counter[k] for k in sorted(counter)}

    # selections ---------------------------------------------------------------------------------------
    def subset(self, indices: Sequence[int] | np.ndarray) -> PaintingDataset:
        """A dataset of the records at ``indices`` (in that order), same root, source and columns."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self.records)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise InvalidParameterError(f"subset index out of range for a dataset of {n} images")
        return PaintingDataset([self.records[int(i)] for i in idx], self.root, self.source, self.missing,
                               self._columns)

    def filter(self, fn: Callable[[PaintingRecord], bool]) -> PaintingDataset:
        """A dataset of the records for which ``fn(record)`` is true."""
        return self.subset([k for k, r in enumerate(self.records) if fn(r)])

    def split(self, name: str, column: str = "split") -> PaintingDataset:
        """The records whose ``column`` equals ``name`` (e.g. ``ds.split("train")``).

        Raises:
            InvalidParameterError: unknown column, or no record has that value (the values are listed).
        """
        values = self.labels(column)
        if name not in values:
            raise InvalidParameterError(
                f"no image has {column} = {name!r}; values are: {', '.join(sorted(set(values)))}"
            )
        return self.subset([k for k, v in enumerate(values) if v == name])

    # catalog ------------------------------------------------------------------------------------------
    def to_catalog(self, catalog: Any, source_name: str, *, artist_column: str | None = "artist") -> list[int]:
        """Record every image, and one artwork per image, in a catalog; importing twice adds nothing.

        Each artwork gets ``source = "import:<source_name>"`` and ``source_id`` = the image path relative
        to :attr:`root` (the absolute path for images outside it); its title, date, style, genre and
        medium come from same-named label columns when present, its artist from ``artist_column``
        (pass ``"label"`` when the label is the artist, ``None`` for no artist). Each image is added
        with its SHA-256, modality ``rgb`` and its size read from the file header (not decoded).

        Args:
            catalog: an open :class:`~artlens.catalog.Catalog`.
            source_name: name of the collection, e.g. ``"peopleart"``.
            artist_column: label column holding the artist.

        Returns:
            The catalog image ids, in record order.

        Raises:
            InvalidParameterError: empty ``source_name``.
            CatalogError: the catalog cannot be written.
        """
        from artlens.provenance import sha256_file

        if not str(source_name).strip():
            raise InvalidParameterError("source name must not be empty")
        source = f"import:{str(source_name).strip()}"
        ids, unsized = [], []
        for rec in self.records:
            fields = {col: rec.labels.get(col) or None for col in ARTWORK_COLUMNS}
            artist = (rec.labels.get(artist_column) or None) if artist_column else None
            artwork_id = catalog.add_artwork(
                fields.pop("title"), artist, fields.pop("date"),
                source=source, source_id=self._source_id(rec.path), **fields,
            )
            size = image_size(rec.path)
            if size is None:
                unsized.append(rec.path)
            width, height = size or (None, None)
            ids.append(catalog.add_image(rec.path, sha256_file(rec.path), "rgb", width_px=width, height_px=height,
                                         artwork_id=artwork_id))
        if unsized:
            warnings.warn(f"{len(unsized)} images could not be opened to read their size (first: {unsized[0]})",
                          stacklevel=2)
        return ids

    def _source_id(self, path: str) -> str:
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return Path(path).as_posix()


def load_dataset(path: str | os.PathLike[str], *, label_column: str = "label",
                 images_dir: str | os.PathLike[str] | None = None) -> PaintingDataset:
    """A :class:`PaintingDataset` from a folder tree (:meth:`~PaintingDataset.from_folder`) or a CSV file
    (:meth:`~PaintingDataset.from_csv`).

    Args:
        path: collection folder or CSV file.
        label_column: for a folder, the column receiving the class folder's name.
        images_dir: for a CSV, where relative image paths resolve (default: the CSV's folder).

    Raises:
        InputNotFoundError: ``path`` does not exist.
        InvalidParameterError: ``images_dir`` given for a folder; see the constructors for the rest.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise InputNotFoundError(f"{p}: no such file or folder")
    if p.is_dir():
        if images_dir is not None:
            raise InvalidParameterError("an images folder applies to a CSV file only, not to a folder tree")
        return PaintingDataset.from_folder(p, label_column=label_column)
    return PaintingDataset.from_csv(p, images_dir=images_dir)


def image_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """``(width, height)`` in pixels from the file header (pixels are not decoded), or ``None`` if unreadable."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return int(im.size[0]), int(im.size[1])
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


# --- reading helpers ----------------------------------------------------------------------------------


def _columns_of(records: Sequence[PaintingRecord]) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        seen.update(dict.fromkeys(r.labels))
    return list(seen)


def _decode(data: bytes, path: Path) -> str:
    if not data.strip():
        raise UnreadableInputError(f"{path}: empty file, expected a CSV with a header row")
    nul = data.find(b"\x00", 0, 1 << 16)
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise UnreadableInputError(f"{path}: line {line}: binary data (NUL byte), not a CSV text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UnreadableInputError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header (stripped names) and ``(line number, fields)`` of each non-blank row, all rows checked for length."""
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise UnreadableInputError(f"{path}: is a folder, not a CSV file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableInputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    text = _decode(data, path)
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue  # blank line
            if header is None:
                header = _header(fields, path, reader.line_num)
                continue
            if len(fields) != len(header):
                raise UnreadableInputError(
                    f"{path}: line {reader.line_num}: expected {len(header)} fields like the header, "
                    f"found {len(fields)}"
                )
            rows.append((reader.line_num, fields))
    except csv.Error as exc:
        raise UnreadableInputError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from None
    if header is None:
        raise UnreadableInputError(f"{path}: empty file, expected a CSV with a header row")
    if not rows:
        raise UnreadableInputError(f"{path}: header only, no rows (columns: {', '.join(header)})")
    return header, rows


def _header(fields: list[str], path: Path, line: int) -> list[str]:
    names = [f.strip() or f"column{k + 1}" for k, f in enumerate(fields)]
    dupes = sorted(n for n, c in Counter(names).items() if c > 1)
    if dupes:
        raise UnreadableInputError(f"{path}: line {line}: duplicate column names in the header: {', '.join(dupes)}")
    return names


def _image_column(header: Sequence[str]) -> int | None:
    lower = [h.lower() for h in header]
    for name in IMAGE_COLUMNS:
        if name in lower:
            return lower.index(name)
    return None


def _resolve(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return Path(os.path.abspath(p if p.is_absolute() else base / p))


def _pbn_candidates(value: str, csv_dir: Path, images_dir: Path | None, labels: dict[str, str]) -> list[Path]:
    """Where a Painter by Numbers file may lie; ``in_train`` puts the likelier folder first."""
    if Path(value).is_absolute():
        return [_resolve(value, csv_dir)]
    subdirs = ["train", "test"]
    if labels.get("in_train", "").strip().lower() in ("false", "0", "no"):
        subdirs.reverse()
    if images_dir is not None:
        bases = [images_dir, *(images_dir / s for s in subdirs)]
    else:
        bases = [*(csv_dir / s for s in subdirs), csv_dir]
    return [_resolve(value, b) for b in bases]


# --- balancing ------------------------------------------------------------------------------------------


def _label_list(data: PaintingDataset | Sequence[Hashable], column: str | None) -> list[Hashable]:
    if isinstance(data, PaintingDataset):
        if column is None:
            raise InvalidParameterError(f"name the label column to balance; columns are: {', '.join(data.columns())}")
        return list(data.labels(column))
    if column is not None:
        raise InvalidParameterError("a label column is only meaningful with a PaintingDataset")
    return list(data)


def _sort_key(value: Hashable) -> tuple[str, str]:
    return (str(value), type(value).__name__)


def downsample_majority(data: PaintingDataset | Sequence[Hashable], column: str | None = None, *, seed: int = 0,
                        max_per_class: int | None = None) -> np.ndarray:
    """Indices that keep at most ``k`` items of each class, chosen at random (majority down-sampling).

    ``k`` is the size of the smallest class, or ``max_per_class`` when given (classes smaller than
    ``k`` keep all their items). The same seed gives the same indices.

    Args:
        data: a :class:`PaintingDataset` (then ``column`` names the label) or a sequence of labels.
        column: label column of a dataset.
        seed: random seed.
        max_per_class: cap per class instead of the smallest class's size (≥ 1).

    Returns:
        Sorted ``int64`` indices into ``data``.

    Raises:
        InvalidParameterError: no labels, a bad ``max_per_class``, or a missing / unknown column.

    Example:
        >>> downsample_majority(["a", "a", "a", "b"], seed=0).size
        2
    """
    labels = _label_list(data, column)
    if not labels:
        raise InvalidParameterError("no labels to balance")
    if max_per_class is not None and max_per_class < 1:
        raise InvalidParameterError(f"max_per_class must be at least 1, got {max_per_class}")
    groups = _group_indices(labels)
    cap = min(len(v) for v in groups.values()) if max_per_class is None else int(max_per_class)
    rng = np.random.default_rng(seed)
    keep = []
    for key in sorted(groups, key=_sort_key):
        idx = groups[key]
        keep.append(idx if idx.size <= cap else rng.choice(idx, size=cap, replace=False))
    return np.sort(np.concatenate(keep)).astype(np.int64)


def class_weights(labels: Sequence[Hashable]) -> dict[Hashable, float]:
    """Inverse-frequency class weights ``w_c = N / (K · n_c)`` (scikit-learn's
    ``compute_class_weight("balanced")``), keyed by class.

    ``N`` items, ``K`` classes, ``n_c`` items of class ``c``; weighting each item by its class's weight
    gives every class the same total weight and a mean item weight of exactly 1. Labels may be of any
    hashable type (mixed types too): scikit-learn sees class indices.

    Raises:
        InvalidParameterError: no labels.

    Example:
        >>> class_weights(["a", "a", "a", "b"])
        {'a': 0.6666666666666666, 'b': 2.0}
    """
    labels = list(labels)
    if not labels:
        raise InvalidParameterError("no labels to weight")
    from sklearn.utils.class_weight import compute_class_weight

    classes = sorted(dict.fromkeys(labels), key=_sort_key)
    index = {c: i for i, c in enumerate(classes)}
    codes = np.array([index[v] for v in labels], dtype=np.int64)
    weights = compute_class_weight("balanced", classes=np.arange(len(classes)), y=codes)
    return {c: float(w) for c, w in zip(classes, weights, strict=True)}


def sample_weights(labels: Sequence[Hashable]) -> np.ndarray:
    """Each item's :func:`class_weights` weight, shape ``(N,)`` float64 (mean 1)."""
    labels = list(labels)
    weights = class_weights(labels)
    return np.array([weights[v] for v in labels], dtype=np.float64)


# --- leak-free splits ---------------------------------------------------------------------------------------


def _group_indices(groups: Sequence[Hashable]) -> dict[Hashable, np.ndarray]:
    out: dict[Hashable, list[int]] = {}
    for k, g in enumerate(groups):
        out.setdefault(g, []).append(k)
    return {g: np.asarray(v, dtype=np.int64) for g, v in out.items()}


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise InvalidParameterError(f"{name} must be in [0, 1), got {f}")
    if val_fraction + test_fraction >= 1.0:
        raise InvalidParameterError(
            f"val_fraction + test_fraction must be below 1 to leave a training set, got {val_fraction + test_fraction}"
        )


def _as_index_array(idx: list[np.ndarray]) -> np.ndarray:
    return np.sort(np.concatenate(idx)).astype(np.int64) if idx else np.zeros(0, dtype=np.int64)


def group_split(groups: Sequence[Hashable], *, val_fraction: float, test_fraction: float,
                seed: int) -> dict[str, np.ndarray]:
    """Split items into train / val / test so that each group (artist, plate, ...) lies in one split only.

    Groups are shuffled with ``seed`` and handed out whole: to ``test`` until it holds about
    ``test_fraction`` of the items, then to ``val``, the rest to ``train``. A group is added while it
    brings the split closer to its target; a non-zero fraction always gets at least one group.

    Args:
        groups: the group of each item.
        val_fraction, test_fraction: wanted share of items in each held-out split, in [0, 1).
        seed: random seed; the same seed gives the same split.

    Returns:
        ``{"train", "val", "test"}`` → sorted ``int64`` item indices; disjoint, covering every item.

    Raises:
        InvalidParameterError: fractions out of range, or too few groups for the splits asked for.
    """
    _check_fractions(val_fraction, test_fraction)
    by_group = _group_indices(groups)
    names = sorted(by_group, key=_sort_key)
    needed = 1 + (val_fraction > 0) + (test_fraction > 0)
    if len(names) < needed:
        raise InvalidParameterError(f"{len(names)} groups cannot fill {needed} splits; each group goes to one split")
    n = len(groups)
    order = [names[k] for k in np.random.default_rng(seed).permutation(len(names))]
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    pos = 0
    for split, fraction, reserve in (("test", test_fraction, needed - 1), ("val", val_fraction, 1)):
        if fraction <= 0:
            continue
        target, count = fraction * n, 0
        while pos < len(order) - reserve:
            size = by_group[order[pos]].size
            if count > 0 and (count >= target or count + size - target > target - count):
                break
            parts[split].append(by_group[order[pos]])
            count += size
            pos += 1
    parts["train"].extend(by_group[g] for g in order[pos:])
    return {k: _as_index_array(v) for k, v in parts.items()}


def seen_unseen_split(groups: Sequence[Hashable], *, n_unseen: int | None = None, val_fraction: float = 0.15,
                      test_fraction: float = 0.2, seed: int, min_per_group_split: int = 1,
                      unseen_groups: Sequence[Hashable] | None = None) -> dict[str, np.ndarray]:
    """Split for open-set verification: some groups never seen in training, the others split per group.

    ``n_unseen`` groups (chosen with ``seed``), or exactly ``unseen_groups``, go whole to
    ``test_unseen``. Every other group is split on its own: about ``test_fraction`` of its items to
    ``test_seen``, ``val_fraction`` to ``val`` and the rest to ``train``; counts are rounded to the
    nearest integer and raised to ``min_per_group_split`` for a non-zero fraction, so each seen group
    appears in train, val and test_seen. A group too small for that fills train (one item), then
    test_seen, then val, and one warning says how many groups were short.

    Args:
        groups: the group (e.g. artist) of each item.
        n_unseen: how many groups to hold out entirely.
        val_fraction, test_fraction: per-group shares of the seen groups' items.
        seed: random seed; the same seed gives the same split.
        min_per_group_split: least number of a seen group's items in val and in test_seen.
        unseen_groups: the groups to hold out (instead of a random choice of ``n_unseen``).

    Returns:
        ``{"train", "val", "test_seen", "test_unseen"}`` → sorted ``int64`` indices; disjoint, covering
        every item. No test_unseen group has an item in train or val.

    Raises:
        InvalidParameterError: neither or conflicting ``n_unseen`` / ``unseen_groups``, unknown unseen
            groups, no seen group left, or fractions out of range.
    """
    _check_fractions(val_fraction, test_fraction)
    if min_per_group_split < 0:
        raise InvalidParameterError(f"min_per_group_split must be >= 0, got {min_per_group_split}")
    by_group = _group_indices(groups)
    names = sorted(by_group, key=_sort_key)
    rng = np.random.default_rng(seed)
    unseen = _unseen(names, n_unseen, unseen_groups, rng)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test_seen": [], "test_unseen": []}
    short = 0
    for g in names:
        idx = by_group[g]
        if g in unseen:
            parts["test_unseen"].append(idx)
            continue
        idx = rng.permutation(idx)
        n_test, n_val, was_short = _per_group_counts(idx.size, val_fraction, test_fraction, min_per_group_split)
        short += was_short
        parts["test_seen"].append(idx[:n_test])
        parts["val"].append(idx[n_test:n_test + n_val])
        parts["train"].append(idx[n_test + n_val:])
    if short:
        warnings.warn(f"{short} seen groups have too few items to appear in train, val and test_seen; "
                      "they fill train first, then test_seen, then val", stacklevel=2)
    return {k: _as_index_array(v) for k, v in parts.items()}


def _unseen(names: list[Hashable], n_unseen: int | None, unseen_groups: Sequence[Hashable] | None,
            rng: np.random.Generator) -> set[Hashable]:
    if unseen_groups is not None:
        chosen = list(dict.fromkeys(unseen_groups))
        unknown = [g for g in chosen if g not in set(names)]
        if unknown:
            raise InvalidParameterError(f"unseen groups not in the data: {', '.join(map(str, unknown[:10]))}")
        if n_unseen is not None and n_unseen != len(chosen):
            raise InvalidParameterError(f"n_unseen = {n_unseen} but {len(chosen)} unseen groups were named")
    elif n_unseen is None:
        raise InvalidParameterError("give n_unseen (how many groups to hold out) or unseen_groups")
    else:
        if n_unseen < 0:
            raise InvalidParameterError(f"n_unseen must be >= 0, got {n_unseen}")
        chosen = [names[k] for k in rng.choice(len(names), size=min(n_unseen, len(names)), replace=False)]
    if len(chosen) >= len(names):
        raise InvalidParameterError(f"holding out {len(chosen)} of {len(names)} groups leaves none for training")
    return set(chosen)


def _per_group_counts(n: int, val_fraction: float, test_fraction: float, least: int) -> tuple[int, int, bool]:
    """(n_test, n_val, short) for a seen group of ``n`` items; one item always stays in train."""
    want_test = max(least, round(test_fraction * n)) if test_fraction > 0 else 0
    want_val = max(least, round(val_fraction * n)) if val_fraction > 0 else 0
    n_test = min(want_test, n - 1)
    n_val = min(want_val, n - 1 - n_test)
    return n_test, n_val, (n_test, n_val) != (want_test, want_val)
