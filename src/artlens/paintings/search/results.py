"""What the search package hands back: :class:`Hit` (one search result) and :class:`IndexSummary`
(what :func:`~artlens.paintings.search.build_index` did)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Hit", "IndexSummary"]


@dataclass
class Hit:
    """One search result.

    Attributes:
        path: absolute path of the indexed image.
        score: final score, best first (the cosine, or the re-ranked score).
        rank: 1-based position in the result list.
        labels: the image's label columns (``artist``, ``style``, ...), empty values left out.
        cosine: cosine similarity to the query (equal to ``score`` unless re-ranked).
        graph_distance: hops between the query's and this image's artist in the influence graph
            (``None`` when not re-ranked, or unknown).
    """

    path: str
    score: float
    rank: int
    labels: dict[str, Any] = field(default_factory=dict)
    cosine: float | None = None
    graph_distance: float | None = None

    def __post_init__(self) -> None:
        if self.cosine is None:
            self.cosine = self.score

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-ready dict: path, score, rank, cosine, graph_distance, then the labels (a label
        whose name clashes with one of those keys is prefixed with ``label_``)."""
        out: dict[str, Any] = {"path": self.path, "score": float(self.score), "rank": int(self.rank),
                               "cosine": None if self.cosine is None else float(self.cosine),
                               "graph_distance": self.graph_distance}
        for k, v in self.labels.items():
            out[f"label_{k}" if k in out else k] = v
        return out


@dataclass
class IndexSummary:
    """What :func:`build_index` did.

    Attributes:
        index_dir: the index folder.
        images: images in the index.
        reused: of those, vectors reused from an earlier (possibly interrupted) build.
        embedded: images embedded in this run.
        failures: ``(path, reason)`` of the images skipped.
        embedder: embedder name.
        dim: vector length.
        faiss: FAISS type and parameters (as in ``index.json``).
    """

    index_dir: Path
    images: int
    reused: int
    embedded: int
    failures: list[tuple[str, str]]
    embedder: str
    dim: int
    faiss: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """``{"index", "images", "reused", "failures", "embedder", "dim", "faiss"}`` (failures as a count)."""
        return {"index": str(self.index_dir), "images": self.images, "reused": self.reused,
                "failures": len(self.failures), "embedder": self.embedder, "dim": self.dim, "faiss": self.faiss}

