"""Siamese GCN / GAT encoders: registry, shared weights, edge weights, true attention, contrastive loss,
checkpoints and the shipped default models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from artlens.beneath.compare import DEFAULT_MODEL, load_beneath_model
from artlens.errors import InvalidParameterError
from artlens.models import create_model, list_models, load_checkpoint, pretrained_path, save_checkpoint
from artlens.models.graph import NODE_FEATURES, BeneathEncoder
from artlens.models.losses import contrastive_loss


def _graph(n: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A ring of ``n`` nodes with chords, both directions, random features and weights."""
    g = torch.Generator().manual_seed(seed)
    src = torch.arange(n)
    pairs = torch.cat([torch.stack([src, (src + 1) % n]), torch.stack([src, (src + 3) % n])], dim=1)
    ei = torch.cat([pairs, pairs.flip(0)], dim=1)
    return torch.randn(n, 23, generator=g), ei, torch.rand(ei.shape[1], generator=g) * 0.9 + 0.1


def test_registered_models() -> None:
    assert {"beneath_gat", "beneath_gcn", "beneath_gcn_test", "beneath_gat_test"} <= set(list_models("beneath_*"))
    assert create_model("beneath_gat").conv_kind == "gat"
    assert create_model("beneath_gcn_test").conv_kind == "gcn"
    with pytest.raises(InvalidParameterError, match="unknown graph convolution"):
        BeneathEncoder(conv="sage")


@pytest.mark.parametrize("name", ["beneath_gat_test", "beneath_gat"])
def test_gat_attention_sums_to_one_over_incoming_edges(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    x, ei, w = _graph()
    z, attentions = model.embed(x, ei, w, return_attention=True)
    assert len(attentions) == len(model.convs)
    for edge_index, alpha in attentions:
        heads = alpha.shape[1]
        assert alpha.shape == (edge_index.shape[1], heads) and (alpha >= 0).all()
        # softmax over the incoming edges of each target node (self-loop included), per head
        per_target = torch.zeros(x.shape[0], heads).index_add_(0, edge_index[1], alpha)
        torch.testing.assert_close(per_target, torch.ones_like(per_target))
        assert (edge_index[0] == edge_index[1]).sum() == x.shape[0]  # one self-loop per node
    torch.testing.assert_close(z.norm(dim=1), torch.ones(x.shape[0]))


@pytest.mark.parametrize("name", ["beneath_gcn_test", "beneath_gat_test"])
def test_edge_weights_change_the_embedding(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    x, ei, w = _graph()
    with torch.no_grad():
        a = model.embed(x, ei, w)
        b = model.embed(x, ei, torch.flip(w, [0]))
    assert (a - b).abs().max() > 1e-4


def test_siamese_shared_weights_give_zero_distance_for_identical_views() -> None:
    torch.manual_seed(0)
    model = create_model("beneath_gcn_test").eval()
    x, ei, w = _graph()
    with torch.no_grad():
        zv, zo = model.embed(x, ei, w), model.embed(x, ei, w)
        d = model.distance(zv, zo)
        d2 = model.distance(zv, model.embed(x + torch.randn_like(x), ei, w))
    assert d.abs().max() < 1e-6 and d2.mean() > 0.01


def test_encoder_input_matches_the_graph_features() -> None:
    # models/ may not import beneath/, so the encoder's default input width is a constant checked here
    from artlens.beneath.graphs import FEATURE_NAMES

    assert NODE_FEATURES == len(FEATURE_NAMES) == BeneathEncoder().in_dim


def test_contrastive_loss_by_hand() -> None:
    d = torch.tensor([0.2, 0.5, 1.5])
    same = torch.tensor([1.0, 0.0, 0.0])
    # 0.2^2, (1 - 0.5)^2, 0 (beyond the margin)
    loss = contrastive_loss(d, None, same, margin=1.0, distance="precomputed")
    assert float(loss) == pytest.approx((0.04 + 0.25 + 0.0) / 3)
    assert float(contrastive_loss(d, None, same, margin=1.0, distance="precomputed",
                                  weight=torch.tensor([1.0, 0.0, 0.0]))) == pytest.approx(0.04)


def test_checkpoint_round_trip_with_feature_scaling(tmp_path) -> None:
    torch.manual_seed(0)
    model = create_model("beneath_gat_test")
    model.set_feature_scaling(torch.arange(23.0), torch.full((23,), 2.0))
    save_checkpoint(model, "beneath_gat_test", {}, tmp_path / "m")
    loaded, config = load_checkpoint(tmp_path / "m")
    x, ei, w = _graph()
    with torch.no_grad():
        torch.testing.assert_close(loaded.embed(x, ei, w), model.eval().embed(x, ei, w))
    assert float(loaded.feature_std[0]) == 2.0 and config["model"] == "beneath_gat_test"


@pytest.mark.parametrize("method", ["gat", "gcn"])
def test_shipped_default_models_are_small_and_load(method: str) -> None:
    path = pretrained_path(DEFAULT_MODEL[method])
    assert path is not None, f"the default {method} model must be shipped in artlens/beneath/weights"
    assert (path / "model.safetensors").stat().st_size < 2_000_000
    assert (path.parent / "beneath_default" / "MODEL_CARD.md").is_file()
    config = json.loads((path / "config.json").read_text())
    assert config["graphs"]["segmentation"] in ("stacked", "visible", "other")
    model, cfg = load_beneath_model(None, method)
    assert model.conv_kind == method and cfg["sha256"]
    assert not np.allclose(model.feature_std.numpy(), 1.0)  # trained feature scaling is stored
    with pytest.raises(InvalidParameterError, match="use method") as err:  # the CLI: --method
        load_beneath_model(path, "gcn" if method == "gat" else "gat")
    assert err.value.param == "method"
