"""Shared fixtures: where ../shared/data lives, and a per-test catalog so tests never touch ./artlens.db."""

from __future__ import annotations

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
