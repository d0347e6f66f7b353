"""Heatmaps: the robust regression baseline, the learned maps of the shipped model, files written."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from artlens.beneath.compare import load_beneath_model
from artlens.beneath.graphs import build_graphs, normalise_other
from artlens.beneath.heatmaps import (
    HEATMAPS,
    attention_map,
    dark_map,
    embedding_distance,
    fit_other_from_visible,
    model_heatmaps,
    received_attention,
    residual_map,
    save_heatmap,
)
from artlens.errors import InvalidParameterError
from artlens.models import create_model
from artlens.synth.hidden import builtin_pigments, make_hidden_scene


@pytest.fixture(scope="module")
def scene():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_hidden_scene((96, 96), kind="mixed", seed=3, pigments=builtin_pigments())


def test_robust_polynomial_regression_ignores_outliers() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.random((64, 64, 3)).astype(np.float32)
    truth = 0.1 + 0.5 * rgb[..., 0] - 0.2 * rgb[..., 1] + 0.3 * rgb[..., 2] ** 2
    other = truth.copy()
    hidden = rng.random((64, 64)) < 0.1
    other[hidden] -= 0.4  # hidden content: darker than the colours explain
    pred, info = fit_other_from_visible(rgb, other, model="polynomial")
    np.testing.assert_allclose(pred, truth, atol=2e-3)  # ordinary least squares would be pulled down by ~0.04
    assert info["degree"] == 2 and len(info["coefficients"]) == 10
    res = residual_map(rgb, other, model="polynomial")
    assert res[hidden].min() > 0.3 and np.abs(res[~hidden]).max() < 0.01
    with pytest.raises(InvalidParameterError):
        fit_other_from_visible(rgb, other, model="polynomial", degree=3)
    with pytest.raises(InvalidParameterError):
        fit_other_from_visible(rgb, other, model="forest")


def test_cluster_regression_follows_each_paint() -> None:
    """Twelve flat paints whose IR owes nothing to their colour, 15 % hidden pixels in each: the median of
    each colour cluster recovers every paint's IR; the residual is the hidden content."""
    rng = np.random.default_rng(1)
    colours = rng.random((12, 3))
    ir_of_paint = rng.uniform(0.3, 0.95, 12)
    paint = np.repeat(np.arange(12), 64 * 64 // 12 + 1)[: 64 * 64].reshape(64, 64)
    rgb = colours[paint] + 0.005 * rng.standard_normal((64, 64, 3))
    other = ir_of_paint[paint].copy()
    hidden = rng.random((64, 64)) < 0.15
    other[hidden] -= 0.15
    pred, info = fit_other_from_visible(rgb, other, clusters=16)
    np.testing.assert_allclose(pred, ir_of_paint[paint], atol=1e-6)
    assert info["model"] == "clusters" and info["clusters"] <= 16
    res = residual_map(rgb, other, clusters=16)
    np.testing.assert_allclose(res[hidden], 0.15, atol=1e-5)
    poly = residual_map(rgb, other, model="polynomial")  # one formula of colour cannot follow the paints
    assert np.abs(poly[~hidden]).mean() > 0.03 > 1e-3 > np.abs(res[~hidden]).mean()


def test_residual_beats_dark_on_a_scene_with_decoys(scene) -> None:
    oth = normalise_other(scene.ir)
    ap_res = average_precision_score(scene.mask.ravel(), residual_map(scene.visible_rgb, oth).ravel())
    ap_dark = average_precision_score(scene.mask.ravel(), dark_map(oth).ravel())
    # reference values on this scene (96 px, built-in pigments, seed 3): residual 0.986, dark 0.475
    assert ap_res > 0.8 and ap_res > ap_dark + 0.2


def test_shipped_gat_maps_find_hidden_content(scene) -> None:
    model, config = load_beneath_model(None, "gat")
    g = build_graphs(scene.visible_rgb, scene.ir, region_px=config["graphs"]["region_px"],
                     segmentation=config["graphs"]["segmentation"])
    maps = model_heatmaps(model, g)
    assert set(maps) >= {"embedding_distance", "attention"}
    for v in maps.values():
        assert v.shape == (g.num_nodes,) and np.isfinite(v).all()
    dist = embedding_distance(model, g)
    assert dist.shape == scene.mask.shape and dist.min() >= 0 and dist.max() <= 2.0 + 1e-5
    prevalence = scene.mask.mean()
    assert average_precision_score(scene.mask.ravel(), dist.ravel()) > 3 * prevalence
    att = attention_map(model, g)
    assert att.shape == scene.mask.shape
    with pytest.raises(InvalidParameterError, match="GAT"):
        attention_map(create_model("beneath_gcn_test"), g)


def test_received_attention_counts_sources_without_self_loops() -> None:
    import torch

    ei = torch.tensor([[0, 1, 2, 0, 1, 2], [1, 2, 1, 0, 1, 2]])  # last three: self-loops
    alpha = torch.tensor([[0.5, 0.7], [0.2, 0.4], [0.3, 0.1], [1.0, 1.0], [0.5, 0.3], [0.5, 0.5]])
    got = received_attention([(ei, alpha)], 3)
    np.testing.assert_allclose(got, [0.6, 0.3, 0.2], atol=1e-6)


def test_save_heatmap_writes_raw_map_and_overlay(tmp_path, scene) -> None:
    heat = np.random.default_rng(0).random(scene.mask.shape).astype(np.float64)
    files = save_heatmap(tmp_path, "residual", heat, scene.visible_rgb)
    raw = np.load(files["npy"])
    assert raw.dtype == np.float32 and raw.shape == scene.mask.shape
    assert files["png"].stat().st_size > 1000
    assert set(HEATMAPS) == {"pixel", "embedding_distance", "attention", "residual", "dark"}
