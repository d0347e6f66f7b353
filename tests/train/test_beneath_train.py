"""Training the Siamese graph encoders: synthetic scene sampling, batches, the loss, one real epoch."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from artlens.train.beneath import (
    BeneathTrainConfig,
    SceneDataset,
    beneath_losses,
    collate_scenes,
    jitter_pigments,
    pixel_average_precision,
    prepare_scenes,
    synthetic_scene,
)

TINY = dict(size=64, region_px=24.0, synthetic=3, val_synthetic=1, batch_size=2,
            trainer={"max_epochs": 1, "accelerator": "cpu"}, model="beneath_gcn_test")


@pytest.fixture(scope="module")
def records():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare_scenes(BeneathTrainConfig(**TINY), 3, 0), prepare_scenes(BeneathTrainConfig(**TINY), 1, 99)


def test_jittered_pigments_and_scenes_are_reproducible() -> None:
    a, b = jitter_pigments(np.random.default_rng(1)), jitter_pigments(np.random.default_rng(1))
    np.testing.assert_array_equal(a.K, b.K)
    assert not a.measured and "jittered" in a.source and (a.K >= 0).all() and (a.S > 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s1, s2 = synthetic_scene(4, 64), synthetic_scene(4, 64)
    np.testing.assert_array_equal(s1.ir, s2.ir)
    assert s1.parameters["pigments"]["source"] == "built-in (jittered)"


def test_records_batches_and_loss(records) -> None:
    train, _ = records
    r = train[0]
    n = len(r["hidden"])
    assert r["x_vis"].shape == r["x_oth"].shape == r["x_shift"].shape == (n, 23)
    assert not np.allclose(r["x_shift"][:, 0], r["x_oth"][:, 0])  # the shifted crop differs
    np.testing.assert_array_equal(r["x_shift"][:, 6:], r["x_oth"][:, 6:])  # same regions, same context
    assert 0 <= r["hidden"].min() and r["hidden"].max() <= 1 and r["hidden"].max() > 0.5
    b = collate_scenes([SceneDataset(train)[i] for i in range(2)])
    n0 = len(train[0]["hidden"])
    assert b["batch"].tolist().count(0) == n0 and b["edge_index"][:, -1].min() >= n0  # offsets
    torch.manual_seed(0)
    from artlens.models import create_model

    model = create_model("beneath_gcn_test")
    cfg = BeneathTrainConfig(**TINY)
    terms = beneath_losses(model, b, cfg)
    assert {"own", "region", "image", "shift", "loss", "distance"} <= set(terms)
    assert torch.isfinite(terms["loss"]) and terms["loss"].requires_grad
    terms["loss"].backward()
    assert model.inp.weight.grad is not None and model.inp.weight.grad.abs().sum() > 0


def test_pixel_ap_of_region_scores_equals_ap_of_painted_map() -> None:
    from sklearn.metrics import average_precision_score

    labels = np.repeat(np.arange(4), 4).reshape(4, 4)
    mask = np.zeros((4, 4), bool)
    mask[0, :3] = mask[2, 1] = True
    score = np.array([0.9, 0.1, 0.5, 0.3])
    frac = np.array([0.75, 0.0, 0.25, 0.0])
    expected = average_precision_score(mask.ravel(), score[labels].ravel())
    assert pixel_average_precision(score, frac, np.full(4, 4.0)) == pytest.approx(expected)


def test_one_epoch_through_the_cli(cli, records, tmp_path, monkeypatch) -> None:
    """The real entry point, on prepared tiny graphs (the rendering is tested above)."""
    import artlens.train.beneath as tb

    calls = iter(records)
    monkeypatch.setattr(tb, "prepare_scenes", lambda cfg, n, seed, real=False: next(calls))
    run = tmp_path / "run"
    code, out, err = cli("beneath", "train", "--out", run, "--synthetic", 3, "--val-synthetic", 1, "--size", 64,
                         "--region-px", 24, "--model", "beneath_gcn_test", "--epochs", 1, "--batch-size", 2,
                         "--accelerator", "cpu", "--json")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    m = result["metrics"]
    assert m["epochs"] == 1 and m["global_step"] == 2 and 0 <= m["val_pixel_ap"] <= 1
    for f in ("config.json", "metrics.csv", "last.ckpt", "metrics.json", "data/train.npz", "model/model.safetensors"):
        assert (run / f).is_file(), f
    from artlens.beneath.compare import load_beneath_model

    model, config = load_beneath_model(run / "model", "gcn")
    assert config["graphs"]["region_px"] == 24.0 and config["model"] == "beneath_gcn_test"
    # the prepared graphs are cached: a resumed run does not render again
    code, out, err = cli("beneath", "train", "--out", run, "--resume", "--epochs", 2, "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["metrics"]["epochs"] >= 1


def test_real_band_pairs_give_unlabelled_positive_regions(tmp_path) -> None:
    from PIL import Image

    import artlens.train.beneath as tb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = synthetic_scene(2, 64)
    Image.fromarray(s.visible_rgb).save(tmp_path / "v.png")
    Image.fromarray(s.ir).save(tmp_path / "o.png")
    (tmp_path / "pairs.csv").write_text("visible,other\nv.png,o.png\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "already aligned" notice
        (rec,) = tb._real_pairs(tmp_path / "pairs.csv", BeneathTrainConfig(**TINY))
    assert not rec["labelled"].any() and (rec["hidden"] == 0).all()
    assert rec["x_vis"].shape == rec["x_oth"].shape and rec["x_vis"].shape[1] == 23
