"""Tests for artlens.catalog.store: round trips, jobs and refusals, on SQLite and PostgreSQL (``catalog_at``,
see conftest.py), plus what only one backend has (SQLite files and locks, PostgreSQL URLs and servers)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from artlens.catalog import SCHEMA_VERSION, Catalog, catalog_location, default_catalog_path
from artlens.errors import CatalogError

SHA = "0" * 64


# --- both backends ------------------------------------------------------------------------------------


def test_round_trip(catalog_at, tmp_path: Path) -> None:
    with Catalog(catalog_at) as cat:
        image_id = cat.add_image(
            tmp_path / "plate.tif", SHA, "xray", px_per_cm=200.0, width_px=640, height_px=480
        )
        first = cat.add_analysis(
            image_id,
            "spectral",
            {"window_cm": 1.5},
            "0.1.0",
            {"windows": 81},
            [str(tmp_path / "out" / "summary.json")],
        )
        second = cat.add_analysis(None, "cnn", {}, "0.1.0", {"ok": True}, [], model_checksum="abc")

        (image,) = cat.images()
        assert image["id"] == image_id
        assert image["path"] == str((tmp_path / "plate.tif").resolve())
        assert (image["modality"], image["px_per_cm"], image["width_px"], image["height_px"]) == (
            "xray",
            200.0,
            640,
            480,
        )
        assert image["artwork_id"] is None
        assert cat.get_image(image_id) == image and cat.get_image(9999) is None

        rows = cat.analyses()
        assert [r["id"] for r in rows] == [second, first]  # newest first
        spectral = rows[1]
        assert spectral["parameters"] == {"window_cm": 1.5}
        assert spectral["summary"] == {"windows": 81}
        assert spectral["outputs"] == [str(tmp_path / "out" / "summary.json")]
        assert spectral["image_path"] == image["path"]
        assert rows[0]["image_path"] is None and rows[0]["model_checksum"] == "abc"

        assert [r["id"] for r in cat.analyses(method="spectral")] == [first]
        assert [r["id"] for r in cat.analyses(limit=1)] == [second]
        assert cat.get_analysis(first) == spectral
        assert cat.get_analysis(9999) is None


def test_add_image_is_idempotent(catalog_at) -> None:
    with Catalog(catalog_at) as cat:
        a = cat.add_image("plate.tif", SHA, "xray")
        assert cat.add_image("plate.tif", SHA, "xray") == a
        assert cat.add_image("plate.tif", "1" * 64, "xray") != a  # the file changed: a new entry
        assert len(cat.images()) == 2
        art = cat.add_artwork("Sunflowers", "van Gogh")
        assert cat.add_image("plate.tif", SHA, "xray", artwork_id=art) == a  # links the existing row
        assert cat.get_image(a)["artwork_id"] == art


def test_artworks_upsert_by_source(catalog_at) -> None:
    with Catalog(catalog_at) as cat:
        a = cat.add_artwork("Wheat Field", "van Gogh", "1889", source="met", source_id=436535, genre="landscape")
        assert cat.add_artwork("Wheat Field with Cypresses", "van Gogh", source="met", source_id="436535") == a
        b = cat.add_artwork("Untitled")  # no source: always a new row
        c = cat.add_artwork("Untitled")
        assert len({a, b, c}) == 3
        (met,) = cat.artworks(source="met")
        assert (met["title"], met["source_id"], met["date"]) == ("Wheat Field with Cypresses", "436535", None)
        assert [r["id"] for r in cat.artworks()] == [a, b, c]
        with pytest.raises(TypeError, match="unknown artwork fields"):
            cat.add_artwork("x", colour="blue")


def test_data_survives_reopen(catalog_at) -> None:
    with Catalog(catalog_at) as cat:
        cat.add_analysis(None, "spectral", {"a": 1}, "0.1.0", {}, [])
    with Catalog(catalog_at) as cat:
        assert len(cat.analyses()) == 1
        assert cat.schema_version == SCHEMA_VERSION


def test_jobs_queue_claim_finish_and_recover(catalog_at) -> None:
    with Catalog(catalog_at) as cat:
        a = cat.add_job("threads.count", {"window_cm": 1.0})
        b = cat.add_job("beneath.compare", {})
        c = cat.add_job("verify", {})
        assert [j["state"] for j in cat.jobs()] == ["queued"] * 3
        first = cat.claim_job("w1")
        assert first["id"] == a and first["state"] == "running" and first["attempts"] == 1
        assert first["worker"] == "w1" and first["params"] == {"window_cm": 1.0}
        assert cat.update_job(a, progress=0.5, message="half") is True
        assert (cat.get_job(a)["progress"], cat.get_job(a)["message"]) == (0.5, "half")
        cat.finish_job(a, "done", result={"n": 1})
        assert cat.get_job(a)["result"] == {"n": 1} and cat.get_job(a)["progress"] == 1.0
        assert cat.cancel_job(c) == "cancelled"  # queued: cancelled at once
        assert cat.claim_job("w1")["id"] == b
        assert cat.cancel_job(b) == "running"
        assert cat.update_job(b, progress=0.1) is False  # the worker learns it should stop
        assert cat.cancel_job(9999) is None and cat.get_job(9999) is None
        assert [j["id"] for j in cat.jobs(state="done")] == [a] and len(cat.jobs(limit=2)) == 2
        with pytest.raises(ValueError, match="finishes as"):
            cat.finish_job(a, "running")
    # a server killed while b ran: on restart b is not resumed (cancel requested), a stays done
    with Catalog(catalog_at) as cat:
        d = cat.add_job("threads.count", {})
        assert cat.claim_job("w2")["id"] == d
        counts = cat.recover_jobs()
        assert counts == {"requeued": 1, "failed": 0, "cancelled": 1}
        assert cat.get_job(a)["state"] == "done" and cat.get_job(d)["state"] == "queued"
        cat.claim_job("w3")
        assert cat.recover_jobs()["failed"] == 1  # second interrupted attempt: failed, with a reason
        assert cat.get_job(d)["error"] == "the server stopped while this job ran, 2 times; not retried"
        assert cat.claim_job("w4") is None


def _sql(catalog_at, statement: str) -> None:
    """Run one statement on the catalog's database behind artlens' back."""
    url = catalog_at if isinstance(catalog_at, str) else f"sqlite:///{catalog_at}"
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(statement)
    engine.dispose()


def test_newer_schema_is_refused(catalog_at) -> None:
    Catalog(catalog_at).close()
    _sql(catalog_at, f"UPDATE alembic_version SET version_num = '{SCHEMA_VERSION + 1:04d}'")
    files = sorted(catalog_at.parent.iterdir()) if isinstance(catalog_at, Path) else []
    before = {p.name: p.read_bytes() for p in files}
    with pytest.raises(CatalogError, match="upgrade artlens"):
        Catalog(catalog_at)
    assert {p.name: p.read_bytes() for p in files} == before  # left untouched


def test_foreign_database_is_refused_and_untouched(catalog_at) -> None:
    _sql(catalog_at, "CREATE TABLE t (x INTEGER)")
    before = catalog_at.read_bytes() if isinstance(catalog_at, Path) else None
    with pytest.raises(CatalogError, match="not an artlens catalog"):
        Catalog(catalog_at)
    if before is not None:
        assert catalog_at.read_bytes() == before
    engine = sa.create_engine(catalog_at.replace("postgresql://", "postgresql+psycopg://", 1)
                              if isinstance(catalog_at, str) else f"sqlite:///{catalog_at}")
    assert sa.inspect(engine).get_table_names() == ["t"]  # nothing created
    engine.dispose()


# --- SQLite only --------------------------------------------------------------------------------------


def test_path_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARTLENS_CATALOG", raising=False)
    assert default_catalog_path() == Path("artlens.db") == catalog_location()
    monkeypatch.setenv("ARTLENS_CATALOG", str(tmp_path / "env.db"))
    assert default_catalog_path() == tmp_path / "env.db"
    assert default_catalog_path(str(tmp_path / "explicit.db")) == tmp_path / "explicit.db"

    monkeypatch.chdir(tmp_path)
    with Catalog() as cat:
        assert cat.path == tmp_path / "env.db" and cat.backend == "sqlite"
    assert (tmp_path / "env.db").exists()

    url = "postgresql://me:secret@db.example:5432/lab"
    monkeypatch.setenv("ARTLENS_CATALOG", url)
    assert catalog_location() == url and catalog_location(tmp_path / "x.db") == tmp_path / "x.db"
    with pytest.raises(CatalogError, match=r"is a database \(postgresql://me:\*\*\*@db.example:5432/lab\)"):
        default_catalog_path()


def test_schema_version_and_wal(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    with Catalog(db) as cat:
        assert cat.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(f"{SCHEMA_VERSION:04d}",)]
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]  # the mirror
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_corrupt_file_is_refused_and_untouched(tmp_path: Path) -> None:
    db = tmp_path / "artlens.db"
    content = b"these are my notes, not a database\n" * 20
    db.write_bytes(content)
    with pytest.raises(CatalogError, match="not a SQLite database"):
        Catalog(db)
    assert db.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artlens.db"]  # no -wal / -shm left behind


def test_directory_and_unwritable_locations(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="is a directory"):
        Catalog(tmp_path)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(CatalogError, match="cannot create"):
        Catalog(blocker / "artlens.db")  # its parent is a file: cannot be created, even as root


def test_lock_held_too_long(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "c.db"
    Catalog(db).close()
    monkeypatch.setattr("artlens.catalog.store.BUSY_TIMEOUT_S", 0.1)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with Catalog(db) as cat, pytest.raises(CatalogError, match="locked"):
            cat.add_analysis(None, "spectral", {}, "0.1.0", {}, [])
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# --- PostgreSQL URLs and servers (no server needed: each fails before or at connecting) ------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://artlens@127.0.0.1:1/nothing", "cannot reach the catalog database postgresql://artlens@127.0.0.1:1"),
        ("postgresql://me:secret@127.0.0.1:notaport/db", "bad catalog URL 'postgresql://me:\\*\\*\\*@127.0.0.1"),
        ("postgresql://127.0.0.1:5432", "names no database"),
        ("mysql://me@host/db", "unsupported database 'mysql'"),
        ("postgresql+asyncpg://me@host/db", "through psycopg 3"),
    ],
    ids=["unreachable", "bad-port", "no-database", "mysql", "other-driver"],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message) as info:
        Catalog(url)
    assert "\n" not in str(info.value) and "secret" not in str(info.value)


def test_missing_postgres_database_is_refused(postgres_database: str) -> None:
    missing = postgres_database.rsplit("/", 1)[0] + "/artlens_no_such_database"
    with pytest.raises(CatalogError, match="artlens_no_such_database"):
        Catalog(missing)


def test_postgres_url_forms(postgres_database: str) -> None:
    plain = postgresql = postgres_database.replace("postgresql+psycopg://", "postgresql://", 1)
    with Catalog(postgresql) as cat:
        assert (cat.backend, cat.path) == ("postgresql", None)
        assert cat.location == plain
        cat.add_analysis(None, "spectral", {}, "0.1.0", {}, [])
    with Catalog(postgres_database) as cat:  # the explicit driver name works too
        assert len(cat.analyses()) == 1


def test_browse_filters_counts_and_pages(catalog_at, tmp_path: Path) -> None:
    """The collection browser's query: filters combine, the total counts every match, a page holds the right
    images oldest first, text matches the file name but not its folder, and the facets list what is present."""
    folder = tmp_path / "monet_folder"
    with Catalog(catalog_at) as cat:
        monet = cat.add_artwork("Water Lilies", "Claude Monet")
        turner = cat.add_artwork("Rain, Steam and Speed", "J. M. W. Turner")
        ids = []
        for k in range(7):  # 0-4: Monet rgb, 5: Turner rgb, 6: an X-ray without an artwork
            artwork = monet if k < 5 else turner if k == 5 else None
            modality = "xray" if k == 6 else "rgb"
            ids.append(cat.add_image(folder / f"img-{k}.png", f"{k:064x}", modality, None, 10, 20, artwork_id=artwork))
        cat.add_analysis(ids[1], "paintings.classify", {}, "0.1.0", {}, [])
        cat.add_analysis(ids[3], "paintings.classify", {}, "0.1.0", {}, [])
        cat.add_analysis(ids[3], "verify", {}, "0.1.0", {}, [])
        cat.add_analysis(ids[6], "spectral", {}, "0.1.0", {}, [])

        everything = cat.browse(limit=3)
        assert everything["total"] == 7
        assert [r["id"] for r in everything["rows"]] == ids[:3]
        assert [r["id"] for r in cat.browse(offset=6, limit=3)["rows"]] == ids[6:]
        assert everything["modalities"] == ["rgb", "xray"]
        assert everything["artists"] == ["Claude Monet", "J. M. W. Turner"]
        assert everything["methods"] == ["paintings.classify", "spectral", "verify"]

        monets = cat.browse(artist="Claude Monet", method="paintings.classify")
        assert monets["total"] == 2
        assert [(r["id"], r["title"], r["artist"], r["methods"]) for r in monets["rows"]] == [
            (ids[1], "Water Lilies", "Claude Monet", ["paintings.classify"]),
            (ids[3], "Water Lilies", "Claude Monet", ["paintings.classify", "verify"]),
        ]
        assert cat.browse(modality="xray")["total"] == 1
        assert cat.browse(modality="xray", artist="Claude Monet")["total"] == 0
        assert [r["id"] for r in cat.browse(text="IMG-4")["rows"]] == [ids[4]]  # case-insensitive, file name
        assert cat.browse(text="monet_folder")["total"] == 0  # the folder is not searched
        assert [r["id"] for r in cat.browse(text="turner")["rows"]] == [ids[5]]  # artist
        assert [r["id"] for r in cat.browse(text="spectral")["rows"]] == [ids[6]]  # a method run on it
        assert [r["id"] for r in cat.browse(text="lilies", offset=1, limit=2)["rows"]] == ids[1:3]
        assert cat.browse(text="lilies", method="verify")["total"] == 1
        assert cat.browse(text="   ")["total"] == 7  # blank text filters nothing
