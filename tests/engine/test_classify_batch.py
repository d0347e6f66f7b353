"""``artlens paintings classify predict FOLDER --out OUT``: a folder of paintings on the batch engine, resumable,
with failures set aside.

The classifier is a fresh two-branch head on timm's tiny random ``test_efficientnet`` backbone, saved with its
backbone (so every worker loads the same weights); the images are small synthetic ones."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sigkill import kill_after

pytest.importorskip("torch")

N_IMAGES = 3


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from artlens.paintings.classify import Classifier, ClassifierConfig, save_classifier

    torch.manual_seed(0)
    clf = Classifier(ClassifierConfig(classes=["etching", "oil", "woodcut"], label_column="medium",
                                      backbone="test_efficientnet", pretrained_backbone=False, n_tiles=2,
                                      max_side=256, hidden=16))
    folder = tmp_path_factory.mktemp("clf") / "model"
    save_classifier(clf.head, clf.config, folder, backbone=clf.backbone)
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    (folder / "sub").mkdir()
    rng = np.random.default_rng(0)
    for k, name in enumerate(["a.png", "b.jpg", "sub/c.png"]):
        a = np.clip(rng.normal(60 + 60 * k, 30, (170, 200, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(folder / name)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8 truncated")
    return folder


def expected(model: Path, photos: Path) -> dict[str, list[dict]]:
    """What the one-image path (``Classifier.predict``) says for each good image."""
    from artlens.paintings.classify import load_classifier

    clf = load_classifier(model)
    names = ["a.png", "b.jpg", "sub/c.png"]
    rows = clf.predict([str(photos / n) for n in names], top_k=2)
    return {n: r["predictions"] for n, r in zip(names, rows, strict=True)}


def check_complete(out: Path, db: Path | None, want: dict[str, list[dict]]) -> None:
    """Every good image exactly once in predictions.csv (and in the catalog); the corrupt one in skipped.csv."""
    rows = read_csv(out / "predictions.csv")
    assert [r["image"] for r in rows] == sorted(want)
    for r in rows:
        preds = json.loads(r["predictions"])
        assert [p["label"] for p in preds] == [p["label"] for p in want[r["image"]]]
        assert [p["probability"] for p in preds] == pytest.approx([p["probability"] for p in want[r["image"]]],
                                                                   abs=1e-5)
        assert r["label"] == preds[0]["label"] and float(r["probability"]) == pytest.approx(preds[0]["probability"])
        assert len(r["sha256"]) == 64 and len(r["model_checksum"]) == 64 and r["artlens_version"]
        assert r["method"] == "paintings.classify" and json.loads(r["parameters"])["top_k"] == 2
    skipped = read_csv(out / "skipped.csv")
    assert [s["image"] for s in skipped] == ["corrupt.jpg"] and skipped[0]["reason"]
    if db is not None:
        from artlens.catalog import Catalog

        with Catalog(db) as cat:
            analyses = cat.analyses(method="paintings.classify")
        assert sorted(Path(a["image_path"]).name for a in analyses) == ["a.png", "b.jpg", "c.png"]
        assert {a["summary"]["item_key"] for a in analyses} == {r["key"] for r in rows}


def test_folder_then_rerun_then_lost_and_torn_rows(cli, model, photos, tmp_path, _isolated_catalog):
    out = tmp_path / "out"
    want = expected(model, photos)
    before = {p: p.read_bytes() for p in photos.rglob("*") if p.is_file()}
    code, stdout, err = cli("paintings", "classify", "predict", photos, "--model", model, "--out", out,
                            "--top-k", "2")
    assert code == 0, err
    assert f"{N_IMAGES + 1} images: {N_IMAGES} new, 0 done before, 1 skipped" in stdout
    assert "corrupt.jpg: skipped:" in err
    check_complete(out, _isolated_catalog, want)
    assert {p: p.read_bytes() for p in photos.rglob("*") if p.is_file()} == before  # inputs never written

    code, stdout, _ = cli("paintings", "classify", "predict", photos, "--model", model, "--out", out, "--top-k", "2")
    assert code == 0 and "0 new" in stdout and f"{N_IMAGES} done before" in stdout and "1 skipped before" in stdout
    check_complete(out, _isolated_catalog, want)

    # a kill after the first row, while the second was being written: the first is kept, the rest redone,
    # and the images whose catalog record landed before the kill are not recorded twice
    text = (out / "predictions.csv").read_text().splitlines(keepends=True)
    (out / "predictions.csv").write_text("".join(text[:2]) + text[2][: len(text[2]) // 3])
    code, stdout, err = cli("paintings", "classify", "predict", photos, "--model", model, "--out", out,
                            "--top-k", "2")
    assert code == 0, err
    assert f"{N_IMAGES - 1} new, 1 done before" in stdout
    check_complete(out, _isolated_catalog, want)

    # other parameters are other keys: all new
    code, stdout, _ = cli("paintings", "classify", "predict", photos, "--model", model, "--out", tmp_path / "o3",
                          "--top-k", "3", "--no-catalog", "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["new"] == N_IMAGES and report["skipped"] == 1 and report["device"] == "cpu"
    assert report["failures"][0]["image"] == "corrupt.jpg"


def test_kill_9_mid_run_then_resume(cli, model, photos, tmp_path, _isolated_catalog):
    """The driver is SIGKILLed right after its first predictions.csv row; the next run classifies only the rest,
    the rows are those of an uninterrupted run, and a third run has nothing to do."""
    want = expected(model, photos)
    full = tmp_path / "full"
    code, _, err = cli("paintings", "classify", "predict", photos, "--model", model, "--out", full, "--top-k", "2",
                       "--no-catalog")
    assert code == 0, err
    out = tmp_path / "out"
    args = ("paintings", "classify", "predict", photos, "--model", model, "--out", out, "--top-k", "2")
    kill_after(args, writer="artlens.engine:ResultLedger.append", marker="/predictions.csv", after=1,
               catalog=_isolated_catalog, log=tmp_path / "killed.log")
    assert len(read_csv(out / "predictions.csv")) == 1
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert f"{N_IMAGES - 1} new, 1 done before" in stdout
    check_complete(out, _isolated_catalog, want)  # every image once in predictions.csv and in the catalog
    assert read_csv(out / "predictions.csv") == read_csv(full / "predictions.csv")
    code, stdout, _ = cli(*args)
    assert code == 0 and f"0 new, {N_IMAGES} done before" in stdout


def test_retry_skipped_and_a_fixed_image(cli, model, photos, tmp_path):
    import shutil

    src = tmp_path / "src"
    shutil.copytree(photos, src)
    out = tmp_path / "out"
    code, stdout, _ = cli("paintings", "classify", "predict", src, "--model", model, "--out", out, "--no-catalog")
    assert code == 0 and "1 skipped" in stdout
    code, stdout, _ = cli("paintings", "classify", "predict", src, "--model", model, "--out", out, "--no-catalog",
                          "--retry-skipped")
    assert code == 0 and "0 new" in stdout and "1 skipped" in stdout
    Image.new("RGB", (120, 90), (10, 200, 30)).save(src / "corrupt.jpg", format="JPEG")  # fixed: a new key
    code, stdout, _ = cli("paintings", "classify", "predict", src, "--model", model, "--out", out, "--no-catalog")
    assert code == 0 and "1 new" in stdout
    shutil.copy(photos / "a.png", src / "copy-of-a.png")  # identical content: one key, one row
    code, stdout, _ = cli("paintings", "classify", "predict", src, "--model", model, "--out", out, "--no-catalog")
    assert code == 0 and "0 new" in stdout and "1 identical to another image" in stdout
    assert len(read_csv(out / "predictions.csv")) == N_IMAGES + 1


@pytest.mark.slow
def test_two_local_workers_give_the_same_rows(cli, model, photos, tmp_path):
    want = expected(model, photos)
    out = tmp_path / "out"
    code, stdout, err = cli("paintings", "classify", "predict", photos, "--model", model, "--out", out, "--top-k",
                            "2", "--workers", "2", "--no-catalog")
    assert code == 0, err
    assert f"{N_IMAGES} new" in stdout
    check_complete(out, None, want)


def test_predict_folder_errors_are_one_line(cli, model, photos, tmp_path):
    cases = [
        (("predict", photos, "--model", model), 7, "needs --out"),
        (("predict", photos, "--model", model, "--out", tmp_path / "o", "--report", tmp_path / "r.html"), 7,
         "--heatmap and --report apply"),
        (("predict", photos / "a.png", "--model", model, "--engine", "ray"), 7, "apply to a folder of images"),
        (("predict", photos, "--model", model, "--out", tmp_path / "o", "--engine", "spark"), 7,
         "--engine must be one of local, ray"),
        (("predict", photos, "--model", model, "--out", tmp_path / "o", "--top-k", "0"), 7, "--top-k"),
        (("predict", photos, "--model", tmp_path / "nomodel", "--out", tmp_path / "o"), 3, "no such model folder"),
        (("predict", photos, "--model", model, "--out", photos / "a.png"), 7, "not a folder"),
        (("predict", photos / "a.png", "--model", model, "--device", "tpu"), 7, "--device must be auto, cpu"),
        (("predict", tmp_path, "--model", model, "--out", tmp_path / "o"), 3, "no images"),
    ]
    for args, want_code, text in cases:
        code, _, err = cli("paintings", "classify", *args)
        assert code == want_code and text in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err
    assert (photos / "a.png").is_file() and not (tmp_path / "o" / "predictions.csv").exists()


def test_device_cuda_is_refused_without_a_gpu(cli, model, photos, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for args in ((photos / "a.png",), (photos, "--out", tmp_path / "o")):
        code, _, err = cli("paintings", "classify", "predict", *args, "--model", model, "--device", "cuda")
        assert code == 7 and "no CUDA GPU is available" in err and "Traceback" not in err


def test_ray_engine_on_the_running_head(cli, model, photos, tmp_path, _isolated_catalog):
    pytest.importorskip("ray")
    address = os.environ.get("ARTLENS_TEST_RAY_ADDRESS")
    if not address:
        if os.environ.get("ARTLENS_REQUIRE_SERVICES") == "1":
            pytest.fail("ARTLENS_TEST_RAY_ADDRESS is not set but ARTLENS_REQUIRE_SERVICES=1")
        pytest.skip("no Ray head: set ARTLENS_TEST_RAY_ADDRESS (eval \"$(bash .ci/services.sh start)\")")
    want = expected(model, photos)
    out = tmp_path / "out"
    code, stdout, err = cli("paintings", "classify", "predict", photos, "--model", model, "--out", out, "--top-k",
                            "2", "--engine", "ray", "--ray-address", address, "--workers", "2")
    assert code == 0, err
    assert f"{N_IMAGES} new" in stdout
    check_complete(out, _isolated_catalog, want)
    code, stdout, _ = cli("paintings", "classify", "predict", photos, "--model", model, "--out", out, "--top-k", "2")
    assert code == 0 and "0 new" in stdout  # the same keys whatever the engine
