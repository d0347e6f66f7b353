"""Superpixel graphs of a visible image and a second view (infrared, a spectral band, an X-ray).

Both views are cut into the *same* regions (SLIC superpixels) and each view becomes one graph on
those regions, so that a Siamese encoder can compare region ``i`` of one graph with region ``i`` of
the other (:mod:`artlens.models.graph`).

**Regions.** SLIC (Achanta et al. 2012) runs on the visible colours (``segmentation="visible"``), on
the other view (``"other"``) or on both stacked as four channels (``"stacked"``, the default).
Hidden content does not follow the visible edges: an underdrawing line two pixels wide that the
visible paint hides is cut across by visible-only superpixels and diluted in them, whereas regions
drawn on both views follow it. On synthetic scenes (256 px, lines 2-5 px wide) the best pixel
average precision that *any* per-region map can reach (each region painted with its true hidden
fraction) was 0.79 for visible-only regions of 48 px and 0.92 for stacked ones; the default regions
are 32 px (``benchmarks/bench_beneath.py`` prints these ceilings and the learned method's score for
each segmentation).

**Node features.** Every region has the same feature layout in both graphs, so one encoder with
shared weights reads both:

- a *view block* (6 values): mean, standard deviation, minimum and maximum of the view's
  intensity in the region, its mean gradient magnitude and mean absolute Laplacian (texture). In
  the *other* graph the intensity is the other view itself (robustly normalised, and inverted for
  ``polarity="bright"``); in the *visible* graph it is the other view *as predicted from the
  visible colours* by a robust regression fitted on the image itself (the median other-view value
  of each of 32 colour clusters, :func:`artlens.beneath.heatmaps.fit_other_from_visible`). Where
  the visible image explains the other view, the two view blocks agree;
- a *context block* (17 values), identical in both graphs: per visible band (R, G, B) the mean,
  standard deviation, minimum and maximum, the luminance texture (2 values), the centroid (row,
  column as fractions of the image height and width) and the log of the region's area relative to
  the mean area.

**Edges.** Regions that touch (4-connected pixels) are joined in both directions. The edge weight
``w_ij = exp(-d_ij^2 / (2 s^2))`` measures how alike the two regions are *in that graph's view*:
``d_ij`` is the distance of the mean visible colours (visible graph) or of the mean other-view
intensities (other graph), and ``s`` the median of ``d`` over the image's edges. GCN layers use the
weights in their normalised propagation, GAT layers as an edge feature of the attention logits.

Shapes: images ``(H, W)`` / ``(H, W, 3)``; labels ``(H, W)`` int32 in ``0..N-1``; features
``(N, F)`` float32; ``edge_index`` ``(2, E)`` int64; ``edge_weight`` ``(E,)`` float32 in ``(0, 1]``.

References:
    Achanta, R., Shaji, A., Smith, K., Lucchi, A., Fua, P. and Süsstrunk, S. (2012). SLIC superpixels
    compared to state-of-the-art superpixel methods. IEEE TPAMI 34(11), 2274-2282.
    Kipf, T. N. and Welling, M. (2017). Semi-supervised classification with graph convolutional
    networks. ICLR.
    Veličković, P. et al. (2018). Graph attention networks. ICLR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from artlens.errors import InvalidImageError, InvalidParameterError

__all__ = [
    "CONTEXT_FEATURES",
    "FEATURE_NAMES",
    "POLARITIES",
    "SEGMENTATIONS",
    "VIEW_FEATURES",
    "GraphPair",
    "RegionGraph",
    "build_graphs",
    "edge_weights",
    "normalise_other",
    "region_adjacency",
    "region_stats",
    "segment",
    "view_block",
]

SEGMENTATIONS = ("stacked", "visible", "other")
"""What SLIC sees: both views stacked (default), the visible colours only, or the other view only."""

POLARITIES = ("dark", "bright")
"""How hidden content shows in the other view: ``"dark"`` (carbon drawing in IR) or ``"bright"`` (lead
white in an X-ray; the view is inverted so that hidden content reads dark)."""

VIEW_FEATURES = ("mean", "std", "min", "max", "gradient", "laplacian")
CONTEXT_FEATURES = (
    *(f"{band}_{stat}" for band in ("r", "g", "b") for stat in ("mean", "std", "min", "max")),
    "luma_gradient", "luma_laplacian", "centroid_row", "centroid_col", "log_area",
)
FEATURE_NAMES = (*(f"view_{n}" for n in VIEW_FEATURES), *CONTEXT_FEATURES)
"""Column names of :attr:`RegionGraph.x` (23 columns): the view block, then the context block."""

MIN_SIDE = 16
MAX_REGIONS = 250_000
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass
class RegionGraph:
    """One view of a painting as a graph on superpixels.

    Attributes:
        x: ``(N, 23)`` node features, columns :data:`FEATURE_NAMES`.
        edge_index: ``(2, E)`` directed edges (each adjacency in both directions), sources first.
        edge_weight: ``(E,)`` similarity of the joined regions in this view, in ``(0, 1]``.
        view: ``"visible"`` or ``"other"``.
    """

    x: np.ndarray
    edge_index: np.ndarray
    edge_weight: np.ndarray
    view: str

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    def to_data(self) -> Any:
        """A :class:`torch_geometric.data.Data` with ``x``, ``edge_index``, ``edge_weight``."""
        import torch

        from artlens.models.graph import pyg

        return pyg().data.Data(x=torch.from_numpy(np.ascontiguousarray(self.x, dtype=np.float32)),
                               edge_index=torch.from_numpy(np.ascontiguousarray(self.edge_index, dtype=np.int64)),
                               edge_weight=torch.from_numpy(np.ascontiguousarray(self.edge_weight,
                                                                                 dtype=np.float32)))


@dataclass
class GraphPair:
    """The visible and the other view on the same regions.

    Attributes:
        labels: ``(H, W)`` int32 region of each pixel, ``0..N-1``.
        visible: graph of the visible view (view block: the other view predicted from the colours).
        other: graph of the other view.
        areas: ``(N,)`` pixels per region.
        centroids: ``(N, 2)`` (row, column) of each region, pixels.
        boundary: ``(E,)`` length (pixel edges) of the border behind each directed edge.
        segmentation: what SLIC saw (:data:`SEGMENTATIONS`).
        other_norm: the normalised other view ``(H, W)`` that the features were computed from.
        predicted: ``(H, W)`` the other view predicted from the visible colours.
        parameters: settings that produced the graphs (JSON-ready).
    """

    labels: np.ndarray
    visible: RegionGraph
    other: RegionGraph
    areas: np.ndarray
    centroids: np.ndarray
    boundary: np.ndarray
    segmentation: str
    other_norm: np.ndarray
    predicted: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return int(self.areas.size)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.labels.shape[0]), int(self.labels.shape[1])

    def paint(self, values: np.ndarray) -> np.ndarray:
        """A per-region array ``(N,)`` painted onto the image grid: ``(H, W)`` float32."""
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        if values.size != self.num_nodes:
            raise InvalidParameterError(f"expected {self.num_nodes} region values, got {values.size}")
        return values[self.labels]

    def region_fraction(self, mask: np.ndarray) -> np.ndarray:
        """Fraction of each region's pixels inside a ``(H, W)`` bool mask: ``(N,)`` float32."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.shape:
            raise InvalidParameterError(f"mask shape {mask.shape} differs from the graph's {self.shape}")
        hits = np.bincount(self.labels.ravel(), weights=mask.ravel(), minlength=self.num_nodes)
        return (hits / np.maximum(self.areas, 1)).astype(np.float32)


# -- inputs ----------------------------------------------------------------------------------------------
def _as_rgb(visible: np.ndarray) -> np.ndarray:
    rgb = np.asarray(visible)
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise InvalidImageError(f"the visible image must be (H, W, 3) colour, got shape {rgb.shape}")
    rgb = rgb[..., :3]
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float32) / 255.0
    elif rgb.dtype == np.uint16:
        rgb = rgb.astype(np.float32) / 65535.0
    else:
        rgb = rgb.astype(np.float32)
    if not np.isfinite(rgb).all():
        raise InvalidImageError("the visible image contains NaN or infinite values")
    return np.clip(rgb, 0.0, 1.0)


def normalise_other(other: np.ndarray, *, polarity: str = "dark", valid: np.ndarray | None = None) -> np.ndarray:
    """The other view as ``(H, W)`` float32: 0.5th-99.5th percentile stretched to ``[0, 1]`` (clipped),
    inverted for ``polarity="bright"``, so that hidden content reads darker than its surroundings.

    Args:
        other: ``(H, W)`` grey image of any real dtype (uint8/uint16 are scaled by their range first).
        polarity: ``"dark"`` or ``"bright"`` (:data:`POLARITIES`).
        valid: ``(H, W)`` bool pixels that hold data (percentiles are taken over them).

    Example:
        >>> normalise_other(np.array([[0, 1], [2, 3]], np.uint8), polarity="bright").astype(float).round(2).tolist()
        [[1.0, 0.67], [0.33, 0.0]]
    """
    if polarity not in POLARITIES:
        raise InvalidParameterError(f"unknown polarity {polarity!r}; expected one of {', '.join(POLARITIES)}")
    arr = np.asarray(other)
    if arr.ndim != 2:
        raise InvalidImageError(f"the other view must be one (H, W) band, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    else:
        arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InvalidImageError("the other view contains NaN or infinite values")
    sample = arr[valid] if valid is not None and valid.any() else arr
    lo, hi = np.percentile(sample, [0.5, 99.5])
    if hi - lo < 1e-6:
        lo, hi = float(sample.min()), float(sample.max())
    out = np.clip((arr - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0).astype(np.float32)
    return 1.0 - out if polarity == "bright" else out


# -- segmentation ----------------------------------------------------------------------------------------
def segment(visible: np.ndarray, other: np.ndarray, *, on: str = "stacked", region_px: float = 32.0,
            compactness: float = 0.2, sigma: float = 0.5, other_weight: float = 1.5) -> np.ndarray:
    """SLIC superpixels of the visible colours, the other view or both stacked.

    Args:
        visible: ``(H, W, 3)`` colour image (uint8, or float in ``[0, 1]``).
        other: ``(H, W)`` other view, normalised to ``[0, 1]`` (:func:`normalise_other`).
        on: :data:`SEGMENTATIONS`.
        region_px: mean region area aimed at, pixels (SLIC gets ``H W / region_px`` seeds).
        compactness: SLIC compactness for intensities in ``[0, 1]`` (lower follows edges more closely).
        sigma: Gaussian pre-smoothing of SLIC, pixels.
        other_weight: scale of the other view's channel when stacked (the colours have three).

    Returns:
        ``(H, W)`` int32 labels ``0..N-1``, every label present, each region connected.

    References:
        Achanta et al. (2012), SLIC superpixels.
    """
    from skimage.segmentation import slic

    if on not in SEGMENTATIONS:
        raise InvalidParameterError(f"unknown segmentation {on!r}; expected one of {', '.join(SEGMENTATIONS)}")
    if not (np.isfinite(region_px) and region_px >= 4):
        raise InvalidParameterError(f"region_px must be at least 4 pixels, got {region_px}")
    if not (compactness > 0 and sigma >= 0 and other_weight > 0):
        raise InvalidParameterError("compactness and other_weight must be > 0 and sigma >= 0")
    rgb = _as_rgb(visible)
    oth = np.asarray(other, dtype=np.float32)
    if oth.shape != rgb.shape[:2]:
        raise InvalidImageError(f"views differ in size: visible {rgb.shape[:2]}, other {oth.shape}; register first")
    h, w = oth.shape
    if min(h, w) < MIN_SIDE:
        raise InvalidImageError(f"images of {h}x{w} pixels are too small for superpixels (at least {MIN_SIDE})")
    n = max(4, min(MAX_REGIONS, int(round(h * w / region_px))))
    if on == "visible":
        img = rgb
    elif on == "other":
        img = oth[..., None]
    else:
        img = np.concatenate([rgb, other_weight * oth[..., None]], axis=-1)
    labels = slic(img, n_segments=n, compactness=compactness, sigma=sigma, channel_axis=-1, convert2lab=False,
                  start_label=0, enforce_connectivity=True)
    _, inverse = np.unique(labels, return_inverse=True)  # consecutive labels, none missing
    return inverse.reshape(h, w).astype(np.int32)


# -- statistics ------------------------------------------------------------------------------------------
class _Regions:
    """Pixels sorted by region once, for fast per-region reductions."""

    def __init__(self, labels: np.ndarray):
        flat = labels.ravel()
        self.n = int(flat.max()) + 1
        self.order = np.argsort(flat, kind="stable")
        self.counts = np.bincount(flat, minlength=self.n)
        self.starts = np.r_[0, np.cumsum(self.counts)[:-1]]
        self.flat = flat

    def mean(self, v: np.ndarray) -> np.ndarray:
        return np.bincount(self.flat, weights=v.ravel().astype(np.float64), minlength=self.n) / self.counts

    def std(self, v: np.ndarray, mean: np.ndarray) -> np.ndarray:
        sq = np.bincount(self.flat, weights=v.ravel().astype(np.float64) ** 2, minlength=self.n) / self.counts
        return np.sqrt(np.maximum(sq - mean**2, 0.0))

    def minmax(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = v.ravel()[self.order]
        return np.minimum.reduceat(s, self.starts), np.maximum.reduceat(s, self.starts)


def _texture(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = ndimage.gaussian_filter(img.astype(np.float32), 0.7)
    grad = np.hypot(ndimage.sobel(g, 0), ndimage.sobel(g, 1)) / 8.0
    lap = np.abs(ndimage.laplace(g))
    return grad, lap


def region_stats(labels: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Per-region mean, standard deviation, minimum and maximum of a ``(H, W)`` image: ``(N, 4)``.

    Example:
        >>> region_stats(np.array([[0, 0], [1, 1]]), np.array([[1.0, 3.0], [2.0, 2.0]])).tolist()
        [[2.0, 1.0, 1.0, 3.0], [2.0, 0.0, 2.0, 2.0]]
    """
    r = _Regions(np.asarray(labels))
    return _stats(r, np.asarray(image, dtype=np.float32))


def _stats(r: _Regions, img: np.ndarray) -> np.ndarray:
    m = r.mean(img)
    lo, hi = r.minmax(img)
    return np.stack([m, r.std(img, m), lo, hi], axis=1)


def region_adjacency(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of 4-connected regions and the length of their shared border.

    Returns:
        ``(pairs (P, 2) int64 with pairs[:, 0] < pairs[:, 1], border (P,) int64 pixel edges)``.

    Example:
        >>> region_adjacency(np.array([[0, 0, 1], [2, 2, 1]]))[0].tolist()
        [[0, 1], [0, 2], [1, 2]]
    """
    lab = np.asarray(labels, dtype=np.int64)
    a = np.concatenate([lab[:, :-1].ravel(), lab[:-1, :].ravel()])
    b = np.concatenate([lab[:, 1:].ravel(), lab[1:, :].ravel()])
    keep = a != b
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    n = int(lab.max()) + 1
    keys, border = np.unique(lo * n + hi, return_counts=True)
    return np.stack([keys // n, keys % n], axis=1), border


def view_block(labels: np.ndarray, image: np.ndarray) -> np.ndarray:
    """The view block of the node features (:data:`VIEW_FEATURES`) of a ``(H, W)`` image: ``(N, 6)``."""
    return _view_block(_Regions(np.asarray(labels)), np.asarray(image, dtype=np.float32))


def _view_block(r: _Regions, img: np.ndarray) -> np.ndarray:
    grad, lap = _texture(img)
    return np.concatenate([_stats(r, img), r.mean(grad)[:, None], r.mean(lap)[:, None]], axis=1)


def edge_weights(edge_index: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Similarity weights ``exp(-d^2 / 2 s^2)`` of the edges ``(2, E)``: ``d`` the distance of the joined
    regions' ``values`` (``(N,)`` or ``(N, C)``), ``s`` its median over the edges. ``(E,)`` float32 in
    ``(0, 1]``."""
    return _edge_weights(np.asarray(edge_index).T, np.asarray(values))


def _edge_weights(pairs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``exp(-d^2 / 2 s^2)`` with ``d`` the distance of the regions' values and ``s`` its median."""
    v = values.reshape(len(values), -1)
    d = np.linalg.norm(v[pairs[:, 0]] - v[pairs[:, 1]], axis=1)
    s = max(float(np.median(d)) if d.size else 0.0, 1e-3)
    return np.exp(-0.5 * (d / s) ** 2).astype(np.float32).clip(1e-4, 1.0)


# -- graphs ------------------------------------------------------------------------------------------------
def build_graphs(
    visible: np.ndarray,
    other: np.ndarray,
    *,
    segmentation: str = "stacked",
    region_px: float = 32.0,
    compactness: float = 0.2,
    polarity: str = "dark",
    valid: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    other_is_normalised: bool = False,
    seed: int = 0,
) -> GraphPair:
    """Superpixel graphs of both views on the same regions.

    Args:
        visible: ``(H, W, 3)`` colour image (uint8, uint16 or float in ``[0, 1]``).
        other: ``(H, W)`` other view on the same grid (registered), any real dtype.
        segmentation: what SLIC sees (:data:`SEGMENTATIONS`).
        region_px: mean region area, pixels (fine enough for thin lines: 2-3 px wide lines need
            regions of a few dozen pixels).
        compactness: SLIC compactness.
        polarity: how hidden content shows in the other view (:data:`POLARITIES`).
        valid: ``(H, W)`` bool pixels where the other view holds data (after registration); used for
            the normalisation and the regression.
        labels: reuse these ``(H, W)`` regions instead of running SLIC (e.g. to compare shifted crops).
        other_is_normalised: ``other`` is already the output of :func:`normalise_other`.
        seed: seed of the pixel sample the regression is fitted on.

    Returns:
        A :class:`GraphPair`.

    Raises:
        InvalidImageError: views of different sizes, too small, non-finite.
        InvalidParameterError: unknown segmentation or polarity.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> g = build_graphs(rng.random((32, 32, 3)), rng.random((32, 32)), region_px=16)
        >>> g.visible.x.shape[1], g.other.x.shape == g.visible.x.shape
        (23, True)
    """
    from artlens.beneath.heatmaps import fit_other_from_visible

    rgb = _as_rgb(visible)
    if np.asarray(other).shape != rgb.shape[:2]:
        raise InvalidImageError(f"views differ in size: visible {rgb.shape[:2]}, other {np.asarray(other).shape}; "
                                "register the other view onto the visible one first")
    oth = (np.asarray(other, dtype=np.float32) if other_is_normalised
           else normalise_other(other, polarity=polarity, valid=valid))
    given = labels is not None
    if labels is None:
        labels = segment(rgb, oth, on=segmentation, region_px=region_px, compactness=compactness)
    else:
        labels = np.asarray(labels)
        if labels.shape != oth.shape:
            raise InvalidImageError(f"labels {labels.shape} differ from the images {oth.shape}")
        _, inverse = np.unique(labels, return_inverse=True)
        labels = inverse.reshape(labels.shape).astype(np.int32)
    r = _Regions(labels)
    h, w = labels.shape

    predicted, _ = fit_other_from_visible(rgb, oth, valid=valid, seed=seed)
    luma = rgb @ _LUMA

    rows, cols = np.mgrid[0:h, 0:w]
    cen = np.stack([r.mean(rows.astype(np.float32)), r.mean(cols.astype(np.float32))], axis=1)
    lg, ll = _texture(luma)
    context = np.concatenate(
        [*(_stats(r, rgb[..., c]) for c in range(3)), r.mean(lg)[:, None], r.mean(ll)[:, None],
         cen / np.array([max(h - 1, 1), max(w - 1, 1)]),
         np.log(r.counts / r.counts.mean())[:, None]], axis=1)
    x_vis = np.concatenate([_view_block(r, predicted), context], axis=1).astype(np.float32)
    x_oth = np.concatenate([_view_block(r, oth), context], axis=1).astype(np.float32)

    pairs, border = region_adjacency(labels)
    ei = np.concatenate([pairs, pairs[:, ::-1]], axis=0).T.astype(np.int64)
    wv = _edge_weights(pairs, context[:, [0, 4, 8]])  # mean R, G, B
    wo = _edge_weights(pairs, x_oth[:, 0])
    seg_name = "given" if given else segmentation
    params = {"segmentation": seg_name,
              "region_px": region_px, "compactness": compactness, "polarity": polarity,
              "regions": r.n, "edges": int(ei.shape[1])}
    return GraphPair(labels, RegionGraph(x_vis, ei, np.r_[wv, wv], "visible"),
                     RegionGraph(x_oth, ei, np.r_[wo, wo], "other"), r.counts.astype(np.int64), cen,
                     np.r_[border, border], seg_name, oth, predicted.astype(np.float32), params)
