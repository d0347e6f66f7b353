"""Self-contained HTML report of a ``beneath`` comparison: both images, the registration, the heatmaps.

One ``report.html``: images are embedded as base64 data URIs and the CSS is inline, so the file can be
mailed, archived or opened offline. Built from the summary that
:func:`artlens.beneath.compare.compare_views` writes.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from artlens import __version__
from artlens.report.templating import render_template

__all__ = ["write_beneath_report"]


def _uri(png: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(png).decode("ascii")


def _image_uri(image: np.ndarray, max_side: int = 900) -> str:
    """A PNG data URI of a uint8 ``(H, W)`` or ``(H, W, 3)`` image, reduced to ``max_side`` px."""
    from PIL import Image

    im = Image.fromarray(np.asarray(image))
    im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return _uri(buf.getvalue())


def _file_uri(path: str | Path) -> str:
    p = Path(path)
    return _uri(p.read_bytes()) if p.is_file() else ""


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


def write_beneath_report(path: str | Path, summary: dict[str, Any], visible: np.ndarray,
                         other_png: str | Path) -> Path:
    """Write ``report.html`` for one comparison.

    Args:
        path: the HTML file to write.
        summary: the comparison summary (``method``, ``method_description``, ``pixel``, ``disagreement``,
            ``registration``, ``heatmaps``, ``graph``, ``model``, ``sources``, ``timings_s``, ``notes``,
            ``provenance``).
        visible: ``(H, W, 3)`` uint8 visible image.
        other_png: the registered, normalised other view as a PNG file.
    """
    reg = summary["registration"]
    reg_rows = [(k, _fmt(reg.get(k))) for k in ("method_used", "skipped", "residual_px", "scale", "rotation_deg",
                                                 "translation_px", "ncc", "inliers", "tiles_used", "nonrigid")]
    heatmaps = [{"name": name, "primary": name == summary.get("heatmap_name"), "src": _file_uri(files["png"]),
                 "npy": files["npy"], "meaning": files["meaning"], "label": files["label"]}
                for name, files in summary["heatmaps"].items()]
    model = summary.get("model") or {}
    ctx = {
        "title": f"Beneath the surface — {Path(summary['sources']['visible']['path']).name} vs "
                 f"{Path(summary['sources']['other']['path']).name}",
        "version": __version__, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "s": summary, "visible_src": _image_uri(visible), "other_src": _file_uri(other_png),
        "reg_rows": reg_rows, "reg_notes": reg.get("notes", []), "heatmaps": heatmaps,
        "graph_rows": [(k, _fmt(v)) for k, v in (summary.get("graph") or {}).items()],
        "model_rows": [(k, _fmt(model.get(k))) for k in ("name", "sha256", "training", "path")] if model else [],
        "timing_rows": [(k, f"{v:.2f}") for k, v in summary.get("timings_s", {}).items()],
        "source_rows": [(view, s["path"], s["modality"], f"{s['shape'][1]} × {s['shape'][0]}", s["bit_depth"],
                         s["sha256"][:16] + "…") for view, s in summary["sources"].items()],
        "notes": summary.get("notes", []),
        "method_description": summary.get("method_description", ""),
        "disagreement_src": _file_uri((summary.get("disagreement") or {}).get("figure", "")),
        "pixel_rows": [(k, _fmt(v)) for k, v in (summary.get("pixel") or {}).items() if k != "params"]
        + [(f"parameter {k}", _fmt(v)) for k, v in ((summary.get("pixel") or {}).get("params") or {}).items()],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_template("beneath.html", ctx, strict=False), encoding="utf-8")
    return path
