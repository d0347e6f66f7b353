"""The Alembic migrations: they build exactly the tables of artlens.catalog.schema on both backends, and
a catalog written by artlens before the Alembic port (raw sqlite3, a ``schema_version`` table at 1, 2 or 3)
opens, keeps every row and is upgraded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from artlens.catalog import SCHEMA_VERSION, Catalog
from artlens.catalog import schema as catalog_schema
from artlens.catalog.store import MIGRATIONS_DIR
from artlens.errors import CatalogError


def _engine(catalog_at) -> sa.Engine:
    url = catalog_at if isinstance(catalog_at, str) else f"sqlite:///{catalog_at}"
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def test_migrations_build_the_declared_schema(catalog_at) -> None:
    Catalog(catalog_at).close()
    engine = _engine(catalog_at)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, catalog_schema.metadata)
    engine.dispose()
    assert diff == []


def test_schema_version_is_the_newest_revision() -> None:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert heads == [f"{SCHEMA_VERSION:04d}"]


# The DDL of artlens before the Alembic port (git show 9dcc89b:src/artlens/catalog/store.py), copied
# here on purpose: these are the files users have on disk, whatever the migrations say today.
_OLD_DDL = {
    1: [
        "CREATE TABLE artworks (id INTEGER PRIMARY KEY, title TEXT, artist TEXT, date TEXT, notes TEXT)",
        """CREATE TABLE images (id INTEGER PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL,
               modality TEXT NOT NULL, px_per_cm REAL, width_px INTEGER, height_px INTEGER,
               artwork_id INTEGER REFERENCES artworks(id) ON DELETE SET NULL, added_utc TEXT NOT NULL,
               UNIQUE (path, sha256))""",
        """CREATE TABLE analyses (id INTEGER PRIMARY KEY, image_id INTEGER REFERENCES images(id) ON DELETE SET NULL,
               method TEXT NOT NULL, parameters TEXT NOT NULL, artlens_version TEXT NOT NULL, model_checksum TEXT,
               summary TEXT NOT NULL, outputs TEXT NOT NULL, created_utc TEXT NOT NULL)""",
        "CREATE INDEX analyses_method ON analyses(method)",
        "CREATE INDEX analyses_image ON analyses(image_id)",
    ],
    2: [
        *(f"ALTER TABLE artworks ADD COLUMN {c} TEXT"
          for c in ("source", "source_id", "license", "source_url", "medium", "classification", "style", "genre")),
        "CREATE UNIQUE INDEX artworks_source ON artworks(source, source_id) WHERE source IS NOT NULL",
    ],
    3: [
        """CREATE TABLE jobs (id INTEGER PRIMARY KEY, kind TEXT NOT NULL,
               image_id INTEGER REFERENCES images(id) ON DELETE SET NULL, params TEXT NOT NULL, state TEXT NOT NULL,
               progress REAL NOT NULL DEFAULT 0, message TEXT, result TEXT, error TEXT,
               analysis_id INTEGER REFERENCES analyses(id) ON DELETE SET NULL, worker TEXT,
               attempts INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,
               created_utc TEXT NOT NULL, started_utc TEXT, finished_utc TEXT)""",
        "CREATE INDEX jobs_state ON jobs(state)",
    ],
}


def _old_catalog(db: Path, version: int) -> None:
    """A catalog as artlens wrote it before the Alembic port, at ``version``, with some rows."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    for step in range(1, version + 1):
        for ddl in _OLD_DDL[step]:
            conn.execute(ddl)
    conn.execute("INSERT INTO artworks (title, artist) VALUES ('Wheat Field', 'van Gogh')")
    conn.execute("""INSERT INTO images (path, sha256, modality, px_per_cm, artwork_id, added_utc)
                    VALUES ('/plates/a.tif', ?, 'xray', 200.0, 1, '2026-01-01T00:00:00+00:00')""", ("a" * 64,))
    conn.execute("""INSERT INTO analyses (image_id, method, parameters, artlens_version, summary, outputs, created_utc)
                    VALUES (1, 'spectral', '{"window_cm": 1.5}', '0.1.0', '{"windows": 81}', '["/out/summary.json"]',
                            '2026-01-01T00:00:01+00:00')""")
    if version >= 3:
        conn.execute("""INSERT INTO jobs (kind, params, state, created_utc)
                        VALUES ('verify', '{}', 'queued', '2026-01-01T00:00:02+00:00')""")
    conn.execute("COMMIT")
    conn.close()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_pre_alembic_catalog_opens_and_upgrades(tmp_path: Path, version: int) -> None:
    db = tmp_path / "old.db"
    _old_catalog(db, version)
    with Catalog(db) as cat:
        assert cat.schema_version == SCHEMA_VERSION
        (image,) = cat.images()
        assert (image["path"], image["sha256"], image["px_per_cm"], image["artwork_id"]) == (
            "/plates/a.tif", "a" * 64, 200.0, 1)
        (analysis,) = cat.analyses()
        assert analysis["parameters"] == {"window_cm": 1.5} and analysis["summary"] == {"windows": 81}
        assert analysis["image_path"] == "/plates/a.tif"
        (artwork,) = cat.artworks()
        assert (artwork["title"], artwork["artist"], artwork["source"]) == ("Wheat Field", "van Gogh", None)
        # what later versions added works on the upgraded file
        assert len(cat.jobs()) == (1 if version >= 3 else 0)
        job = cat.add_job("threads.count", {})
        assert cat.add_artwork("x", source="met", source_id="1") == cat.add_artwork("y", source="met", source_id="1")
        cat.add_analysis(image["id"], "cnn", {}, "0.2.0", {}, [])
        assert len(cat.analyses()) == 2 and cat.get_job(job)["state"] == "queued"
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(f"{SCHEMA_VERSION:04d}",)]
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    conn.close()
    with Catalog(db) as cat:  # and it opens again as an ordinary catalog
        assert len(cat.analyses()) == 2
    # The same tables, columns, indexes and foreign-key actions as a new catalog. (Not compare_metadata: the
    # old DDL differs in ways SQLite ignores, e.g. REAL vs FLOAT and inline REFERENCES clauses.)
    engine = _engine(db)
    inspector = sa.inspect(engine)
    for name, table in catalog_schema.metadata.tables.items():
        assert [c["name"] for c in inspector.get_columns(name)] == [c.name for c in table.columns]
        assert {i["name"] for i in inspector.get_indexes(name)} == {i.name for i in table.indexes}
    engine.dispose()
    conn = sqlite3.connect(db)
    for table in ("images", "analyses", "jobs"):
        assert {row[6] for row in conn.execute(f"PRAGMA foreign_key_list({table})")} == {"SET NULL"}
    conn.close()


def test_pre_alembic_catalog_from_the_future_is_refused_and_untouched(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _old_catalog(db, 3)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.close()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(CatalogError, match="upgrade artlens"):
        Catalog(db)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_other_alembic_application_is_refused(catalog_at) -> None:
    engine = _engine(catalog_at)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('ae1027a6acf')")
    engine.dispose()
    with pytest.raises(CatalogError, match="not an artlens catalog"):
        Catalog(catalog_at)
