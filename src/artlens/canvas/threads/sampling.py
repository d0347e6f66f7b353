"""Cut random square samples from an X-ray plate for labelling (labelme) and training.

:func:`sample_plate` places ``n`` squares of ``size_cm`` at random without overlap, writes each as an
8-bit TIFF with its resolution in px/cm (labelme and :func:`artlens.io.open_plate` both read it), and
lists them in ``samples.csv``. ``artlens threads import-labels`` later reads that CSV to know which
plate each labelled sample came from (datasets are split by plate, never by crop).
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from artlens.canvas.threads.labels import to_uint8
from artlens.errors import InvalidImageError, InvalidParameterError

SAMPLE_COLUMNS = ("name", "plate", "plate_sha256", "x_cm", "y_cm", "size_cm", "px_per_cm",
                  "x0_px", "y0_px", "size_px")
_TRIES_PER_SAMPLE = 200


def _value_range(plate: Any, dtype: np.dtype, band_rows: int = 2048) -> tuple[float, float] | None:
    """The plate's min..max, streamed in bands of rows; ``None`` for 8-bit plates (kept as they are)."""
    if dtype == np.uint8:
        return None
    h = plate.shape[0]
    lo, hi = math.inf, -math.inf
    for y in range(0, h, band_rows):
        rows = plate.rows(y, min(h, y + band_rows))
        lo, hi = min(lo, float(rows.min())), max(hi, float(rows.max()))
    return lo, hi


def _place(rng: np.random.Generator, n: int, shape: tuple[int, int], size: int,
           min_dist: int) -> tuple[list[tuple[int, int]], int]:
    """``n`` top-left corners ``(y, x)`` of ``size``-px squares inside ``shape``, pairwise at least
    ``min_dist`` px apart along y or x (Chebyshev distance). Random sequential placement first; when
    that jams, a randomly shifted grid of pitch ``min_dist`` with random cells; when even the grid
    is too small, the remaining squares are placed anywhere. Returns the corners and how many of
    them had to overlap."""
    h, w = shape
    span_y, span_x = h - size, w - size
    placed: list[tuple[int, int]] = []
    if min_dist <= 0:
        ys, xs = rng.integers(0, span_y + 1, n), rng.integers(0, span_x + 1, n)
        return [(int(y), int(x)) for y, x in zip(ys, xs, strict=True)], 0
    arr = np.empty((0, 2), dtype=np.int64)
    for _ in range(_TRIES_PER_SAMPLE * n):
        if len(placed) == n:
            break
        y, x = int(rng.integers(0, span_y + 1)), int(rng.integers(0, span_x + 1))
        if arr.size and (np.maximum(abs(arr[:, 0] - y), abs(arr[:, 1] - x)) < min_dist).any():
            continue
        placed.append((y, x))
        arr = np.asarray(placed, dtype=np.int64)
    if len(placed) == n:
        return placed, 0
    ny, nx = span_y // min_dist + 1, span_x // min_dist + 1
    if ny * nx >= n:  # a grid holds them all
        oy = int(rng.integers(0, span_y - (ny - 1) * min_dist + 1))
        ox = int(rng.integers(0, span_x - (nx - 1) * min_dist + 1))
        cells = rng.choice(ny * nx, size=n, replace=False)
        return [(oy + int(c // nx) * min_dist, ox + int(c % nx) * min_dist) for c in cells], 0
    grid = [((span_y - (ny - 1) * min_dist) // 2 + i * min_dist, (span_x - (nx - 1) * min_dist) // 2 + j * min_dist)
            for i in range(ny) for j in range(nx)]
    extra = n - len(grid)
    ys, xs = rng.integers(0, span_y + 1, extra), rng.integers(0, span_x + 1, extra)
    return grid + [(int(y), int(x)) for y, x in zip(ys, xs, strict=True)], extra


def sample_plate(plate_path: str | os.PathLike[str], n: int, out_dir: str | os.PathLike[str], size_cm: float = 1.5,
                 seed: int = 0, px_per_cm: float | None = None,
                 min_distance_cm: float | None = None) -> list[dict[str, Any]]:
    """Cut ``n`` random square samples from a plate and write them for labelling.

    Samples are squares of ``round(size_cm * px_per_cm)`` px placed uniformly at random, pairwise at
    least ``min_distance_cm`` apart along x or y (default ``size_cm``: squares may touch, never
    overlap). When that many do not fit, a notice is issued and the rest overlap. The placement
    depends only on ``seed``, the plate's size and the parameters.

    Each sample is written as ``out_dir/<plate-stem>_<NNN>.tif`` (NNN from 001): 8-bit grayscale,
    uncompressed, ResolutionUnit CENTIMETER with X/YResolution = px/cm, and an ImageDescription
    holding JSON provenance (plate, sha256, corner, value range). 8-bit plates keep their values;
    other plates are mapped linearly from the plate's min..max onto 0..255, the same map for every
    sample (no equalisation, so samples of a plate stay comparable). ``out_dir/samples.csv`` lists
    ``name, plate, plate_sha256, x_cm, y_cm, size_cm, px_per_cm, x0_px, y0_px, size_px``, where
    ``x_cm``/``y_cm`` are the sample's centre on the plate and ``x0_px``/``y0_px`` its top-left
    corner.

    Args:
        plate_path: any image :func:`artlens.io.open_plate` reads.
        n: number of samples (>= 1).
        out_dir: output folder (created; existing samples of the same names are replaced).
        size_cm: side of each sample, cm.
        seed: random seed.
        px_per_cm: resolution override; default the plate's resolution tags.
        min_distance_cm: smallest distance between two samples' corners along x or y, cm;
            ``None`` = ``size_cm``, 0 allows any overlap.

    Returns:
        The rows of ``samples.csv`` as dicts, each with an extra ``path``.

    Raises:
        InvalidParameterError: ``n``, ``size_cm`` or ``min_distance_cm`` out of range.
        InvalidImageError: the plate is smaller than one sample.
        InputNotFoundError, UnreadableInputError, MissingResolutionError: from ``open_plate``.
    """
    import tifffile

    from artlens.io import open_plate

    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InvalidParameterError(f"n must be a whole number >= 1, got {n!r}", param="n")
    if not (math.isfinite(size_cm) and size_cm > 0):
        raise InvalidParameterError(f"size_cm must be a positive number, got {size_cm}", param="size_cm")
    if min_distance_cm is not None and not (math.isfinite(min_distance_cm) and min_distance_cm >= 0):
        raise InvalidParameterError(f"min_distance_cm must be >= 0, got {min_distance_cm}",
                                    param="min_distance_cm")
    out = Path(out_dir)
    with open_plate(plate_path, px_per_cm=px_per_cm, require_resolution=True) as plate:
        ppc = float(plate.px_per_cm)  # type: ignore[arg-type]
        size = int(round(size_cm * ppc))
        h, w = plate.shape
        if size < 2:
            raise InvalidParameterError(f"size_cm {size_cm:g} is {size} px at {ppc:g} px/cm; too small",
                                        param="size_cm")
        if size > h or size > w:
            raise InvalidImageError(f"{plate.path.name} is {h}x{w} px ({h / ppc:.2f} x {w / ppc:.2f} cm), "
                                    f"smaller than one {size_cm:g} cm sample ({size} px)")
        min_dist = size if min_distance_cm is None else int(round(min_distance_cm * ppc))
        rng = np.random.default_rng(seed)
        corners, overlapping = _place(rng, int(n), (h, w), size, min_dist)
        if overlapping:
            warnings.warn(f"only {n - overlapping} of {n} samples of {size_cm:g} cm fit {min_dist / ppc:g} cm apart "
                          f"on {plate.path.name}; {overlapping} overlap others", UserWarning, stacklevel=2)
        dtype = np.dtype(plate.info.dtype)
        value_range = _value_range(plate, dtype)  # of the grayscale (luminance) values that read() returns
        stem, sha = plate.path.stem, plate.sha256
        digits = max(3, len(str(n)))
        out.mkdir(parents=True, exist_ok=True)
        rows = []
        for i, (y0, x0) in enumerate(corners, start=1):
            name = f"{stem}_{i:0{digits}d}"
            block = plate.read(y0, x0, size, size)
            pixels = to_uint8(block, dtype, value_range)
            description = json.dumps({"artlens_sample": {
                "plate": plate.path.name, "plate_sha256": sha, "x0_px": x0, "y0_px": y0, "size_px": size,
                "px_per_cm": ppc, "value_range": value_range, "seed": seed}})
            path = out / f"{name}.tif"
            tifffile.imwrite(path, pixels, photometric="minisblack", resolution=(ppc, ppc),
                             resolutionunit="CENTIMETER", description=description, metadata=None)
            rows.append({
                "name": name, "plate": stem, "plate_sha256": sha,
                "x_cm": round((x0 + size / 2) / ppc, 4), "y_cm": round((y0 + size / 2) / ppc, 4),
                "size_cm": round(size / ppc, 6), "px_per_cm": ppc, "x0_px": x0, "y0_px": y0, "size_px": size,
                "path": str(path),
            })
    tmp = out / "samples.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=SAMPLE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out / "samples.csv")
    return rows
