"""Heatmaps of where a second view (infrared, a band, an X-ray) differs from the visible image.

Each map is ``(H, W)`` float32 on the visible image's grid, higher = more likely hidden or different
content, and is named for what it is:

``pixel``
    The default method's map (:func:`artlens.beneath.pixel.pixel_evidence`): per pixel, how many
    robust standard deviations darker the other view is than the visible colours predict — a
    smooth robust colour look-up table fitted on the whole image and, beside it, on overlapping
    tiles; after a sub-pixel alignment of the observed view on the predicted one, a tolerance of
    ±1 px, and evidence smoothed at three scales (the largest z-score kept). Training-free.
``embedding_distance``
    Per-region Euclidean distance between the region's two embeddings from the Siamese graph
    encoder (:class:`artlens.models.graph.BeneathEncoder`): the visible graph's, whose view block
    is the other view *predicted* from the colours, and the other graph's. Range ``[0, 2]``
    (unit-length embeddings). Constant within a region.
``attention``
    The GAT encoder's own attention (``return_attention_weights``) of its last layer, averaged over
    the heads: for each region, the attention it receives from its neighbours in the *visible*
    graph minus what it receives in the *other* graph. The attention of each target region sums to
    one over its incoming edges (softmax), so a region scores high when its neighbours stop
    attending to it in the other view: when it looks unlike them there but not in the visible view.
    It explains the model, not the painting, and ranks hidden content less well than the embedding
    distance (``docs/beneath.md``); only GAT models have it.
``residual``
    Training-free baseline: the other view predicted from the visible colours by a robust
    regression fitted on the image itself (the median other-view value of each of 32 colour
    clusters; or one Huber-fitted quadratic of R, G, B), minus the observed other view (after the
    polarity is applied, so that hidden content reads dark). Positive where the other view is
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
    "REGRESSIONS",
    "model_heatmaps",
    "received_attention",
    "residual_map",
    "save_heatmap",
]

HEATMAPS: dict[str, dict[str, str]] = {
    "pixel": {
        "label": "unexplained darkness (robust z)",
        "title": "Pixel evidence: other view darker than the colours predict",
        "meaning": "per pixel, how many robust standard deviations darker the other view is than a smooth robust "
                   "colour look-up table predicts (fitted on the whole image and on overlapping tiles; sub-pixel "
                   "alignment, ±1 px tolerance, three smoothing scales); high where the other view shows dark "
                   "content the visible colours do not explain",
    },
    "embedding_distance": {
        "label": "embedding distance (visible vs other view)",
        "title": "Siamese {model} embedding distance per region",
        "meaning": "distance between the two views' embeddings of each region; high where the other view "
                   "shows what the visible colours do not explain, in the context of the neighbouring regions",
    },
    "attention": {
        "label": "attention received: visible minus other graph",
        "title": "GAT attention withdrawn per region",
        "meaning": "how much less attention the region receives from its neighbours in the other-view graph than "
                   "in the visible graph (softmax attention of the last GAT layer, mean over heads); explains the "
                   "model, not the painting",
    },
    "residual": {
        "label": "regression residual (predicted − observed)",
        "title": "Robust colour→other regression residual",
        "meaning": "the other view predicted from the visible colours (median of each of 32 colour clusters), minus "
                   "the observed other view; positive where the other view is darker than the colours explain",
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


KMEANS_SAMPLES = 20_000
"""Pixels whose colours the k-means of ``model="clusters"`` runs on (the medians use the whole sample)."""
REGRESSIONS = ("clusters", "polynomial")
"""How :func:`fit_other_from_visible` predicts the other view: per colour cluster, or one polynomial."""


def fit_other_from_visible(visible: np.ndarray, other: np.ndarray, *, model: str = "clusters", clusters: int = 32,
                           degree: int = 2, valid: np.ndarray | None = None, max_samples: int = 100_000,
                           iterations: int = 10, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Predict the other view from the visible colours by a robust regression fitted on the image itself.

    ``model="clusters"`` (default): a robust piecewise-constant regression. The colours of a random
    pixel sample are grouped by k-means (``clusters`` groups, k-means++ seeding); each group predicts
    the *median* other-view value of its sampled pixels, and every pixel gets the prediction of the
    group whose centre is nearest to its colour. Each paint of a painting has its own response in the
    infrared (or to X-rays) that no single formula of its colour captures; the median per colour
    group follows each paint and ignores hidden content as long as it covers under half of the group.

    ``model="polynomial"``: one polynomial of R, G, B (``degree`` 1 or 2) fitted by iteratively
    reweighted least squares with Huber weights (``k = 1.345`` robust standard deviations, the scale
    re-estimated by the median absolute deviation at each step).

    In both cases hidden content and decoys are a minority of the pixels, so the fit follows the
    paint and the residual shows what the paint does not explain.

    Args:
        visible: ``(H, W, 3)`` colours in ``[0, 1]`` (or uint8).
        other: ``(H, W)`` other view (e.g. normalised by :func:`artlens.beneath.graphs.normalise_other`).
        model: :data:`REGRESSIONS`.
        clusters: colour groups of ``model="clusters"``.
        degree: polynomial degree of ``model="polynomial"``: 1 (affine) or 2 (with the six products).
        valid: ``(H, W)`` bool pixels to fit on (default all).
        max_samples: pixels sampled for the fit.
        iterations: IRLS (polynomial) or k-means (clusters) iterations.
        seed: seed of the pixel sample and of the k-means seeding.

    Returns:
        ``(predicted (H, W) float32, info)``; ``info`` holds ``model``, ``scale`` (robust standard
        deviation of the residual on the sample), ``r2`` and ``coefficients`` (polynomial) or
        ``centres`` and ``medians`` (clusters).

    References:
        Huber, P. J. (1964); Arthur, D. and Vassilvitskii, S. (2007). k-means++: the advantages of careful
        seeding. SODA, 1027-1035.

    Example:
        >>> rgb = np.random.default_rng(0).random((8, 8, 3))
        >>> pred, info = fit_other_from_visible(rgb, 0.2 + 0.5 * rgb[..., 0], model="polynomial", degree=1)
        >>> bool(np.allclose(pred, 0.2 + 0.5 * rgb[..., 0], atol=1e-6))
        True
    """
    if model not in REGRESSIONS:
        raise InvalidParameterError(f"unknown regression {model!r}; expected one of {', '.join(REGRESSIONS)}")
    if degree not in (1, 2):
        raise InvalidParameterError(f"degree must be 1 or 2, got {degree}")
    if not 2 <= clusters <= 1024:
        raise InvalidParameterError(f"clusters must lie in 2..1024, got {clusters}")
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
    rng = np.random.default_rng(seed)
    if idx.size > max_samples:
        idx = rng.choice(idx, max_samples, replace=False)
    y = y_all[idx]
    if model == "clusters":
        pred, info = _fit_clusters(flat_rgb, flat_rgb[idx], y, clusters, iterations, rng)
    else:
        pred, info = _fit_polynomial(flat_rgb, flat_rgb[idx], y, degree, iterations)
    r = y - pred[idx]
    info["scale"] = 1.4826 * float(np.median(np.abs(r - np.median(r)))) + 1e-6
    info["r2"] = 1.0 - float(np.var(r)) / max(float(np.var(y)), 1e-12)
    return pred.reshape(oth.shape).astype(np.float32), info


def _fit_clusters(flat_rgb: np.ndarray, x: np.ndarray, y: np.ndarray, k: int, iterations: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    import warnings

    from scipy.cluster.vq import kmeans2
    from scipy.spatial import cKDTree

    xs = x[rng.choice(len(x), min(len(x), KMEANS_SAMPLES), replace=False)]
    k = min(k, len(np.unique(xs, axis=0)))
    with warnings.catch_warnings():  # "One of the clusters is empty": handled below
        warnings.simplefilter("ignore")
        centres, lab = kmeans2(xs, k, iter=iterations, minit="++", seed=rng)
    counts = np.bincount(lab, minlength=len(centres))
    centres = centres[counts >= min(5, counts.max())]
    lab = cKDTree(centres).query(x)[1]
    order = np.argsort(lab, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(lab, minlength=len(centres)))]
    ys = y[order]
    medians = np.array([np.median(ys[a:b]) if b > a else np.median(y) for a, b in zip(starts[:-1], starts[1:],
                                                                                      strict=True)])
    pred = np.empty(len(flat_rgb))
    tree = cKDTree(centres)
    step = 1 << 20
    for a in range(0, len(flat_rgb), step):
        pred[a : a + step] = medians[tree.query(flat_rgb[a : a + step])[1]]
    return pred, {"model": "clusters", "clusters": int(len(centres)), "centres": centres.round(5).tolist(),
                  "medians": medians.round(5).tolist()}


def _fit_polynomial(flat_rgb: np.ndarray, x: np.ndarray, y: np.ndarray, degree: int, iterations: int
                    ) -> tuple[np.ndarray, dict[str, Any]]:
    X = _design(x, degree)
    w = np.ones(len(y))
    beta = np.zeros(X.shape[1])
    ridge = 1e-6 * np.eye(X.shape[1])
    for _ in range(iterations):
        Xw = X * w[:, None]
        beta = np.linalg.solve(Xw.T @ X + ridge, Xw.T @ y)
        r = y - X @ beta
        scale = 1.4826 * float(np.median(np.abs(r - np.median(r)))) + 1e-6
        kh = 1.345 * scale
        w = np.where(np.abs(r) <= kh, 1.0, kh / np.maximum(np.abs(r), 1e-12))
    pred = np.empty(len(flat_rgb))
    step = 1 << 20
    for a in range(0, len(flat_rgb), step):
        pred[a : a + step] = _design(flat_rgb[a : a + step], degree) @ beta
    return pred, {"model": "polynomial", "degree": degree, "coefficients": [float(b) for b in beta]}


def residual_map(visible: np.ndarray, other: np.ndarray, *, valid: np.ndarray | None = None, model: str = "clusters",
                 seed: int = 0, **kwargs: Any) -> np.ndarray:
    """The ``residual`` heatmap: other view predicted from the colours (:func:`fit_other_from_visible`,
    default ``model="clusters"``) minus the observed other view.

    ``other`` should already read dark where hidden content is (``normalise_other``). Returns
    ``(H, W)`` float32 in the other view's units.
    """
    pred, _ = fit_other_from_visible(visible, other, valid=valid, model=model, seed=seed, **kwargs)
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
    device = next((p.device for p in model.parameters()), torch.device("cpu"))  # the graphs go where the model is
    vis, oth = graphs.visible.to_data().to(device), graphs.other.to_data().to(device)
    with torch.no_grad():
        zv, att_v = model.embed(vis.x, vis.edge_index, vis.edge_weight, return_attention=True)
        zo, att_o = model.embed(oth.x, oth.edge_index, oth.edge_weight, return_attention=True)
        out = {"embedding_distance": model.distance(zv, zo).cpu().numpy().astype(np.float32)}
        if att_v:
            n = graphs.num_nodes
            out["attention"] = (received_attention(att_v, n) - received_attention(att_o, n)).astype(np.float32)
        if getattr(model, "head", None) is not None:
            out["head"] = torch.sigmoid(model.head_logit(zv, zo)).cpu().numpy().astype(np.float32)
    return out


def received_attention(attentions: list[tuple[Any, Any]], n: int) -> np.ndarray:
    """Attention each node receives as a *source* in the last layer: summed over the edges leaving it
    (self-loops excluded), averaged over the heads. ``(n,)``."""
    edge_index, alpha = attentions[-1]
    src, dst = edge_index[0].cpu().numpy(), edge_index[1].cpu().numpy()
    a = alpha.cpu().numpy().mean(axis=1)
    keep = src != dst
    return np.bincount(src[keep], weights=a[keep], minlength=n)


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
