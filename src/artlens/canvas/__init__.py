"""Canvas analysis: thread counting (:mod:`artlens.canvas.threads`), density-map matching
(:mod:`artlens.canvas.matching`), the fabric comparison (yarn statistics, :mod:`artlens.canvas.yarn`; the
fabric models, :mod:`artlens.canvas.fabric`, imports torch)
and collection-wide comparison (:mod:`artlens.canvas.collection`).

The domains (canvas, paintings, beneath) never import each other.
"""

from artlens.canvas.threads import (
    CnnParams,
    SpectralParams,
    ThreadCountResult,
    WindowGrid,
    count_threads,
    count_threads_spectral,
)

__all__ = ["CnnParams", "SpectralParams", "ThreadCountResult", "WindowGrid", "count_threads", "count_threads_spectral"]
