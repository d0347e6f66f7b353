"""Self-contained HTML report of same-artist verification: pair, reference set, or many pairs."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from artlens import __version__
from artlens.report.templating import render_template


def thumbnail_uri(path: str | Path, max_side: int = 360) -> str:
    """A JPEG data URI of an image file, reduced to ``max_side`` px; empty when unreadable."""
    from artlens.errors import ArtlensError
    from artlens.paintings.images import load_rgb

    try:
        img = load_rgb(path, notify=False, min_side=max_side // 2)
    except ArtlensError:
        return ""
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def write_verification_report(path: str | Path, mode: str, result: Any, verifier: dict[str, Any],
                              max_rows: int = 200) -> Path:
    """Write the report for ``mode`` ``"pair"`` (result: one pair dict, with ``heatmaps``),
    ``"reference"`` (:func:`~artlens.paintings.verify.verify_against_reference`), ``"attribution"``
    (``{"results": [...], "skipped": [...]}`` from :func:`~artlens.paintings.attribution.attribute_paths`)
    or ``"pairs"`` (list)."""
    ctx: dict[str, Any] = {"version": __version__, "created": datetime.now(UTC).isoformat(timespec="seconds"),
                           "v": verifier, "mode": mode, "r": result, "images": [], "rows": []}
    if mode == "pair":
        ctx["title"] = "Same-artist verification"
        for tag in ("a", "b"):
            ctx["images"].append({"uri": thumbnail_uri(result[tag], 520), "caption": result[tag]})
        for tag, png in (result.get("heatmaps") or {}).items():
            ctx["images"].append({"uri": thumbnail_uri(png, 520), "caption": f"Grad-CAM of {tag.upper()}: {png}"})
    elif mode == "reference":
        ctx["title"] = "Verification against a reference set"
        ctx["query_uri"] = thumbnail_uri(result["query"])
        ctx["rows"] = [{**c, "uri": thumbnail_uri(c["path"])} for c in result["closest"]]
    elif mode == "attribution":
        ctx["title"] = "Attribution against reference sets"
        for r in list(result["results"])[:max_rows]:
            ranking = [{**c, "closest": [{**x, "uri": thumbnail_uri(x["path"], 200)} for x in c["closest"]]}
                       for c in r["ranking"]]
            names = {"a": "Grad-CAM of the questioned work", "b": "Grad-CAM of its closest reference work"}
            cams = [{"uri": thumbnail_uri(png, 260), "caption": names[t]}
                    for t, png in (r.get("heatmaps") or {}).items() if t in names]
            ctx["rows"].append({**r, "uri": thumbnail_uri(r["image"]), "ranking": ranking, "cams": cams})
    else:
        ctx["title"] = "Same-artist verification of pairs"
        for r in list(result)[:max_rows]:
            p = r.get("same_artist_probability")
            prob = f"{p:.3f}" if p is not None else r.get("error", "")
            t = r.get("typicality")
            ctx["rows"].append({"a": r["a"], "b": r["b"], "prob": prob, "uri_a": thumbnail_uri(r["a"], 200),
                                "uri_b": thumbnail_uri(r["b"], 200),
                                "note": t["reason"] if t and t["status"] != "typical" else ""})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_template("verification.html", ctx, strict=False), encoding="utf-8")
    return path
