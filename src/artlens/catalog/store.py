"""The embedded catalog: one SQLite file (WAL mode) recording images and the analyses run on them.

Several processes may write to the same catalog at once: every write is a short ``BEGIN IMMEDIATE``
transaction, and a writer that finds the database busy waits up to :data:`BUSY_TIMEOUT_S` seconds.
Anything that makes the file unusable (not a SQLite database, a directory, an unwritable place, a
catalog written by a newer artlens, a lock held too long) raises :class:`~artlens.errors.CatalogError`
with a one-line message; the user's file is never modified in that case.

Example:
    >>> import tempfile, pathlib
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "artlens.db"
    >>> with Catalog(db) as cat:
    ...     image_id = cat.add_image("plate.tif", "ab" * 32, "xray", px_per_cm=200.0)
    ...     _ = cat.add_analysis(image_id, "spectral", {"window_cm": 1.5}, "0.1.0", {"windows": 81}, [])
    ...     [row["method"] for row in cat.analyses()]
    ['spectral']
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from artlens.errors import CatalogError

DEFAULT_FILENAME = "artlens.db"
ENV_VAR = "ARTLENS_CATALOG"
BUSY_TIMEOUT_S = 30.0
_SQLITE_MAGIC = b"SQLite format 3\x00"


def default_catalog_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where the catalog lives: ``explicit`` if given, else ``$ARTLENS_CATALOG``, else ``./artlens.db``."""
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env:
        return Path(from_env).expanduser()
    return Path(DEFAULT_FILENAME)


# --- schema -----------------------------------------------------------------------------------------


def _v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE artworks (
               id INTEGER PRIMARY KEY,
               title TEXT,
               artist TEXT,
               date TEXT,
               notes TEXT)"""
    )
    conn.execute(
        """CREATE TABLE images (
               id INTEGER PRIMARY KEY,
               path TEXT NOT NULL,
               sha256 TEXT NOT NULL,
               modality TEXT NOT NULL,
               px_per_cm REAL,
               width_px INTEGER,
               height_px INTEGER,
               artwork_id INTEGER REFERENCES artworks(id) ON DELETE SET NULL,
               added_utc TEXT NOT NULL,
               UNIQUE (path, sha256))"""
    )
    conn.execute(
        """CREATE TABLE analyses (
               id INTEGER PRIMARY KEY,
               image_id INTEGER REFERENCES images(id) ON DELETE SET NULL,
               method TEXT NOT NULL,
               parameters TEXT NOT NULL,
               artlens_version TEXT NOT NULL,
               model_checksum TEXT,
               summary TEXT NOT NULL,
               outputs TEXT NOT NULL,
               created_utc TEXT NOT NULL)"""
    )
    conn.execute("CREATE INDEX analyses_method ON analyses(method)")
    conn.execute("CREATE INDEX analyses_image ON analyses(image_id)")


def _v2(conn: sqlite3.Connection) -> None:
    """Where an artwork came from (``artlens collect``): source, its id there, licence, labels."""
    for column in ("source", "source_id", "license", "source_url", "medium", "classification", "style", "genre"):
        conn.execute(f"ALTER TABLE artworks ADD COLUMN {column} TEXT")
    conn.execute("CREATE UNIQUE INDEX artworks_source ON artworks(source, source_id) WHERE source IS NOT NULL")


def _v3(conn: sqlite3.Connection) -> None:
    """Background jobs (the web app's analyses): a queue that survives a killed server."""
    conn.execute(
        """CREATE TABLE jobs (
               id INTEGER PRIMARY KEY,
               kind TEXT NOT NULL,
               image_id INTEGER REFERENCES images(id) ON DELETE SET NULL,
               params TEXT NOT NULL,
               state TEXT NOT NULL,
               progress REAL NOT NULL DEFAULT 0,
               message TEXT,
               result TEXT,
               error TEXT,
               analysis_id INTEGER REFERENCES analyses(id) ON DELETE SET NULL,
               worker TEXT,
               attempts INTEGER NOT NULL DEFAULT 0,
               cancel_requested INTEGER NOT NULL DEFAULT 0,
               created_utc TEXT NOT NULL,
               started_utc TEXT,
               finished_utc TEXT)"""
    )
    conn.execute("CREATE INDEX jobs_state ON jobs(state)")


# Step i brings the schema from version i to version i + 1. Append new steps; never edit old ones.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3]
SCHEMA_VERSION = len(MIGRATIONS)


# --- helpers ------------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _json_default(obj: Any) -> Any:
    """Let numpy scalars/arrays and paths through ``json.dumps``."""
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default)


def _check_location(path: Path) -> None:
    """Refuse a directory or a file that is not a SQLite database, before SQLite touches it."""
    if path.is_dir():
        raise CatalogError(f"catalog path {path} is a directory, not a database file")
    if path.exists():
        try:
            with path.open("rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise CatalogError(f"cannot read catalog {path}: {exc.strerror or exc}") from None
        if head and head != _SQLITE_MAGIC:
            raise CatalogError(f"{path} is not an artlens catalog (not a SQLite database); left untouched")
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CatalogError(f"cannot create catalog {path}: {exc.strerror or exc}") from None


# --- the catalog --------------------------------------------------------------------------------------


class Catalog:
    """An open catalog database.

    Args:
        path: the database file; ``None`` uses :func:`default_catalog_path`. Created if missing.

    Raises:
        CatalogError: the file cannot be used as a catalog.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = default_catalog_path(path)
        _check_location(self.path)
        try:
            self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        self._conn.row_factory = sqlite3.Row
        try:
            self._setup()
        except BaseException:
            self._conn.close()
            raise

    # context manager ----------------------------------------------------------------------------------
    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._conn.close()

    # internals ----------------------------------------------------------------------------------------
    def _error(self, exc: sqlite3.Error) -> CatalogError:
        msg = str(exc)
        if "locked" in msg or "busy" in msg:
            return CatalogError(
                f"catalog {self.path} stayed locked by another process for over {BUSY_TIMEOUT_S:g} s"
            )
        if "not a database" in msg or "malformed" in msg:
            return CatalogError(f"catalog {self.path} is corrupt or not a SQLite database ({msg})")
        if "readonly" in msg or "unable to open" in msg:
            return CatalogError(f"cannot write catalog {self.path} ({msg})")
        return CatalogError(f"catalog {self.path}: {msg}")

    @contextmanager
    def _sqlite_errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction; takes the write lock up front so readers never deadlock upgrading."""
        with self._sqlite_errors(), self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            yield self._conn

    def _stored_version(self) -> int | None:
        tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_version" not in tables:
            if tables:
                raise CatalogError(
                    f"{self.path} is a SQLite database but not an artlens catalog; left untouched"
                )
            return None
        row = self._conn.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def _check_not_newer(self, version: int | None) -> None:
        if version is not None and version > SCHEMA_VERSION:
            raise CatalogError(
                f"catalog {self.path} has schema version {version}, newer than this artlens "
                f"understands ({SCHEMA_VERSION}); upgrade artlens"
            )

    def _enable_wal(self) -> None:
        # Switching a fresh file to WAL while another process opens it can report "locked" at once,
        # without SQLite's busy handler waiting; so wait here, like the busy timeout would.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _setup(self) -> None:
        with self._sqlite_errors():
            version = self._stored_version()  # reads only: a foreign or newer file stays untouched
            self._check_not_newer(version)
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._enable_wal()
            self._conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; a commit is one append
        if version != SCHEMA_VERSION:  # an up-to-date catalog opens without taking the write lock
            self.migrate()

    # public API ---------------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        """The schema version stored in the database."""
        with self._sqlite_errors():
            return self._stored_version() or 0

    def migrate(self) -> int:
        """Apply the pending :data:`MIGRATIONS` in order, in one transaction; return the new version."""
        with self._write() as conn:
            version = self._stored_version()  # re-read under the lock: another process may have migrated
            self._check_not_newer(version)
            if version is None:
                conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                conn.execute("INSERT INTO schema_version (version) VALUES (0)")
                version = 0
            for step in MIGRATIONS[version:]:
                step(conn)
            if version < SCHEMA_VERSION:
                conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        return SCHEMA_VERSION

    def add_image(
        self,
        path: str | os.PathLike[str],
        sha256: str,
        modality: str,
        px_per_cm: float | None = None,
        width_px: int | None = None,
        height_px: int | None = None,
        artwork_id: int | None = None,
    ) -> int:
        """Record an image and return its id; the same (absolute path, sha256) returns the existing id.

        Args:
            path: image file; stored as an absolute path.
            sha256: hex digest of the file's bytes.
            modality: ``xray``, ``rgb``, ``ir``, ``band@NNNnm``, ...
            px_per_cm: physical resolution in pixels per centimetre, if known.
            width_px, height_px: image size in pixels, if known.
            artwork_id: the artwork shown (from :meth:`add_artwork`); set on an existing row too.
        """
        abs_path = str(Path(path).expanduser().resolve())
        with self._write() as conn:
            conn.execute(
                """INSERT INTO images (path, sha256, modality, px_per_cm, width_px, height_px, artwork_id, added_utc)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path, sha256) DO NOTHING""",
                (abs_path, sha256, modality, px_per_cm, width_px, height_px, artwork_id, _now()),
            )
            if artwork_id is not None:
                conn.execute("UPDATE images SET artwork_id = ? WHERE path = ? AND sha256 = ?",
                             (artwork_id, abs_path, sha256))
            row = conn.execute(
                "SELECT id FROM images WHERE path = ? AND sha256 = ?", (abs_path, sha256)
            ).fetchone()
        return int(row[0])

    _ARTWORK_FIELDS = ("title", "artist", "date", "notes", "license", "source_url", "medium", "classification",
                       "style", "genre")

    def add_artwork(self, title: str | None = None, artist: str | None = None, date: str | None = None, *,
                    source: str | None = None, source_id: str | None = None, **fields: str | None) -> int:
        """Record an artwork and return its id.

        With ``source`` and ``source_id`` (e.g. ``"met"``, ``"436535"``) the call is an upsert: the
        same pair returns the existing id and updates its fields, so collecting twice adds nothing.

        Args:
            title, artist, date: as the source gives them (``date`` is free text, e.g. ``"ca. 1889"``).
            source, source_id: where the record came from and its id there.
            **fields: ``notes``, ``license``, ``source_url``, ``medium``, ``classification``, ``style``, ``genre``.
        """
        unknown = set(fields) - set(self._ARTWORK_FIELDS)
        if unknown:
            raise TypeError(f"unknown artwork fields: {sorted(unknown)}")
        values = {"title": title, "artist": artist, "date": date, **fields}
        names = list(values)
        with self._write() as conn:
            if source is not None and source_id is not None:
                row = conn.execute("SELECT id FROM artworks WHERE source = ? AND source_id = ?",
                                   (source, str(source_id))).fetchone()
                if row is not None:
                    conn.execute(f"UPDATE artworks SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?",
                                 [*values.values(), row[0]])
                    return int(row[0])
            marks = ", ".join("?" * (len(names) + 2))
            cur = conn.execute(
                f"INSERT INTO artworks ({', '.join(names)}, source, source_id) VALUES ({marks})",
                [*values.values(), source, None if source_id is None else str(source_id)],
            )
        return int(cur.lastrowid)

    def artworks(self, source: str | None = None) -> list[dict[str, Any]]:
        """Artworks, oldest first; only those from ``source`` when given."""
        sql, args = "SELECT * FROM artworks", []
        if source is not None:
            sql += " WHERE source = ?"
            args.append(source)
        with self._sqlite_errors():
            return [dict(r) for r in self._conn.execute(sql + " ORDER BY id", args)]

    def add_analysis(
        self,
        image_id: int | None,
        method: str,
        parameters: dict[str, Any],
        artlens_version: str,
        summary: dict[str, Any],
        outputs: list[str],
        model_checksum: str | None = None,
    ) -> int:
        """Record one analysis run and return its id.

        Args:
            image_id: the analysed image (from :meth:`add_image`), or ``None``.
            method: e.g. ``spectral``.
            parameters: the resolved parameters (JSON-serialisable).
            artlens_version: version of artlens that ran it.
            summary: the result summary (JSON-serialisable), e.g. the contents of ``summary.json``.
            outputs: paths of the files written.
            model_checksum: checksum of the model weights used, for learned methods.
        """
        record = (
            image_id,
            method,
            _dumps(parameters),
            artlens_version,
            model_checksum,
            _dumps(summary),
            _dumps([os.fspath(p) for p in outputs]),
            _now(),
        )
        with self._write() as conn:
            cur = conn.execute(
                """INSERT INTO analyses (image_id, method, parameters, artlens_version, model_checksum,
                                         summary, outputs, created_utc)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                record,
            )
        return int(cur.lastrowid)

    def images(self) -> list[dict[str, Any]]:
        """All images, oldest first."""
        with self._sqlite_errors():
            return [dict(r) for r in self._conn.execute("SELECT * FROM images ORDER BY id")]

    _ANALYSIS_SELECT = """SELECT a.*, i.path AS image_path FROM analyses a
                          LEFT JOIN images i ON i.id = a.image_id"""

    def analyses(self, limit: int | None = None, method: str | None = None) -> list[dict[str, Any]]:
        """Analyses, newest first, with ``image_path`` joined in and the JSON fields decoded.

        Args:
            limit: return at most this many.
            method: only analyses of this method.
        """
        sql, args = self._ANALYSIS_SELECT, []
        if method is not None:
            sql += " WHERE a.method = ?"
            args.append(method)
        sql += " ORDER BY a.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._sqlite_errors():
            return [_decode(r) for r in self._conn.execute(sql, args)]

    def get_analysis(self, analysis_id: int) -> dict[str, Any] | None:
        """One analysis as in :meth:`analyses`, or ``None`` if there is no such id."""
        with self._sqlite_errors():
            row = self._conn.execute(self._ANALYSIS_SELECT + " WHERE a.id = ?", (analysis_id,)).fetchone()
        return None if row is None else _decode(row)


    def get_image(self, image_id: int) -> dict[str, Any] | None:
        """One image row, or ``None`` if there is no such id."""
        with self._sqlite_errors():
            row = self._conn.execute("SELECT * FROM images WHERE id = ?", (int(image_id),)).fetchone()
        return None if row is None else dict(row)

    # jobs ---------------------------------------------------------------------------------------------
    JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
    MAX_JOB_ATTEMPTS = 2

    def add_job(self, kind: str, params: dict[str, Any], image_id: int | None = None) -> int:
        """Queue a background job and return its id (state ``queued``)."""
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO jobs (kind, image_id, params, state, created_utc) VALUES (?, ?, ?, 'queued', ?)",
                (kind, image_id, _dumps(params), _now()),
            )
        return int(cur.lastrowid)

    def get_job(self, job_id: int) -> dict[str, Any] | None:
        """One job with its JSON fields decoded, or ``None``."""
        with self._sqlite_errors():
            row = self._conn.execute("SELECT * FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        return None if row is None else _decode_job(row)

    def jobs(self, state: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Jobs, newest first; only those in ``state`` when given."""
        sql, args = "SELECT * FROM jobs", []
        if state is not None:
            sql += " WHERE state = ?"
            args.append(state)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._sqlite_errors():
            return [_decode_job(r) for r in self._conn.execute(sql, args)]

    def claim_job(self, worker: str) -> dict[str, Any] | None:
        """Take the oldest queued job for ``worker`` (state becomes ``running``); ``None`` if none waits.

        Atomic: two workers never claim the same job.
        """
        with self._write() as conn:
            row = conn.execute(
                "SELECT id FROM jobs WHERE state = 'queued' AND cancel_requested = 0 ORDER BY id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                """UPDATE jobs SET state = 'running', worker = ?, attempts = attempts + 1, started_utc = ?,
                       progress = 0 WHERE id = ?""",
                (worker, _now(), row[0]),
            )
        return self.get_job(int(row[0]))

    def update_job(self, job_id: int, *, progress: float | None = None, message: str | None = None) -> bool:
        """Report progress (0..1) of a running job; returns ``False`` once a cancel was requested."""
        with self._write() as conn:
            if progress is not None:
                conn.execute("UPDATE jobs SET progress = ? WHERE id = ?",
                             (min(max(float(progress), 0.0), 1.0), int(job_id)))
            if message is not None:
                conn.execute("UPDATE jobs SET message = ? WHERE id = ?", (message, int(job_id)))
            row = conn.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        return row is not None and not row[0]

    def finish_job(self, job_id: int, state: str, *, result: dict[str, Any] | None = None,
                   error: str | None = None, analysis_id: int | None = None) -> None:
        """Close a job as ``done``, ``failed`` or ``cancelled`` with its result or error message."""
        if state not in ("done", "failed", "cancelled"):
            raise ValueError(f"a job finishes as done, failed or cancelled, not {state!r}")
        with self._write() as conn:
            conn.execute(
                """UPDATE jobs SET state = ?, result = ?, error = ?, analysis_id = ?, finished_utc = ?,
                       progress = CASE WHEN ? = 'done' THEN 1 ELSE progress END WHERE id = ?""",
                (state, None if result is None else _dumps(result), error, analysis_id, _now(), state,
                 int(job_id)),
            )

    def cancel_job(self, job_id: int) -> str | None:
        """Ask a job to stop: a queued job is cancelled at once, a running one at its next progress report.

        Returns the job's state after the call, or ``None`` if there is no such job.
        """
        with self._write() as conn:
            conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state IN ('queued', 'running')",
                         (int(job_id),))
            conn.execute("UPDATE jobs SET state = 'cancelled', finished_utc = ? WHERE id = ? AND state = 'queued'",
                         (_now(), int(job_id)))
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        return None if row is None else str(row[0])

    def recover_jobs(self) -> dict[str, int]:
        """After a restart: jobs left ``running`` by a dead server are queued again, or failed after
        :attr:`MAX_JOB_ATTEMPTS` tries. Finished jobs are never touched. Returns the counts."""
        with self._write() as conn:
            failed = conn.execute(
                """UPDATE jobs SET state = 'failed', finished_utc = ?,
                       error = 'the server stopped while this job ran, ' || attempts || ' times; not retried'
                   WHERE state = 'running' AND attempts >= ?""",
                (_now(), self.MAX_JOB_ATTEMPTS),
            ).rowcount
            cancelled = conn.execute(
                "UPDATE jobs SET state = 'cancelled', finished_utc = ? WHERE state = 'running' AND cancel_requested = 1",
                (_now(),),
            ).rowcount
            requeued = conn.execute(
                "UPDATE jobs SET state = 'queued', worker = NULL, progress = 0 WHERE state = 'running'"
            ).rowcount
        return {"requeued": requeued, "failed": failed, "cancelled": cancelled}


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for key in ("parameters", "summary", "outputs"):
        out[key] = json.loads(out[key])
    return out


def _decode_job(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["params"] = json.loads(out["params"])
    out["result"] = None if out["result"] is None else json.loads(out["result"])
    out["cancel_requested"] = bool(out["cancel_requested"])
    return out
