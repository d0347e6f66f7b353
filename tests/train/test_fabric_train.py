"""Training the Siamese fabric model: a one-epoch --synthetic run through the CLI, the pair sampler and
the roll-grouped split, calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from artlens.train.fabric import (
    FabricTrainConfig,
    PairDataset,
    fit_platt,
    hard_neighbours,
    prepare_data,
    roc_auc,
    synthetic_collection,
)

TINY = ["--model", "siamese_fabric_test", "--input-px-per-cm", "24", "--canvases-per-roll", "2", "--canvas-cm",
        "2.5", "--patches-per-canvas", "8", "--pairs-per-epoch", "64", "--calib-patches", "6", "--batch-size", "16",
        "--accelerator", "cpu"]




@pytest.mark.slow
def test_one_epoch_synthetic_training_then_compare(cli, tmp_path):
    run = tmp_path / "run"
    code, out, err = cli("canvas", "train", "--out", str(run), "--synthetic", "4", "--epochs", "1",
                             *TINY, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["metrics"]["epochs"] == 1 and result["metrics"]["global_step"] > 0
    for name in ("config.json", "metrics.csv", "last.ckpt", "model/model.safetensors", "model/config.json",
                 "calibration.csv"):
        assert (run / name).is_file(), name
    cfg = json.loads((run / "model" / "config.json").read_text())
    assert cfg["model"] == "siamese_fabric_test" and cfg["input_px_per_cm"] == 24 and cfg["patch_cm"] == 1.0
    cal = cfg["calibration"]
    assert {"a", "b", "fitted", "n_pairs"} <= set(cal) and cal["a"] >= 0 and cal["n_pairs"] == 6  # 4 held-out canvases
    assert cfg["aggregation"] == {"method": "mean", "trim": 0.1, "n_patches": 6}
    assert not set(cfg["training"]["train_rolls"]) & set(cfg["training"]["val_rolls"])
    # a second run into the same folder is refused
    code, _, err = cli("canvas", "train", "--out", str(run), "--synthetic", "4", *TINY)
    assert code == 7 and "--resume" in err
    # the exported model scores canvases
    from artlens.canvas.fabric import FabricModel, compare_canvases

    canv = synthetic_collection(2, 1, canvas_cm=2.0, seed=5)
    r = compare_canvases(canv[0].image, canv[1].image, FabricModel.load(run / "model"), n_boot=50,
                         px_per_cm=(100.0, 100.0))
    assert 0 <= r["score"] <= 1 and r["pairs"] == 36

    # fine-tuning starts from the exported weights (not from a fresh initialisation)
    from artlens.models.checkpoint import load_checkpoint

    start, _ = load_checkpoint(run / "model")
    code, out, err = cli("canvas", "train", "--out", str(tmp_path / "tuned"), "--synthetic", "4", "--epochs", "1",
                         "--lr", "0", *TINY, "--seed", "3", "--init-from", str(run / "model"), "--json")
    assert code == 0, err
    tuned, _ = load_checkpoint(json.loads(out)["model"])
    for (name, w0), w1 in zip(start.state_dict().items(), tuned.state_dict().values(), strict=True):
        if w0.is_floating_point() and "running" not in name:  # lr 0: weights unchanged (batch-norm statistics move)
            assert np.allclose(w0.numpy(), w1.numpy()), name
    code, _, err = cli("canvas", "train", "--out", str(tmp_path / "x"), "--synthetic", "4", *TINY,
                       "--init-from", str(tmp_path / "nothing"))
    assert code == 3 and "not a fabric model folder" in err
    code, _, err = cli("canvas", "train", "--out", str(tmp_path / "y"), "--synthetic", "4", *TINY[:-2],
                       "--input-px-per-cm", "30", "--init-from", str(run / "model"))
    assert code == 7 and "24-px patches" in err


def test_synthetic_rolls_have_hard_negatives_and_the_sampler_is_balanced():
    cfg = FabricTrainConfig(synthetic=6, canvases_per_roll=2, canvas_cm=2.0, patches_per_canvas=4,
                            input_px_per_cm=24, family_size=3)
    data = prepare_data(cfg)
    dens = {c.roll: c.densities for c in data["canvases"]}
    for r in (0, 3):  # each family of 3 lies within 0.3 threads/cm
        fam = np.array([dens[r + k] for k in range(3)])
        assert np.ptp(fam, axis=0).max() <= 0.3
    hard = data["hard"]
    assert set(hard[0]) >= {1, 2}
    assert not data["train_rolls"] & data["val_rolls"] and len(data["val_rolls"]) >= 2
    train_c = [i for i, c in enumerate(data["canvases"]) if c.roll in data["train_rolls"]]
    ds = PairDataset(data["x"], data["canvas"], data["roll"], train_c, hard, 200, 1.0, seed=0)
    labels = [float(ds[i][2]) for i in range(200)]
    assert sum(labels) == 100
    a, b, y = ds[0]
    assert a.shape == (1, 24, 24) and float(y) == 1.0
    ds.epoch = 1
    assert not np.array_equal(ds[1][0].numpy(), PairDataset(data["x"], data["canvas"], data["roll"], train_c, hard,
                                                              200, 1.0, seed=0)[1][0].numpy())


def test_hard_neighbours_fall_back_to_the_nearest_roll():
    h = hard_neighbours({0: (10.0, 12.0), 1: (12.1, 10.1), 2: (20.0, 20.0)}, 0.3)
    assert h[0] == [1] and h[1] == [0] and h[2] in ([0], [1])


def test_platt_and_auc():
    x = np.array([-2.0, -1.0, 0.5, 1.0, 2.0])
    y = np.array([0, 0, 1, 1, 1])
    a, b = fit_platt(x, y)
    assert a > 0
    assert roc_auc(x, y) == 1.0 and roc_auc(-x, y) == 0.0 and np.isnan(roc_auc(x, np.ones(5)))
    a, _ = fit_platt(-x, y)  # an inverted ranking is not turned round: the slope stops at 0
    assert a == pytest.approx(0.0, abs=1e-6)


def test_yarn_comparison_fit_calibrate_save_and_resume(tmp_path, cli):
    """A tiny yarn-statistics fit: wide synthetic rolls, held-out calibration, a loadable model, resume."""
    from artlens.canvas.fabric import YarnModel, load_fabric_model
    from artlens.train.yarn import YarnTrainConfig, train_yarn_model

    cfg = YarnTrainConfig(synthetic=8, canvases_per_roll=2, chunk_rolls=4, family_size=2, canvas_cm=(2.2, 2.2),
                          px_per_cm=(80.0, 80.0), density_range=(8.0, 13.0), workers=1, calib_fraction=0.5, seed=3)
    run = tmp_path / "yarn"
    result = train_yarn_model(cfg, run)
    for name in ("config.json", "descriptors.jsonl", "calibration.csv", "metrics.json", "model/model.safetensors",
                 "model/config.json"):
        assert (run / name).is_file(), name
    mcfg = json.loads((run / "model" / "config.json").read_text())
    assert mcfg["model"] == "yarn_logistic" and mcfg["method"] == "yarn-statistics"
    cal = result["calibration"]
    assert cal["a"] >= 0 and cal["n_canvases"] > 0
    model = load_fabric_model(run / "model")
    assert isinstance(model, YarnModel) and np.all(model.weight <= 0)
    descs = (run / "descriptors.jsonl").read_text().splitlines()
    assert len(descs) == 16
    from artlens.canvas.yarn import YarnDescriptor

    d = [YarnDescriptor.from_dict(json.loads(x)["desc"]) for x in descs[:2]]
    r = model.compare(d[0], d[1])
    assert 0 <= r["score"] <= 1 and r["method"] == "yarn-statistics"
    # resume: the descriptors are reused, not computed again
    again = train_yarn_model(cfg, run, resume=True)
    assert (run / "descriptors.jsonl").read_text().splitlines() == descs
    assert again["metrics"]["fit_pairs"] == result["metrics"]["fit_pairs"]
    with pytest.raises(Exception, match="resume=True"):  # the CLI says --resume (test above)
        train_yarn_model(cfg, run)
    code, _, err = cli("canvas", "train", "--out", str(tmp_path / "z"), "--method", "nope", "--synthetic", "4")
    assert code == 7 and "--method" in err


def test_yarn_wider_imaging_and_density_drift(tmp_path, cli):
    """``imaging="wider"`` renders the same rolls and cuts as the wide collection with interstice lattices,
    lining and banding added per cut; the density drift moves only the densities, seeded."""
    from artlens.canvas.yarn import YarnDescriptor
    from artlens.train.yarn import drift_densities, extra_imaging, yarn_collection

    kw = {"family_size": 2, "canvas_cm": (2.2, 2.2), "px_per_cm": (60.0, 60.0), "density_range": (8.0, 12.0)}
    wide = yarn_collection(4, 1, seed=5, **kw)
    wider = yarn_collection(4, 1, seed=5, imaging="wider", **kw)
    assert [c.meta["x_offset_cm"] for c in wide] == [c.meta["x_offset_cm"] for c in wider]
    assert [c.densities for c in wide] == [c.densities for c in wider]
    for a, b in zip(wide, wider, strict=True):
        extra = {k: b.meta["imaging"][k] for k in ("interstice_lattice", "lining", "banding")}
        assert {k: v for k, v in b.meta["imaging"].items() if k not in extra} == a.meta["imaging"]
        if any(extra.values()):
            assert not np.array_equal(a.image, b.image)
    draws = [extra_imaging(np.random.default_rng(s)) for s in range(200)]
    assert 0.2 < np.mean([d["interstice_lattice"] != 0 for d in draws]) < 0.5
    assert {np.sign(d["interstice_lattice"]) for d in draws} == {-1.0, 0.0, 1.0}
    with pytest.raises(Exception, match="imaging"):
        yarn_collection(1, 1, imaging="nope")

    fam = {k: {"density": 12.0, "spacing_cv": 0.05} for k in ("horizontal", "vertical")}
    d = [YarnDescriptor({k: dict(v) for k, v in fam.items()}, {"relief": 0.2, "polarity_confidence": 1.0}, 100.0, True)
         for _ in range(50)]
    moved = drift_densities(d, 0.01, seed=1)
    dens = np.array([m.families["horizontal"]["density"] for m in moved])
    assert 0.05 < dens.std() < 0.2 and all(m.families["vertical"]["spacing_cv"] == 0.05 for m in moved)
    assert d[0].families["horizontal"]["density"] == 12.0  # the originals are untouched
    again = drift_densities(d, 0.01, seed=1)
    assert [m.families["vertical"]["density"] for m in again] == [m.families["vertical"]["density"] for m in moved]
    assert drift_densities(d, 0.0, seed=1) == d
    for opt in (["--imaging", "nope"], ["--density-drift", "0.5"]):  # refused before anything is rendered
        code, _, err = cli("canvas", "train", "--out", str(tmp_path / "y"), "--method", "yarn", "--synthetic", "4",
                           *opt)
        assert code == 7 and opt[0] in err, err


def test_yarn_recalibration_keeps_the_comparison_and_records_the_old_calibration(tmp_path, cli):
    """``canvas train --method yarn --recalibrate fabric_default``: the same weights (checksum), a new Platt
    calibration fitted on the hard pairs of the canvases given, the previous one recorded."""
    from artlens.canvas.fabric import YarnModel, load_fabric_model

    shipped = load_fabric_model("fabric_default")
    out = tmp_path / "recal"
    code, stdout, err = cli("canvas", "train", "--method", "yarn", "--recalibrate", "fabric_default", "--synthetic",
                            "8", "--canvases-per-roll", "2", "--imaging", "wider", "--workers", "1", "--seed", "4",
                            "--out", str(out), "--json")
    assert code == 0, err
    result = json.loads(stdout)
    model = load_fabric_model(result["model"])
    assert isinstance(model, YarnModel)
    assert model.config["sha256"] == shipped.config["sha256"]  # the comparison, bit for bit
    assert np.array_equal(model.weight, shipped.weight) and model.bias == shipped.bias
    cal = model.calibration
    assert cal["fitted"] and cal["n_pairs"] > 0 and 0 < cal["n_same_roll"] < cal["n_pairs"]
    assert (cal["a"], cal["b"]) != (shipped.calibration["a"], shipped.calibration["b"])
    previous = cal["recalibration"]["previous"]
    assert previous["a"] == shipped.calibration["a"] and previous["b"] == shipped.calibration["b"]
    assert cal["recalibration"]["training"]["imaging"] == "wider"
    rows = (out / "calibration.csv").read_text().splitlines()
    assert rows[0] == "logit,probability,same_roll" and len(rows) == cal["n_pairs"] + 1
    # a Siamese model has no yarn comparison to keep; --recalibrate is a yarn option
    code, _, err = cli("canvas", "train", "--method", "yarn", "--recalibrate", "siamese_v1", "--synthetic", "4",
                       "--out", str(tmp_path / "s"))
    assert code == 7 and "--recalibrate keeps a yarn-statistics comparison" in err and "Traceback" not in err
    code, _, err = cli("canvas", "train", "--method", "siamese", "--recalibrate", "fabric_default", "--synthetic", "4",
                       "--out", str(tmp_path / "t"))
    assert code == 7 and "--recalibrate applies to --method yarn" in err


def test_yarn_fit_on_a_labelled_csv_with_families(tmp_path, cli):
    """``canvas train --method yarn --data plates.csv``: a ``family`` column groups the lab's rolls into families
    (their within-family pairs are the hard pairs); a px_per_cm that is not a number is refused clearly."""
    from PIL import Image

    from artlens.synth import Roll

    lines = ["plate,roll,px_per_cm,family"]
    for r in range(4):
        roll = Roll(10.0 + 3 * (r // 2) + 0.1 * r, 12.0 + 3 * (r // 2), seed=40 + r, length_cm=12, width_cm=12)
        for k in range(2):
            img = roll.cut(1 + 5 * k, 1, 2.4, 2.4, px_per_cm=70).image
            Image.fromarray(img).save(tmp_path / f"r{r}-{k}.png")
            lines.append(f"r{r}-{k}.png,roll{r},70,f{r // 2}")
    csv_path = tmp_path / "plates.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    code, _, err = cli("canvas", "train", "--method", "yarn", "--data", str(csv_path), "--out", str(out))
    assert code == 0, err
    mcfg = json.loads((out / "model" / "config.json").read_text())
    assert mcfg["training"]["sources"] == ["labelled"] and mcfg["training"]["n_canvases"] == 8
    assert len(mcfg["training"]["heldout_families"]) == 1 and mcfg["training"]["heldout_families"][0] in ("lab-f0",
                                                                                                        "lab-f1")
    # each family holds 2 rolls x 2 cuts: 6 within-family pairs, 2 of them same-roll
    assert mcfg["metrics"]["fit_pairs"] == 6 and mcfg["metrics"]["fit_same_roll"] == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("plate,roll,px_per_cm\nr0-0.png,roll0,seventy\n")
    code, _, err = cli("canvas", "train", "--method", "yarn", "--data", str(bad), "--out", str(tmp_path / "b"))
    assert code != 0 and "is not a number" in err and "Traceback" not in err
