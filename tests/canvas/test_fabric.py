"""Tests of artlens.canvas.fabric (aggregation, bootstrap CI, embed-once) and artlens.models.siamese."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from artlens.canvas.clusters import cluster_plates
from artlens.canvas.collection import combine_evidence, density_bayes_factor
from artlens.canvas.fabric import (
    FabricModel,
    aggregate,
    aggregate_with_ci,
    canvas_embeddings,
    compare_canvases,
    pair_logits,
)
from artlens.errors import InvalidParameterError
from artlens.models import create_model, list_models
from artlens.models.checkpoint import save_checkpoint

PPC = 24.0  # the tiny test model sees 1 cm patches at 24 px/cm


def test_aggregation_on_hand_made_logits():
    assert aggregate([1.0, 2.0, 3.0]) == 2.0
    assert aggregate([1.0, 2.0, 3.0], "median") == 2.0
    # trimmed mean drops the extremes: 20 % of 5 values = one at each end
    assert aggregate([-50.0, 1.0, 2.0, 3.0, 50.0], "trimmed", trim=0.2) == 2.0
    assert aggregate([-50.0, 1.0, 2.0, 3.0, 80.0], "mean") == pytest.approx(7.2)
    assert aggregate(np.array([[1.0, 2.0], [3.0, 4.0]])) == 2.5  # a matrix is pooled over all pairs
    with pytest.raises(InvalidParameterError, match="valid"):
        aggregate([1.0], "max")
    with pytest.raises(InvalidParameterError):
        aggregate([])
    with pytest.raises(InvalidParameterError):
        aggregate([1.0, np.nan])


def test_bootstrap_ci_contains_the_mean_and_narrows_with_more_pairs():
    rng = np.random.default_rng(0)
    widths = []
    for n in (20, 2000):
        x = rng.normal(1.5, 1.0, n)
        r = aggregate_with_ci(x, n_boot=500, seed=1)
        assert r["pairs"] == n and r["aggregation"] == "mean"
        assert r["ci95"][0] < r["logit"] < r["ci95"][1]
        assert r["logit"] == pytest.approx(x.mean())
        widths.append(r["ci95"][1] - r["ci95"][0])
    assert widths[1] < widths[0] / 5  # ~ 1/sqrt(n): a factor 10
    # seeded: the same interval twice
    x = rng.normal(size=50)
    assert aggregate_with_ci(x, "trimmed", seed=3)["ci95"] == aggregate_with_ci(x, "trimmed", seed=3)["ci95"]
    # a matrix is resampled by patches, which is wider than pretending the pairs were independent
    m = rng.normal(size=(8, 1))[:, [0] * 8] + 0.1 * rng.normal(size=(8, 8))  # rows share a patch effect
    by_patch = aggregate_with_ci(m, n_boot=500)
    by_pair = aggregate_with_ci(m.ravel(), n_boot=500)
    assert by_patch["pairs"] == 64
    assert np.diff(by_patch["ci95"])[0] > 2 * np.diff(by_pair["ci95"])[0]


def test_siamese_models_are_registered_and_symmetric():
    assert {"siamese_fabric", "siamese_fabric_test"} <= set(list_models("siamese*"))
    m = create_model("siamese_fabric_test").eval()
    a, b = torch.rand(4, 1, 24, 24), torch.rand(4, 1, 24, 24)
    with torch.inference_mode():
        assert torch.allclose(m(a, b), m(b, a), atol=1e-6)
        e = m.embed(a)
        assert e.shape == (4, 8) and torch.allclose(e.norm(dim=1), torch.ones(4), atol=1e-5)
    big = create_model("siamese_fabric", input_size=40, backbone="timm:resnet18", embed_dim=16)
    assert big(torch.rand(2, 1, 40, 40), torch.rand(2, 1, 40, 40)).shape == (2,)
    with pytest.raises(ValueError, match="backbone"):
        create_model("siamese_fabric_test", backbone="vgg")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> FabricModel:
    torch.manual_seed(0)
    folder = save_checkpoint(create_model("siamese_fabric_test"), "siamese_fabric_test", {"input_size": 24},
                             tmp_path_factory.mktemp("m") / "model",
                             extra={"input_px_per_cm": PPC, "patch_cm": 1.0,
                                    "calibration": {"a": 2.0, "b": -0.5, "fitted": True},
                                    "aggregation": {"method": "mean", "trim": 0.1, "n_patches": 6}})
    return FabricModel.load(folder)


def test_each_canvas_is_embedded_once(tiny_model):
    """Scoring all pairs of 4 canvases runs the encoder 4 times, never per pair."""
    rng = np.random.default_rng(0)
    plates = [rng.random((60, 60)).astype(np.float32) for _ in range(4)]
    calls = []
    enc = tiny_model.model.encoder
    handle = enc.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[0]))
    try:
        embs = [canvas_embeddings(p, tiny_model, 6, seed=i, px_per_cm=30.0) for i, p in enumerate(plates)]
        n_after_embedding = len(calls)
        results = [compare_canvases(embs[i], embs[j], tiny_model, n_boot=100)
                   for i in range(4) for j in range(i + 1, 4)]
    finally:
        handle.remove()
    assert n_after_embedding == 4 and sum(calls) == 24  # one batch of 6 patches per canvas
    assert len(calls) == 4  # the 6 comparisons used the head only
    r = results[0]
    assert r["pairs"] == 36 and r["patches"] == [6, 6] and r["aggregation"] == "mean" and r["calibrated"]
    assert r["ci95"][0] <= r["score"] <= r["ci95"][1]
    assert r["score"] == pytest.approx(1 / (1 + np.exp(-(2.0 * r["logit"] - 0.5))), abs=1e-5)
    logits = pair_logits(embs[0], embs[1], tiny_model)
    assert logits.shape == (6, 6) and aggregate(logits) == pytest.approx(r["logit"], abs=1e-5)


def test_evidence_combination_and_clusters():
    assert density_bayes_factor(None) == 1.0 and density_bayes_factor(0.9) == 1.0
    assert combine_evidence(None, None) == 0.5  # no evidence: the prior
    assert combine_evidence(0.001, None) == pytest.approx(0.9816, abs=1e-3)  # Sellke et al. bound
    assert combine_evidence(0.8, -3.0) == pytest.approx(1 / (1 + np.exp(3.0)))
    assert combine_evidence(0.001, 1.0) > combine_evidence(0.001, None) > combine_evidence(0.5, None)
    p = np.array([[1, .9, .2, .1], [.9, 1, .6, .1], [.2, .6, 1, .1], [.1, .1, .1, 1]])
    assert cluster_plates(p, 0.5, "single") == [0, 0, 0, 1]  # chained through the 0.6 pair
    assert cluster_plates(p, 0.5, "average") == [0, 0, 1, 2]  # mean of 0.2 and 0.6 is not above 0.5
    assert cluster_plates(np.full((2, 2), 0.5), 0.5) == [0, 1]  # strictly above the threshold
    assert cluster_plates(p, 0.5, "complete") == [0, 0, 1, 2]  # plate 3 is below 0.5 with plate 1


def test_default_clusters_need_every_pair_above_the_threshold():
    """The defaults (complete linkage at 0.7): a plate joins a cluster only when every pair with its members is
    above 0.7; average linkage at 0.5 (the default before) chained a weakly linked plate in."""
    from artlens.canvas.clusters import CLUSTER_LINKAGE, CLUSTER_THRESHOLD

    assert (CLUSTER_LINKAGE, CLUSTER_THRESHOLD) == ("complete", 0.7)
    p = np.array([[1, .88, .6], [.88, 1, .49], [.6, .49, 1]])  # the demo's three plates
    assert cluster_plates(p) == [0, 0, 1]
    assert cluster_plates(p, 0.5, "average") == [0, 0, 0]
    with pytest.raises(InvalidParameterError, match="linkage"):
        cluster_plates(p, linkage="ward")
