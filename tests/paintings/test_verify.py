"""Same-artist verification: one-epoch training of a tiny verifier, scoring, reference sets, Grad-CAM,
and bad input through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

from artlens.models.heads import MetricHead, PairHead  # noqa: E402
from artlens.models.losses import contrastive_loss  # noqa: E402
from artlens.paintings.verify import (  # noqa: E402
    VerifierConfig,
    grad_cam_pair,
    load_verifier,
    verify_against_reference,
    verify_pairs,
)

TINY = "test_efficientnet"  # timm's tiny test model: random weights, no download


def _painting(path, hue: int, seed: int, size=(96, 80)) -> None:
    rng = np.random.default_rng(seed)
    base = np.zeros((size[1], size[0], 3), np.float32)
    base[..., hue % 3] = 180
    stripes = (np.sin(np.arange(size[0]) / (2 + hue)) * 40)[None, :, None]
    img = np.clip(base + stripes + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    root = tmp_path_factory.mktemp("artists")
    for a in range(5):
        (root / f"artist{a}").mkdir()
        for k in range(8):
            _painting(root / f"artist{a}" / f"p{k}.png", a, 10 * a + k)
    return root


@pytest.fixture(scope="module")
def trained(collection, tmp_path_factory):
    from artlens.train.verifier import VerifierTrainConfig, train_verifier

    run = tmp_path_factory.mktemp("run") / "verifier"
    cfg = VerifierTrainConfig(data=str(collection), label_column="label",
                              model={"backbone": TINY, "pretrained_backbone": False, "n_patches": 1, "max_side": 128,
                                     "hidden": 32, "embed_dim": 16}, batch_size=16, pairs_per_epoch=64,
                              val_pairs=40, val_fraction=0.25, test_fraction=0.25, unseen_artists=1,
                              val_artists=1, trainer={"max_epochs": 1, "accelerator": "cpu"}, workers=0)
    result = train_verifier(cfg, run)
    return run, result


def test_one_epoch_training_writes_a_loadable_calibrated_model(trained):
    run, result = trained
    assert (run / "model" / "head.safetensors").is_file() and (run / "model" / "backbone.safetensors").is_file()
    assert (run / "features.npz").is_file() and (run / "evaluation.json").is_file()
    doc = json.loads((run / "model" / "config.json").read_text())
    assert doc["config"]["calibration"]["a"] >= 0
    assert result["split_sizes"]["train"] > 0 and result["split_sizes"]["val"] > 0
    # the blend is the best one on the validation pairs (ties: the larger weight); one validation
    # artist gives no different-artist pairs, so here the held-out images of training artists choose
    ev = result["evaluation"]
    assert ev["blend_chosen_on"] == "held-out images of training artists"
    table = ev["blend_auc_on_validation"]
    assert doc["config"]["blend"] == max(float(k) for k, auc in table.items() if auc == max(table.values()))
    v = load_verifier(run)
    assert v.record()["calibrated"] and len(v.record()["model_checksum"]) == 64


def test_same_image_scores_higher_than_other_artist(trained, collection):
    v = load_verifier(trained[0] / "model")
    a = str(collection / "artist0" / "p0.png")
    rows = verify_pairs(v, [(a, a), (a, str(collection / "artist2" / "p1.png"))])
    p_same, p_other = (r["same_artist_probability"] for r in rows)
    assert 0.0 <= p_other <= 1.0 and 0.0 <= p_same <= 1.0
    assert rows[0]["score"] == pytest.approx(1.0, abs=1e-4)  # cosine of an image with itself
    assert rows[0]["score"] >= rows[1]["score"]


def test_reference_set_distribution_and_closest(trained, collection):
    v = load_verifier(trained[0])
    refs = sorted(str(p) for p in (collection / "artist1").glob("*.png"))
    r = verify_against_reference(v, refs[0], refs, top=3)
    assert r["references"] == 8 and len(r["closest"]) == 3
    assert r["closest"][0]["path"] == refs[0]  # itself is the closest reference
    assert r["probabilities"]["min"] <= r["probabilities"]["median"] <= r["probabilities"]["max"]


def test_grad_cam_has_input_size_and_unit_range(trained, collection):
    v = load_verifier(trained[0])
    a, b = str(collection / "artist0" / "p1.png"), str(collection / "artist1" / "p2.png")
    cam_a, cam_b, score = grad_cam_pair(v, a, b)
    size = v.extractor.size
    assert cam_a.shape == cam_b.shape == (size, size)
    assert 0.0 <= cam_a.min() and cam_a.max() <= 1.0 and np.isfinite(score)


def test_trained_default_pools_stage_statistics_with_signed_sqrt(trained, collection):
    from artlens.paintings.features import FeatureExtractor
    from artlens.paintings.verify import metric_codes

    v = load_verifier(trained[0])
    assert (v.config.pooling, v.config.signed_sqrt) == ("stats", True)
    assert isinstance(v.extractor, FeatureExtractor) and v.extractor.config()["signed_sqrt"] is True
    assert v.extractor.pooling == "stats"
    a, b = str(collection / "artist0" / "p1.png"), str(collection / "artist1" / "p2.png")
    f = v.extractor.extract([a, b])
    plain = FeatureExtractor(TINY, pooling="stats", model=v.extractor.model, preprocess=v.extractor.preprocess,
                             n_patches=1, max_side=128).extract([a, b])
    assert f.global_.shape[1] == v.extractor.dim and not np.allclose(f.global_, plain.global_)
    assert np.allclose(f.global_, np.sign(plain.global_) * np.sqrt(np.abs(plain.global_)), atol=1e-4)
    # Grad-CAM pools the same way: its score is the head's cosine of the two codes
    z = metric_codes(v.head, f.global_, f.patches, 1.0).numpy()
    assert grad_cam_pair(v, a, b)[2] == pytest.approx(float(z[0] @ z[1]), abs=1e-3)


def test_feature_options_of_the_verifier():
    import torch

    from artlens.errors import InvalidParameterError
    from artlens.paintings.features import FeatureExtractor, signed_sqrt
    from artlens.paintings.verify import verifier_extractor

    x = torch.tensor([-4.0, 0.0, 9.0], requires_grad=True)
    y = signed_sqrt(x)
    assert torch.allclose(y, torch.tensor([-2.0, 0.0, 3.0]), atol=1e-5)
    y.sum().backward()
    assert torch.isfinite(x.grad).all()  # dead channels (exactly 0) do not break Grad-CAM
    old = VerifierConfig(backbone=TINY, pretrained_backbone=False)  # a config saved before these options
    assert (old.pooling, old.signed_sqrt) == ("avg", False)
    from artlens.models.backbones import create_backbone

    model, pre = create_backbone(TINY, pretrained=False)
    # an old config gets the plain extractor: grid views, the backbone's pooled output, the plain cache key
    ex = verifier_extractor(old, model=model, preprocess=pre)
    assert (ex.view, ex.pooling, ex.signed_sqrt) == ("grid", "avg", False)
    assert ex.config() == FeatureExtractor(TINY, model=model, preprocess=pre).config()
    assert not {"view", "pooling", "levels", "signed_sqrt"} & set(ex.config())
    with pytest.raises(InvalidParameterError, match="metric verifier"):
        verifier_extractor(VerifierConfig(kind="siamese", backbone=TINY, pooling="stats"), model=model,
                           preprocess=pre)


def test_cli_pair_pairs_reference_and_report(trained, collection, cli, tmp_path):
    model = trained[0] / "model"
    a, b = collection / "artist0" / "p0.png", collection / "artist0" / "p1.png"
    code, out, err = cli("verify", a, b, "--model", model, "--json", "--report", tmp_path / "r.html")
    assert code == 0, err
    row = json.loads(out)
    assert 0 <= row["same_artist_probability"] <= 1 and row["verifier"]["kind"] == "metric"
    assert (tmp_path / "r.html").stat().st_size > 1000 and len(row["heatmaps"]) == 2
    assert row["verifier"]["calibration_for"] == "the scores as centred"  # no unadapted fit in this tiny model
    assert "The scaling used here is the one for the scores as centred" in (tmp_path / "r.html").read_text()
    assert row["verifier"]["nuisance_projection"] is None  # not asked for in training (the default)
    assert "feature directions that photography moves most" not in (tmp_path / "r.html").read_text()
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"a,b\n{a},{b}\n{a},bad.jpg\n")
    code, out, err = cli("verify", "--pairs", pairs, "--model", model, "--json")
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and len(lines) == 2 and "same_artist_probability" in lines[0] and "error" in lines[1]
    assert "could not be scored" in err
    code, out, err = cli("verify", a, "--reference", collection / "artist1", "--reference", collection / "artist2",
                         "--model", model, "--json")
    assert code == 0, err
    ranking = json.loads(out)["ranking"]
    assert ranking[0]["references"] == 8 and {c["reference"] for c in ranking} == {
        str(collection / "artist1"), str(collection / "artist2")}


def test_cli_bad_input(trained, collection, cli, tmp_path):
    model = trained[0] / "model"
    a = collection / "artist0" / "p0.png"
    assert cli("verify", a, tmp_path / "missing.jpg", "--model", model)[0] == 3
    (tmp_path / "empty.png").write_bytes(b"")
    code, _, err = cli("verify", a, tmp_path / "empty.png", "--model", model)
    assert code == 4 and "empty" in err and "Traceback" not in err
    assert cli("verify", a, "--model", model)[0] == 7  # nothing to compare with
    assert cli("verify", a, a, "--model", tmp_path)[0] == 3  # not a verifier folder
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{not json")
    (tmp_path / "m" / "head.safetensors").write_bytes(b"x")
    assert cli("verify", a, a, "--model", tmp_path / "m")[0] == 4


def test_heads_and_loss_shapes():
    import torch

    head = MetricHead(8, use_patches=True, hidden=16, embed_dim=4).eval()
    z = head(torch.randn(5, 8), torch.randn(5, 8))
    assert z.shape == (5, 4) and torch.allclose(z.norm(dim=1), torch.ones(5))
    # contrastive loss by hand: identical codes, same → 0; orthogonal codes, different, margin 0.5 → 0
    e = torch.eye(4)[:2]
    assert contrastive_loss(e, e, torch.ones(2), margin=0.5, distance="cosine").item() == pytest.approx(0.0)
    assert contrastive_loss(e, e.flip(0), torch.zeros(2), margin=0.5, distance="cosine").item() == pytest.approx(0.0)
    # different but identical codes: d = 0 → (0.5 - 0)^2 = 0.25
    assert contrastive_loss(e, e, torch.zeros(2), margin=0.5, distance="cosine").item() == pytest.approx(0.25)
    pair = PairHead(8).eval()
    assert pair(torch.randn(3, 8, 2, 2), torch.randn(3, 8, 2, 2)).shape == (3,)
    assert VerifierConfig().kind == "metric"


def test_fine_tuning_unfreezes_the_scheduled_blocks_and_saves_the_backbone(collection, tmp_path):
    from artlens.models.backbones import create_backbone
    from artlens.train.finetune import set_trainable
    from artlens.train.verifier import VerifierTrainConfig, train_verifier

    model, _ = create_backbone(TINY, pretrained=False)
    names = set_trainable(model, 1)  # the last block stage with conv_head and bn2
    last = len(model.blocks) - 1
    assert names and all(n.startswith((f"blocks.{last}.", "conv_head", "bn2")) for n in names)
    assert not any(p.requires_grad for p in model.blocks[0].parameters())

    cfg = VerifierTrainConfig(data=str(collection), label_column="label",
                              model={"backbone": TINY, "pretrained_backbone": False, "n_patches": 1, "max_side": 128,
                                     "hidden": 32, "embed_dim": 16}, batch_size=16, pairs_per_epoch=64,
                              val_pairs=40, val_fraction=0.25, test_fraction=0.25, unseen_artists=0,
                              val_artists=2, trainer={"max_epochs": 1, "accelerator": "cpu"}, workers=0,
                              fine_tune_epochs=1, fine_tune_blocks=1)
    ev = train_verifier(cfg, tmp_path / "ft")["evaluation"]
    assert ev["blend_chosen_on"] == "validation artists (held out of training)"  # two of them: negatives exist
    assert (tmp_path / "ft" / "model" / "backbone.safetensors").is_file()
    assert (tmp_path / "ft" / "fine_tune" / "metrics.csv").is_file()
    v = load_verifier(tmp_path / "ft")
    a = str(collection / "artist0" / "p0.png")
    assert verify_pairs(v, [(a, a)])[0]["score"] == pytest.approx(1.0, abs=1e-4)


def test_centring_head_subtracts_its_means_in_head_and_frozen_part():
    import torch

    from artlens.paintings.verify import metric_codes

    torch.manual_seed(0)
    plain = MetricHead(6, hidden=8, embed_dim=4)
    centred = MetricHead(6, hidden=8, embed_dim=4, centre=True)
    centred.load_state_dict({**plain.state_dict(), "mean_global": torch.zeros(6), "mean_patch": torch.zeros(6)})
    rng = np.random.default_rng(0)
    g, pt = rng.random((5, 6)).astype(np.float32), rng.random((5, 2, 6)).astype(np.float32)
    mg, mp = g.mean(0), pt.mean(axis=(0, 1))
    centred.set_means(mg, mp)
    for blend in (1.0, 0.3):
        want = metric_codes(plain, g - mg, pt - mp, blend)
        got = metric_codes(centred, g, pt, blend)
        assert torch.allclose(got, want, atol=1e-6)
    assert not torch.allclose(metric_codes(plain, g, pt, 0.3), want)  # the centring changes the codes
    with pytest.raises(ValueError, match="without centring"):
        plain.set_means(mg, mp)


def test_training_centres_on_train_images_and_adapt_recentres(trained, collection):
    from artlens.errors import InvalidParameterError
    v = load_verifier(trained[0])
    assert v.config.centre and v.record()["centred_on"] == "training collection"
    trained_mean = v.head.mean_global.clone()
    assert float(trained_mean.abs().sum()) > 0
    # the training mean is that of the training images only (evaluation.json lists the split)
    z = np.load(trained[0] / "features.npz")
    split = json.loads((trained[0] / "evaluation.json").read_text())["artists"]
    assert len(split["test_unseen"]) == 1 and len(split["val_unseen"]) == 1
    assert not np.allclose(z["global_"].mean(0), trained_mean.numpy(), atol=1e-6)  # not the whole collection
    a, b = str(collection / "artist0" / "p0.png"), str(collection / "artist3" / "p5.png")
    before = verify_pairs(v, [(a, b)])[0]["score"]
    paths = sorted(str(p) for p in collection.rglob("*.png"))
    info = v.adapt(paths, source="all five")
    assert info == {"images": 40, "source": "all five", "skipped": 0}
    assert v.record()["centred_on"] == {"background": info}
    f = v.extractor.extract(paths)
    assert np.allclose(v.head.mean_global.numpy(), f.global_.mean(0), atol=1e-5)
    after = verify_pairs(v, [(a, b)])[0]["score"]
    assert after != pytest.approx(before)
    # images read by adapt() are not read again, and give the same codes as a fresh read
    memo_codes = v.encode([a, b])[1]
    v._memo.clear()
    assert np.allclose(memo_codes.numpy(), v.encode([a, b])[1].numpy(), atol=1e-5)
    with pytest.raises(InvalidParameterError, match="at least"):
        v.adapt(paths[:5])
    plain = load_verifier(trained[0])
    plain.head.centre = False
    with pytest.raises(InvalidParameterError, match="without feature centring") as err:
        plain.adapt(paths)
    assert err.value.param == "paths" and "--" not in str(err.value)  # the CLI says --background


def test_cli_background(trained, collection, cli, tmp_path):
    model = trained[0] / "model"
    a, b = collection / "artist0" / "p0.png", collection / "artist1" / "p1.png"
    code, out, err = cli("verify", a, b, "--model", model, "--background", collection, "--json")
    assert code == 0, err
    row = json.loads(out)
    assert row["verifier"]["centred_on"]["background"]["images"] == 40
    assert cli("verify", a, b, "--model", model, "--background", tmp_path / "nowhere")[0] == 3
    # an unreadable image in the background is skipped and counted, the rest are used, nothing is modified
    import shutil

    copy = tmp_path / "with_bad"
    shutil.copytree(collection, copy)
    (copy / "artist0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    code, out, err = cli("verify", a, b, "--model", model, "--background", copy, "--json")
    assert code == 0, err
    assert json.loads(out)["verifier"]["centred_on"]["background"] == {"images": 40, "source": str(copy),
                                                                         "skipped": 1}
    assert "1 images could not be read" in err and "Traceback" not in err
    assert (copy / "artist0" / "broken.png").read_bytes().endswith(b"truncated")
    few = tmp_path / "few"
    few.mkdir()
    for k in range(3):
        _painting(few / f"x{k}.png", k, k)
    code, _, err = cli("verify", a, b, "--model", model, "--background", few)
    assert code == 7 and "at least 20" in err and "Traceback" not in err
    assert "error: --background collection: 3 readable images" in err  # the library's `paths`, the CLI's flag


def test_cli_pairs_file_as_its_own_background(trained, collection, cli, tmp_path):
    import shutil

    model = trained[0] / "model"
    imgs = [p for k in range(3) for p in sorted((collection / f"artist{k}").glob("*.png"))]  # 24 distinct
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("a,b\n" + "".join(f"{x},{y}\n" for x, y in zip(imgs, imgs[1:] + imgs[:1], strict=True)))
    code, out, err = cli("verify", "--pairs", pairs, "--model", model, "--background", pairs, "--json")
    assert code == 0, err
    own = [json.loads(line)["score"] for line in out.splitlines()]
    # the same as a background folder holding exactly the pairs' images
    folder = tmp_path / "bg"
    folder.mkdir()
    for k, p in enumerate(imgs):
        shutil.copy(p, folder / f"{k:02d}.png")
    code, out, err = cli("verify", "--pairs", pairs, "--model", model, "--background", folder, "--json")
    assert code == 0, err
    assert own == pytest.approx([json.loads(line)["score"] for line in out.splitlines()], abs=1e-6)
    code, out, _ = cli("verify", "--pairs", pairs, "--model", model, "--no-adapt", "--json")
    assert own != pytest.approx([json.loads(line)["score"] for line in out.splitlines()], abs=1e-6)
    # without --background the pairs' own images are the background by default, and the record says so
    code, out, err = cli("verify", "--pairs", pairs, "--model", model, "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert own == pytest.approx([r["score"] for r in rows], abs=1e-6)


def test_cli_pairs_too_few_images_keep_the_training_mean(trained, collection, cli, tmp_path):
    model = trained[0] / "model"
    imgs = sorted((collection / "artist0").glob("*.png"))[:4]  # 4 distinct images: fewer than 20
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("a,b\n" + "".join(f"{x},{y}\n" for x, y in zip(imgs, imgs[1:], strict=False)))
    auto = cli("verify", "--pairs", pairs, "--model", model, "--json")
    plain = cli("verify", "--pairs", pairs, "--model", model, "--no-adapt", "--json")
    assert auto[0] == plain[0] == 0
    assert [json.loads(x)["score"] for x in auto[1].splitlines()] == [json.loads(x)["score"]
                                                                     for x in plain[1].splitlines()]


def test_cli_train_verifier_prints_its_evaluation_and_blend(cli, tmp_path):
    for a in range(5):  # enough images per artist for positives in the default 15 % validation split
        (tmp_path / "c" / f"artist{a}").mkdir(parents=True)
        for k in range(14):
            _painting(tmp_path / "c" / f"artist{a}" / f"p{k}.png", a, 10 * a + k, size=(64, 56))
    code, out, err = cli("paintings", "train-verifier", "--data", tmp_path / "c", "--out", tmp_path / "run",
                         "--val-artists", "2", "--patches", "1", "--epochs", "1", "--pairs-per-epoch", "64",
                         "--accelerator", "cpu")
    assert code == 0, err
    assert "Traceback" not in err and "verifier saved in" in out
    assert "chosen on validation artists (held out of training)" in out
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["config"]
    assert (config["pooling"], config["signed_sqrt"], config["centre"]) == ("stats", True, True)
