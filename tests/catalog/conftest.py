"""Catalog tests run on both backends: ``catalog_at`` is a SQLite file, or the URL of a fresh PostgreSQL
database created for the one test on the server at ``$ARTLENS_TEST_POSTGRES`` and dropped after it.

Without that variable the PostgreSQL half is skipped with the reason, unless ``ARTLENS_REQUIRE_SERVICES=1``
(CI), where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


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


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_at(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a test's catalog lives: a SQLite file path, or a PostgreSQL URL (a fresh database)."""
    if request.param == "sqlite":
        return tmp_path / "artlens.db"
    return request.getfixturevalue("postgres_database")
