"""Superpixel graphs: regions, node features, edges and their weights, on tiny images."""

from __future__ import annotations

import numpy as np
import pytest

from artlens.beneath.graphs import (
    FEATURE_NAMES,
    build_graphs,
    edge_weights,
    normalise_other,
    region_adjacency,
    region_stats,
    segment,
    view_block,
)
from artlens.errors import InvalidImageError, InvalidParameterError

H = W = 64


def _pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two visible paints (left / right), an other view that follows them, plus a 3 px dark line
    (rows 20-22) seen only in the other view."""
    rng = np.random.default_rng(seed)
    vis = np.full((H, W, 3), 0.6, np.float32)
    vis[:, W // 2 :] = [0.3, 0.5, 0.7]
    vis += 0.01 * rng.standard_normal(vis.shape).astype(np.float32)
    oth = np.full((H, W), 0.8, np.float32)
    oth[:, W // 2 :] = 0.6
    line = np.zeros((H, W), bool)
    line[20:23] = True
    oth[line] = 0.1
    return np.clip(vis, 0, 1), oth, line


def test_region_count_labels_and_features() -> None:
    vis, oth, _ = _pair()
    g = build_graphs(vis, oth, region_px=32, other_is_normalised=True)
    n = g.num_nodes
    assert 0.6 * H * W / 32 <= n <= 1.4 * H * W / 32  # SLIC gets H W / region_px seeds
    assert g.labels.shape == (H, W) and g.labels.dtype == np.int32
    assert set(np.unique(g.labels)) == set(range(n))  # consecutive, none missing
    assert g.areas.sum() == H * W
    for graph in (g.visible, g.other):
        assert graph.x.shape == (n, len(FEATURE_NAMES)) == (n, 23)
        assert graph.x.dtype == np.float32 and np.isfinite(graph.x).all()
    # the context block (visible colours, texture, centroid, area) is identical in both graphs
    np.testing.assert_array_equal(g.visible.x[:, 6:], g.other.x[:, 6:])
    # view block of the other graph: statistics of the other view in each region
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    expected = region_stats(g.labels, oth)
    np.testing.assert_allclose(g.other.x[:, :4], expected, atol=1e-5)
    assert (g.other.x[:, col["view_min"]] <= g.other.x[:, col["view_mean"]] + 1e-6).all()
    assert (g.other.x[:, col["view_mean"]] <= g.other.x[:, col["view_max"]] + 1e-6).all()
    # centroids as fractions of the image, colours of the left paint on the left
    left = g.centroids[:, 1] < W / 2 - 6
    assert 0 <= g.other.x[:, col["centroid_col"]].min() and g.other.x[:, col["centroid_col"]].max() <= 1
    np.testing.assert_allclose(g.visible.x[left, col["r_mean"]], 0.6, atol=0.02)
    # the visible graph's view block is the other view predicted from the colours: the two paints, no line
    np.testing.assert_allclose(g.visible.x[left, col["view_mean"]].mean(), 0.8, atol=0.1)
    assert np.ptp(g.visible.x[left, col["view_mean"]]) < 0.1


def test_edges_join_touching_regions_both_ways_with_weights_in_range() -> None:
    vis, oth, line = _pair()
    g = build_graphs(vis, oth, region_px=32, other_is_normalised=True)
    ei = g.visible.edge_index
    assert ei.shape[0] == 2 and ei.dtype == np.int64
    assert (ei[0] != ei[1]).all()  # no self-loops (the layers add their own)
    pairs = set(map(tuple, ei.T))
    assert all((b, a) in pairs for a, b in pairs)  # both directions
    touching = set(map(tuple, region_adjacency(g.labels)[0]))
    assert {tuple(sorted(p)) for p in pairs} == touching
    for graph in (g.visible, g.other):
        assert graph.edge_weight.shape == (ei.shape[1],)
        assert (graph.edge_weight > 0).all() and (graph.edge_weight <= 1).all()
    # the edges differ in weight between views: across the hidden line, similar in the visible view,
    # dissimilar in the other view
    on_line = g.region_fraction(line) > 0.5
    cross = on_line[ei[0]] != on_line[ei[1]]
    assert cross.any()
    assert g.visible.edge_weight[cross].mean() > 0.5 > g.other.edge_weight[cross].mean()


def test_region_adjacency_and_stats_by_hand() -> None:
    labels = np.array([[0, 0, 1], [2, 2, 1], [2, 3, 3]])
    pairs, border = region_adjacency(labels)
    assert pairs.tolist() == [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
    assert border.tolist() == [1, 2, 1, 1, 2]
    stats = region_stats(np.array([[0, 0], [1, 1]]), np.array([[1.0, 3.0], [2.0, 2.0]]))
    assert stats.tolist() == [[2.0, 1.0, 1.0, 3.0], [2.0, 0.0, 2.0, 2.0]]
    w = edge_weights(np.array([[0, 1], [1, 2]]), np.array([0.0, 0.0, 1.0]))
    assert w[0] == pytest.approx(1.0) and 0 < w[1] < 1


def test_stacked_regions_follow_a_line_that_visible_regions_cut_across() -> None:
    vis, oth, line = _pair()

    def purity(on: str) -> float:
        labels = segment(vis, oth, on=on, region_px=24)
        frac = np.bincount(labels.ravel(), line.ravel()) / np.bincount(labels.ravel())
        return float(frac[labels][line].mean())

    assert purity("stacked") > 0.9
    assert purity("other") > 0.9
    assert purity("visible") < 0.75


def test_paint_and_fractions_and_reused_labels() -> None:
    vis, oth, line = _pair()
    g = build_graphs(vis, oth, region_px=32, other_is_normalised=True)
    painted = g.paint(np.arange(g.num_nodes))
    assert painted.shape == (H, W) and (painted == g.labels).all()
    assert g.region_fraction(np.ones((H, W), bool)).min() == pytest.approx(1.0)
    again = build_graphs(vis, np.roll(oth, 5, axis=0), labels=g.labels, other_is_normalised=True)
    assert again.num_nodes == g.num_nodes and again.segmentation == "given"
    assert view_block(g.labels, oth).shape == (g.num_nodes, 6)
    with pytest.raises(InvalidParameterError, match="region values"):
        g.paint(np.zeros(3))


def test_normalise_other_polarity_and_bad_inputs() -> None:
    ramp = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    dark = normalise_other((ramp * 65535).astype(np.uint16))
    bright = normalise_other((ramp * 65535).astype(np.uint16), polarity="bright")
    np.testing.assert_allclose(dark + bright, 1.0, atol=1e-6)
    assert dark.min() == 0.0 and dark.max() == 1.0
    vis, oth, _ = _pair()
    with pytest.raises(InvalidImageError, match="differ in size"):
        build_graphs(vis, oth[:40])
    with pytest.raises(InvalidParameterError, match="segmentation"):
        build_graphs(vis, oth, segmentation="lab")
    with pytest.raises(InvalidParameterError, match="polarity"):
        normalise_other(oth, polarity="up")
    with pytest.raises(InvalidImageError, match="colour"):
        build_graphs(vis[..., 0], oth)
    with pytest.raises(InvalidImageError, match="too small"):
        segment(vis[:8, :8], oth[:8, :8])
