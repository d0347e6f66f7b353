"""The contract between image encoders and what uses their vectors (search index, maps, verifiers).

An :class:`Embedder` turns image files into L2-normalised float32 vectors. Files that cannot be
read are reported in :attr:`EmbedBatch.failures` and skipped, so one bad image never stops a
collection from being indexed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class EmbedBatch:
    """Vectors of the images that could be read, in input order, and why the others could not.

    Attributes:
        paths: paths (as given) of the embedded images.
        vectors: ``(len(paths), dim)`` float32, each row L2-normalised.
        failures: ``(path, one-line reason)`` for every image that was skipped.
    """

    paths: list[str]
    vectors: np.ndarray
    failures: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.paths):
            raise ValueError(f"vectors shape {self.vectors.shape} does not match {len(self.paths)} paths")


@runtime_checkable
class Embedder(Protocol):
    """Anything that embeds image files.

    Attributes:
        name: short identifier recorded with every index (``"lite0-multicrop"``, ``"colour-histogram"``).
        dim: vector length.
        checksum: SHA-256 of the weights it uses, or ``None`` for training-free encoders.
        config: JSON-ready settings that change the vectors (image size, crops, ...).
    """

    name: str
    dim: int
    checksum: str | None
    config: dict[str, Any]

    def embed_paths(self, paths: Sequence[str | os.PathLike[str]]) -> EmbedBatch:
        """Embed ``paths``; unreadable ones go to :attr:`EmbedBatch.failures`."""
        ...


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``x`` scaled to unit Euclidean length (float32); all-zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, eps)
