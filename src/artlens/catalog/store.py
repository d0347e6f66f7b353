"""The catalog: images, artworks, the analyses run on them and background jobs, on SQLite or PostgreSQL.

A catalog is named by a file path (the embedded default: one SQLite file in WAL mode) or by a database
URL, ``postgresql://user@host:5432/dbname``, for a catalog that a lab shares. The same tables
(:mod:`artlens.catalog.schema`, SQLAlchemy Core) and the same Alembic migrations
(``artlens/catalog/migrations``) serve both; a catalog is brought up to date when it is opened.

Several processes may write to the same catalog at once: every write is one short transaction. On
SQLite it takes the write lock up front (``BEGIN IMMEDIATE``) and a writer that finds the database busy
waits up to :data:`BUSY_TIMEOUT_S` seconds; on PostgreSQL rows are locked as usual, and
:meth:`Catalog.claim_job` skips jobs that another worker is claiming (``FOR UPDATE SKIP LOCKED``).

Anything that makes the location unusable (not a SQLite database, a directory, an unwritable place, a
database that is not an artlens catalog, a catalog written by a newer artlens, a lock held too long, a
bad URL, a PostgreSQL server that cannot be reached) raises :class:`~artlens.errors.CatalogError` with
a one-line message; the user's database is never modified in that case.

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
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from artlens.catalog import schema
from artlens.catalog.schema import SCHEMA_VERSION
from artlens.errors import CatalogError

DEFAULT_FILENAME = "artlens.db"
ENV_VAR = "ARTLENS_CATALOG"
BUSY_TIMEOUT_S = 30.0
"""SQLite: how long a writer waits for another process's write lock before giving up."""
CONNECT_TIMEOUT_S = 10
"""PostgreSQL: how long to wait for the server to answer before giving up."""
MIGRATIONS_DIR = Path(str(resources.files("artlens.catalog") / "migrations"))
_SQLITE_MAGIC = b"SQLite format 3\x00"
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_MIGRATION_LOCK = 0x617274_6C656E73  # PostgreSQL advisory-lock key held while migrating ("artlens")

__all__ = ["SCHEMA_VERSION", "Catalog", "catalog_location", "default_catalog_path", "is_database_url"]


# --- where the catalog is ------------------------------------------------------------------------------


def is_database_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a database URL (``postgresql://...``) rather than a file path."""
    return isinstance(location, str) and bool(_URL_RE.match(location.strip()))


def catalog_location(explicit: str | os.PathLike[str] | None = None) -> Path | str:
    """Where the catalog lives: ``explicit`` if given, else ``$ARTLENS_CATALOG``, else ``./artlens.db``.

    Returns a :class:`~pathlib.Path` for a SQLite file, or the URL itself (a ``str``) for a database
    server such as ``postgresql://user@host/dbname``.
    """
    raw = explicit if explicit else os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return Path(DEFAULT_FILENAME)
    if is_database_url(raw):
        return str(raw).strip()
    return Path(raw).expanduser()


def default_catalog_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The SQLite catalog file: as :func:`catalog_location`, for callers that need a path.

    Raises:
        CatalogError: the catalog is a database URL, which has no file path.
    """
    location = catalog_location(explicit)
    if isinstance(location, str):
        raise CatalogError(f"the catalog is a database ({_hide_password(location)}), not a file")
    return location


def _hide_password(url: str) -> str:
    """``postgresql://me:secret@host/db`` -> ``postgresql://me:***@host/db``, for messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _server_url(raw: str) -> sa.URL:
    """A PostgreSQL URL for SQLAlchemy, on the psycopg 3 driver; anything else is refused."""
    try:
        url = sa.make_url(raw)
        url.port  # noqa: B018  (a port that is not a number fails here, not at connect time)
    except (sa.exc.ArgumentError, ValueError):
        raise CatalogError(f"bad catalog URL {_hide_password(raw)!r}; expected postgresql://user@host:port/dbname") \
            from None
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        url = url.set(drivername="postgresql+psycopg")
    elif url.get_backend_name() in ("postgresql", "postgres"):
        raise CatalogError(f"catalog URL {_hide_password(raw)!r}: artlens talks to PostgreSQL through psycopg 3; "
                           "write postgresql://... or postgresql+psycopg://...")
    else:
        raise CatalogError(f"catalog URL {_hide_password(raw)!r}: unsupported database "
                           f"{url.get_backend_name()!r}; use a file path (SQLite) or postgresql://...")
    if not url.database:
        raise CatalogError(f"catalog URL {_hide_password(raw)!r} names no database; "
                           "expected postgresql://user@host:port/dbname")
    return url


def _check_file(path: Path) -> None:
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


def _sqlite_engine(path: Path) -> sa.Engine:
    """An engine on one SQLite file: foreign keys on, and transactions begun by us (see ``_on_begin``)."""
    engine = sa.create_engine(sa.URL.create("sqlite", database=str(path)),
                              connect_args={"timeout": BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # the sqlite3 module must not BEGIN on its own
        dbapi_conn.execute("PRAGMA foreign_keys = ON")
        dbapi_conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: a commit is one append

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A write takes the lock up front, so two readers that both decide to write never deadlock.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("artlens_write") else "BEGIN")

    return engine


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


def _revision(version: int) -> str:
    """The Alembic revision id of a schema version: 3 -> ``"0003"``."""
    return f"{version:04d}"


# --- statements used on every write: built once, values bound at execution ------------------------------

_INSERT_ANALYSIS = sa.insert(schema.analyses).returning(schema.analyses.c.id)
_INSERT_JOB = sa.insert(schema.jobs).returning(schema.jobs.c.id)
_SAME_IMAGE = (schema.images.c.path == sa.bindparam("b_path")) & (schema.images.c.sha256 == sa.bindparam("b_sha256"))
_IMAGE_ID = sa.select(schema.images.c.id).where(_SAME_IMAGE)
_LINK_IMAGE = sa.update(schema.images).where(_SAME_IMAGE).values(artwork_id=sa.bindparam("b_artwork_id"))


# --- the catalog --------------------------------------------------------------------------------------


class Catalog:
    """An open catalog.

    Args:
        path: a SQLite file (created if missing) or a database URL ``postgresql://user@host:port/dbname``
            (the database must exist; its tables are created). ``None`` uses :func:`catalog_location`.

    Attributes:
        backend: ``"sqlite"`` or ``"postgresql"``.
        path: the SQLite file, or ``None`` on PostgreSQL.
        location: the file path, or the URL with its password hidden; for messages.

    Raises:
        CatalogError: the location cannot be used as a catalog.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        location = catalog_location(path)
        self.path: Path | None
        if isinstance(location, str):
            url = _server_url(location)
            self.backend, self.path = "postgresql", None
            self.location = url.render_as_string(hide_password=True).replace("+psycopg", "", 1)
            self._engine = sa.create_engine(url, pool_pre_ping=True,
                                            connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
        else:
            _check_file(location)
            self.backend, self.path, self.location = "sqlite", location, str(location)
            self._engine = _sqlite_engine(location)
        self._insert_image = self._insert(schema.images).on_conflict_do_nothing(index_elements=["path", "sha256"])
        try:
            self._setup()
        except BaseException:
            self._engine.dispose()
            raise

    # context manager ----------------------------------------------------------------------------------
    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections (idempotent)."""
        self._engine.dispose()

    # internals ----------------------------------------------------------------------------------------
    def _error(self, exc: Exception) -> CatalogError:
        """One line for the user from a database error."""
        orig = getattr(exc, "orig", None) or exc
        lines = [ln.strip() for ln in str(orig).strip().splitlines() if ln.strip()]
        msg = lines[0] if lines else type(orig).__name__
        if self.backend == "postgresql":
            if isinstance(exc, sa.exc.OperationalError) and ("connect" in msg or "server" in msg):
                return CatalogError(f"cannot reach the catalog database {self.location}: {msg}")
            return CatalogError(f"catalog {self.location}: {msg}")
        if "locked" in msg or "busy" in msg:
            return CatalogError(
                f"catalog {self.location} stayed locked by another process for over {BUSY_TIMEOUT_S:g} s"
            )
        if "not a database" in msg or "malformed" in msg:
            return CatalogError(f"catalog {self.location} is corrupt or not a SQLite database ({msg})")
        if "readonly" in msg or "unable to open" in msg:
            return CatalogError(f"cannot write catalog {self.location} ({msg})")
        return CatalogError(f"catalog {self.location}: {msg}")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sa.exc.DBAPIError, sa.exc.TimeoutError, sqlite3.Error) as exc:  # database errors, not our bugs
            raise self._error(exc) from None

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._errors(), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One short write transaction, committed on success and rolled back on any error."""
        with self._errors(), self._engine.connect() as conn:
            conn.execution_options(artlens_write=True)
            with conn.begin():
                yield conn

    def _insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT, which knows ``ON CONFLICT`` on both backends."""
        return (pg_dialect.insert if self.backend == "postgresql" else sqlite_dialect.insert)(table)

    def _stored_version(self, conn: sa.Connection) -> tuple[int | None, bool]:
        """The schema version stored, and whether Alembic manages it; ``(None, False)`` for an empty database.

        Only reads: a foreign or newer database stays untouched.
        """
        tables = set(sa.inspect(conn).get_table_names())
        if "alembic_version" in tables:
            revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            if revision is None:
                return 0, True
            if not str(revision).isdigit():
                raise CatalogError(f"{self.location} is a database of another Alembic-managed application, "
                                   "not an artlens catalog; left untouched")
            version, managed = int(revision), True
        elif "schema_version" in tables:  # written by artlens before the Alembic port
            stored = conn.execute(sa.text("SELECT version FROM schema_version")).scalar()
            version, managed = int(stored or 0), False
        elif tables:
            raise CatalogError(f"{self.location} is a {self._kind()} database but not an artlens catalog; "
                               "left untouched")
        else:
            return None, False
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"catalog {self.location} has schema version {version}, newer than this artlens "
                f"understands ({SCHEMA_VERSION}); upgrade artlens"
            )
        return version, managed

    def _kind(self) -> str:
        return "PostgreSQL" if self.backend == "postgresql" else "SQLite"

    def _enable_wal(self) -> None:
        # Switching a fresh file to WAL while another process opens it can report "locked" at once,
        # without SQLite's busy handler waiting; so wait here, like the busy timeout would.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        raw = self._engine.raw_connection()
        try:
            driver = raw.driver_connection
            if driver is None:  # only for a connection already invalidated
                raise CatalogError(f"{self.location}: the database connection was closed while opening it")
            while True:
                try:
                    driver.execute("PRAGMA journal_mode = WAL")
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
        finally:
            raw.close()

    def _setup(self) -> None:
        with self._read() as conn:
            version, managed = self._stored_version(conn)  # reads only: a foreign or newer database stays untouched
        with self._errors():
            if self.backend == "sqlite":
                self._enable_wal()
        if version != SCHEMA_VERSION or not managed:  # an up-to-date catalog opens without taking a lock
            self.migrate()

    def _alembic_config(self, conn: sa.Connection) -> Any:
        from alembic.config import Config

        config = Config()  # built here, from no file: users need no alembic.ini
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = conn
        return config

    # public API ---------------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        """The schema version stored in the database."""
        with self._read() as conn:
            return self._stored_version(conn)[0] or 0

    def migrate(self) -> int:
        """Bring the schema up to :data:`SCHEMA_VERSION` with the Alembic migrations, in one transaction.

        A catalog written before the Alembic port (a ``schema_version`` table only) is first stamped
        with the revision of its version, then upgraded; its rows are kept. Returns the new version.
        """
        from alembic import command
        from alembic.util import CommandError

        try:
            with self._write() as conn:
                if self.backend == "postgresql":  # one migrator at a time; the others wait, then find it done
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
                version, managed = self._stored_version(conn)  # re-read under the lock
                config = self._alembic_config(conn)
                if version and not managed:
                    command.stamp(config, _revision(version))
                command.upgrade(config, _revision(SCHEMA_VERSION))
        except CommandError as exc:  # rolled back: the catalog is as it was
            raise CatalogError(f"catalog {self.location}: cannot migrate ({exc})") from None
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
        record = {"path": abs_path, "sha256": sha256, "modality": modality, "px_per_cm": px_per_cm,
                  "width_px": width_px, "height_px": height_px, "artwork_id": artwork_id, "added_utc": _now()}
        key = {"b_path": abs_path, "b_sha256": sha256}
        with self._write() as conn:
            conn.execute(self._insert_image, record)
            if artwork_id is not None:
                conn.execute(_LINK_IMAGE, {**key, "b_artwork_id": artwork_id})
            return int(conn.execute(_IMAGE_ID, key).scalar_one())

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
        insert = self._insert(schema.artworks).values(
            **values, source=source, source_id=None if source_id is None else str(source_id)
        )
        if source is not None and source_id is not None:  # one row per (source, source_id), even under races
            insert = insert.on_conflict_do_update(
                index_elements=["source", "source_id"], index_where=schema.artworks.c.source.is_not(None),
                set_=values,
            )
        with self._write() as conn:
            return int(conn.execute(insert.returning(schema.artworks.c.id)).scalar_one())

    def artworks(self, source: str | None = None) -> list[dict[str, Any]]:
        """Artworks, oldest first; only those from ``source`` when given."""
        query = sa.select(schema.artworks).order_by(schema.artworks.c.id)
        if source is not None:
            query = query.where(schema.artworks.c.source == source)
        with self._read() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

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
        record = {
            "image_id": image_id,
            "method": method,
            "parameters": _dumps(parameters),
            "artlens_version": artlens_version,
            "model_checksum": model_checksum,
            "summary": _dumps(summary),
            "outputs": _dumps([os.fspath(p) for p in outputs]),
            "created_utc": _now(),
        }
        with self._write() as conn:
            return int(conn.execute(_INSERT_ANALYSIS, record).scalar_one())

    def images(self) -> list[dict[str, Any]]:
        """All images, oldest first."""
        with self._read() as conn:
            query = sa.select(schema.images).order_by(schema.images.c.id)
            return [dict(r) for r in conn.execute(query).mappings()]

    def browse(self, *, modality: str = "", artist: str = "", method: str = "", text: str = "", offset: int = 0,
               limit: int = 48) -> dict[str, Any]:
        """One page of images for a collection browser, filtered, with what the filters can offer.

        The filters combine (all must hold; an empty one is off). ``text`` is a case-insensitive substring of the
        image's file name (not its folder), SHA-256, modality, artwork title or artist, or of a method run on it.
        Without ``text`` the database filters, counts and pages; with it the light columns of every image are
        read and matched here (a file name is not portable SQL), then the page's rows are read.

        Args:
            modality: only images of this modality.
            artist: only images whose artwork record names this artist.
            method: only images with an analysis of this method.
            text: substring to search for.
            offset: images skipped (oldest first).
            limit: at most this many images returned.

        Returns:
            ``{"total": images matching, "rows": the page's images (the :meth:`images` columns plus ``title``,
            ``artist`` and ``methods``, sorted), "modalities", "artists", "methods": every value present}``.
        """
        im, aw, an = schema.images, schema.artworks, schema.analyses
        conds: list[Any] = []
        if modality:
            conds.append(im.c.modality == modality)
        if artist:
            conds.append(im.c.artwork_id.in_(sa.select(aw.c.id).where(aw.c.artist == artist)))
        if method:
            conds.append(im.c.id.in_(sa.select(an.c.image_id).where(an.c.method == method)))
        needle = text.strip().lower()
        with self._read() as conn:
            if needle:
                light = conn.execute(sa.select(im.c.id, im.c.path, im.c.sha256, im.c.modality, aw.c.title, aw.c.artist)
                                     .select_from(im.outerjoin(aw, aw.c.id == im.c.artwork_id))
                                     .where(*conds).order_by(im.c.id)).all()
                done: dict[int, list[str]] = {}
                for image_id, m in conn.execute(sa.select(an.c.image_id, an.c.method).distinct()
                                                .where(an.c.image_id.is_not(None))):
                    done.setdefault(int(image_id), []).append(str(m))
                ids = [int(r[0]) for r in light
                       if needle in " ".join(str(x) for x in (Path(r[1]).name, r[2], r[3], r[4], r[5],
                                                             *done.get(int(r[0]), ()))).lower()]
                total, page_ids = len(ids), ids[max(0, offset): max(0, offset) + limit]
                query = sa.select(im, aw.c.title, aw.c.artist).where(im.c.id.in_(page_ids))
            else:
                total = int(conn.execute(sa.select(sa.func.count()).select_from(im).where(*conds)).scalar_one())
                query = sa.select(im, aw.c.title, aw.c.artist).where(*conds).offset(max(0, offset)).limit(limit)
            query = query.select_from(im.outerjoin(aw, aw.c.id == im.c.artwork_id)).order_by(im.c.id)
            rows = [dict(r) for r in conn.execute(query).mappings()]
            methods: dict[int, set[str]] = {}
            if rows:
                page_ids = [r["id"] for r in rows]
                pairs = sa.select(an.c.image_id, an.c.method).distinct().where(an.c.image_id.in_(page_ids))
                for image_id, m in conn.execute(pairs):
                    methods.setdefault(int(image_id), set()).add(str(m))
            for r in rows:
                r["methods"] = sorted(methods.get(r["id"], ()))
            facets = {
                "modalities": sorted(conn.execute(sa.select(im.c.modality).distinct()).scalars()),
                "artists": sorted(a for a in conn.execute(
                    sa.select(aw.c.artist).distinct().select_from(im.join(aw, aw.c.id == im.c.artwork_id))).scalars()
                    if a),
                "methods": sorted(conn.execute(sa.select(an.c.method).distinct()).scalars()),
            }
        return {"total": total, "rows": rows, **facets}

    _ANALYSIS_SELECT = sa.select(schema.analyses, schema.images.c.path.label("image_path")).select_from(
        schema.analyses.outerjoin(schema.images, schema.images.c.id == schema.analyses.c.image_id)
    )

    def analyses(self, limit: int | None = None, method: str | None = None,
                 image_id: int | None = None) -> list[dict[str, Any]]:
        """Analyses, newest first, with ``image_path`` joined in and the JSON fields decoded.

        Args:
            limit: return at most this many.
            method: only analyses of this method.
            image_id: only analyses of this image.
        """
        query = self._ANALYSIS_SELECT.order_by(schema.analyses.c.id.desc())
        if method is not None:
            query = query.where(schema.analyses.c.method == method)
        if image_id is not None:
            query = query.where(schema.analyses.c.image_id == int(image_id))
        if limit is not None:
            query = query.limit(int(limit))
        with self._read() as conn:
            return [_decode(r) for r in conn.execute(query).mappings()]

    def get_analysis(self, analysis_id: int) -> dict[str, Any] | None:
        """One analysis as in :meth:`analyses`, or ``None`` if there is no such id."""
        with self._read() as conn:
            query = self._ANALYSIS_SELECT.where(schema.analyses.c.id == int(analysis_id))
            row = conn.execute(query).mappings().first()
        return None if row is None else _decode(row)

    def get_image(self, image_id: int) -> dict[str, Any] | None:
        """One image row, or ``None`` if there is no such id."""
        with self._read() as conn:
            query = sa.select(schema.images).where(schema.images.c.id == int(image_id))
            row = conn.execute(query).mappings().first()
        return None if row is None else dict(row)

    def rows(self, table: str) -> Iterator[dict[str, Any]]:
        """Every row of ``table`` (``analyses``, ``images``, ``artworks`` or ``jobs``) as stored, oldest first;
        JSON fields stay text. For exports."""
        if table not in schema.TABLES:
            raise ValueError(f"unknown catalog table {table!r}; one of {', '.join(schema.TABLES)}")
        tbl = schema.TABLES[table]
        with self._read() as conn:
            for row in conn.execute(sa.select(tbl).order_by(tbl.c.id)).mappings():
                yield dict(row)

    # jobs ---------------------------------------------------------------------------------------------
    JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
    MAX_JOB_ATTEMPTS = 2

    def add_job(self, kind: str, params: dict[str, Any], image_id: int | None = None) -> int:
        """Queue a background job and return its id (state ``queued``)."""
        record = {"kind": kind, "image_id": image_id, "params": _dumps(params), "state": "queued",
                  "created_utc": _now()}
        with self._write() as conn:
            return int(conn.execute(_INSERT_JOB, record).scalar_one())

    def get_job(self, job_id: int) -> dict[str, Any] | None:
        """One job with its JSON fields decoded, or ``None``."""
        with self._read() as conn:
            row = conn.execute(sa.select(schema.jobs).where(schema.jobs.c.id == int(job_id))).mappings().first()
        return None if row is None else _decode_job(row)

    def jobs(self, state: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Jobs, newest first; only those in ``state`` when given."""
        query = sa.select(schema.jobs).order_by(schema.jobs.c.id.desc())
        if state is not None:
            query = query.where(schema.jobs.c.state == state)
        if limit is not None:
            query = query.limit(int(limit))
        with self._read() as conn:
            return [_decode_job(r) for r in conn.execute(query).mappings()]

    def claim_job(self, worker: str) -> dict[str, Any] | None:
        """Take the oldest queued job for ``worker`` (state becomes ``running``); ``None`` if none waits.

        Atomic: two workers never claim the same job. On SQLite the write lock is taken before the
        job is chosen; on PostgreSQL the chosen row is locked and other workers skip it.
        """
        oldest = (
            sa.select(schema.jobs.c.id)
            .where((schema.jobs.c.state == "queued") & (schema.jobs.c.cancel_requested == 0))
            .order_by(schema.jobs.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite renders nothing (it holds the write lock)
        )
        with self._write() as conn:
            job_id = conn.execute(oldest).scalar()
            if job_id is None:
                return None
            conn.execute(
                sa.update(schema.jobs)
                .where((schema.jobs.c.id == job_id) & (schema.jobs.c.state == "queued"))
                .values(state="running", worker=worker, attempts=schema.jobs.c.attempts + 1, started_utc=_now(),
                        progress=0.0)
            )
        return self.get_job(int(job_id))

    def update_job(self, job_id: int, *, progress: float | None = None, message: str | None = None) -> bool:
        """Report progress (0..1) of a running job; returns ``False`` once a cancel was requested."""
        values: dict[str, Any] = {}
        if progress is not None:
            values["progress"] = min(max(float(progress), 0.0), 1.0)
        if message is not None:
            values["message"] = message
        with self._write() as conn:
            if values:
                conn.execute(sa.update(schema.jobs).where(schema.jobs.c.id == int(job_id)).values(**values))
            query = sa.select(schema.jobs.c.cancel_requested).where(schema.jobs.c.id == int(job_id))
            cancel = conn.execute(query).scalar()
        return cancel is not None and not cancel

    def finish_job(self, job_id: int, state: str, *, result: dict[str, Any] | None = None,
                   error: str | None = None, analysis_id: int | None = None) -> None:
        """Close a job as ``done``, ``failed`` or ``cancelled`` with its result or error message."""
        if state not in ("done", "failed", "cancelled"):
            raise ValueError(f"a job finishes as done, failed or cancelled, not {state!r}")
        with self._write() as conn:
            conn.execute(
                sa.update(schema.jobs)
                .where(schema.jobs.c.id == int(job_id))
                .values(state=state, result=None if result is None else _dumps(result), error=error,
                        analysis_id=analysis_id, finished_utc=_now(),
                        progress=1.0 if state == "done" else schema.jobs.c.progress)
            )

    def cancel_job(self, job_id: int) -> str | None:
        """Ask a job to stop: a queued job is cancelled at once, a running one at its next progress report.

        Returns the job's state after the call, or ``None`` if there is no such job.
        """
        this = schema.jobs.c.id == int(job_id)
        with self._write() as conn:
            conn.execute(sa.update(schema.jobs).where(this & schema.jobs.c.state.in_(("queued", "running")))
                         .values(cancel_requested=1))
            conn.execute(sa.update(schema.jobs).where(this & (schema.jobs.c.state == "queued"))
                         .values(state="cancelled", finished_utc=_now()))
            return conn.execute(sa.select(schema.jobs.c.state).where(this)).scalar()

    def recover_jobs(self) -> dict[str, int]:
        """After a restart: jobs left ``running`` by a dead server are queued again, or failed after
        :attr:`MAX_JOB_ATTEMPTS` tries. Finished jobs are never touched. Returns the counts."""
        running = schema.jobs.c.state == "running"
        reason = (sa.literal("the server stopped while this job ran, ")
                  + sa.cast(schema.jobs.c.attempts, sa.Text) + sa.literal(" times; not retried"))
        with self._write() as conn:
            failed = conn.execute(
                sa.update(schema.jobs).where(running & (schema.jobs.c.attempts >= self.MAX_JOB_ATTEMPTS))
                .values(state="failed", finished_utc=_now(), error=reason)
            ).rowcount
            cancelled = conn.execute(
                sa.update(schema.jobs).where(running & (schema.jobs.c.cancel_requested == 1))
                .values(state="cancelled", finished_utc=_now())
            ).rowcount
            requeued = conn.execute(
                sa.update(schema.jobs).where(running).values(state="queued", worker=None, progress=0.0)
            ).rowcount
        return {"requeued": requeued, "failed": failed, "cancelled": cancelled}


def _decode(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key in ("parameters", "summary", "outputs"):
        out[key] = json.loads(out[key])
    return out


def _decode_job(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["params"] = json.loads(out["params"])
    out["result"] = None if out["result"] is None else json.loads(out["result"])
    out["cancel_requested"] = bool(out["cancel_requested"])
    return out
