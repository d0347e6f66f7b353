"""Self-contained HTML report of a similarity search (``artlens search ... --report OUT.html``).

The query's thumbnail, then the ranked results with their thumbnails (PNG data URIs, at most
``thumb_px`` on a side), final score, cosine, influence-graph distance when re-ranked and labels,
and a provenance table (index, embedder and its checksum, FAISS type, artlens version).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from artlens.report.html import png_data_uri
from artlens.report.templating import render_template

__all__ = ["render_search_report", "thumbnail_data_uri", "write_search_report"]


def thumbnail_data_uri(path: str | Path, max_px: int = 160) -> str | None:
    """A PNG data URI of a small thumbnail of an image file, or ``None`` when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as src:
            src.draft("RGB", (max_px, max_px))  # JPEG: decode at a reduced scale
            im = src.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    im.thumbnail((max_px, max_px))
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return png_data_uri(buf.getvalue())


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def render_search_report(
    query_path: str | Path,
    hits: Sequence[Any],
    index_record: Mapping[str, Any],
    *,
    index_dir: str | Path | None = None,
    reranked: bool = False,
    rerank: Mapping[str, Any] | None = None,
    rerank_note: str | None = None,
    query_labels: Mapping[str, Any] | None = None,
    query_artist: str | None = None,
    title: str | None = None,
    thumb_px: int = 160,
    created: datetime | None = None,
) -> str:
    """The report's HTML as a string; see :func:`write_search_report`."""
    from artlens import __version__

    emb = dict(index_record.get("embedder") or {})
    faiss = dict(index_record.get("faiss") or {})
    faiss_text = faiss.get("class", "?") + "".join(
        f", {k} {v}" for k, v in faiss.items() if k in ("M", "efSearch", "nlist", "nprobe", "rerank"))
    results = []
    for h in hits:
        results.append({
            "rank": h.rank,
            "src": thumbnail_data_uri(h.path, thumb_px),
            "score": _fmt(float(h.score)),
            "cosine": _fmt(None if h.cosine is None else float(h.cosine)),
            "graph_distance": _fmt(h.graph_distance),
            "labels": [(str(k), str(v)) for k, v in (h.labels or {}).items()],
            "name": str(h.path),
        })
    provenance = [
        ("index", str(index_dir) if index_dir is not None else "–"),
        ("indexed images", str(index_record.get("count", "–"))),
        ("embedder", str(emb.get("name", "–"))),
        ("embedder config", json.dumps(emb.get("config", {}), sort_keys=True)),
        ("embedder checksum", str(emb.get("checksum") or "none (training-free)")),
        ("vector length", str(index_record.get("dim", "–"))),
        ("FAISS", json.dumps(faiss, sort_keys=True)),
        ("index built", str(index_record.get("created_utc", "–"))),
        ("index built by artlens", str(index_record.get("artlens_version", "–"))),
        ("report by artlens", __version__),
    ]
    return render_template("search.html", {
        "title": title or f"Similar images: {Path(query_path).name}",
        "version": __version__,
        "created": (created or datetime.now(UTC)).isoformat(timespec="seconds"),
        "thumb_px": int(thumb_px),
        "index": {"count": index_record.get("count", "?"), "embedder": emb.get("name", "?"), "faiss": faiss_text},
        "query": {"path": str(query_path), "src": thumbnail_data_uri(query_path, thumb_px * 2),
                  "labels": [(str(k), str(v)) for k, v in (query_labels or {}).items()], "artist": query_artist},
        "reranked": bool(reranked),
        "rerank": {"top": "?", "weight": "?", "damping": "?", "graph": "",
                   **{k: str(v) for k, v in (rerank or {}).items()}},
        "rerank_note": rerank_note,
        "results": results,
        "provenance": provenance,
    })


def write_search_report(
    out_path: str | Path,
    query_path: str | Path,
    hits: Sequence[Any],
    index_record: Mapping[str, Any],
    **kwargs: Any,
) -> Path:
    """Write a self-contained HTML page of search results.

    Args:
        out_path: the ``.html`` file to write (parents created).
        query_path: the query image.
        hits: ranked :class:`~artlens.paintings.search.Hit` results.
        index_record: the index's ``index.json`` record (embedder, checksum, FAISS, count, version).
        **kwargs: ``index_dir``, ``reranked``, ``rerank`` (``{"top", "weight", "damping", "graph"}``),
            ``rerank_note``, ``query_labels``, ``query_artist``, ``title``, ``thumb_px``, ``created``
            (see :func:`render_search_report`).

    Returns:
        The path written.
    """
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_search_report(query_path, hits, index_record, **kwargs), encoding="utf-8")
    return out
