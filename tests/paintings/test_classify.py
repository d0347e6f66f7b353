"""Painting classifiers (artlens.paintings.classify): tiles, heads, staged unfreezing, Grad-CAM,
prediction with TTA, image conversions, saving / loading and blends. Tiny random models only."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from artlens.errors import InputNotFoundError, InvalidParameterError  # noqa: E402
from artlens.models.heads import ImageClassifier, TwoBranchHead  # noqa: E402
from artlens.paintings.classify import (  # noqa: E402
    BlendedClassifier,
    Classifier,
    ClassifierConfig,
    load_classifier,
    save_blend,
    save_classifier,
    softmax,
    stack_probabilities,
    top_predictions,
)
from artlens.paintings.features import crop_boxes, tile_boxes, tile_grid_size  # noqa: E402
from artlens.train.finetune import backbone_groups, fit_stacker, set_trainable  # noqa: E402

TINY = "test_efficientnet"  # timm's tiny test model: random weights, no download; input 160 px


def _tiny_backbone():
    from artlens.models.backbones import create_backbone

    torch.manual_seed(0)
    return create_backbone(TINY, pretrained=False)


@pytest.fixture(scope="module")
def clf():
    backbone, prep = _tiny_backbone()
    cfg = ClassifierConfig(classes=["a", "b", "c"], backbone=TINY, pretrained_backbone=False, n_tiles=3,
                           max_side=400, hidden=16, attention_dim=8)
    torch.manual_seed(1)
    return Classifier(cfg, backbone=backbone, preprocess=prep)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "stripes.png"
    rng = np.random.default_rng(0)
    a = np.zeros((180, 230, 3), np.uint8)
    a[:, ::8] = (200, 40, 40)
    a[90:, :, 2] = 180
    Image.fromarray(np.clip(a + rng.integers(0, 30, a.shape), 0, 255).astype(np.uint8)).save(path)
    return path


# -- tiles ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("w,h", [(500, 300), (224, 224), (1000, 700), (225, 900)])
def test_all_tiles_cover_the_image_at_full_resolution(w, h):
    boxes = tile_boxes(w, h, 224)
    covered = np.zeros((h, w), bool)
    for left, top, right, bottom in boxes:
        assert (right - left, bottom - top) == (224, 224)  # full resolution: no resizing of tiles
        assert 0 <= left and 0 <= top and right <= w and bottom <= h
        covered[top:bottom, left:right] = True
    assert covered.all()
    assert len(boxes) == int(np.ceil(w / 224) * np.ceil(h / 224))


def test_grid_tiles_are_the_cached_ones_and_stay_inside():
    from artlens.paintings.features import patch_boxes

    assert tile_boxes(800, 600, 224, 8) == patch_boxes(800, 600, 224, 8)
    # 4 x 3 grid of 12 tiles covers an 800 x 600 image (the rasta median size)
    covered = np.zeros((600, 800), bool)
    for left, top, right, bottom in tile_boxes(800, 600, 224, 12):
        covered[top:bottom, left:right] = True
    assert covered.all()
    with pytest.raises(InvalidParameterError):
        tile_boxes(100, 300, 224)


def test_tile_grid_size_caps_the_long_side_and_enlarges_small_images():
    assert tile_grid_size(800, 600, 1024, 224) == (800, 600)  # its own resolution
    assert tile_grid_size(4000, 3000, 1024, 224) == (1024, 768)
    assert tile_grid_size(128, 100, 1024, 224) == (287, 224)  # enlarged to hold one tile


# -- heads ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["two_branch", "global", "patch"])
@pytest.mark.parametrize("pooling", ["attention", "mean"])
def test_head_variants_shapes_and_pooling_weights(variant, pooling):
    torch.manual_seed(0)
    head = TwoBranchHead(12, 4, variant=variant, hidden=8, pooling=pooling, attention_dim=4).eval()
    g, t = torch.randn(5, 12), torch.randn(5, 6, 12)
    assert head(g, t).shape == (5, 4)
    if variant != "global":
        w = head.tile_weights(t)
        assert torch.allclose(w.sum(1), torch.ones(5))
        mask = torch.ones(5, 6, dtype=torch.bool)
        mask[:, 3:] = False
        wm = head.tile_weights(t, mask)
        assert torch.all(wm[:, 3:] == 0) and torch.allclose(wm.sum(1), torch.ones(5))
        if pooling == "mean":
            assert torch.allclose(w, torch.full((5, 6), 1 / 6))
        with pytest.raises(InvalidParameterError):
            head(g, None)
    # any number of tiles
    if variant != "global":
        assert head(g, torch.randn(5, 2, 12)).shape == (5, 4)


def test_head_standardises_with_training_statistics():
    head = TwoBranchHead(3, 2, hidden=0, variant="global")
    g = np.array([[1.0, 10, 100], [3, 30, 300]], np.float32)
    head.set_normalisation(g, None)
    assert np.allclose(head.g_mean.numpy(), [2, 20, 200])
    assert np.allclose(head.g_std.numpy(), np.std(g, axis=0, ddof=1))


def test_bad_head_parameters():
    with pytest.raises(InvalidParameterError, match="variant"):
        TwoBranchHead(8, 3, variant="both")
    with pytest.raises(InvalidParameterError, match="pooling"):
        TwoBranchHead(8, 3, pooling="max")
    with pytest.raises(InvalidParameterError, match="2 classes"):
        TwoBranchHead(8, 1)


# -- staged unfreezing ---------------------------------------------------------------------------------


def test_staged_unfreezing_sets_requires_grad_as_scheduled():
    backbone, _ = _tiny_backbone()
    groups = backbone_groups(backbone)
    assert len(groups) >= 3 and groups[0][0].startswith("conv_stem")
    assert any(n.startswith("conv_head") for n in groups[-1])
    for n_groups in range(len(groups) + 1):
        names = set(set_trainable(backbone, n_groups))
        expected = {n for g in groups[len(groups) - n_groups:] for n in g} if n_groups else set()
        assert names == expected
        assert {n for n, p in backbone.named_parameters() if p.requires_grad} == expected
    assert len(set_trainable(backbone, -1)) == sum(1 for _ in backbone.parameters())


def test_frozen_batchnorm_stays_in_eval_mode_while_training():
    backbone, _ = _tiny_backbone()
    model = ImageClassifier(backbone, TwoBranchHead(backbone.num_features, 3, hidden=8))
    set_trainable(backbone, 1)
    model.train()
    bns = [(name, m) for name, m in backbone.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    last = set(backbone_groups(backbone)[-1])
    for name, m in bns:
        trainable = any(f"{name}.{p}" in last for p, _ in m.named_parameters())
        assert m.training == trainable
    assert model.head.training


def test_image_classifier_end_to_end_shapes():
    backbone, _ = _tiny_backbone()
    model = ImageClassifier(backbone, TwoBranchHead(backbone.num_features, 3, hidden=8)).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1 + 2, 3, 64, 64)).shape == (2, 3)


# -- prediction, TTA, Grad-CAM -----------------------------------------------------------------------------


def test_predict_top_k_sorted_and_tta(clf, image):
    [row] = clf.predict([image], top_k=2)
    probs = [p["probability"] for p in row["predictions"]]
    assert len(probs) == 2 and probs[0] >= probs[1] and 0 < sum(probs) <= 1 + 1e-6
    ok, p_plain, _ = clf.predict_proba([image])
    ok2, p_tta, _ = clf.predict_proba([image], tta=True)
    assert ok == ok2 == [str(image)]
    assert np.allclose(p_tta.sum(1), 1) and not np.allclose(p_plain, p_tta)
    ok3, p_all, _ = clf.predict_proba([image], tiles="all")
    assert p_all.shape == (1, 3) and np.isclose(p_all.sum(), 1)


@pytest.mark.parametrize("w,h", [(230, 180), (1000, 700), (300, 1200)])
def test_crop_boxes_stay_inside_cover_a_third_or_more_and_are_the_same_fractions_of_every_image(w, h):
    crops = crop_boxes(w, h, 8)
    assert [m for _, m in crops] == [False, True] * 4  # every second crop mirrored
    for (left, top, right, bottom), _ in crops:
        assert 0 <= left < right <= w and 0 <= top < bottom <= h
        assert 0.33 <= (right - left) * (bottom - top) / (w * h) <= 1.0
    assert len({box for box, _ in crops}) == 8
    double = crop_boxes(2 * w, 2 * h, 8)
    assert all(abs(2 * a - b) <= 2 for (box, _), (box2, _) in zip(crops, double, strict=True)
               for a, b in zip(box, box2, strict=True))
    assert crop_boxes(w, h, 3) == crops[:3]  # fixed draws: the first crops do not depend on how many


def test_tta_averages_the_global_and_mirrored_views_with_the_crops(clf, image):
    backbone, prep = _tiny_backbone()
    torch.manual_seed(1)
    c3 = Classifier(ClassifierConfig(**{**clf.config.__dict__, "crops": 3}), backbone=backbone, preprocess=prep)
    c3.head.load_state_dict(clf.head.state_dict())
    rgb = Image.open(image).convert("RGB")
    views = c3.extractor("crops", 3).views(rgb)
    assert views.shape[0] == 4 and np.allclose(views[0], c3.extractor("grid", 0).views(rgb)[0])
    f = c3.extractor("grid").extract([image])
    m = c3.extractor("mirror", 0).extract([image])
    c = c3.extractor("crops", 3).extract([image])
    plain = softmax(c3.logits(f.global_, f.patches))
    flipped = softmax(c3.logits(m.global_, f.patches))
    crops = np.mean([softmax(c3.logits(c.patches[:, k], f.patches)) for k in range(3)], axis=0)
    _, p, _ = c3.predict_proba([image], tta=True)
    assert np.allclose(p, 0.5 * (0.5 * (plain + flipped) + crops), atol=1e-5)
    _, p_old, _ = clf.predict_proba([image], tta=True)  # the same head, no crops: plain and mirror only
    assert np.allclose(p_old, 0.5 * (plain + flipped), atol=1e-5) and not np.allclose(p, p_old)
    _, p_all, _ = c3.predict_proba([image], tta=True, tiles="all")
    assert p_all.shape == (1, 3) and np.isclose(p_all.sum(), 1)
    _, p_blend, _ = BlendedClassifier([c3]).predict_proba([image], tta=True)
    assert np.allclose(p_blend, p, atol=1e-6)


def test_predict_reports_unreadable_images_in_order(clf, image, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    rows = clf.predict([bad, image])
    assert "error" in rows[0] and rows[1]["predictions"]


def test_grad_cam_maps_have_the_input_size(clf, image):
    cam = clf.grad_cam(image)
    h, w = 180, 230
    assert cam.image.shape == (h, w, 3)
    assert cam.global_map.shape == (h, w) and cam.tile_map.shape == (h, w)
    assert 0 <= cam.global_map.min() and cam.global_map.max() <= 1 + 1e-6
    assert len(cam.tiles) == 3 and all(t["map"].shape == (160, 160) for t in cam.tiles)
    assert np.isclose(sum(t["weight"] for t in cam.tiles), 1)
    assert cam.label in clf.classes and 0 < cam.probability < 1
    # a named class, and every covering tile
    cam_b = clf.grad_cam(image, "b", n_tiles="all")
    assert cam_b.label == "b" and len(cam_b.tiles) == 4  # 2 x 2 tiles of 160 px cover 230 x 180
    with pytest.raises(InvalidParameterError, match="unknown class"):
        clf.grad_cam(image, "zebra")


def test_grad_cam_of_a_large_image_is_on_the_capped_grid(clf, tmp_path):
    path = tmp_path / "large.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (500, 800, 3), dtype=np.uint8)).save(path)
    cam = clf.grad_cam(path)
    assert cam.global_map.shape == (250, 400)  # long side capped at max_side = 400 px


@pytest.mark.parametrize("mode,notice", [("L", "grayscale"), ("CMYK", "CMYK"), ("I;16", "16-bit")])
def test_grayscale_cmyk_and_16_bit_inputs_are_converted_with_a_notice(clf, tmp_path, mode, notice):
    rng = np.random.default_rng(2)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65535, (170, 190), dtype=np.uint16))
        path = tmp_path / "plate16.png"
    elif mode == "CMYK":
        img = Image.fromarray(rng.integers(0, 255, (170, 190, 4), dtype=np.uint8), "CMYK")
        path = tmp_path / "print.jpg"
    else:
        img = Image.fromarray(rng.integers(0, 255, (170, 190), dtype=np.uint8), "L")
        path = tmp_path / "gray.png"
    img.save(path)
    with pytest.warns(UserWarning, match=notice):
        [row] = clf.predict([path])
    assert len(row["predictions"]) == 3


def test_top_predictions():
    out = top_predictions(np.array([0.2, 0.5, 0.3]), ["x", "y", "z"], 2)
    assert out == [{"label": "y", "probability": 0.5}, {"label": "z", "probability": 0.3}]


# -- saving, loading, blends ---------------------------------------------------------------------------------


def test_save_and_load_round_trip_without_pickles(clf, image, tmp_path):
    folder = save_classifier(clf.head, clf.config, tmp_path / "model", backbone=clf.backbone)
    assert sorted(p.name for p in folder.iterdir()) == ["backbone.safetensors", "config.json", "head.safetensors"]
    loaded = load_classifier(tmp_path / "model")
    assert loaded.classes == clf.classes
    _, p0, _ = clf.predict_proba([image])
    _, p1, _ = loaded.predict_proba([image])
    assert np.allclose(p0, p1, atol=1e-5)
    with pytest.raises(InputNotFoundError):
        load_classifier(tmp_path / "nothing")


def test_stacker_learns_which_member_to_trust():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    good = np.full((300, 3), 0.1)
    good[np.arange(300), y] = 0.8
    noise = rng.dirichlet(np.ones(3), 300)
    st = fit_stacker([noise, good], y)
    p = stack_probabilities(st, [noise, good])
    assert np.allclose(p.sum(1), 1) and (p.argmax(1) == y).mean() > 0.95


def test_blends_average_and_stacked_round_trip(clf, image, tmp_path):
    backbone, prep = _tiny_backbone()
    torch.manual_seed(5)
    other = Classifier(ClassifierConfig(**{**clf.config.__dict__, "variant": "global", "n_tiles": 0}),
                       backbone=backbone, preprocess=prep)
    a = save_classifier(clf.head, clf.config, tmp_path / "a", backbone=clf.backbone)
    b = save_classifier(other.head, other.config, tmp_path / "b", backbone=other.backbone)
    blend = save_blend(tmp_path / "blend", [a, b], method="average", weights=[3, 1])
    loaded = load_classifier(blend)
    assert isinstance(loaded, BlendedClassifier) and loaded.classes == clf.classes
    _, pa, _ = clf.predict_proba([image])
    _, pb, _ = other.predict_proba([image])
    _, pblend, _ = loaded.predict_proba([image])
    assert np.allclose(pblend, 0.75 * pa + 0.25 * pb, atol=1e-5)
    st = {"weight": np.zeros((3, 6), np.float32), "bias": np.array([0, 0, 5], np.float32)}
    stacked = load_classifier(save_blend(tmp_path / "stacked", [a, b], method="stacked", stacker=st))
    [row] = stacked.predict([image], top_k=1)
    assert row["predictions"][0]["label"] == "c"
    with pytest.raises(InvalidParameterError, match="same classes"):
        BlendedClassifier([clf, Classifier(ClassifierConfig(**{**clf.config.__dict__, "classes": ["x", "y", "z"]}),
                                           backbone=backbone, preprocess=prep)])


# -- "stats" feature pooling ------------------------------------------------------------------------------


def test_stats_pooling_is_channel_mean_and_std_of_the_last_stages():
    from artlens.paintings.features import feature_levels, forward_pooled

    backbone, _ = _tiny_backbone()
    levels = feature_levels(backbone, "stats")
    n = len(backbone.blocks)
    assert levels == [f"blocks.{i}" for i in range(n - 4, n)]
    assert feature_levels(backbone, "avg") == []
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        pooled, maps = forward_pooled(backbone, x, "stats", levels)
        h = backbone.bn1(backbone.conv_stem(x))
        outs = []
        for k, block in enumerate(backbone.blocks):
            h = block(h)
            if k >= n - 4:
                outs.append(h)
    expected = torch.cat([torch.cat([o.mean((2, 3)), o.flatten(2).std(2, correction=0)], 1) for o in outs], 1)
    assert torch.allclose(pooled, expected, atol=1e-5)
    assert [m.shape[1] for m in maps] == [o.shape[1] for o in outs]
    with pytest.raises(InvalidParameterError):
        feature_levels(backbone, "max")


def test_stats_classifier_predicts_and_explains(image, tmp_path):
    backbone, prep = _tiny_backbone()
    cfg = ClassifierConfig(classes=["a", "b"], backbone=TINY, pretrained_backbone=False, n_tiles=2, max_side=400,
                           hidden=8, feature_pooling="stats")
    clf = Classifier(cfg, backbone=backbone, preprocess=prep)
    chans = sum(backbone.blocks[int(name.split(".")[1])][-1].conv_pwl.out_channels for name in cfg.feature_levels)
    assert cfg.feature_dim == 2 * chans == clf.extractor("grid").dim
    assert clf.extractor("grid").config()["pooling"] == "stats"
    [row] = clf.predict([image], tta=True)
    assert len(row["predictions"]) == 2
    cam = clf.grad_cam(image)
    assert cam.global_map.shape == (180, 230) and cam.tile_map.shape == (180, 230)
    assert cam.global_map.max() == pytest.approx(1.0, abs=0.01)  # resized from the 160-px view
    loaded = load_classifier(save_classifier(clf.head, cfg, tmp_path / "m", backbone=backbone))
    assert loaded.config.feature_levels == cfg.feature_levels
    assert np.allclose(loaded.predict_proba([image])[1], clf.predict_proba([image])[1], atol=1e-5)
