"""Shared fixtures: where ../shared/data lives, and a per-test catalog so tests never touch ./artlens.db."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_catalog(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path_factory.mktemp("catalog") / "artlens.db"
    monkeypatch.setenv("ARTLENS_CATALOG", str(path))
    return path


@pytest.fixture
def shared_data() -> Path:
    """Path of ../shared/data; skips the test with a clear reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA} (real samples are not redistributed)")
    return SHARED_DATA


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run the real ``artlens`` entry point in-process: ``code, out, err = cli("threads", "count", ...)``."""
    from artlens.cli.main import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


# --- PostgreSQL (catalog and web tests) ------------------------------------------------------------


def _server_url() -> str:
    url = os.environ.get("ARTLENS_TEST_POSTGRES", "").strip()
    if not url:
        reason = "ARTLENS_TEST_POSTGRES is not set (a PostgreSQL server for the catalog tests; see .ci/services.sh)"
        if os.environ.get("ARTLENS_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " and ARTLENS_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    return url


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (unique name), dropped after the test."""
    import sqlalchemy as sa

    server = sa.make_url(_server_url())
    if server.drivername in ("postgresql", "postgres"):  # as artlens does: psycopg 3, not psycopg2
        server = server.set(drivername="postgresql+psycopg")
    name = f"artlens_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
