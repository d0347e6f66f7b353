"""Thread counting in canvas X-rays: per-window densities and angles, as maps over a plate."""

from artlens.canvas.threads.result import DIRECTIONS, DirectionMaps, ThreadCountResult
from artlens.canvas.threads.spectral import SpectralParams, count_threads_spectral

__all__ = ["DIRECTIONS", "DirectionMaps", "SpectralParams", "ThreadCountResult", "count_threads_spectral"]
