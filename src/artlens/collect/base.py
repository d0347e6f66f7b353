"""The collection loop shared by every source: stream items, filter, download, verify, de-duplicate, record.

A collection is a folder ``OUT``::

    OUT/images/<source>-<id>.<ext>     the images (jpg, png, ... from the decoded format)
    OUT/labels.csv                     one row per kept image, columns :data:`LABEL_COLUMNS`
    OUT/skipped.csv                    source, source_id, reason, url for every item not kept
    OUT/.artlens-collect.jsonl         the journal: one JSON line per item and step, fsync'ed

The journal is the truth. Each kept item goes through ``pending`` (the image file is about to be
renamed into place) and ``ok`` (with its labels row); ``labels.csv`` is appended after the ``ok``
line and rebuilt from the journal at the start of a run if a kill left it behind. A rerun therefore
skips every item already kept or skipped for good, re-tries the ones that failed for a temporary
reason (5xx or connection errors after the retries, HTML or malformed JSON), and reports ``0 new``
once there is nothing left. Memory grows only with the journal's key set (a few hundred bytes an
item); records and images are streamed one at a time.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from artlens.collect.http import (
    ContentError,
    HTTPStatusError,
    PoliteClient,
    RobotsDisallowedError,
)
from artlens.errors import InvalidParameterError, NetworkError

JOURNAL_NAME = ".artlens-collect.jsonl"
LABELS_NAME = "labels.csv"
SKIPPED_NAME = "skipped.csv"
IMAGES_DIR = "images"

LABEL_COLUMNS = (
    "file", "source", "source_id", "title", "artist", "date", "medium", "classification", "license",
    "source_url", "style", "genre", "medium_class", "width", "height", "sha256", "image_url",
)
SKIPPED_COLUMNS = ("source", "source_id", "reason", "url")

#: The five medium classes of the Artsy study (seed 004) and how a source's classification and
#: medium text map onto them (:func:`medium_class`). ``--classification`` accepts these names (and
#: the aliases) as well as a source's own classification values, e.g. the Met's ``Paintings``.
MEDIUM_CLASSES = ("painting", "drawing", "engraving", "gouache-watercolour", "photography")
_CLASS_ALIASES = {
    "painting": "painting", "paintings": "painting",
    "drawing": "drawing", "drawings": "drawing",
    "engraving": "engraving", "engravings": "engraving", "print": "engraving", "prints": "engraving",
    "gouache-watercolour": "gouache-watercolour", "gouache-watercolor": "gouache-watercolour",
    "watercolour": "gouache-watercolour", "watercolor": "gouache-watercolour", "gouache": "gouache-watercolour",
    "photography": "photography", "photograph": "photography", "photographs": "photography",
    "photo": "photography",
}
_WATER = re.compile(r"watercolou?r|gouache|aquarel", re.IGNORECASE)


def medium_class(classification: str, medium: str = "") -> str:
    """The seed-004 medium class of a work from its classification and medium text, or ``""``.

    Met ``Paintings`` → painting; ``Prints`` (engraving, etching, lithograph, ...) → engraving;
    ``Photographs`` → photography; ``Drawings`` (and AIC "Drawing and Watercolor", Artsy "Drawing,
    Collage or other Work on Paper") → gouache-watercolour when the medium names watercolour or
    gouache, else drawing. Anything else (sculpture, textiles, ...) → ``""``.

    >>> medium_class("Drawings", "Watercolor and graphite on paper")
    'gouache-watercolour'
    >>> medium_class("Prints", "Engraving")
    'engraving'
    """
    c = (classification or "").lower()
    if "photo" in c:
        return "photography"
    if "print" in c:
        return "engraving"
    if "painting" in c:
        return "painting"
    if "drawing" in c or "work on paper" in c or "watercolo" in c:
        return "gouache-watercolour" if _WATER.search(medium or "") else "drawing"
    return ""


# --- items ------------------------------------------------------------------------------------------


@dataclass
class Ref:
    """One item as listed by a source: its id there and whatever the listing already gave."""

    source_id: str
    payload: Any = None


@dataclass
class Record:
    """One item in the normalised shape, before its image is downloaded."""

    source: str
    source_id: str
    image_url: str | None
    title: str = ""
    artist: str = ""
    date: str = ""
    medium: str = ""
    classification: str = ""
    license: str = ""
    source_url: str = ""
    style: str = ""
    genre: str = ""
    year_start: int | None = None
    year_end: int | None = None
    public_domain: bool | None = None


class Skip(Exception):  # noqa: N818 - a control-flow signal, not an error
    """This item is not kept; ``transient`` ones are tried again by the next run. ``url``: the image's
    address when it was known (journalled with the skip)."""

    def __init__(self, reason: str, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.transient = reason, transient
        self.url = ""


class Source(ABC):
    """A place to collect from. Subclasses list items (:meth:`refs`) and turn one into a :class:`Record`."""

    name: str = ""

    @abstractmethod
    def refs(self, client: PoliteClient) -> Iterator[Ref]:
        """Stream the items of the query; errors here (the listing itself) stop the run."""

    @abstractmethod
    def record(self, client: PoliteClient, ref: Ref) -> Record:
        """Fetch what else is needed and map it; raise :class:`Skip` for an unusable item."""


def year_range(text: str) -> tuple[int | None, int | None]:
    """First and last four-digit years in free text (``"ca. 1885–90"`` → ``(1885, 1885)``; ``""`` → Nones)."""
    years = [int(y) for y in re.findall(r"(?<!\d)(\d{4})(?!\d)", text or "")]
    return (min(years), max(years)) if years else (None, None)


# --- filters ------------------------------------------------------------------------------------------


@dataclass
class Filters:
    """Which records to keep.

    Args:
        public_domain_only: drop records the source does not mark public domain (unknown = dropped).
        classifications: keep records whose medium class (:data:`MEDIUM_CLASSES`, aliases accepted) or
            source classification (case-insensitive, e.g. ``Paintings``) is one of these; empty = all.
        date_from, date_to: keep records whose year range overlaps ``[date_from, date_to]``; records
            without a year are dropped when either bound is set.
    """

    public_domain_only: bool = False
    classifications: tuple[str, ...] = ()
    date_from: int | None = None
    date_to: int | None = None

    def __post_init__(self) -> None:
        if self.date_from is not None and self.date_to is not None and self.date_from > self.date_to:
            raise InvalidParameterError(f"`date_from` {self.date_from} is after `date_to` {self.date_to}",
                                        param="date_from")
        self.classifications = tuple(c.strip() for c in self.classifications if c and c.strip())

    def reason_to_drop(self, rec: Record) -> str | None:
        """Why ``rec`` is filtered out, or ``None`` to keep it."""
        if self.public_domain_only and not rec.public_domain:
            return "not public domain" if rec.public_domain is False else "public-domain status unknown"
        if self.classifications:
            mc = medium_class(rec.classification, rec.medium)
            wanted_classes = {_CLASS_ALIASES[c.lower()] for c in self.classifications if c.lower() in _CLASS_ALIASES}
            wanted_names = {c.lower() for c in self.classifications}
            if mc not in wanted_classes and rec.classification.lower() not in wanted_names:
                got = rec.classification or "none"
                return f"classification {got!r} (medium class {mc or 'none'}) not in {', '.join(self.classifications)}"
        if self.date_from is not None or self.date_to is not None:
            lo, hi = rec.year_start, rec.year_end if rec.year_end is not None else rec.year_start
            if lo is None:
                return "no date (a date range was asked for)"
            hi = lo if hi is None else hi
            if (self.date_to is not None and lo > self.date_to) or (self.date_from is not None and hi < self.date_from):
                return f"date {rec.date or lo} outside {self.date_from or ''}-{self.date_to or ''}"
        return None


# --- image checks -----------------------------------------------------------------------------------

_EXT = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "GIF": "gif", "TIFF": "tif", "WEBP": "webp", "BMP": "bmp",
        "JPEG2000": "jp2"}
"""File extension per Pillow format: every one is in :data:`artlens.io.scan.IMAGE_SUFFIXES`, so what a collector
saves is scanned (MPO, the multi-picture JPEG of many cameras, is saved as .jpg)."""


def verify_image(path: Path, content_type: str = "", max_pixels: int = 100_000_000,
                 min_side: int = 32) -> tuple[str, int, int]:
    """Check that ``path`` holds a decodable raster image; return ``(extension, width, height)``.

    Raises:
        Skip: an HTML page or other text, undecodable or truncated data, too many pixels, too small.
    """
    from PIL import Image

    with open(path, "rb") as fh:
        head = fh.read(512)
    stripped = head.lstrip().lower()
    if content_type.startswith("text/") or stripped.startswith((b"<!doctype", b"<html", b"<?xml", b"{", b"[")):
        kind = content_type or "text"
        raise Skip(f"not an image: the server sent {kind} ({stripped[:30].decode('ascii', 'replace')!r}...)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt, (w, h) = im.format or "", im.size
                if w * h > max_pixels:
                    raise Skip(f"image too large: {w} x {h} px is more than {max_pixels} pixels")
                if min(w, h) < min_side:
                    raise Skip(f"image too small: {w} x {h} px (less than {min_side} px on a side)")
                im.verify()
            with Image.open(path) as im:
                im.load()  # a full decode: verify() alone misses truncated JPEG data
    except Skip:
        raise
    except Exception as exc:  # Pillow raises many types for bad data
        raise Skip(f"corrupt image ({type(exc).__name__}: {str(exc)[:120]})") from None
    return _EXT.get(fmt, fmt.lower() or "img"), w, h


# --- the journal -----------------------------------------------------------------------------------


class Journal:
    """Append-only JSON lines, each written with ``flush`` + ``fsync``; a torn last line is dropped on open."""

    def __init__(self, path: Path, fsync: bool = True) -> None:
        self.path, self.fsync = path, fsync
        self.state: dict[str, str] = {}  # key -> last status
        self.hashes: dict[str, str] = {}  # sha256 -> key of the kept item
        self.ok_count: dict[str, int] = {}  # source -> kept items
        self._load()
        self._fh = open(self.path, "ab")  # noqa: SIM115 - closed in close()

    def _load(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "r+b") as fh:
            data_end = 0
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # torn by a kill: drop it
                data_end += len(line)
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self._apply(entry)
            fh.truncate(data_end)

    def _apply(self, entry: dict[str, Any]) -> None:
        key, status = entry.get("key"), entry.get("status")
        if not key or not status:
            return
        before = self.state.get(key)
        self.state[key] = status
        if status == "ok" and before != "ok":
            self.hashes[entry["sha256"]] = key
            src = key.split(":", 1)[0]
            self.ok_count[src] = self.ok_count.get(src, 0) + 1

    def append(self, entry: dict[str, Any]) -> None:
        self._fh.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self._apply(entry)

    def entries(self) -> Iterator[dict[str, Any]]:
        """Stream the complete lines of the journal."""
        with open(self.path, "rb") as fh:
            for line in fh:
                if line.endswith(b"\n"):
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        continue

    def close(self) -> None:
        self._fh.close()


# --- the collection -------------------------------------------------------------------------------


@dataclass
class CollectOptions:
    """Knobs of :func:`collect` besides the source and the client.

    Args:
        limit: stop when the folder holds this many kept items from this source (earlier runs count).
        filters: see :class:`Filters`.
        max_bytes: largest image download, bytes.
        max_pixels: largest image, pixels (width x height).
        min_side: smallest accepted image side, pixels.
        catalog: catalog database path (``None``: the default, see :func:`artlens.catalog.default_catalog_path`).
        use_catalog: record artworks and images in the catalog.
        max_consecutive_failures: stop the run (exit 9) after this many temporary failures in a row;
            the journal keeps the progress, a rerun continues.
        fsync: fsync each journal line (turn off only for benchmarks on throwaway folders).
        progress: called after each item with ``(status, key, result)``.
    """

    limit: int | None = None
    filters: Filters = field(default_factory=Filters)
    max_bytes: int = 50 << 20
    max_pixels: int = 100_000_000
    min_side: int = 32
    catalog: str | os.PathLike[str] | None = None
    use_catalog: bool = True
    max_consecutive_failures: int = 10
    fsync: bool = True
    progress: Callable[[str, str, CollectResult], None] | None = None


@dataclass
class CollectResult:
    """What a run did. ``new`` items were kept in this run; ``total`` is what the folder holds from the source."""

    source: str
    out: str
    labels_csv: str
    skipped_csv: str
    new: int = 0
    skipped: int = 0
    failed: int = 0
    already_done: int = 0
    total: int = 0
    requests: int = 0
    retries: int = 0
    elapsed_s: float = 0.0
    stopped: str = "finished"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return (f"{self.source}: {self.new} new, {self.skipped} skipped, {self.failed} failed (retried next run), "
                f"{self.already_done} already done; {self.total} in {self.labels_csv} "
                f"({self.requests} requests, {self.elapsed_s:.1f} s)")


def _safe_id(source_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", source_id)[:100] or "_"


def _check_out_dir(out: Path, journal_path: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidParameterError(f"`out` {out} is a file, not a folder", param="out")
    if journal_path.exists():
        return
    for name in (LABELS_NAME, SKIPPED_NAME):
        if (out / name).exists():
            raise InvalidParameterError(
                f"{out / name} exists but was not written by artlens collect (no {JOURNAL_NAME} beside it); "
                "choose another `out` or move it away", param="out"
            )


def _write_csv_atomic(path: Path, columns: tuple[str, ...], rows: Iterator[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _ok_rows(journal: Journal) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    for e in journal.entries():
        if e.get("status") == "ok" and e["key"] not in seen:
            seen.add(e["key"])
            yield e["row"]


def _labels_in_sync(labels: Path, journal: Journal) -> bool:
    if not labels.exists():
        return False
    with open(labels, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        if next(reader, None) != list(LABEL_COLUMNS):
            return False
        file_col = 0
        rows = (r[file_col] if r else None for r in reader)
        for want in _ok_rows(journal):
            if next(rows, None) != want["file"]:
                return False
        return next(rows, None) is None


def _skipped_rows(journal: Journal) -> Iterator[dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for e in journal.entries():
        if e.get("status") in ("skipped", "error"):
            last[e["key"]] = e
        elif e.get("status") == "ok":
            last.pop(e["key"], None)
    for key, e in last.items():
        if journal.state.get(key) in ("skipped", "error"):
            src, sid = key.split(":", 1)
            reason = e.get("reason", "")
            yield {"source": src, "source_id": sid, "url": e.get("url", ""),
                   "reason": ("temporary, retried next run: " + reason) if e["status"] == "error" else reason}


class _Outputs:
    """labels.csv / skipped.csv appenders (line-buffered, one row per call)."""

    def __init__(self, out: Path, journal: Journal) -> None:
        labels, skipped = out / LABELS_NAME, out / SKIPPED_NAME
        if not _labels_in_sync(labels, journal):
            _write_csv_atomic(labels, LABEL_COLUMNS, _ok_rows(journal))
        if not skipped.exists():
            _write_csv_atomic(skipped, SKIPPED_COLUMNS, iter(()))
        self._labels = open(labels, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._skipped = open(skipped, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self.labels_w = csv.DictWriter(self._labels, fieldnames=LABEL_COLUMNS, extrasaction="ignore")
        self.skipped_w = csv.DictWriter(self._skipped, fieldnames=SKIPPED_COLUMNS, extrasaction="ignore")

    def label(self, row: dict[str, Any]) -> None:
        self.labels_w.writerow(row)
        self._labels.flush()

    def skip(self, row: dict[str, Any]) -> None:
        self.skipped_w.writerow(row)
        self._skipped.flush()

    def close(self) -> None:
        self._labels.close()
        self._skipped.close()


def collect(source: Source, out: str | os.PathLike[str], client: PoliteClient,
            options: CollectOptions | None = None) -> CollectResult:
    """Collect ``source`` into the folder ``out``; resumable (see the module docstring).

    Returns:
        the counts of the run; ``labels.csv`` / ``skipped.csv`` are complete when it returns.

    Raises:
        InvalidParameterError: ``out`` is unusable (a file, or holds a foreign labels.csv).
        NetworkError: the listing could not be read (unreachable, HTML, malformed JSON, HTTP error), or
            too many items in a row failed for temporary reasons. Progress so far is kept.
    """
    opts = options or CollectOptions()
    out = Path(out).expanduser()
    journal_path = out / JOURNAL_NAME
    _check_out_dir(out, journal_path)
    images = out / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    for stale in images.glob(".*.part"):
        stale.unlink(missing_ok=True)

    journal = Journal(journal_path, fsync=opts.fsync)
    outputs = _Outputs(out, journal)
    result = CollectResult(source.name, str(out), str(out / LABELS_NAME), str(out / SKIPPED_NAME))
    catalog = None
    t0 = time.perf_counter()
    try:
        if opts.use_catalog:
            from artlens.catalog import Catalog

            catalog = Catalog(opts.catalog)
        _run(source, out, client, opts, journal, outputs, catalog, result)
    finally:
        result.elapsed_s = round(time.perf_counter() - t0, 3)
        result.requests, result.retries = client.stats.requests, client.stats.retries
        result.total = journal.ok_count.get(source.name, 0)
        outputs.close()
        _write_csv_atomic(out / SKIPPED_NAME, SKIPPED_COLUMNS, _skipped_rows(journal))
        journal.close()
        if catalog is not None:
            catalog.close()
    return result


def _run(source: Source, out: Path, client: PoliteClient, opts: CollectOptions, journal: Journal,
         outputs: _Outputs, catalog: Any, result: CollectResult) -> None:
    consecutive = 0
    for ref in source.refs(client):
        if opts.limit is not None and journal.ok_count.get(source.name, 0) >= opts.limit:
            result.stopped = "limit"
            return
        key = f"{source.name}:{ref.source_id}"
        if journal.state.get(key) in ("ok", "skipped"):
            result.already_done += 1
            continue
        status = "ok"
        try:
            _keep(source, ref, key, out, client, opts, journal, outputs, catalog)
            result.new += 1
            consecutive = 0
        except Skip as skip:
            status = "error" if skip.transient else "skipped"
            entry = {"key": key, "status": status, "reason": skip.reason, "url": skip.url}
            journal.append(entry)
            outputs.skip({"source": source.name, "source_id": ref.source_id, "reason": skip.reason,
                          "url": entry["url"]})
            if skip.transient:
                result.failed += 1
                consecutive += 1
                if consecutive >= opts.max_consecutive_failures:
                    result.stopped = "failures"
                    raise NetworkError(
                        f"stopped after {consecutive} items in a row failed; last: {skip.reason} "
                        f"(progress is kept: rerun the same command to continue)"
                    ) from None
            else:
                result.skipped += 1
                consecutive = 0
        if opts.progress is not None:
            opts.progress(status, key, result)


def _classify_error(exc: NetworkError) -> Skip:
    if isinstance(exc, HTTPStatusError):
        transient = exc.status in (408, 425, 429) or exc.status >= 500
        return Skip(f"HTTP {exc.status}" + (" (not found)" if exc.status in (404, 410) else ""), transient=transient)
    if isinstance(exc, RobotsDisallowedError):
        return Skip("disallowed by robots.txt")
    if isinstance(exc, ContentError):
        return Skip(str(exc), transient=True)
    return Skip(str(exc), transient=True)


def _keep(source: Source, ref: Ref, key: str, out: Path, client: PoliteClient, opts: CollectOptions,
          journal: Journal, outputs: _Outputs, catalog: Any) -> None:
    try:
        rec = source.record(client, ref)
    except NetworkError as exc:
        raise _classify_error(exc) from None
    why = opts.filters.reason_to_drop(rec)
    if why:
        raise Skip(why)
    if not rec.image_url:
        raise Skip("no image")
    stem = f"{source.name}-{_safe_id(rec.source_id)}"
    part = out / IMAGES_DIR / f".{stem}.part"
    try:
        dl = client.download(rec.image_url, part, max_bytes=opts.max_bytes)
    except NetworkError as exc:
        skip = _classify_error(exc)
        if isinstance(exc, ContentError):  # too large: permanent
            skip = Skip(str(exc))
        skip.url = rec.image_url
        raise skip from None
    try:
        ext, width, height = verify_image(part, dl.content_type, opts.max_pixels, opts.min_side)
        twin = journal.hashes.get(dl.sha256)
        if twin is not None and twin != key:
            raise Skip(f"duplicate image of {twin}")
        rel = f"{IMAGES_DIR}/{stem}.{ext}"
        final = out / rel
        if final.exists() and journal.state.get(key) not in ("pending", "ok"):
            raise Skip(f"{rel} already exists and was not written by artlens collect; left untouched")
    except Skip as skip:
        part.unlink(missing_ok=True)
        skip.url = rec.image_url
        raise
    journal.append({"key": key, "status": "pending", "file": rel})
    os.replace(part, final)
    row = {
        "file": rel, "source": rec.source, "source_id": rec.source_id, "title": rec.title, "artist": rec.artist,
        "date": rec.date, "medium": rec.medium, "classification": rec.classification, "license": rec.license,
        "source_url": rec.source_url, "style": rec.style, "genre": rec.genre,
        "medium_class": medium_class(rec.classification, rec.medium), "width": width, "height": height,
        "sha256": dl.sha256, "image_url": rec.image_url,
    }
    if catalog is not None:
        art_id = catalog.add_artwork(
            rec.title or None, rec.artist or None, rec.date or None, source=rec.source, source_id=rec.source_id,
            license=rec.license or None, source_url=rec.source_url or None, medium=rec.medium or None,
            classification=rec.classification or None, style=rec.style or None, genre=rec.genre or None,
        )
        catalog.add_image(final, dl.sha256, "rgb", width_px=width, height_px=height, artwork_id=art_id)
    journal.append({"key": key, "status": "ok", "sha256": dl.sha256, "row": row})
    outputs.label(row)


def text(value: Any) -> str:
    """A JSON value as one line of text (``None`` → ``""``; lists joined by ``"; "``)."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(text(v) for v in value if v not in (None, ""))
    return " ".join(str(value).split())


def snippet(body: Any, n: int = 80) -> str:
    """A short one-line rendering of a JSON value for error messages."""
    s = json.dumps(body, ensure_ascii=False)[: n + 1]
    return s[:n] + "..." if len(s) > n else s


__all__ = [
    "LABEL_COLUMNS", "MEDIUM_CLASSES", "CollectOptions", "CollectResult", "Filters", "Journal", "Record", "Ref",
    "Skip", "Source", "collect", "medium_class", "verify_image", "year_range",
]
