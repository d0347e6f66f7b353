"""Heatmaps drawn over an image, with a colour bar: Grad-CAM maps (paintings) and difference maps
(beneath). Blue means low, red high; the colour bar names what the values are.

Like :mod:`artlens.report.figures`, figures are built on an Agg canvas without ``pyplot``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from artlens.report.figures import save_figure

HEATMAP_CMAP = "RdYlBu_r"
"""Blue (low: similar / no contribution) → yellow → red (high: different / strong contribution)."""


def heatmap_overlay_figure(image: np.ndarray, heat: np.ndarray, *, title: str = "", label: str = "",
                           alpha: float = 0.55, vmin: float | None = None, vmax: float | None = None) -> Figure:
    """The image with ``heat`` drawn over it and a colour bar.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` uint8 or float in [0, 1].
        heat: ``(H, W)`` map on the same grid (resampled to it by nearest pixel when it differs).
        title: figure title.
        label: colour-bar label, naming the quantity (e.g. ``"embedding distance"``).
        alpha: heatmap opacity.
        vmin, vmax: colour limits (default: the map's 1st and 99th percentiles).
    """
    image = np.asarray(image)
    heat = np.asarray(heat, dtype=np.float32)
    h, w = image.shape[:2]
    if heat.shape != (h, w):
        rows = (np.arange(h) * heat.shape[0] / h).astype(int)
        cols = (np.arange(w) * heat.shape[1] / w).astype(int)
        heat = heat[rows][:, cols]
    finite = heat[np.isfinite(heat)]
    lo = float(np.percentile(finite, 1)) if vmin is None and finite.size else (vmin or 0.0)
    hi = float(np.percentile(finite, 99)) if vmax is None and finite.size else (vmax if vmax is not None else 1.0)
    if hi <= lo:
        hi = lo + 1e-6
    aspect = h / max(w, 1)
    fig = Figure(figsize=(5.2, max(2.5, 4.6 * aspect)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    im = ax.imshow(heat, cmap=HEATMAP_CMAP, alpha=alpha, vmin=lo, vmax=hi, interpolation="bilinear")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    if label:
        cb.set_label(label, fontsize=8)
    cb.ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def save_heatmap_overlay(image: np.ndarray, heat: np.ndarray, path: str | Path, **kwargs: Any) -> Path:
    """:func:`heatmap_overlay_figure` written to ``path`` (PNG)."""
    return save_figure(heatmap_overlay_figure(image, heat, **kwargs), path)
