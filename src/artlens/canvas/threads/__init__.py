"""Thread counting in canvas X-rays: per-window densities and angles, as maps over a plate."""

from artlens.canvas.threads.labels import LabelledCrop, import_labels, load_labelled_crops, mask_density
from artlens.canvas.threads.result import DIRECTIONS, DirectionMaps, ThreadCountResult
from artlens.canvas.threads.sampling import sample_plate
from artlens.canvas.threads.spectral import SpectralParams, count_threads_spectral

__all__ = [
    "DIRECTIONS",
    "DirectionMaps",
    "LabelledCrop",
    "SpectralParams",
    "ThreadCountResult",
    "count_threads_spectral",
    "import_labels",
    "load_labelled_crops",
    "mask_density",
    "sample_plate",
]
