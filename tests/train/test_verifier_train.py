"""Verifier training on several collections (``train-verifier --extra-data``): which artists of a further
collection are kept, validation artists drawn from it, validation pairs scored adapted to their own
images, calibration on them; bad settings refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

TINY = "test_efficientnet"  # timm's tiny test model: random weights, no download


def _painting(path, hue: int, seed: int, size=(64, 56)) -> None:
    rng = np.random.default_rng(seed)
    base = np.zeros((size[1], size[0], 3), np.float32)
    base[..., hue % 3] = 180
    stripes = (np.sin(np.arange(size[0]) / (2 + hue)) * 40)[None, :, None]
    Image.fromarray(np.clip(base + stripes + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def collections(tmp_path_factory):
    """A main folder collection (3 artists, 8 images each) and a further CSV collection: one artist shared with the main
    one, three with 5 images, one with 9 (over the kept range 4-6)."""
    main = tmp_path_factory.mktemp("main")
    for a in range(3):
        (main / f"a{a}").mkdir()
        for k in range(8):
            _painting(main / f"a{a}" / f"p{k}.png", a, 10 * a + k)
    extra = tmp_path_factory.mktemp("extra")
    rows = ["path,artist"]
    for artist, n, hue in (("a0", 5, 0), ("b1", 5, 3), ("b2", 5, 4), ("b3", 5, 5), ("big", 9, 6)):
        for k in range(n):
            _painting(extra / f"{artist}_{k}.png", hue, 100 * hue + k)
            rows.append(f"{artist}_{k}.png,{artist}")
    (extra / "labels.csv").write_text("\n".join(rows) + "\n")
    return main, extra / "labels.csv"


def _config(main, extra, patches=1, **kw):
    from artlens.train.verifier import VerifierTrainConfig

    return VerifierTrainConfig(
        data=str(main),
        label_column="label",
        extra_data=[{"data": str(extra), "min_images": 4, "max_images": 6}],
        model={
            "backbone": TINY,
            "pretrained_backbone": False,
            "n_patches": patches,
            "max_side": 96,
            "hidden": 16,
            "embed_dim": 8,
        },
        batch_size=16,
        pairs_per_epoch=32,
        val_pairs=40,
        val_fraction=0.25,
        test_fraction=0.25,
        val_artists=2,
        workers=0,
        trainer={"max_epochs": 1, "accelerator": "cpu"},
        **kw,
    )


def test_training_images_keep_the_further_collections_small_new_artists(collections):
    from artlens.train.verifier import training_images

    main, extra = collections
    paths, labels, source = training_images(_config(main, extra))
    assert sorted(set(labels)) == ["a0", "a1", "a2", "b1", "b2", "b3"]
    assert labels.count("a0") == 8  # the main collection's a0 only: the further a0 is left out
    assert "big" not in labels  # 9 images, over max_images
    assert source.count(str(extra)) == 15 and all(
        str(main) in p for p, s in zip(paths, source, strict=True) if s == str(main)
    )


def test_validation_artists_come_from_the_further_collection_and_calibrate(collections, tmp_path):
    from artlens.train.verifier import train_verifier

    main, extra = collections
    result = train_verifier(_config(main, extra), tmp_path / "run")
    doc = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert set(doc["artists"]["val_unseen"]) <= {"b1", "b2", "b3"} and len(doc["artists"]["val_unseen"]) == 2
    assert not set(doc["artists"]["val_unseen"]) & set(doc["artists"]["train"])
    ev = result["evaluation"]
    assert ev["val_unseen"]["adapted"] is True and ev["val_unseen"]["pairs"] > 0
    assert ev["calibrated_on"] == ev["blend_chosen_on"] == "validation artists (held out of training)"
    cfg = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert cfg["trained_on"]["extra_data"][0]["max_images"] == 6
    assert sorted(cfg["trained_on"]["val_artists"]) == sorted(doc["artists"]["val_unseen"])


def test_pair_scores_adapted_centre_on_the_pairs_own_images_and_restore_the_means():
    import torch

    from artlens.models.heads import MetricHead
    from artlens.paintings.features import Features
    from artlens.train.verifier import pair_scores

    torch.manual_seed(0)
    head = MetricHead(6, hidden=8, embed_dim=4, centre=True).eval()
    rng = np.random.default_rng(0)
    g, pt = rng.random((5, 6)).astype(np.float32), rng.random((5, 1, 6)).astype(np.float32)
    f = Features(paths=[str(i) for i in range(5)], global_=g, patches=pt)
    pairs = np.array([[0, 1, 1], [2, 3, 0]])
    before = head.mean_global.clone()
    adapted = pair_scores(head, f, pairs, "metric", 0.5, adapt=True)
    assert torch.equal(head.mean_global, before)  # restored
    head.set_means(g.mean(0), pt.mean(axis=(0, 1)))
    assert np.allclose(adapted, pair_scores(head, f, pairs, "metric", 0.5))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--extra-min-images", "0"], "--extra-min-images must be >= 1"),
        (["--extra-min-images", "5", "--extra-max-images", "4"], "--extra-max-images at least as large"),
        (["--val-from", "extra"], "--val-from extra needs --extra-data"),
        (["--val-from", "nowhere"], "--val-from must be"),
        (["--self-supervised", "-1"], "--self-supervised must be >= 0"),
        (["--unlabelled", ".", "--self-supervised", "0"], "--unlabelled needs the self-supervised loss"),
        (["--self-supervised", "0.5", "--kind", "siamese"], "--self-supervised needs the metric kind"),
        (["--self-supervised", "0.5", "--unlabelled", "no/such/folder"], "no such collection"),
        (["--nuisance-dims", "-1"], "--nuisance-dims must be >= 0"),
        (["--nuisance-dims", "4", "--no-centre"], "--nuisance-dims needs the metric kind with --centre"),
        (["--nuisance-dims", "4", "--kind", "siamese"], "--nuisance-dims needs the metric kind with --centre"),
    ],
)
def test_bad_extra_settings_are_refused_in_one_line(collections, tmp_path, capsys, args, message):
    from artlens.cli.main import main

    root, _ = collections
    with pytest.raises(SystemExit) as exc:
        main(["paintings", "train-verifier", "--data", str(root), "--out", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err
    assert exc.value.code not in (0, None) and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_an_extra_collection_without_a_kept_artist_is_refused(collections, tmp_path):
    from artlens.errors import InvalidParameterError
    from artlens.train.verifier import train_verifier

    main, extra = collections
    cfg = _config(main, extra).model_copy(
        update={
            "extra_data": [_config(main, extra).extra_data[0].model_copy(update={"min_images": 20, "max_images": 30})]
        }
    )
    with pytest.raises(InvalidParameterError, match="no artist with 20-30 images"):
        train_verifier(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_calibration_collection_refits_the_calibration_and_a_bank_is_written(collections, tmp_path):
    """``--calibrate-on``: Platt scaling refitted on the further collection's artists the run never saw
    (the validation fit kept as ``previous``), and the typicality bank written beside the weights with
    thresholds set on the validation artists' images."""
    from artlens.paintings.verify import load_verifier
    from artlens.train.verifier import train_verifier

    main, extra = collections
    cfg = type(_config(main, extra)).model_validate(
        _config(main, extra).model_dump()
        | {
            "extra_data": [],
            "calibration_data": {"data": str(extra), "min_images": 4, "max_images": 6},
            "val_artists": 1,
            "bank_per_artist": 3,
        }
    )
    result = train_verifier(cfg, tmp_path / "run")
    doc = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    rec = doc["recalibration"]
    assert rec["artists"] == ["b1", "b2", "b3"]  # a0 is a training artist, big has 9 images
    assert rec["images"] == 15 and rec["pairs"] > 0
    assert doc["config"]["calibration"] != rec["previous"]  # refitted, the validation artists' fit kept
    assert result["evaluation"]["calibrated_on"].startswith(str(extra))
    bank = load_verifier(tmp_path / "run" / "model").bank
    assert bank is not None and len(bank.codes) == 2 * 3  # 2 training artists (1 held out), 3 images each
    assert 0 < bank.threshold <= bank.limit
    assert result["evaluation"]["typicality_bank"]["images"] == 6


def test_no_bank_when_asked_for_none(collections, tmp_path):
    from artlens.paintings.verify import BANK
    from artlens.train.verifier import train_verifier

    main, extra = collections
    result = train_verifier(_config(main, extra, bank_per_artist=0), tmp_path / "run")
    assert not (tmp_path / "run" / "model" / BANK).exists()
    assert result["evaluation"]["typicality_bank"] == "none (bank_per_artist 0)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--calibrate-on", "nowhere.csv"], "nowhere.csv: no such collection"),
        (["--calibrate-min-images", "0"], "--calibrate-min-images must be >= 1"),
        (["--calibrate-min-images", "5", "--calibrate-max-images", "4"], "--calibrate-max-images at least as large"),
        (["--bank-per-artist", "-1"], "--bank-per-artist must be >= 0"),
        (["--calibrate-on", "MAIN"], "no artist with"),  # every artist already trained on
        (["--calibrate-on", "EXTRA", "--calibrate-min-images", "9"], "1 new artist kept, need at least 2"),
    ],
)
def test_bad_calibration_settings_are_refused_in_one_line(collections, tmp_path, capsys, args, message):
    from artlens.cli.main import main

    root, extra = collections
    args = [str(root) if a == "MAIN" else str(extra) if a == "EXTRA" else a for a in args]
    with pytest.raises(SystemExit) as exc:
        main(["paintings", "train-verifier", "--data", str(root), "--out", str(tmp_path / "r"), "--val-artists", "1",
              *args])
    err = capsys.readouterr().err
    assert exc.value.code not in (0, None) and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_patch_views_read_two_disjoint_halves_of_each_paintings_patches():
    import torch

    from artlens.models.heads import MetricHead
    from artlens.train.verifier import patch_views

    class Spy(torch.nn.Module):  # records what the views are made of: each patch is one-hot in its own slot
        centre = False

        def forward(self, g, p):
            return torch.cat([g, p], dim=1)

    patches = torch.eye(4).repeat(3, 1, 1)  # 3 paintings, 4 patches, patch k = e_k
    a, b = patch_views(Spy(), patches, torch.Generator().manual_seed(0))
    used_a, used_b = a[:, 4:] > 0, b[:, 4:] > 0  # the patches each half averages
    assert used_a.sum(1).tolist() == [2, 2, 2] and used_b.sum(1).tolist() == [2, 2, 2]
    assert not (used_a & used_b).any()  # no patch in both views
    assert ((a[:, :4] > 0) & used_a).sum(1).tolist() == [1, 1, 1]  # the stand-in global view is one of its half's
    head = MetricHead(4, hidden=8, embed_dim=3, centre=True).eval()
    head.set_means(np.full(4, 2.0), np.full(4, 0.5))
    za, zb = patch_views(head, patches, torch.Generator().manual_seed(1))
    assert za.shape == zb.shape == (3, 3) and torch.allclose(za.norm(dim=1), torch.ones(3))


def test_info_nce_prefers_matching_rows_and_refuses_mismatched_views():
    import torch

    from artlens.errors import InvalidParameterError
    from artlens.models.losses import info_nce

    z = torch.nn.functional.normalize(torch.randn(6, 5, generator=torch.Generator().manual_seed(0)), dim=1)
    assert float(info_nce(z, z)) < float(info_nce(z, z.flip(0)))
    with pytest.raises(InvalidParameterError, match="one shape"):
        info_nce(z, z[:3])
    with pytest.raises(InvalidParameterError, match="temperature"):
        info_nce(z, z, temperature=0.0)


def test_self_supervised_loss_changes_the_head_and_is_reproducible(collections, tmp_path):
    from safetensors.torch import load_file

    from artlens.train.verifier import train_verifier

    main, extra = collections
    heads = {}
    for name, weight in (("off", 0.0), ("on", 1.0), ("again", 1.0)):
        cfg = _config(main, extra, patches=2, self_supervised=weight, feature_cache=str(tmp_path / "f.npz"))
        train_verifier(cfg, tmp_path / name)
        heads[name] = load_file(str(tmp_path / name / "model" / "head.safetensors"))
    w = "net.1.weight"
    assert not np.allclose(heads["off"][w].numpy(), heads["on"][w].numpy())
    assert np.array_equal(heads["on"][w].numpy(), heads["again"][w].numpy())
    metrics = (tmp_path / "on" / "metrics.csv").read_text()
    assert "train_ssl_loss" in metrics


def test_self_supervision_needs_two_patches_and_the_metric_kind(collections):
    from pydantic import ValidationError

    main, extra = collections
    with pytest.raises(ValidationError, match="self_supervised needs"):
        _config(main, extra, self_supervised=0.5)  # one patch per image


def test_unlabelled_paintings_join_the_self_supervised_pool_but_labelled_ones_do_not(collections, tmp_path):
    """``--unlabelled``: a flat folder of paintings joins the pool; a copy of the labelled collection adds
    nothing (its images are the run's own, validation and test ones included), and is refused."""
    from artlens.errors import InvalidParameterError
    from artlens.train.verifier import train_verifier

    main, extra = collections
    loose = tmp_path / "loose"
    loose.mkdir()
    for k in range(3):
        _painting(loose / f"u{k}.png", 7, 500 + k)
    result = train_verifier(_config(main, extra, patches=2, self_supervised=0.5, unlabelled_data=[str(loose)]),
                            tmp_path / "run")
    record = result["evaluation"]["self_supervised"]
    assert record["paintings"][str(loose)] == 3 and record["weight"] == 0.5
    assert record["paintings"]["training images"] == result["split_sizes"]["train"]
    with pytest.raises(InvalidParameterError, match="no image that is not already a labelled one"):
        train_verifier(_config(main, extra, patches=2, self_supervised=0.5, unlabelled_data=[str(main)]),
                       tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_the_self_supervised_weight_defaults_to_0_3_where_it_applies(collections):
    from artlens.train.verifier import SELF_SUPERVISED

    main, extra = collections
    assert _config(main, extra, patches=2).ssl_weight == SELF_SUPERVISED == 0.3
    assert _config(main, extra, patches=1).ssl_weight == 0.0  # no two halves to compare: off, not refused
    assert _config(main, extra, patches=2, self_supervised=0.0).ssl_weight == 0.0



def test_calibration_on_a_collection_also_fits_unadapted_scores_used_until_adapted(collections, tmp_path):
    """A calibration collection large enough to adapt to (20 images) gets a second Platt fit of the same pairs
    scored without adapting; the loaded verifier uses it until it is adapted to a background."""
    from artlens.paintings.verify import load_verifier
    from artlens.train.verifier import train_verifier

    main, extra = collections
    cal = tmp_path / "cal"
    cal.mkdir()
    rows = ["path,artist"]
    for a, hue in (("c1", 3), ("c2", 4), ("c3", 5), ("c4", 6)):
        for k in range(5):
            _painting(cal / f"{a}_{k}.png", hue, 700 + 10 * hue + k)
            rows.append(f"{a}_{k}.png,{a}")
    (cal / "labels.csv").write_text("\n".join(rows) + "\n")
    cfg = type(_config(main, extra)).model_validate(
        _config(main, extra).model_dump()
        | {"extra_data": [], "calibration_data": {"data": str(cal / "labels.csv")}, "val_artists": 1}
    )
    train_verifier(cfg, tmp_path / "run")
    doc = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert doc["recalibration"]["images"] == 20
    unadapted = doc["recalibration"]["unadapted"]
    assert doc["config"]["calibration_unadapted"] == unadapted["calibration"] != doc["config"]["calibration"]
    v = load_verifier(tmp_path / "run" / "model")
    raw = np.array([0.2, 0.6])
    u, c = doc["config"]["calibration_unadapted"], doc["config"]["calibration"]
    assert np.allclose(v.probability(raw), 1 / (1 + np.exp(-(u["a"] * raw + u["b"]))))
    assert v.record()["calibration_for"].startswith("scores centred on the training collection")
    v.adapt(sorted(str(p) for p in cal.glob("*.png")), source="cal")
    assert np.allclose(v.probability(raw), 1 / (1 + np.exp(-(c["a"] * raw + c["b"]))))
    assert v.record()["calibration"] == c


def test_calibration_is_set_by_training_not_by_the_config(collections):
    from pydantic import ValidationError

    main, extra = collections
    cfg = _config(main, extra).model_dump()
    cfg["model"]["calibration_unadapted"] = {"a": 1.0, "b": 0.0}
    with pytest.raises(ValidationError, match="set by training"):
        type(_config(main, extra)).model_validate(cfg)


def test_nuisance_basis_finds_planted_directions_and_project_out_removes_them():
    from artlens.paintings.nuisance import nuisance_basis, project_out

    rng = np.random.default_rng(0)
    planted = np.linalg.qr(rng.normal(size=(20, 2)))[0]  # two orthonormal directions in 20-d
    diffs = rng.normal(size=(50, 2)) @ planted.T * 5 + rng.normal(size=(50, 20)) * 0.01
    basis = nuisance_basis(diffs, 2)
    assert basis.shape == (20, 2)
    assert np.allclose(basis.T @ basis, np.eye(2), atol=1e-5)
    assert np.linalg.norm(planted - basis @ (basis.T @ planted)) < 0.01  # the same plane
    x = rng.normal(size=(4, 20))
    assert np.allclose(project_out(x, basis) @ planted, 0, atol=0.01)
    assert nuisance_basis(diffs, 0).shape == (20, 0)
    assert np.array_equal(project_out(x, nuisance_basis(diffs, 0)), x)


def test_photograph_again_is_seeded_and_keeps_the_size():
    from artlens.paintings.nuisance import photograph_again

    im = Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8))
    a = photograph_again(im, np.random.default_rng(3))
    b = photograph_again(im, np.random.default_rng(3))
    c = photograph_again(im, np.random.default_rng(4))
    assert a.size == im.size and a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    assert not np.array_equal(np.asarray(a), np.asarray(im))


def test_a_trained_verifier_projects_photographic_directions_until_it_is_adapted(collections, cli, tmp_path):
    """The run fits the nuisance directions on its training images photographed again, saves them with the head,
    and the loaded verifier removes them from its scores while it has no collection to adapt to."""
    import torch

    from artlens.paintings.verify import load_verifier
    from artlens.train.verifier import train_verifier

    main, extra = collections
    result = train_verifier(_config(main, extra, patches=2, nuisance_dims=2, nuisance_views=2), tmp_path / "run")
    record = result["evaluation"]["nuisance_projection"]
    assert record["dims"] == 2 and record["views"] == 2 and record["differences"] == 2 * record["images"]
    assert len(list((tmp_path / "run" / "nuisance" / "view-1").glob("*.jpg"))) == record["images"]
    v = load_verifier(tmp_path / "run" / "model")
    basis = v.head.nuisance_global
    assert torch.allclose(basis.T @ basis, torch.eye(2), atol=1e-4)
    assert v.record()["nuisance_projection"] == {"dims": 2, "applied": True}
    paths = sorted(str(p) for p in main.glob("*/*.png"))
    _, projected, _ = v.encode(paths[:4])
    v.head.project = False
    _, plain, _ = v.encode(paths[:4])
    assert not torch.allclose(projected, plain)
    v.adapt(paths, source="main")
    assert v.record()["nuisance_projection"] == {"dims": 2, "applied": False}
    assert v.config.nuisance_dims == 2
    # through the command line: a single pair is projected, and the report says so
    code, out, err = cli("verify", paths[0], paths[9], "--model", tmp_path / "run" / "model", "--json",
                         "--no-catalog", "--report", tmp_path / "r.html")
    assert code == 0, err
    assert json.loads(out)["verifier"]["nuisance_projection"] == {"dims": 2, "applied": True}
    assert "feature directions that photography moves most" in (tmp_path / "r.html").read_text()


def test_nuisance_directions_are_off_by_default_and_need_a_centred_metric_verifier(collections):
    from pydantic import ValidationError

    main, extra = collections
    assert _config(main, extra).nuisance_dims == 0
    assert _config(main, extra).verifier_config().nuisance_dims == 0
    assert _config(main, extra, nuisance_dims=4).verifier_config().nuisance_dims == 4
    cfg = _config(main, extra).model_dump()
    cfg["model"]["centre"] = False
    with pytest.raises(ValidationError, match="nuisance_dims needs the metric kind"):
        type(_config(main, extra)).model_validate(cfg | {"nuisance_dims": 4})
    cfg["model"]["centre"], cfg["model"]["nuisance_dims"] = True, 4
    with pytest.raises(ValidationError, match="set by training"):
        type(_config(main, extra)).model_validate(cfg)
