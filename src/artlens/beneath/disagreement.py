"""Where two heatmaps of one comparison disagree: regions to check rather than an average.

Every ``beneath compare`` run computes a second, independent map beside its method's own (the
``pixel`` method is cross-checked with the ``residual`` map, every other method with ``pixel``).
The two maps are in different units, so they are compared by *rank*, region by region:

1. the visible image is cut into square cells of ``cell_px`` px; cells less than half covered by the
   other view are skipped;
2. each map's score of a cell is a high percentile (``percentile``) of its values there, so that a
   thin line of a few pixels counts as much as a filled shape;
3. each map's cell scores are turned into ranks in ``[0, 1]`` (0 = the cell it finds least
   suspicious, 1 = the most);
4. a cell is flagged when one map ranks it in its top ``top`` fraction and the other ranks it
   below ``low``: one method points at it, the other does not.

The flagged cells are written into ``summary.json`` (``disagreement``), drawn on
``disagreement.png`` and listed in the report under "Check here". Nothing is averaged: the two maps
stay as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from artlens.errors import InvalidImageError, InvalidParameterError

__all__ = ["MAX_LISTED", "cross_check", "save_disagreement_figure"]

MAX_LISTED = 100
"""Most flagged cells listed in the summary (largest rank gaps first); ``n_flagged`` counts them all."""


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks of ``values`` scaled to ``[0, 1]`` (ties share their mean rank)."""
    from scipy.stats import rankdata

    if len(values) < 2:
        return np.zeros(len(values))
    return (rankdata(values) - 1.0) / (len(values) - 1.0)


def cross_check(map_a: np.ndarray, map_b: np.ndarray, *, names: tuple[str, str] = ("a", "b"),
                valid: np.ndarray | None = None, cell_px: int = 32, percentile: float = 99.0, top: float = 0.1,
                low: float = 0.5) -> dict[str, Any]:
    """Cells where two heatmaps of the same image disagree strongly (see the module notes).

    Args:
        map_a, map_b: ``(H, W)`` heatmaps, higher = more suspicious (any units).
        names: the two maps' names, used in the result.
        valid: ``(H, W)`` bool pixels the other view covers (default all).
        cell_px: side of the square cells, px.
        percentile: percentile of a map's values in a cell that scores the cell.
        top: a cell is in a map's top when its rank is at least ``1 - top``.
        low: ... and is ignored by the other map when that map's rank is below ``low``.

    Returns:
        ``{"methods", "cell_px", "rule", "cells_compared", "n_flagged", "flagged_fraction",
        "rank_correlation", "cells"}``; ``cells`` lists up to :data:`MAX_LISTED` flagged cells as
        ``{"x0", "y0", "x1", "y1" (px, visible image), "rank": {name: rank}, "higher": name}``,
        largest rank gap first; ``rank_correlation`` is Spearman's correlation of the two maps' cell
        scores.

    Shape:
        ``map_a``, ``map_b``, ``valid``: ``(H, W)``.

    Example:
        >>> a = np.zeros((64, 64)); a[:32, :32] = 1.0          # a points at the top-left cell
        >>> b = np.zeros((64, 64)); b[32:, 32:] = 1.0          # b at the bottom-right one
        >>> r = cross_check(a, b, names=("a", "b"), cell_px=32, top=0.25, low=0.5)
        >>> r["n_flagged"], sorted(c["higher"] for c in r["cells"])
        (2, ['a', 'b'])
    """
    a, b = np.asarray(map_a, np.float32), np.asarray(map_b, np.float32)
    if a.ndim != 2 or a.shape != b.shape:
        raise InvalidImageError(f"cross_check needs two (H, W) maps of one shape, got {a.shape} and {b.shape}")
    if not (4 <= cell_px <= 4096 and 0 < top < 1 and 0 < low < 1 and 0 < percentile <= 100):
        raise InvalidParameterError("cell_px must lie in 4..4096, top and low in (0, 1), percentile in (0, 100]")
    valid = np.ones(a.shape, bool) if valid is None else np.asarray(valid, bool)
    h, w = a.shape
    boxes, sa, sb = [], [], []
    for y0 in range(0, h, cell_px):
        for x0 in range(0, w, cell_px):
            sl = (slice(y0, min(h, y0 + cell_px)), slice(x0, min(w, x0 + cell_px)))
            ok = valid[sl]
            if ok.mean() < 0.5:
                continue
            boxes.append((x0, y0, min(w, x0 + cell_px), min(h, y0 + cell_px)))
            sa.append(float(np.percentile(a[sl][ok], percentile)))
            sb.append(float(np.percentile(b[sl][ok], percentile)))
    ra, rb = _ranks(np.asarray(sa)), _ranks(np.asarray(sb))
    flagged = []
    for box, x, y in zip(boxes, ra, rb, strict=True):
        if (x >= 1 - top and y < low) or (y >= 1 - top and x < low):
            flagged.append({"x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3],
                            "rank": {names[0]: round(float(x), 3), names[1]: round(float(y), 3)},
                            "higher": names[0] if x > y else names[1], "_gap": abs(float(x - y))})
    flagged.sort(key=lambda c: -c["_gap"])
    for c in flagged:
        del c["_gap"]
    corr = float(np.corrcoef(ra, rb)[0, 1]) if len(boxes) > 2 and ra.std() > 0 and rb.std() > 0 else None
    return {
        "methods": list(names), "cell_px": int(cell_px),
        "rule": (f"a cell of {cell_px} px is flagged when one map ranks it in its top {100 * top:g} % of cells and "
                 f"the other below {100 * low:g} % (cell score: {percentile:g}th percentile of the map in the cell)"),
        "cells_compared": len(boxes), "n_flagged": len(flagged),
        "flagged_fraction": round(len(flagged) / max(1, len(boxes)), 4),
        "rank_correlation": None if corr is None else round(corr, 4),
        "cells": flagged[:MAX_LISTED],
    }


def save_disagreement_figure(image: np.ndarray, result: dict[str, Any], path: str | Path) -> Path:
    """Draw the flagged cells of :func:`cross_check` on the visible image (one colour per map that ranks
    the cell higher) and save a PNG.

    Args:
        image: ``(H, W, 3)`` uint8 visible image.
        result: the dictionary returned by :func:`cross_check`.
        path: PNG file to write.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    names = result["methods"]
    colours = {names[0]: "#d62728", names[1]: "#1f77b4"}
    h, w = image.shape[:2]
    fig = Figure(figsize=(7.0, 7.0 * h / max(w, 1) + 0.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(image)
    for c in result["cells"]:
        ax.add_patch(Rectangle((c["x0"] - 0.5, c["y0"] - 0.5), c["x1"] - c["x0"], c["y1"] - c["y0"], fill=False,
                               edgecolor=colours[c["higher"]], linewidth=1.5))
    ax.set_title(f"Check here: {result['n_flagged']} of {result['cells_compared']} cells where {names[0]} and "
                 f"{names[1]} disagree", fontsize=9)
    ax.legend(handles=[Patch(edgecolor=colours[n], fill=False, label=f"only {n} points here") for n in names],
              loc="lower right", fontsize=7)
    ax.set_axis_off()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path
