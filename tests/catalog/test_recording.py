"""Commands that compute a result record it in the catalog (``--catalog``, ``--no-catalog``): ``index``,
``search`` and ``classify predict``, on both backends."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artlens.catalog import Catalog
from artlens.provenance import sha256_file


def _image(path: Path, rgb: tuple[int, int, int], stripes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:64]
    wave = np.sin(xx / 2.0) if stripes == 0 else np.sin(yy / 2.0)
    arr = np.asarray(rgb, float)[None, None, :] + 30 * wave[..., None] + rng.normal(0, 12, (48, 64, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path)


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    """Two 'artists' of three images each, with labels.csv (file, artist, split)."""
    root = tmp_path / "coll"
    rows = []
    for j, (artist, rgb) in enumerate((("monet", (200, 80, 60)), ("hopper", (60, 90, 200)))):
        for i in range(3):
            _image(root / artist / f"{artist}_{i}.png", rgb, j, seed=10 * j + i)
            rows.append([f"{artist}/{artist}_{i}.png", artist, "train" if i < 2 else "val"])
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "artist", "split"])
        w.writerows(rows)
    return root


def test_index_and_search_are_recorded(cli, catalog_at, collection: Path, tmp_path: Path) -> None:
    where, idx = str(catalog_at), tmp_path / "idx"
    code, out, err = cli("index", collection, "--index", idx, "--embedder", "colour-histogram", "--json",
                         "--catalog", where)
    assert code == 0, err
    index_id = json.loads(out)["catalog_analysis_id"]
    query = collection / "monet" / "monet_0.png"
    code, out, err = cli("search", query, "--index", idx, "-k", "3", "--json", "--catalog", where,
                         "--report", tmp_path / "search.html")
    assert code == 0, err
    result = json.loads(out)
    with Catalog(catalog_at) as cat:
        built = cat.get_analysis(index_id)
        assert built["method"] == "paintings.index" and built["summary"]["images"] == 6
        assert built["parameters"]["embedder"]["name"] == "colour-histogram"
        assert built["outputs"] == [str(idx.resolve())] and built["artlens_version"]
        found = cat.get_analysis(result["catalog_analysis_id"])
        assert found["method"] == "paintings.search" and found["parameters"]["k"] == 3
        assert [r["path"] for r in found["summary"]["results"]] == [r["path"] for r in result["results"]]
        assert found["outputs"] == [str(tmp_path / "search.html")]
        assert found["model_checksum"] == built["parameters"]["embedder"]["checksum"]
        image = cat.get_image(found["image_id"])
        assert image["path"] == str(query.resolve()) and image["sha256"] == sha256_file(query)
        before = len(cat.analyses())
    code, out, err = cli("search", query, "--index", idx, "-k", "3", "--json", "--catalog", where, "--no-catalog")
    assert code == 0 and "catalog_analysis_id" not in json.loads(out)
    with Catalog(catalog_at) as cat:
        assert len(cat.analyses()) == before


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    """An untrained two-class classifier on timm's tiny random ``test_efficientnet`` (no training, no weights)."""
    torch = pytest.importorskip("torch")
    import timm

    from artlens.paintings.classify import ClassifierConfig, save_classifier

    torch.manual_seed(0)
    backbone = timm.create_model("test_efficientnet", pretrained=False, num_classes=0)
    config = ClassifierConfig(classes=["hopper", "monet"], label_column="artist", variant="global",
                              backbone="test_efficientnet", pretrained_backbone=False,
                              feature_dim=backbone.num_features, n_tiles=1, max_side=64, hidden=0)
    return save_classifier(config.head(), config, tmp_path_factory.mktemp("classifier"), backbone=backbone)


def test_classify_predict_is_recorded(cli, catalog_at, collection: Path, classifier: Path) -> None:
    run = classifier
    images = [collection / "monet" / "monet_2.png", collection / "hopper" / "hopper_2.png"]
    code, out, err = cli("classify", "predict", *images, "--model", run, "--top-k", "2", "--json",
                         "--catalog", str(catalog_at))
    assert code == 0, err
    rows = json.loads(out)["images"]
    with Catalog(catalog_at) as cat:
        for image, row in zip(images, rows, strict=True):
            rec = cat.get_analysis(row["catalog_analysis_id"])
            assert rec["method"] == "paintings.classify" and rec["image_path"] == str(image.resolve())
            assert rec["summary"]["predictions"] == row["predictions"]
            assert rec["parameters"]["top_k"] == 2 and rec["parameters"]["label_column"] == "artist"
            assert len(rec["model_checksum"]) == 64
        n = len(cat.analyses())
    code, _, err = cli("classify", "predict", images[0], "--model", run, "--no-catalog")
    assert code == 0, err
    with Catalog(catalog_at) as cat:
        assert len(cat.analyses()) == n


def test_threads_count_records_at_a_url_or_path(cli, catalog_at, tmp_path: Path, monkeypatch) -> None:
    """``--catalog`` is taken as given (a ``postgresql://`` URL is not mangled into a path), and so is
    ``$ARTLENS_CATALOG``."""
    from artlens.synth import make_plate, write_plate_tiff

    plate = write_plate_tiff(tmp_path / "small.tif", make_plate(height_cm=2.0, width_cm=2.0, horizontal_density=11.0,
                                                                vertical_density=14.5, seed=3))
    code, out, err = cli("threads", "count", plate, "--out", tmp_path / "a", "--window-cm", "1.0", "--json",
                         "--catalog", str(catalog_at))
    assert code == 0, err
    monkeypatch.setenv("ARTLENS_CATALOG", str(catalog_at))
    code, _, err = cli("threads", "count", plate, "--out", tmp_path / "b", "--window-cm", "1.0")
    assert code == 0, err
    with Catalog(catalog_at) as cat:
        rows = cat.analyses(method="threads.spectral")
        assert len(rows) == 2 and {r["image_path"] for r in rows} == {str(plate.resolve())}
        assert rows[0]["summary"]["windows"] == json.loads(out)["windows"]
    assert not any(p.name.startswith("postgresql") for p in Path.cwd().iterdir())  # no file named like a URL


def test_verify_pair_is_recorded_on_both_backends(cli, catalog_at, collection: Path) -> None:
    """``verify A B --catalog LOCATION`` records the pair with the verifier's checksum (a URL is not a path)."""
    a, b = collection / "monet" / "monet_0.png", collection / "hopper" / "hopper_0.png"
    code, out, err = cli("verify", a, b, "--json", "--catalog", str(catalog_at))
    assert code == 0, err
    probability = json.loads(out)["same_artist_probability"]
    with Catalog(catalog_at) as cat:
        rows = cat.analyses(method="verify.pair")
    assert len(rows) == 1 and rows[0]["model_checksum"]
    assert rows[0]["summary"]["same_artist_probability"] == pytest.approx(probability)
