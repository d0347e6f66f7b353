"""Figures and the self-contained HTML report of a canvas collection match (``artlens canvas match``).

:func:`similarity_matrix_figure` draws the same-roll probability matrix (and a second matrix: the
Siamese score, or the density-match p-value when no fabric model was used), plates ordered by
cluster; :func:`write_match_report` writes ``report.html`` with every image embedded as a data URI.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from artlens.report.figures import figure_to_png_bytes
from artlens.report.html import png_data_uri
from artlens.report.templating import render_template

__all__ = ["similarity_matrix_figure", "write_match_report"]


def similarity_matrix_figure(names: Sequence[str], prob: np.ndarray, second: np.ndarray | None = None, *,
                             order: Sequence[int] | None = None, second_title: str = "Siamese score",
                             threshold: float) -> Figure:
    """Matrix of same-roll probabilities (0..1) between plates, with a colour bar; cells above
    ``threshold`` are marked with a dot. ``second`` adds a panel with another matrix (p-values are
    drawn as ``-log10 p``)."""
    n = len(names)
    order = list(order) if order is not None else list(range(n))
    labels = [names[k] for k in order]
    panels = [("same-roll probability", np.asarray(prob)[np.ix_(order, order)], (0.0, 1.0), "probability")]
    if second is not None:
        m = np.asarray(second, float)[np.ix_(order, order)]
        if "p-value" in second_title:
            m = -np.log10(np.clip(m, 1e-6, 1))
            panels.append((second_title + " (−log10 p)", m, (0.0, max(3.0, float(np.nanmax(m, initial=0)))),
                           "−log10 p"))
        else:
            panels.append((second_title, m, (0.0, 1.0), "probability"))
    side = max(3.5, 0.28 * n + 2.0)
    fig = Figure(figsize=(side * len(panels) + 1.0, side))
    for k, (title, m, (lo, hi), unit) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        im = ax.imshow(m, vmin=lo, vmax=hi, cmap="viridis", interpolation="nearest")
        ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
        ax.set_title(title, fontsize=10)
        if k == 0:
            yy, xx = np.nonzero((m > threshold) & ~np.eye(n, dtype=bool))
            ax.plot(xx, yy, "w.", markersize=4)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=unit)
    fig.suptitle(f"Canvas collection: {n} plates (dots: probability above {threshold:g})", fontsize=11)
    fig.tight_layout()
    return fig


def write_match_report(out_dir: str | Path, summary: dict[str, Any], rows: list[dict[str, Any]], matrix: Figure,
                       evidence: Sequence[tuple[float, str, str, Any]], *, created: datetime | None = None) -> Path:
    """Write ``out_dir/report.html``: clusters with the rule that made them, the similarity matrix,
    every pair (sorted by probability) and the density-alignment figures of the strongest pairs
    (``evidence`` = ``(probability, name_a, name_b, DensityMatch)``)."""
    from artlens import __version__
    from artlens.canvas.matching import density_match_figure

    figs = [{"title": f"{a} ↔ {b}: probability {p:.2f}",
             "src": png_data_uri(figure_to_png_bytes(density_match_figure(m, (a, b))))} for p, a, b, m in evidence]
    html = render_template("canvas_match.html", {
        "title": "Canvas comparison: likely roll-mates", "version": __version__,
        "created": (created or datetime.now(UTC)).isoformat(timespec="seconds"), "s": summary,
        "rows": sorted(rows, key=lambda r: -r["same_roll_probability"]),
        "matrix_src": png_data_uri(figure_to_png_bytes(matrix)),
        "evidence": figs,
    })
    path = Path(out_dir) / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
