"""Tests for artlens.catalog.store: schema, round trips, path resolution, bad files, concurrent writers."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import artlens
from artlens.catalog import SCHEMA_VERSION, Catalog, default_catalog_path
from artlens.errors import CatalogError

SHA = "0" * 64


def test_round_trip(tmp_path: Path) -> None:
    with Catalog(tmp_path / "artlens.db") as cat:
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


def test_add_image_is_idempotent(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as cat:
        a = cat.add_image("plate.tif", SHA, "xray")
        assert cat.add_image("plate.tif", SHA, "xray") == a
        assert cat.add_image("plate.tif", "1" * 64, "xray") != a  # the file changed: a new entry
        assert len(cat.images()) == 2


def test_data_survives_reopen(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    with Catalog(db) as cat:
        cat.add_analysis(None, "spectral", {"a": 1}, "0.1.0", {}, [])
    with Catalog(db) as cat:
        assert len(cat.analyses()) == 1


def test_path_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARTLENS_CATALOG", raising=False)
    assert default_catalog_path() == Path("artlens.db")
    monkeypatch.setenv("ARTLENS_CATALOG", str(tmp_path / "env.db"))
    assert default_catalog_path() == tmp_path / "env.db"
    assert default_catalog_path(str(tmp_path / "explicit.db")) == tmp_path / "explicit.db"

    monkeypatch.chdir(tmp_path)
    with Catalog() as cat:
        assert cat.path == tmp_path / "env.db"
    assert (tmp_path / "env.db").exists()


def test_schema_version_and_wal(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    with Catalog(db) as cat:
        assert cat.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    Catalog(db).close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(CatalogError, match="upgrade artlens"):
        Catalog(db)


def test_corrupt_file_is_refused_and_untouched(tmp_path: Path) -> None:
    db = tmp_path / "artlens.db"
    content = b"these are my notes, not a database\n" * 20
    db.write_bytes(content)
    with pytest.raises(CatalogError, match="not a SQLite database"):
        Catalog(db)
    assert db.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artlens.db"]  # no -wal / -shm left behind


def test_foreign_sqlite_database_is_refused_and_untouched(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(CatalogError, match="not an artlens catalog"):
        Catalog(db)
    assert db.read_bytes() == before


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


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from artlens.catalog import Catalog
    db, go, tag, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    while not go.exists():
        time.sleep(0.005)
    with Catalog(db) as cat:
        image_id = cat.add_image("plate.tif", "0" * 64, "xray")
        for i in range(n):
            cat.add_analysis(image_id, "spectral", {"writer": tag, "i": i}, "test", {"i": i}, [])
    """
)


@pytest.mark.parametrize("precreate", [True, False], ids=["existing-db", "fresh-db"])
def test_two_processes_write_concurrently(tmp_path: Path, precreate: bool) -> None:
    db, go, n = tmp_path / "c.db", tmp_path / "go", 200
    if precreate:
        Catalog(db).close()
    env = dict(os.environ, PYTHONPATH=str(Path(artlens.__file__).parents[1]))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(db), str(go), tag, str(n)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    time.sleep(0.3)  # let both interpreters start, then release them together
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err

    with Catalog(db) as cat:
        rows = cat.analyses()
        assert len(rows) == 2 * n
        assert sorted((r["parameters"]["writer"], r["parameters"]["i"]) for r in rows) == sorted(
            (tag, i) for tag in ("a", "b") for i in range(n)
        )
        assert len(cat.images()) == 1
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_jobs_queue_claim_finish_and_recover(tmp_path):
    from artlens.catalog import Catalog

    db = tmp_path / "jobs.db"
    with Catalog(db) as cat:
        a = cat.add_job("threads.count", {"window_cm": 1.0})
        b = cat.add_job("beneath.compare", {})
        c = cat.add_job("verify", {})
        assert [j["state"] for j in cat.jobs()] == ["queued"] * 3
        first = cat.claim_job("w1")
        assert first["id"] == a and first["state"] == "running" and first["attempts"] == 1
        assert cat.update_job(a, progress=0.5, message="half") is True
        cat.finish_job(a, "done", result={"n": 1})
        assert cat.get_job(a)["result"] == {"n": 1} and cat.get_job(a)["progress"] == 1.0
        assert cat.cancel_job(c) == "cancelled"  # queued: cancelled at once
        assert cat.claim_job("w1")["id"] == b
        assert cat.cancel_job(b) == "running"
        assert cat.update_job(b, progress=0.1) is False  # the worker learns it should stop
    # a server killed while b ran: on restart b is not resumed (cancel requested), a stays done
    with Catalog(db) as cat:
        d = cat.add_job("threads.count", {})
        assert cat.claim_job("w2")["id"] == d
        counts = cat.recover_jobs()
        assert counts == {"requeued": 1, "failed": 0, "cancelled": 1}
        assert cat.get_job(a)["state"] == "done" and cat.get_job(d)["state"] == "queued"
        cat.claim_job("w3")
        assert cat.recover_jobs()["failed"] == 1  # second interrupted attempt: failed, with a reason
        assert "server stopped" in cat.get_job(d)["error"]
        assert cat.claim_job("w4") is None
