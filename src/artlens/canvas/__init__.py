"""Canvas analysis: thread counting (:mod:`artlens.canvas.threads`); canvas matching and the Siamese
fabric model arrive with the canvas-comparison issue.

The domains (canvas, paintings, beneath) never import each other.
"""

from artlens.canvas.threads import SpectralParams, ThreadCountResult, count_threads_spectral

__all__ = ["SpectralParams", "ThreadCountResult", "count_threads_spectral"]
