"""How a plate's pixels reach a thread counter: reading it band by band, resampling to a model's
resolution, and scaling crops to 0..1.

The spectral counter only reads (:func:`plate_source`); the CNNs (:mod:`artlens.canvas.threads.cnn`,
:mod:`artlens.canvas.threads.phase`), their training (:mod:`artlens.train.threads`) and the fabric
models (:mod:`artlens.canvas.fabric`) also resample (:func:`resample_crop`, :func:`resampled_rows`) and
scale (:func:`normalise_crops`) the same way. numpy and Pillow only (no torch).

Example:
    >>> import numpy as np
    >>> src = plate_source(np.arange(12.0).reshape(3, 4), px_per_cm=100.0)
    >>> src.shape, src.px_per_cm, src.rows(1, 2).tolist()
    ((3, 4), 100.0, [[4.0, 5.0, 6.0, 7.0]])
    >>> crops = normalise_crops(np.stack([np.linspace(0, 50, 100).reshape(10, 10)]))
    >>> crops.shape, crops.dtype, float(crops.min()), float(crops.max())
    ((1, 10, 10), dtype('float32'), 0.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from artlens.errors import InvalidImageError, InvalidParameterError
from artlens.io.image import Plate

RowReader = Callable[[int, int], np.ndarray]
"""``rows(y0, y1)``: plate rows ``y0:y1`` (all columns) as a 2-D array."""


@dataclass(frozen=True)
class PlateSource:
    """A plate as the counters read it.

    Attributes:
        rows: :data:`RowReader` (a :class:`~artlens.io.Plate` reads only those rows from its file).
        shape: ``(rows, cols)``, px.
        px_per_cm: resolution, px/cm.
    """

    rows: RowReader
    shape: tuple[int, int]
    px_per_cm: float


def plate_source(plate: Plate | np.ndarray, px_per_cm: float | None = None) -> PlateSource:
    """A :class:`~artlens.io.Plate` (read band by band) or a 2-D array as a :class:`PlateSource`.

    Args:
        px_per_cm: resolution, px/cm; overrides the plate's own, required for an array.

    Raises:
        InvalidImageError: an array that is not 2-D.
        InvalidParameterError: an array without ``px_per_cm``.
        MissingResolutionError: a plate without a resolution and no ``px_per_cm``.
    """
    if isinstance(plate, np.ndarray):
        if plate.ndim != 2:
            raise InvalidImageError(f"expected a 2-D grayscale array, got shape {plate.shape}")
        if px_per_cm is None:
            raise InvalidParameterError("px_per_cm is required when counting an array", param="px_per_cm")
        array = plate.astype(np.float32, copy=False)

        def read_rows(y0: int, y1: int) -> np.ndarray:
            return array[y0:y1]

        return PlateSource(read_rows, (int(plate.shape[0]), int(plate.shape[1])), float(px_per_cm))
    ppc = float(px_per_cm) if px_per_cm is not None else plate.require_px_per_cm()
    return PlateSource(plate.rows, plate.shape, ppc)


def resample_crop(crop: np.ndarray, src_px_per_cm: float, dst_px_per_cm: float, size: int) -> np.ndarray:
    """Resample a square crop to ``size × size`` px at ``dst_px_per_cm`` (box filter), float32."""
    if crop.shape[0] == size and crop.shape[1] == size and abs(src_px_per_cm - dst_px_per_cm) < 1e-6:
        return crop.astype(np.float32, copy=False)
    img = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32), mode="F")
    return np.asarray(img.resize((size, size), Image.Resampling.BOX), dtype=np.float32)


def resampled_rows(rows: RowReader, shape: tuple[int, int], scale: float) -> RowReader:
    """``read(Y0, Y1)``: rows ``Y0:Y1`` of the plate resampled by ``scale`` (model px per plate px),
    float32, ``floor(cols * scale / 2) * 2`` columns wide (box filter when shrinking, bilinear when
    enlarging)."""
    h, w = shape
    wm = int(np.floor(w * scale / 2)) * 2

    def read(y0: int, y1: int) -> np.ndarray:
        if scale == 1.0:
            return np.asarray(rows(y0, y1), dtype=np.float32)[:, :wm]
        top, bottom = y0 / scale, y1 / scale  # plate rows covered, fractional
        a, b = max(0, int(np.floor(top)) - 1), min(h, int(np.ceil(bottom)) + 1)
        src = Image.fromarray(np.ascontiguousarray(rows(a, b), dtype=np.float32), mode="F")
        box = (0.0, top - a, wm / scale, bottom - a)
        filt = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
        return np.asarray(src.resize((wm, y1 - y0), filt, box=box), dtype=np.float32)

    return read


def normalise_crops(crops: np.ndarray) -> np.ndarray:
    """Per-crop robust min-max scaling to 0..1 (1st–99th percentile), ``(N, S, S)`` float32."""
    flat = crops.reshape(crops.shape[0], -1)
    lo = np.percentile(flat, 1, axis=1)[:, None, None]
    hi = np.percentile(flat, 99, axis=1)[:, None, None]
    out = (crops - lo) / np.maximum(hi - lo, 1e-6)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
