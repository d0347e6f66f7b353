"""Catalog tests run on both backends: ``catalog_at`` is a SQLite file, or the URL of a fresh PostgreSQL
database created for the one test on the server at ``$ARTLENS_TEST_POSTGRES`` and dropped after it.

Without that variable the PostgreSQL half is skipped with the reason, unless ``ARTLENS_REQUIRE_SERVICES=1``
(CI), where it fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_at(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a test's catalog lives: a SQLite file path, or a PostgreSQL URL (a fresh database)."""
    if request.param == "sqlite":
        return tmp_path / "artlens.db"
    return request.getfixturevalue("postgres_database")
