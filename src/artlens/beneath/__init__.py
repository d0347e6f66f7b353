"""Beneath the surface: compare a painting's visible image with its infrared, multispectral or X-ray
image and map where they differ.

- :mod:`~artlens.beneath.registration` — bring the other view onto the visible image's grid.
- :mod:`~artlens.beneath.graphs` — SLIC superpixels shared by both views, one graph per view with the
  same node-feature layout (per-band mean / std / min / max, texture, centroid, area) and
  similarity-weighted adjacency edges.
- :mod:`artlens.models.graph` (in the model registry) — Siamese GCN and GAT encoders (one set of weights
  for both graphs), registered as ``beneath_gcn``, ``beneath_gat`` (and ``*_test``); trained with
  :func:`artlens.models.losses.contrastive_loss`.
- :mod:`~artlens.beneath.pixel` — the default ``pixel`` method: per-pixel, multi-scale evidence from a
  robust colour→other-view look-up table (global and on tiles); training-free.
- :mod:`~artlens.beneath.heatmaps` — maps named for what they are: ``pixel``, ``embedding_distance``,
  ``attention`` (true GAT attention), ``residual`` (training-free robust regression) and ``dark``.
- :mod:`~artlens.beneath.compare` — :func:`compare_views`, the function behind
  ``artlens beneath compare``.

Training lives in :mod:`artlens.train.beneath`. Submodules that need torch import it; this package
itself imports only numpy and scipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from artlens.beneath.registration import RegistrationResult, register

if TYPE_CHECKING:
    from artlens.beneath.compare import LoadedPair, compare_views, load_beneath_model, load_pair
    from artlens.beneath.graphs import GraphPair, RegionGraph, build_graphs, normalise_other, segment
    from artlens.beneath.heatmaps import (
        HEATMAPS,
        attention_map,
        dark_map,
        embedding_distance,
        fit_other_from_visible,
        model_heatmaps,
        residual_map,
    )
    from artlens.beneath.pixel import PixelParams, pixel_evidence

__all__ = [
    "HEATMAPS",
    "GraphPair",
    "LoadedPair",
    "PixelParams",
    "RegionGraph",
    "RegistrationResult",
    "attention_map",
    "build_graphs",
    "compare_views",
    "dark_map",
    "embedding_distance",
    "fit_other_from_visible",
    "load_beneath_model",
    "load_pair",
    "model_heatmaps",
    "normalise_other",
    "pixel_evidence",
    "register",
    "residual_map",
    "segment",
]

_LAZY = {
    "compare_views": "compare", "load_beneath_model": "compare", "load_pair": "compare", "LoadedPair": "compare",
    "GraphPair": "graphs", "RegionGraph": "graphs", "build_graphs": "graphs", "normalise_other": "graphs",
    "segment": "graphs", "HEATMAPS": "heatmaps", "attention_map": "heatmaps", "dark_map": "heatmaps",
    "embedding_distance": "heatmaps", "fit_other_from_visible": "heatmaps", "model_heatmaps": "heatmaps",
    "residual_map": "heatmaps", "pixel_evidence": "pixel", "PixelParams": "pixel",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"artlens.beneath.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'artlens.beneath' has no attribute {name!r}")
