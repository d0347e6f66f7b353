"""2-D collection maps: t-SNE on a tiny index, thumbnails or coloured points, CSV of coordinates."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artlens.errors import InvalidParameterError
from artlens.paintings.maps import collection_map, project_2d
from artlens.paintings.search import SearchIndex, build_index

COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("maps")
    rng = np.random.default_rng(0)
    for name, rgb in COLOURS.items():
        (root / "coll" / name).mkdir(parents=True)
        for i in range(4):
            arr = np.clip(np.asarray(rgb)[None, None, :] + rng.normal(0, 20, (24, 32, 3)), 0, 255)
            Image.fromarray(arr.astype(np.uint8)).save(root / "coll" / name / f"{i}.png")
    build_index(root / "coll", root / "idx", "colour-histogram", progress=False)
    return root / "idx"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_map_with_thumbnails_writes_png_and_csv(index_dir: Path, tmp_path: Path) -> None:
    result = collection_map(index_dir, out_png=tmp_path / "map.png", label_column="label")
    assert result.method == "tsne" and result.coords.shape == (12, 2) and np.isfinite(result.coords).all()
    with Image.open(result.png) as im:
        assert im.format == "PNG" and im.size[0] > 300
    rows = _rows(tmp_path / "map.csv")
    assert len(rows) == 12 and list(rows[0]) == ["path", "x", "y", "label"]
    assert sorted({r["label"] for r in rows}) == ["blue", "green", "red"]
    assert [r["path"] for r in rows] == SearchIndex.open(index_dir).paths()
    # images of one colour lie closer to each other than to the others
    c = result.coords
    lab = np.array(result.labels)
    within = np.mean([np.linalg.norm(c[i] - c[j]) for i in range(12) for j in range(12) if i < j and lab[i] == lab[j]])
    between = np.mean([np.linalg.norm(c[i] - c[j]) for i in range(12) for j in range(12) if lab[i] != lab[j]])
    assert within < between


def test_map_with_points_and_own_csv(index_dir: Path, tmp_path: Path) -> None:
    idx = SearchIndex.open(index_dir)
    result = collection_map(idx, out_png=tmp_path / "pts.png", out_csv=tmp_path / "coords.csv", thumbnails=False)
    assert result.labels is None and result.png.is_file() and len(_rows(tmp_path / "coords.csv")) == 12
    with pytest.raises(InvalidParameterError, match="no label column 'artist'"):
        collection_map(idx, out_png=tmp_path / "x.png", label_column="artist")
    with pytest.raises(InvalidParameterError, match="tsne"):
        collection_map(idx, out_png=tmp_path / "x.png", method="pca")


@pytest.mark.skipif(importlib.util.find_spec("umap") is not None, reason="umap-learn is installed")
def test_umap_without_umap_learn_says_how_to_install(index_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match=r"pip install artlens\[umap\]"):
        collection_map(index_dir, out_png=tmp_path / "u.png", method="umap")


def test_tiny_collections_fall_back_to_pca() -> None:
    assert project_2d(np.eye(3, 8), "tsne")[1] == "pca"
    coords, used = project_2d(np.ones((1, 8)), "tsne")
    assert used == "none" and coords.shape == (1, 2)
