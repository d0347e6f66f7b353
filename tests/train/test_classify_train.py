"""Classifier training (artlens.train.classify): splits, class weights, tile sampling, metrics,
one-epoch training of a tiny model through both stage kinds, resume, and bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from artlens.errors import InvalidParameterError  # noqa: E402
from artlens.paintings.datasets import class_weights  # noqa: E402
from artlens.paintings.evaluate import classification_metrics  # noqa: E402
from artlens.train.classify import (  # noqa: E402
    ClassifierTrainConfig,
    FeatureSet,
    ImageSet,
    Stage,
    dataset_splits,
    loss_class_weights,
    parse_stages,
    train_classifier,
)
from artlens.train.splits import holdout_split  # noqa: E402

TINY = "test_efficientnet"


def _painting(path, cls: int, seed: int, size=(190, 170)) -> None:
    rng = np.random.default_rng(seed)
    a = np.zeros((size[1], size[0], 3), np.float32)
    a[..., cls % 3] = 170
    a += (np.sin(np.arange(size[0]) / (2 + cls)) * 40)[None, :, None]
    Image.fromarray(np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """3 styles x 6 images; CSV with a split column (3 train, 1 val, 2 test per style)."""
    root = tmp_path_factory.mktemp("styles")
    rows = []
    for c, name in enumerate(["baroque", "cubism", "ukiyo-e"]):
        (root / "img" / name).mkdir(parents=True)
        for k in range(6):
            _painting(root / "img" / name / f"{k}.png", c, 10 * c + k)
            rows.append([f"img/{name}/{k}.png", name, ["train", "train", "train", "val", "test", "test"][k]])
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "style", "split"])
        w.writerows(rows)
    return root


def _cfg(collection, model=None, **kw) -> ClassifierTrainConfig:
    base = dict(data=str(collection / "labels.csv"), label_column="style",
                model={"backbone": TINY, "pretrained_backbone": False, "n_tiles": 2, "max_side": 256, "hidden": 16,
                       **(model or {})},
                tiles_per_step=1, batch_size=4, image_batch_size=3,
                stages=[Stage(unfreeze=0, epochs=1, lr=1e-3)], trainer={"accelerator": "cpu"}, workers=0,
                warmup_epochs=0)
    base.update(kw)
    return ClassifierTrainConfig(**base)


@pytest.fixture(scope="module")
def two_stage_run(collection, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "style"
    cfg = _cfg(collection, stages=[Stage(unfreeze=0, epochs=1, lr=1e-3), Stage(unfreeze=1, epochs=1, lr=1e-4)])
    return run, train_classifier(cfg, run)


# -- configuration, splits, weights ----------------------------------------------------------------------


def test_parse_stages():
    stages = parse_stages("0:30:1e-3, 2:3:1e-4")
    assert [(s.unfreeze, s.epochs, s.lr) for s in stages] == [(0, 30, 1e-3), (2, 3, 1e-4)]
    for bad in ("0:30", "a:b:c", ""):
        with pytest.raises(InvalidParameterError):
            parse_stages(bad)


def test_loss_class_weights_are_the_dataset_class_weights():
    y = np.array([0, 0, 0, 1, 2, 2])
    w = loss_class_weights(y, 3)
    ref = class_weights(list(y))  # N / (K n_c): 6 / (3 * 3), 6 / (3 * 1), 6 / (3 * 2)
    assert np.allclose(w.numpy(), [ref[0], ref[1], ref[2]])
    assert np.allclose(w.numpy(), [2 / 3, 2.0, 1.0])
    assert float((w[torch.as_tensor(y)]).mean()) == pytest.approx(1.0)  # mean item weight is 1
    assert loss_class_weights(np.array([0, 0]), 2).tolist() == [1.0, 1.0]  # absent class: weight 1


def test_stratified_split_is_seeded_disjoint_and_stratified():
    labels = ["a"] * 20 + ["b"] * 10 + ["c"] * 3 + ["d"] * 2
    s1 = holdout_split(labels, val_fraction=0.2, test_fraction=0.3, seed=0, by="class")
    s2 = holdout_split(labels, val_fraction=0.2, test_fraction=0.3, seed=0, by="class")
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)
    allidx = np.concatenate(list(s1.values()))
    assert sorted(allidx.tolist()) == list(range(len(labels)))
    lab = np.array(labels)
    assert (lab[s1["test"]] == "a").sum() == 6 and (lab[s1["val"]] == "a").sum() == 4
    assert set(lab[s1["train"]]) == {"a", "b", "c", "d"}  # one image always stays in train
    assert (lab[s1["val"]] == "d").sum() == 1 and (lab[s1["test"]] == "d").sum() == 0
    s3 = holdout_split(labels, val_fraction=0.2, test_fraction=0.3, seed=1, by="class")
    assert not np.array_equal(s1["test"], s3["test"])


def test_a_class_with_one_image_is_refused_or_dropped_with_a_notice():
    labels = ["a"] * 5 + ["b"] * 5 + ["lonely"]
    cfg = ClassifierTrainConfig(data="x", label_column="style")
    with pytest.raises(InvalidParameterError, match="'lonely' \\(1\\)"):
        dataset_splits(labels, None, cfg)
    with pytest.warns(UserWarning, match="left out 1 classes"):
        split, classes = dataset_splits(labels, None, cfg.model_copy(update={"drop_rare": True}))
    assert classes == ["a", "b"] and 10 not in np.concatenate(list(split.values()))


def test_split_column_is_respected_and_missing_val_is_cut_from_train():
    labels = ["a", "a", "a", "a", "b", "b", "b", "b"]
    cfg = ClassifierTrainConfig(data="x", label_column="style")
    split, _ = dataset_splits(labels, ["train", "train", "val", "test"] * 2, cfg)
    assert split["val"].tolist() == [2, 6] and split["test"].tolist() == [3, 7]
    with pytest.warns(UserWarning, match="no validation split"):
        split, _ = dataset_splits(labels, ["train", "train", "train", "test"] * 2, cfg)
    assert len(split["val"]) == 2 and not set(split["val"]) & set(split["train"])
    with pytest.raises(InvalidParameterError, match="train"):
        dataset_splits(labels, ["test"] * 8, cfg)


# -- tile sampling ------------------------------------------------------------------------------------------


def test_feature_set_draws_random_tile_subsets_per_epoch():
    g = np.arange(4 * 3, dtype=np.float32).reshape(4, 3)
    t = np.arange(4 * 8 * 3, dtype=np.float32).reshape(4, 8, 3)
    ds = FeatureSet(g, t, np.arange(4), alternates=-g, train=True, tiles_per_step=3, seed=0)
    draws = set()
    for epoch in range(6):
        ds.epoch = epoch
        _, tiles, _ = ds[1]
        assert tiles.shape == (3, 3)
        rows = [int(r[0] - t[1, 0, 0]) // 3 for r in tiles]
        assert len(set(rows)) == 3 and all(0 <= r < 8 for r in rows)
        draws.add(tuple(rows))
    assert len(draws) > 1
    ds.epoch = 0
    assert all(np.array_equal(ds[1][1], ds[1][1]) for _ in range(2))  # deterministic per epoch
    ev = FeatureSet(g, t, np.arange(4), train=False)
    assert ev[2][1].shape == (8, 3) and np.array_equal(ev[2][0], g[2])


def test_feature_set_draws_each_global_view_with_equal_chances():
    g = np.zeros((2, 3), np.float32)
    views = np.arange(1, 4, dtype=np.float32)[None, :, None] * np.ones((2, 3, 3), np.float32)  # mirror, 2 crops
    ds = FeatureSet(g, np.zeros((2, 0, 3), np.float32), np.arange(2), alternates=views, train=True, seed=3)
    seen = []
    for epoch in range(400):
        ds.epoch = epoch
        seen.append(int(ds[0][0][0]))  # 0: the view itself, 1: mirror, 2 and 3: crops
    counts = np.bincount(seen, minlength=4)
    assert counts.sum() == 400 and (counts > 70).all() and (counts < 130).all()
    # the mirrored view alone (the layout before crops): drawn half of the time, as it always was
    flip = FeatureSet(g, np.zeros((2, 0, 3), np.float32), np.arange(2), alternates=g + 1, train=True, seed=3)
    picks = []
    for epoch in range(200):
        flip.epoch = epoch
        rng = np.random.default_rng([3, epoch, 0])
        picks.append((int(flip[0][0][0]), rng.random() < 0.5))
    assert all(got == want for got, want in picks)


def test_image_set_training_views_are_full_resolution_tiles(tmp_path):
    from artlens.models.backbones import LITE0_PREPROCESS

    path = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 500, 3), dtype=np.uint8)).save(path)
    ds = ImageSet([str(path)], [0], size=64, preprocess=LITE0_PREPROCESS, max_side=1024, n_tiles=5,
                  tiles_per_step=3, train=True)
    views, y = ds[0]
    assert views.shape == (4, 3, 64, 64) and y == 0
    ev = ImageSet([str(path)], [0], size=64, preprocess=LITE0_PREPROCESS, max_side=1024, n_tiles=5,
                  tiles_per_step=3, train=False)
    assert ev[0][0].shape == (6, 3, 64, 64)


# -- metrics --------------------------------------------------------------------------------------------------


def test_classification_metrics_hand_checked():
    classes = ["a", "b", "c"]
    probs = np.array([[0.7, 0.2, 0.1],   # a -> a
                      [0.1, 0.6, 0.3],   # a -> b (a ranks third)
                      [0.2, 0.5, 0.3],   # b -> b
                      [0.3, 0.3, 0.4],   # c -> c
                      [0.1, 0.5, 0.4]])  # c -> b
    m = classification_metrics(["a", "a", "b", "c", "c"], probs, classes, ks=(1, 2, 3))
    assert m["top1"] == pytest.approx(3 / 5)
    assert m["top2"] == pytest.approx(4 / 5) and m["top3"] == 1.0
    assert m["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 1, 1]]
    assert m["per_class"]["a"]["recall"] == 0.5 and m["per_class"]["b"]["precision"] == pytest.approx(1 / 3)
    # F1: a = 2/3, b = 2*1/(1+3) = 0.5, c = 2*1/(2+1) = 2/3
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 2 / 3) / 3)
    assert [(p["true"], p["predicted"], p["count"]) for p in m["most_confused"]] == [("a", "b", 1), ("c", "b", 1)]
    assert m["most_confused"][0]["examples"] == [1]
    unknown = classification_metrics(["a", "zebra"], probs[:2], classes)
    assert unknown["unknown_labels"] == 1 and unknown["top1"] == 0.5


# -- training -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_one_epoch_per_stage_training_writes_a_loadable_model(two_stage_run, collection):
    from artlens.paintings.classify import load_classifier

    run, result = two_stage_run
    assert result["classes"] == ["baroque", "cubism", "ukiyo-e"]
    assert result["split_sizes"] == {"train": 9, "val": 3, "test": 6}
    assert [s["unfreeze"] for s in result["stages"]] == [0, 1]
    assert result["stages"][0]["seconds_per_epoch"] > 0
    assert (run / "features_stats_grid2.npz").is_file() and (run / "features_stats_mirror0.npz").is_file()
    assert (run / "model" / "backbone.safetensors").is_file()  # fine-tuned backbone is saved
    assert not list(run.rglob("*.pt")) and not list(run.rglob("*.pkl"))
    doc = json.loads((run / "model" / "config.json").read_text())
    assert doc["model"] == "painting_classifier" and doc["config"]["variant"] == "two_branch"
    ev = json.loads((run / "evaluation.json").read_text())
    assert {"top1", "top3", "macro_f1", "n"} <= set(ev["evaluation"]["test"])
    assert "Confusion matrix" in (run / "report.html").read_text()
    clf = load_classifier(run)
    [row] = clf.predict([collection / "img" / "cubism" / "0.png"], top_k=3)
    assert sorted(p["label"] for p in row["predictions"]) == result["classes"]


def test_resume_skips_finished_stages(two_stage_run, collection):
    run, result = two_stage_run
    again = train_classifier(_cfg(collection), run, resume=True, report=None)
    assert [s["unfreeze"] for s in again["stages"]] == [0, 1]  # the run's own config, stages reloaded
    assert again["evaluation"]["test"]["n"] == 6


def test_an_end_to_end_stage_that_hurts_validation_is_undone(collection, tmp_path):
    cfg = _cfg(collection, model={"variant": "global"}, stages=[Stage(unfreeze=0, epochs=2, lr=1e-3),
                                                                Stage(unfreeze=-1, epochs=1, lr=50.0)])  # absurd rate
    with pytest.warns(UserWarning, match="did not improve the validation loss"):
        result = train_classifier(cfg, tmp_path / "run", report=None)
    first, second = result["stages"]
    assert second["kept"] is False and second["best_val_loss"] > first["best_val_loss"]
    ev = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert ev["metrics"]["val"]["n"] == 3


def test_refit_on_train_and_val_with_sampler_and_global_variant(collection, tmp_path):
    cfg = _cfg(collection, model={"variant": "global", "feature_pooling": "avg"}, balance="sampler",
               refit_train_val=True, stages=[Stage(unfreeze=0, epochs=2, lr=1e-3)])
    result = train_classifier(cfg, tmp_path / "run", report=None)
    assert result["refit_train_val"]["epochs_from_validation"] in (1, 2)
    assert (tmp_path / "run" / "features_grid0.npz").is_file()


def test_missing_label_column_fails_before_creating_the_run(collection, tmp_path):
    with pytest.raises(InvalidParameterError, match="columns are: style, split"):
        train_classifier(_cfg(collection, label_column="genre"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.shared_data
def test_rasta_split_column_gives_its_train_val_test(shared_data):
    from artlens.paintings.datasets import load_dataset

    ds = load_dataset(shared_data / "paintings" / "rasta_wikipaintings_small" / "labels.csv")
    cfg = ClassifierTrainConfig(data="-", label_column="style")
    split, classes = dataset_splits(ds.labels("style"), ds.labels("split"), cfg)
    assert len(classes) == 25
    assert {k: len(v) for k, v in split.items()} == {"train": 249, "val": 250, "test": 249}
