"""2-D maps of a collection: every indexed image placed by its embedding (t-SNE or UMAP).

:func:`collection_map` reads the vectors of a :class:`~artlens.paintings.search.SearchIndex`,
projects them to 2-D and writes a PNG (small thumbnails of the images, or points coloured by a
label column with a legend) and a CSV of the coordinates.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artlens.errors import ArtlensError, InvalidParameterError
from artlens.paintings.search import SearchIndex

__all__ = ["MAX_THUMBNAILS", "MapResult", "collection_map", "project_2d"]

MAX_THUMBNAILS = 400
"""At most this many thumbnails are drawn (a seeded random choice); the other images are points."""

_THUMB_PX = 40
_MAX_LEGEND = 20


@dataclass
class MapResult:
    """A written collection map.

    Attributes:
        coords: ``(n, 2)`` map coordinates, in index order.
        paths: image paths, in index order.
        labels: label of each image (``None`` without a label column).
        method: ``"tsne"``, ``"umap"``, or ``"pca"`` / ``"none"`` for tiny collections.
        png: the figure file.
        csv: the coordinates file.
    """

    coords: np.ndarray
    paths: list[str]
    labels: list[str | None] | None
    method: str
    png: Path
    csv: Path

    def to_json(self) -> dict[str, Any]:
        """``{"png", "csv", "images", "method"}``."""
        return {"png": str(self.png), "csv": str(self.csv), "images": len(self.paths), "method": self.method}


def project_2d(vectors: np.ndarray, method: str = "tsne", *, seed: int = 0) -> tuple[np.ndarray, str]:
    """Project ``(n, dim)`` vectors to ``(n, 2)``.

    t-SNE (scikit-learn) runs on the vectors (reduced to 50 principal components first when they are
    longer), with ``init="pca"`` and perplexity ``min(30, (n - 1) / 3)`` so that small collections
    work; UMAP (umap-learn, optional) with cosine metric and ``n_neighbors = min(15, n - 1)``.
    Below 5 images neither is meaningful: a PCA projection (or the origin for one image) is used and
    the method returned says so.

    Args:
        vectors: ``(n, dim)`` embedding vectors.
        method: ``"tsne"`` or ``"umap"``.
        seed: random state.

    Returns:
        ``(coords, method_used)``.

    Raises:
        InvalidParameterError: unknown method, or ``"umap"`` without umap-learn installed.

    References:
        van der Maaten, L., Hinton, G. (2008). Visualizing data using t-SNE. JMLR 9, 2579-2605.
        McInnes, L., Healy, J., Melville, J. (2018). UMAP: Uniform manifold approximation and
        projection for dimension reduction. arXiv:1802.03426.
    """
    method = method.lower()
    if method not in ("tsne", "umap"):
        raise InvalidParameterError(f"map method {method!r}: use 'tsne' or 'umap'")
    if method == "umap":
        try:
            import umap  # optional dependency
        except ImportError:
            raise InvalidParameterError("method 'umap' needs umap-learn: pip install artlens[umap] "
                                        "(or use `method='tsne'`)", param="method") from None
    x = np.asarray(vectors, dtype=np.float64)
    n = x.shape[0]
    if n == 0:
        raise InvalidParameterError("no vectors to map")
    if n == 1:
        return np.zeros((1, 2)), "none"
    if n < 5:
        from sklearn.decomposition import PCA

        c = PCA(n_components=min(2, n), random_state=seed).fit_transform(x)
        if c.shape[1] < 2:
            c = np.hstack([c, np.zeros((n, 2 - c.shape[1]))])
        return c, "pca"
    if method == "umap":
        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), metric="cosine", random_state=seed)
        return np.asarray(reducer.fit_transform(x), dtype=np.float64), "umap"
    from sklearn.manifold import TSNE

    if x.shape[1] > 50 and n > 50:
        from sklearn.decomposition import PCA

        x = PCA(n_components=50, random_state=seed).fit_transform(x)
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return np.asarray(tsne.fit_transform(x), dtype=np.float64), "tsne"


def _thumbnail(path: str, px: int) -> np.ndarray | None:
    from artlens.paintings.images import load_rgb

    try:
        im = load_rgb(path, notify=False)
    except ArtlensError:
        return None
    im.thumbnail((px, px))
    return np.asarray(im)


def _figure(coords: np.ndarray, paths: list[str], labels: list[str | None] | None, thumbnails: bool,
            max_thumbnails: int, seed: int, title: str):
    from matplotlib.figure import Figure
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    fig = Figure(figsize=(10, 8))
    ax = fig.add_subplot(1, 1, 1)
    n = coords.shape[0]
    colour_of: dict[str, Any] = {}
    if labels is not None:
        values = [v if v is not None else "(none)" for v in labels]
        uniq, counts = np.unique(values, return_counts=True)
        order = [uniq[i] for i in np.argsort(-counts, kind="stable")]
        shown = order[:_MAX_LEGEND]
        import matplotlib

        cmap = matplotlib.colormaps["tab20" if len(shown) > 10 else "tab10"]
        colour_of = {v: cmap(i % cmap.N) for i, v in enumerate(shown)}
        other = (0.6, 0.6, 0.6, 1.0)
        point_colours = [colour_of.get(v, other) for v in values]
    else:
        values = None
        point_colours = ["#4a78b5"] * n
    ax.scatter(coords[:, 0], coords[:, 1], s=12, c=point_colours, alpha=0.8, linewidths=0)
    if thumbnails:
        rng = np.random.default_rng(seed)
        chosen = np.arange(n) if n <= max_thumbnails else np.sort(rng.choice(n, max_thumbnails, replace=False))
        zoom = 0.6 if len(chosen) > 100 else 0.8
        for i in chosen:
            img = _thumbnail(paths[i], _THUMB_PX)
            if img is None:
                continue
            box = OffsetImage(img, zoom=zoom)
            edge = colour_of.get(values[i], (0.6, 0.6, 0.6, 1.0)) if values is not None else (0.8, 0.8, 0.8, 1.0)
            ab = AnnotationBbox(box, (coords[i, 0], coords[i, 1]), frameon=True, pad=0.1,
                                bboxprops={"edgecolor": edge, "linewidth": 1.5})
            ax.add_artist(ab)
    if colour_of:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", linestyle="", color=c, label=str(v)) for v, c in colour_of.items()]
        if values is not None and len(set(values)) > len(colour_of):
            handles.append(Line2D([], [], marker="o", linestyle="", color=(0.6, 0.6, 0.6), label="other"))
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    pad_x = 0.08 * (np.ptp(coords[:, 0]) or 1.0)
    pad_y = 0.08 * (np.ptp(coords[:, 1]) or 1.0)
    ax.set_xlim(coords[:, 0].min() - pad_x, coords[:, 0].max() + pad_x)
    ax.set_ylim(coords[:, 1].min() - pad_y, coords[:, 1].max() + pad_y)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


def collection_map(
    index: SearchIndex | str | os.PathLike[str],
    *,
    method: str = "tsne",
    label_column: str | None = None,
    thumbnails: bool = True,
    seed: int = 0,
    out_png: str | os.PathLike[str],
    out_csv: str | os.PathLike[str] | None = None,
    max_thumbnails: int = MAX_THUMBNAILS,
    dpi: int = 120,
) -> MapResult:
    """Draw a 2-D map of an indexed collection and save its coordinates.

    Args:
        index: a :class:`SearchIndex` or its folder.
        method: ``"tsne"`` (default) or ``"umap"`` (needs ``pip install artlens[umap]``); see
            :func:`project_2d`.
        label_column: colour points (and thumbnail frames) by this label, with a legend (the 20 most
            frequent labels; the others grey).
        thumbnails: draw small thumbnails (at most ``max_thumbnails``, ~40 px) at the images'
            places; otherwise points only.
        seed: random state of the projection and of the thumbnail choice.
        out_png: figure file (PNG).
        out_csv: coordinates file (default: ``out_png`` with ``.csv``): ``path, x, y`` and every label
            column of the index.
        max_thumbnails: cap on thumbnails drawn.
        dpi: figure resolution.

    Returns:
        A :class:`MapResult`.

    Raises:
        InvalidParameterError: unknown method or label column, umap-learn missing.
    """
    from artlens.report.figures import save_figure

    idx = index if isinstance(index, SearchIndex) else SearchIndex.open(index)
    labels = idx.labels(label_column) if label_column else None
    coords, used = project_2d(idx.vectors(), method, seed=seed)
    paths = idx.paths()
    out_png = Path(out_png)
    out_csv = Path(out_csv) if out_csv is not None else out_png.with_suffix(".csv")
    title = f"{len(paths)} images, {used}" + (f", coloured by {label_column}" if label_column else "") \
        + f" ({idx.embedder_name})"
    fig = _figure(coords, paths, labels, thumbnails, int(max_thumbnails), seed, title)
    save_figure(fig, out_png, dpi=dpi)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    columns = idx.label_columns
    all_labels = {c: idx.labels(c) for c in columns}
    with open(out_csv, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "x", "y", *columns])
        for i, p in enumerate(paths):
            w.writerow([p, f"{coords[i, 0]:.6g}", f"{coords[i, 1]:.6g}",
                        *[("" if all_labels[c][i] is None else all_labels[c][i]) for c in columns]])
    return MapResult(coords, paths, labels, used, out_png, out_csv)
