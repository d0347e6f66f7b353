"""Heatmaps of where a second view (infrared, a band, an X-ray) differs from the visible image.

Each map is ``(H, W)`` float32 on the visible image's grid, higher = more likely hidden or different
content, and is named for what it is:

``embedding_distance``
    Per-region Euclidean distance between the region's two embeddings from the Siamese graph
    encoder (:class:`artlens.beneath.models.BeneathEncoder`): the visible graph's, whose view block
    is the other view *predicted* from the colours, and the other graph's. Range ``[0, 2]``
    (unit-length embeddings). Constant within a region.
``attention``
    The GAT encoder's own attention (``return_attention_weights``): for each region, the attention
    it receives from its neighbours in the *other* graph minus what it receives in the *visible*
    graph, averaged over the heads and layers. Attention of a target region sums to one over its
    incoming edges (softmax), so a region that its neighbours attend to more in the other view than
    the visible view explains scores high. It explains the model, not the painting; only GAT models
    have it.
``residual``
    Training-free baseline: the other view predicted from the visible colours by a robust
    (Huber) quadratic regression fitted on the whole image, minus the observed other view (after
    the polarity is applied, so that hidden content reads dark). Positive where the other view is
    darker than the colours explain. Per pixel.
``dark``
    The benchmark's naive baseline "the other view is dark": ``1 - other``. Per pixel.

No map is a probability: they rank pixels, they do not say how likely hidden content is.

References:
    Huber, P. J. (1964). Robust estimation of a location parameter. Ann. Math. Statist. 35, 73-101.
    Hadsell, R., Chopra, S. and LeCun, Y. (2006). Dimensionality reduction by learning an invariant
    mapping. CVPR (contrastive loss).
    Veličković, P. et al. (2018). Graph attention networks. ICLR.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from artlens.errors import InvalidImageError, InvalidParameterError

if TYPE_CHECKING:
    from artlens.beneath.graphs import GraphPair

__all__ = [
    "HEATMAPS",
    "attention_map",
    "dark_map",
    "embedding_distance",
    "fit_other_from_visible",
    "model_heatmaps",
    "residual_map",
    "save_heatmap",
]

HEATMAPS: dict[str, dict[str, str]] = {
    "embedding_distance": {
        "label": "embedding distance (visible vs other view)",
        "title": "Siamese {model} embedding distance per region",
        "meaning": "distance between the two views' embeddings of each region; high where the other view "
                   "shows what the visible colours do not explain, in the context of the neighbouring regions",
    },
    "attention": {
        "label": "attention received: other minus visible graph",
        "title": "GAT attention shift per region",
        "meaning": "how much more attention the region receives from its neighbours in the other-view graph "
                   "than in the visible graph (softmax attention of the GAT layers, mean over heads and layers); "
                   "explains the model, not the painting",
    },
    "residual": {
        "label": "regression residual (predicted − observed)",
        "title": "Robust RGB→other regression residual",
        "meaning": "the other view predicted from the visible colours by a robust quadratic regression, minus the "
                   "observed other view; positive where the other view is darker than the colours explain",
    },
    "dark": {
        "label": "1 − other view",
        "title": "Dark other view (naive baseline)",
        "meaning": "one minus the normalised other view: dark regions, whether the visible paint explains them or not",
    },
}
"""What each heatmap is: colour-bar label, figure title and a sentence for reports."""


# -- the regression baseline -----------------------------------------------------------------------------
def _design(rgb: np.ndarray, degree: int) -> np.ndarray:
    """``(n, 4)`` (degree 1) or ``(n, 10)`` (degree 2) polynomial terms of RGB values."""
    cols = [np.ones(len(rgb), np.float64), *(rgb[:, i] for i in range(3))]
    if degree == 2:
        cols += [rgb[:, i] * rgb[:, j] for i in range(3) for j in range(i, 3)]
    return np.stack(cols, axis=1)


def fit_other_from_visible(visible: np.ndarray, other: np.ndarray, *, valid: np.ndarray | None = None,
                           degree: int = 2, max_samples: int = 100_000, iterations: int = 10, seed: int = 0
                           ) -> tuple[np.ndarray, dict[str, Any]]:
    """Predict the other view from the visible colours: robust polynomial regression, one fit per image.

    Iteratively reweighted least squares with Huber weights (``k = 1.345`` robust standard
    deviations, the scale re-estimated by the median absolute deviation at each step), on at most
    ``max_samples`` random pixels. Hidden content and decoys are a minority of the pixels, so the
    fit follows the paint and the residual shows what the paint does not explain.

    Args:
        visible: ``(H, W, 3)`` colours in ``[0, 1]`` (or uint8).
        other: ``(H, W)`` other view (e.g. normalised by :func:`artlens.beneath.graphs.normalise_other`).
        valid: ``(H, W)`` bool pixels to fit on (default all).
        degree: 1 (affine in R, G, B) or 2 (with the six products).
        max_samples: pixels sampled for the fit.
        iterations: IRLS iterations.
        seed: seed of the pixel sample.

    Returns:
        ``(predicted (H, W) float32, info)`` with ``info = {"coefficients", "scale", "r2"}`` (``scale``:
        robust standard deviation of the residual).

    Example:
        >>> rgb = np.random.default_rng(0).random((8, 8, 3))
        >>> pred, info = fit_other_from_visible(rgb, 0.2 + 0.5 * rgb[..., 0], degree=1)
        >>> bool(np.allclose(pred, 0.2 + 0.5 * rgb[..., 0], atol=1e-6))
        True
    """
    if degree not in (1, 2):
        raise InvalidParameterError(f"degree must be 1 or 2, got {degree}")
    rgb = np.asarray(visible)
    rgb = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    oth = np.asarray(other, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[:2] != oth.shape:
        raise InvalidImageError(f"expected (H, W, 3) colours and an (H, W) view, got {rgb.shape} and {oth.shape}")
    flat_rgb = rgb[..., :3].reshape(-1, 3)
    y_all = oth.ravel()
    idx = np.flatnonzero(valid.ravel()) if valid is not None else np.arange(y_all.size)
    if idx.size < 16:
        raise InvalidImageError("too few valid pixels to fit the regression")
    if idx.size > max_samples:
        idx = np.random.default_rng(seed).choice(idx, max_samples, replace=False)
    X, y = _design(flat_rgb[idx], degree), y_all[idx]
    w = np.ones(len(y))
    beta = np.zeros(X.shape[1])
    scale = 1.0
    ridge = 1e-6 * np.eye(X.shape[1])
    for _ in range(iterations):
        Xw = X * w[:, None]
        beta = np.linalg.solve(Xw.T @ X + ridge, Xw.T @ y)
        r = y - X @ beta
        scale = 1.4826 * float(np.median(np.abs(r - np.median(r)))) + 1e-6
        k = 1.345 * scale
        w = np.where(np.abs(r) <= k, 1.0, k / np.maximum(np.abs(r), 1e-12))
    pred = np.empty(y_all.size)
    step = 1 << 20
    for a in range(0, y_all.size, step):
        pred[a : a + step] = _design(flat_rgb[a : a + step], degree) @ beta
    r = y - X @ beta
    r2 = 1.0 - float(np.var(r)) / max(float(np.var(y)), 1e-12)
    return pred.reshape(oth.shape).astype(np.float32), {"coefficients": [float(b) for b in beta],
                                                        "scale": scale, "r2": r2, "degree": degree}


def residual_map(visible: np.ndarray, other: np.ndarray, *, valid: np.ndarray | None = None, degree: int = 2,
                 seed: int = 0) -> np.ndarray:
    """The ``residual`` heatmap: other view predicted from the colours minus the observed other view.

    ``other`` should already read dark where hidden content is (``normalise_other``). Returns
    ``(H, W)`` float32 in the other view's units.
    """
    pred, _ = fit_other_from_visible(visible, other, valid=valid, degree=degree, seed=seed)
    return (pred - np.asarray(other, dtype=np.float32)).astype(np.float32)


def dark_map(other: np.ndarray) -> np.ndarray:
    """The ``dark`` baseline: ``1 - other`` for an other view normalised to ``[0, 1]``."""
    return (1.0 - np.asarray(other, dtype=np.float32)).astype(np.float32)


# -- learned maps ------------------------------------------------------------------------------------------
def model_heatmaps(model: Any, graphs: GraphPair) -> dict[str, np.ndarray]:
    """Per-region scores of a Siamese graph model: ``{"embedding_distance": (N,), "attention": (N,)}``
    (``attention`` only for GAT models; also ``"head"`` when the model has a supervised head).

    Shape: every array ``(N,)`` float32, one value per region of ``graphs``; paint them with
    :meth:`GraphPair.paint`.
    """
    import torch

    model.eval()
    vis, oth = graphs.visible.to_data(), graphs.other.to_data()
    with torch.no_grad():
        zv, att_v = model.embed(vis.x, vis.edge_index, vis.edge_weight, return_attention=True)
        zo, att_o = model.embed(oth.x, oth.edge_index, oth.edge_weight, return_attention=True)
        out = {"embedding_distance": model.distance(zv, zo).numpy().astype(np.float32)}
        if att_v:
            n = graphs.num_nodes
            out["attention"] = (_received(att_o, n) - _received(att_v, n)).astype(np.float32)
        if getattr(model, "head", None) is not None:
            out["head"] = torch.sigmoid(model.head_logit(zv, zo)).numpy().astype(np.float32)
    return out


def _received(attentions: list[tuple[Any, Any]], n: int) -> np.ndarray:
    """Attention each node receives as a *source* (summed over the edges leaving it, self-loops
    excluded), averaged over heads and layers."""
    total = np.zeros(n)
    for edge_index, alpha in attentions:
        src, dst = edge_index[0].numpy(), edge_index[1].numpy()
        a = alpha.numpy().mean(axis=1)
        keep = src != dst
        total += np.bincount(src[keep], weights=a[keep], minlength=n)
    return total / max(len(attentions), 1)


def embedding_distance(model: Any, graphs: GraphPair) -> np.ndarray:
    """The ``embedding_distance`` heatmap ``(H, W)`` (see the module notes)."""
    return graphs.paint(model_heatmaps(model, graphs)["embedding_distance"])


def attention_map(model: Any, graphs: GraphPair) -> np.ndarray:
    """The ``attention`` heatmap ``(H, W)`` of a GAT model (see the module notes).

    Raises:
        InvalidParameterError: the model has no attention (a GCN).
    """
    maps = model_heatmaps(model, graphs)
    if "attention" not in maps:
        raise InvalidParameterError("attention maps need a GAT model (this one has no attention)")
    return graphs.paint(maps["attention"])


# -- files -------------------------------------------------------------------------------------------------
def save_heatmap(out_dir: str | Path, name: str, heat: np.ndarray, image: np.ndarray, *, model: str = "",
                 prefix: str = "") -> dict[str, Path]:
    """Write ``{prefix}{name}.npy`` (the raw ``(H, W)`` float32 map) and ``{prefix}{name}.png`` (blue
    similar → red different over the visible image, with a colour bar naming the quantity).

    Returns:
        ``{"npy": path, "png": path}``.
    """
    from artlens.report.overlays import save_heatmap_overlay

    info = HEATMAPS.get(name, {"label": name, "title": name})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    npy = out / f"{prefix}{name}.npy"
    np.save(npy, np.asarray(heat, dtype=np.float32))
    png = save_heatmap_overlay(image, heat, out / f"{prefix}{name}.png",
                               title=info["title"].format(model=model.upper() or "graph"), label=info["label"])
    return {"npy": npy, "png": Path(png)}
