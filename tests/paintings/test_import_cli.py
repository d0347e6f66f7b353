"""``artlens paintings import``: JSON summary, catalog records (idempotent), one-line errors on bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from artlens.catalog import Catalog


def _img(path: Path, value: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (10, 7), (value, value, 200)).save(path)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "artists"
    for k, (artist, n) in enumerate({"hals": 3, "vermeer": 2}.items()):
        for i in range(n):
            _img(root / artist / f"{i}.jpg", value=20 * k + i)
    return root


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    base = tmp_path / "rasta"
    rows = [("train", "Baroque", "hals"), ("val", "Baroque", "vermeer"), ("test", "Cubism", "braque")]
    lines = ["path,split,style,artist,title"]
    for i, (split, style, artist) in enumerate(rows):
        _img(base / "images" / f"{i}.png", value=i)
        lines.append(f"images/{i}.png,{split},{style},{artist},t{i}")
    lines.append("images/gone.png,train,Baroque,hals,lost")
    (base / "labels.csv").write_text("\n".join(lines) + "\n")
    return base / "labels.csv"


def _error_line(code: int, err: str, expected: int) -> None:
    assert code == expected, err
    lines = [line for line in err.splitlines() if not line.startswith("notice:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err


def test_import_folder_json_and_idempotent_catalog(cli, tree: Path) -> None:
    code, out, err = cli("paintings", "import", tree, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["source"] == "artists" and summary["images"] == 5 and summary["missing"] == 0
    assert summary["columns"] == ["label"]
    assert summary["counts"] == {"label": {"hals": 3, "vermeer": 2}}
    assert summary["catalog_images"] == 5
    db = Path(os.environ["ARTLENS_CATALOG"])
    assert summary["catalog"] == str(db)
    code, out, err = cli("paintings", "import", tree, "--json", "--artist-column", "label")
    assert code == 0, err
    assert json.loads(out)["catalog_images"] == 5
    with Catalog(db) as cat:
        artworks, images = cat.artworks(source="import:artists"), cat.images()
    assert len(artworks) == 5 and len(images) == 5
    assert sorted({a["artist"] for a in artworks}) == ["hals", "vermeer"]
    assert {a["source_id"] for a in artworks} == {"hals/0.jpg", "hals/1.jpg", "hals/2.jpg", "vermeer/0.jpg",
                                                  "vermeer/1.jpg"}


def test_import_csv_human_summary_and_own_catalog(cli, csv_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "own.db"
    code, out, err = cli("paintings", "import", csv_file, "--source", "rasta-mini", "--catalog", db)
    assert code == 0, err
    assert "rasta-mini: 3 images" in out and "1 listed but missing" in out
    assert "split: 3 values" in out and f"catalog: {db} (3 images recorded)" in out
    with Catalog(db) as cat:
        assert [a["artist"] for a in cat.artworks(source="import:rasta-mini")] == ["hals", "vermeer", "braque"]


def test_import_without_catalog(cli, csv_file: Path) -> None:
    code, out, err = cli("paintings", "import", csv_file, "--no-catalog", "--json", "--label-column", "style")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["catalog_images"] == 0 and summary["catalog"] is None and summary["missing"] == 1
    assert set(summary["counts"]) == {"split", "style", "artist"}
    assert summary["counts"]["style"] == {"Baroque": 2, "Cubism": 1}
    assert not Path(os.environ["ARTLENS_CATALOG"]).exists()


def test_import_with_images_folder(cli, tmp_path: Path) -> None:
    _img(tmp_path / "pics" / "x.jpg")
    (tmp_path / "l.csv").write_text("file,label\nx.jpg,a\n")
    code, out, err = cli("paintings", "import", tmp_path / "l.csv", "--images", tmp_path / "pics", "--no-catalog",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, 3),  # no such file
        (b"", 4),
        (b"path,label\n", 4),
        (b"\x00\x01\x02garbage\xff", 4),
        (b"path,label\na.jpg,x,y\n", 4),
        (b'path,label\n"a.jpg,x\n', 4),
        (b"artist,style\nhals,Baroque\n", 7),
    ],
    ids=["missing", "empty", "header-only", "binary", "fields", "open-quote", "no-image-column"],
)
def test_bad_input_one_line_errors(cli, tmp_path: Path, content: bytes | None, expected: int) -> None:
    target = tmp_path / "labels.csv"
    if content is not None:
        target.write_bytes(content)
    code, _, err = cli("paintings", "import", target, "--no-catalog")
    _error_line(code, err, expected)
    assert str(target) in err


def test_unknown_label_column_and_missing_images(cli, csv_file: Path, tmp_path: Path) -> None:
    code, _, err = cli("paintings", "import", csv_file, "--label-column", "painter", "--no-catalog")
    _error_line(code, err, 7)
    assert "columns are: split, style, artist, title" in err
    (tmp_path / "none.csv").write_text("path,label\nnowhere.jpg,a\n")
    code, _, err = cli("paintings", "import", tmp_path / "none.csv", "--no-catalog")
    _error_line(code, err, 3)
    code, _, err = cli("paintings", "import", tmp_path / "empty_dir_missing")
    _error_line(code, err, 3)


@pytest.mark.shared_data
def test_import_peopleart(cli, shared_data: Path) -> None:
    code, out, err = cli("paintings", "import", shared_data / "paintings" / "peopleart_artists" / "labels.csv",
                         "--no-catalog", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["images"] == 1328 and len(summary["counts"]["label"]) == 29
    assert summary["source"] == "peopleart_artists"
