"""Helpers shared by the collector tests (fixtures live in conftest.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from artlens.cli.main import main
from artlens.collect.testing import ReplaySite

FIXTURES = Path(__file__).parent / "fixtures"
FAST = ["--rate", "500", "--backoff", "0.01"]  # tests raise the polite default of 1 request/s


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def make_site(**overrides: object) -> ReplaySite:
    met, aic, artsy, wiki = load("met"), load("aic"), load("artsy"), load("wikiart")
    kwargs: dict = dict(
        met_objects=met["objects"], met_departments=met["departments"], aic_artworks=aic["artworks"],
        artsy_artworks=artsy["artworks"], artsy_artists=artsy["artists"], wikiart_artists=wiki["artists"],
        wikiart_styles=wiki["styles"], wikiart_details=wiki["details"],
    )
    kwargs.update(overrides)
    return ReplaySite(**kwargs)


def run_cli(args: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``artlens ARGS`` in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    code = exc.value.code
    return (0 if code is None else int(code)), out, err


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
