"""``artlens classify train / evaluate / predict / blend`` end to end on small synthetic images with
timm's tiny random ``test_efficientnet`` (no weights needed), and bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

TINY = ["--backbone", "test_efficientnet", "--no-pretrained", "--tiles", "2", "--tiles-per-step", "1",
        "--max-side", "256", "--hidden", "16", "--workers", "0", "--accelerator", "cpu"]


def _image(path, kind: int, seed: int) -> None:
    """Solid colours (kind 0), vertical stripes (1), horizontal stripes (2), with noise."""
    rng = np.random.default_rng(seed)
    a = np.full((170, 200, 3), (60, 90, 160), np.float32)
    if kind == 0:
        a[:] = (200, 60, 40)
    elif kind == 1:
        a[:, ::10] = (250, 250, 250)
    else:
        a[::10, :] = (20, 20, 20)
    Image.fromarray(np.clip(a + rng.normal(0, 15, a.shape), 0, 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    root = tmp_path_factory.mktemp("medium")
    rows = []
    for kind, name in enumerate(["oil", "etching", "woodcut"]):
        (root / name).mkdir()
        for k in range(6):
            _image(root / name / f"{name}{k}.png", kind, 10 * kind + k)
            rows.append([f"{name}/{name}{k}.png", name, ["train", "train", "train", "val", "test", "test"][k]])
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "medium", "split"])
        w.writerows(rows)
    return root


@pytest.fixture(scope="module")
def trained(collection, tmp_path_factory):
    from artlens.cli.main import main

    run = tmp_path_factory.mktemp("runs") / "medium"
    try:
        main(["classify", "train", "--data", str(collection / "labels.csv"), "--label", "medium", "--out", str(run),
              "--epochs", "2", *TINY])
    except SystemExit as exc:
        assert not exc.code
    return run


def test_train_writes_model_and_report(trained):
    # the defaults: 5 two-branch, 5 global and 5 patch heads (seeds 0-4 each), each refitted on train + val,
    # saved as an average blend with TTA on
    blend = json.loads((trained / "model" / "config.json").read_text())
    assert blend["model"] == "painting_classifier_blend" and blend["method"] == "average" and blend["tta"] is True
    assert blend["members"] == [f"../heads/head-{k}" for k in range(1, 16)]
    assert all((trained / "heads" / f"head-{k}" / "head.safetensors").is_file() for k in range(1, 16))
    variants = [json.loads((trained / "heads" / f"head-{k}" / "config.json").read_text())["config"]["variant"]
                for k in range(1, 16)]
    assert variants == ["two_branch"] * 5 + ["global"] * 5 + ["patch"] * 5
    assert (trained / "report.html").is_file()
    ev = json.loads((trained / "evaluation.json").read_text())
    assert ev["split_sizes"] == {"train": 9, "val": 3, "test": 6} and ev["heads"] == 15
    assert ev["refit_train_val"]["epochs_from_validation"] >= 1
    from artlens.paintings.classify import BlendedClassifier, load_classifier

    clf = load_classifier(trained)
    assert isinstance(clf, BlendedClassifier) and clf.default_tta and len(clf.members) == 15
    assert [m.config.n_tiles for m in clf.members] == [2] * 5 + [0] * 5 + [2] * 5
    # 8 crops of each image: cached once, augmentation of the global views, averaged by TTA
    assert [m.config.crops for m in clf.members] == [8] * 10 + [0] * 5
    assert (trained / "features_stats_crops8.npz").is_file()


def test_bad_crop_count_is_a_one_line_error(cli, collection, tmp_path):
    run = tmp_path / "r"
    code, out, err = cli("classify", "train", "--data", collection / "labels.csv", "--label", "medium", "--out", run,
                         "--crops", "-1", *TINY)
    assert code != 0 and "--crops" in err and "Traceback" not in err
    assert not run.exists()


@pytest.mark.parametrize(("value", "message"), [("cubist", "unknown variant"), ("two_branch", "main variant"),
                                                ("global,global", "given twice")])
def test_bad_blend_variants_are_one_line_errors(cli, collection, tmp_path, value, message):
    run = tmp_path / "r"
    code, out, err = cli("classify", "train", "--data", collection / "labels.csv", "--label", "medium", "--out", run,
                         "--epochs", "1", "--blend-variants", value, *TINY)
    assert code != 0 and message in err and "Traceback" not in err
    assert not run.exists()


def test_train_one_head_without_refit_or_tta_is_the_old_single_classifier(cli, collection, tmp_path):
    run = tmp_path / "one"
    code, out, err = cli("classify", "train", "--data", collection / "labels.csv", "--label", "medium", "--out", run,
                         "--epochs", "2", "--heads", "1", "--no-refit-train-val", "--no-tta",
                         "--blend-variants", "none", "--crops", "0",
                         *TINY)
    assert code == 0, err
    assert "classifier saved" in out and (run / "model" / "head.safetensors").is_file() and not (run / "heads").exists()
    assert not list(run.glob("features_*crops*"))
    ev = json.loads((run / "evaluation.json").read_text())
    assert ev["heads"] == 1 and ev["refit_train_val"] is None
    code, out, err = cli("classify", "evaluate", "--model", run, "--data", collection / "labels.csv", "--split",
                         "test", "--json", "--no-report")
    assert code == 0, err
    assert json.loads(out)["tta"] is False


def test_evaluate_prints_the_contract_json(cli, trained, collection):
    code, out, err = cli("classify", "evaluate", "--model", trained, "--data", collection / "labels.csv",
                         "--label", "medium", "--split", "test", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["n"] == 6 and 0 <= r["top1"] <= r["top3"] <= 1 and 0 <= r["macro_f1"] <= 1
    assert (trained / "evaluation-test.html").is_file()
    code, out, err = cli("classify", "evaluate", "--model", trained, "--data", collection / "labels.csv",
                         "--split", "test", "--tta", "--no-report")
    assert code == 0, err
    assert "top-1" in out


def test_predict_json_top_k_and_report_with_grad_cam(cli, trained, collection, tmp_path):
    img = collection / "oil" / "oil0.png"
    code, out, err = cli("classify", "predict", img, "--model", trained, "--json", "--top-k", "2")
    assert code == 0, err
    preds = json.loads(out)["predictions"]
    assert len(preds) == 2 and {"label", "probability"} <= set(preds[0])
    assert preds[0]["probability"] >= preds[1]["probability"]
    report = tmp_path / "pred.html"
    code, out, err = cli("classify", "predict", img, collection / "etching" / "etching0.png", "--model",
                         trained / "model", "--report", report, "--tta", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert len(r["images"]) == 2 and len(r["images"][0]["heatmaps"]) == 2
    html = report.read_text()
    assert "Grad-CAM" in html and html.count("data:image") >= 6


def test_folder_of_label_subfolders_with_any_label_name(cli, collection, tmp_path):
    # the CSV sits in the folder too; only image subfolders count
    code, out, err = cli("classify", "train", "--data", collection, "--label", "technique", "--out", tmp_path / "r",
                         "--epochs", "1", "--variant", "patch", "--pooling", "mean", "--json", *TINY)
    assert code == 0, err
    r = json.loads(out)
    assert r["classes"] == ["etching", "oil", "woodcut"]
    assert sum(r["split_sizes"].values()) == 18  # seeded stratified split of a folder
    code, out, err = cli("classify", "evaluate", "--model", tmp_path / "r", "--data", collection, "--json",
                         "--no-report")
    assert code == 0, err
    assert json.loads(out)["n"] == 18


def test_blend_average_cli(cli, trained, collection, tmp_path):
    code, out, err = cli("classify", "blend", "--model", trained / "heads" / "head-1", "--model",
                         trained / "heads" / "head-2", "--out", tmp_path / "b", "--json")
    assert code == 0, err
    code, out, err = cli("classify", "predict", collection / "oil" / "oil1.png", "--model", tmp_path / "b", "--json")
    assert code == 0, err
    assert len(json.loads(out)["predictions"]) == 3


# -- bad input ------------------------------------------------------------------------------------------------


def test_missing_label_column_is_a_one_line_error(cli, collection, tmp_path):
    code, out, err = cli("classify", "train", "--data", collection / "labels.csv", "--label", "genre",
                         "--out", tmp_path / "r", *TINY)
    assert code == 7
    assert err.startswith("error: unknown label column 'genre'") and "medium" in err
    assert len(err.strip().splitlines()) == 1


def test_a_class_with_one_image_is_refused(cli, collection, tmp_path):
    csv_path = tmp_path / "one.csv"  # relative paths resolve against the CSV's folder: use absolute ones
    with open(collection / "labels.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    rows = [rows[0]] + [[str(collection / r[0]), *r[1:]] for r in rows[1:]]
    rows.append([str(collection / "oil" / "oil5.png"), "pastel", "train"])
    with open(csv_path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    code, out, err = cli("classify", "train", "--data", csv_path, "--label", "medium", "--out", tmp_path / "r", *TINY)
    assert code == 7 and "'pastel' (1)" in err and "--drop-rare" in err
    assert not (tmp_path / "r").exists()


def test_predict_bad_inputs(cli, trained, tmp_path):
    code, _, err = cli("classify", "predict", tmp_path / "missing.jpg", "--model", trained)
    assert code == 3 and "no such file" in err
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    code, _, err = cli("classify", "predict", bad, "--model", trained)
    assert code == 4 and err.startswith("error:")
    code, _, err = cli("classify", "predict", bad, "--model", tmp_path / "nomodel")
    assert code == 3
    code, _, err = cli("classify", "predict", bad, "--model", trained, "--top-k", "0")
    assert code == 7


@pytest.mark.parametrize("mode", ["L", "CMYK", "I;16"])
def test_predict_converts_grayscale_cmyk_and_16_bit_with_a_notice(cli, trained, tmp_path, mode):
    rng = np.random.default_rng(0)
    if mode == "I;16":
        img, name = Image.fromarray(rng.integers(0, 65535, (170, 200), dtype=np.uint16)), "p16.png"
    elif mode == "CMYK":
        img, name = Image.fromarray(rng.integers(0, 255, (170, 200, 4), dtype=np.uint8), "CMYK"), "p.jpg"
    else:
        img, name = Image.fromarray(rng.integers(0, 255, (170, 200), dtype=np.uint8), "L"), "g.png"
    img.save(tmp_path / name)
    code, out, err = cli("classify", "predict", tmp_path / name, "--model", trained, "--json")
    assert code == 0, err
    assert "notice:" in err and len(json.loads(out)["predictions"]) == 3
