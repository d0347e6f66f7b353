"""``artlens catalog list`` and ``artlens catalog export`` through the real entry point, on both backends."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from artlens.catalog import Catalog


@pytest.fixture
def filled(catalog_at, tmp_path: Path):
    """A catalog with one image, two analyses, an artwork and a job."""
    with Catalog(catalog_at) as cat:
        art = cat.add_artwork("Wheat Field", "van Gogh", source="met", source_id="436535")
        image = cat.add_image(tmp_path / "plate.tif", "a" * 64, "xray", px_per_cm=200.0, artwork_id=art)
        cat.add_analysis(image, "threads.spectral", {"window_cm": 1.5}, "0.1.0",
                         {"horizontal": {"threads_per_cm": {"mean": 12.03}}}, ["summary.json"])
        cat.add_analysis(None, "search", {"k": 5}, "0.1.0", {"results": 5}, [], model_checksum="c" * 64)
        cat.add_job("verify", {"a": 1})
    return str(catalog_at)


def test_list_on_both_backends(cli, filled) -> None:
    code, out, err = cli("catalog", "list", "--catalog", filled)
    assert code == 0, err
    assert "2 analyses shown" in out and "threads.spectral" in out and "12.03" in out
    code, out, _ = cli("catalog", "list", "--catalog", filled, "--json", "--limit", "1")
    (row,) = json.loads(out)
    assert row["method"] == "search" and row["model_checksum"] == "c" * 64


def test_list_takes_the_url_from_the_environment(cli, filled, monkeypatch) -> None:
    monkeypatch.setenv("ARTLENS_CATALOG", filled)
    code, out, err = cli("catalog", "list", "--json")
    assert code == 0, err
    assert len(json.loads(out)) == 2


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_every_table(cli, filled, tmp_path: Path, fmt: str) -> None:
    expected = {"analyses": 2, "images": 1, "artworks": 1, "jobs": 1}
    for table, n in expected.items():
        out = tmp_path / "export" / f"{table}.{fmt}"
        code, stdout, err = cli("catalog", "export", "--catalog", filled, "--table", table, "--format", fmt,
                                "--out", out, "--json")
        assert code == 0, err
        assert json.loads(stdout) == {"table": table, "rows": n, "format": fmt, "out": str(out),
                                      "catalog": json.loads(stdout)["catalog"]}
        if fmt == "csv":
            with out.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
        else:
            rows = pq.read_table(out).to_pylist()
        assert len(rows) == n
    out = tmp_path / "export" / f"analyses.{fmt}"
    rows = list(csv.DictReader(out.open(newline=""))) if fmt == "csv" else pq.read_table(out).to_pylist()
    spectral = next(r for r in rows if r["method"] == "threads.spectral")
    assert json.loads(spectral["parameters"]) == {"window_cm": 1.5}
    if fmt == "parquet":
        table = pq.read_table(out)
        assert str(table.schema.field("id").type) == "int64" and str(table.schema.field("summary").type) == "string"
        images = pq.read_table(tmp_path / "export" / "images.parquet").to_pylist()
        assert images[0]["px_per_cm"] == 200.0


def test_export_empty_table_keeps_columns(cli, catalog_at, tmp_path: Path) -> None:
    Catalog(catalog_at).close()
    out = tmp_path / "jobs.parquet"
    code, _, err = cli("catalog", "export", "--catalog", str(catalog_at), "--table", "jobs", "--out", out)
    assert code == 0, err
    table = pq.read_table(out)
    assert table.num_rows == 0 and "cancel_requested" in table.column_names


def test_export_bad_input(cli, tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    Catalog(db).close()
    cases = [
        (["--table", "paintings", "--out", tmp_path / "x.csv"], "unknown catalog table 'paintings'"),
        (["--out", tmp_path / "x.xlsx"], "cannot tell the format of x.xlsx"),
        (["--format", "xlsx", "--out", tmp_path / "x.csv"], "unknown export format 'xlsx'"),
        (["--out", tmp_path], "is a folder"),
    ]
    for args, message in cases:
        code, _, err = cli("catalog", "export", "--catalog", db, *args)
        assert code == 7 and message in err and "Traceback" not in err, err
    code, _, err = cli("catalog", "export", "--catalog", tmp_path / "missing.db", "--out", tmp_path / "x.csv")
    assert code == 3 and "no catalog yet" in err and not (tmp_path / "missing.db").exists()
    code, _, err = cli("catalog", "list", "--catalog", "postgresql://artlens@127.0.0.1:1/none")
    assert code == 8 and err.startswith("error: cannot reach the catalog database") and err.count("\n") == 1
