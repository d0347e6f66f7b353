"""Thread counting in canvas X-rays: per-window densities and angles, as maps over a plate.

One entry point, :func:`count_threads` ``(plate, method="spectral" | "cnn", params=...)``, with one
parameters object per method (:class:`SpectralParams`, :class:`CnnParams`), over one window grid
(:class:`WindowGrid`). Importing this package does not import torch (the CNN imports it when it runs).
"""

from artlens.canvas.threads.cnn import CnnParams
from artlens.canvas.threads.count import METHODS, count_threads
from artlens.canvas.threads.grid import DEFAULT_STEP_CM, DEFAULT_WINDOW_CM, WindowGrid
from artlens.canvas.threads.labels import LabelledCrop, import_labels, load_labelled_crops, mask_density
from artlens.canvas.threads.result import DIRECTIONS, DirectionMaps, ThreadCountResult
from artlens.canvas.threads.sampling import sample_plate
from artlens.canvas.threads.spectral import SpectralParams, count_threads_spectral

__all__ = [
    "DEFAULT_STEP_CM",
    "DEFAULT_WINDOW_CM",
    "DIRECTIONS",
    "METHODS",
    "CnnParams",
    "DirectionMaps",
    "LabelledCrop",
    "SpectralParams",
    "ThreadCountResult",
    "WindowGrid",
    "count_threads",
    "count_threads_spectral",
    "import_labels",
    "load_labelled_crops",
    "mask_density",
    "sample_plate",
]
