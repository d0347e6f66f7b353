"""Deep-zoom tiles made on demand from the full-resolution image and cached on disk (Deep Zoom / DZI).

The scheme is Microsoft's Deep Zoom Image layout, so OpenSeadragon could open it too; artlens' own
viewer shows it with Leaflet (``L.CRS.Simple``, Leaflet zoom ``z`` = DZI level ``z``):

- ``/tiles/{id}.dzi``: the XML descriptor (``TileSize`` 256, ``Overlap`` 0, ``Format`` jpg, full size).
- ``/tiles/{id}_files/{level}/{col}_{row}.jpg``: level ``L`` is the image scaled by ``2**(L - max_level)``
  with ``max_level = ceil(log2(max(width, height)))``; tiles are 256 px, the last column and row smaller.

Nothing is built eagerly. A tile at downsample ``d <= overview factor`` reads only its region of the full
image (memory-mapped or chunked TIFF reads, see :class:`PixelSource`), averaging ``d x d`` blocks; coarser
tiles are cut from an *overview* (the image averaged down to at most :data:`OVERVIEW_MAX_SIDE` px, made
once per image by a strided read). 16-bit and float images are mapped to 8 bits between the 0.5th and
99.5th percentiles of the overview. Every tile is written to ``DATA/tiles/<sha256>/<level>/<col>_<row>.jpg``
and served from there afterwards.
"""

from __future__ import annotations

import io
import math
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

TILE = 256
OVERVIEW_MAX_SIDE = 2048
JPEG_QUALITY = 88
_OPEN_SOURCES = 4


def max_level(width: int, height: int) -> int:
    """The DZI level at full resolution: ``ceil(log2(max side))``."""
    return max(0, math.ceil(math.log2(max(width, height, 1))))


def level_size(width: int, height: int, level: int) -> tuple[int, int]:
    """``(width, height)`` of the image at DZI ``level``."""
    d = 2 ** (max_level(width, height) - level)
    return max(1, math.ceil(width / d)), max(1, math.ceil(height / d))


def dzi_xml(width: int, height: int) -> str:
    """The ``.dzi`` descriptor."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" TileSize="{TILE}" Overlap="0" Format="jpg">'
            f'<Size Width="{width}" Height="{height}"/></Image>\n')


class PixelSource:
    """Windowed reads of an image's raw samples (gray or RGB), without loading a big TIFF whole.

    Uncompressed TIFF pages are memory-mapped read-only; compressed or tiled pages are read through
    tifffile's zarr store; PNG, JPEG and BMP are decoded once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            self.array = self._open_tiff(path)
        else:
            self.array = self._open_pil(path)
        self.height, self.width = int(self.array.shape[0]), int(self.array.shape[1])

    def _open_tiff(self, path: Path) -> Any:
        import tifffile

        tf = tifffile.TiffFile(path, mode="r")  # tifffile opens files in binary mode ("r" is "rb")
        self._handle = tf
        page = tf.pages[0]
        if page.is_memmappable:
            dtype = np.dtype(page.dtype).newbyteorder(page.parent.byteorder)
            return np.memmap(path, dtype=dtype, mode="r", offset=page.dataoffsets[0], shape=page.shape)
        import zarr

        return zarr.open(page.aszarr(), mode="r")

    @staticmethod
    def _open_pil(path: Path) -> np.ndarray:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = None  # the upload limit applies instead
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                return np.asarray(im)
            if im.mode in ("1", "L", "LA", "La"):
                return np.asarray(im.convert("L"))
            return np.asarray(im.convert("RGB"))

    def read(self, y0: int, x0: int, y1: int, x1: int, step: int = 1) -> np.ndarray:
        """Samples ``[y0:y1:step, x0:x1:step]`` as ``float32`` of shape ``(h, w)`` or ``(h, w, 3)``."""
        block = np.asarray(self.array[y0:y1:step, x0:x1:step])
        if block.ndim == 3:
            block = block[..., :3] if block.shape[2] >= 3 else block[..., 0]
        return block.astype(np.float32, copy=False)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Average ``f x f`` blocks; a ragged last row/column of blocks averages what it has."""
    if f == 1:
        return a
    h, w = a.shape[:2]
    ph, pw = (-h) % f, (-w) % f
    if ph or pw:
        pad = ((0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 2)
        a = np.pad(a, pad, mode="edge")
    hh, ww = a.shape[0] // f, a.shape[1] // f
    return a.reshape(hh, f, ww, f, *a.shape[2:]).mean(axis=(1, 3))


class TileImage:
    """One image's pyramid: its source, overview and display levels; tiles are written to ``cache_dir``."""

    def __init__(self, path: Path, cache_dir: Path) -> None:
        self.source = PixelSource(path)
        self.cache_dir = cache_dir
        self.width, self.height = self.source.width, self.source.height
        self.max_level = max_level(self.width, self.height)
        side = max(self.width, self.height)
        over = max(1.0, side / OVERVIEW_MAX_SIDE)
        self.overview_factor = 1 << math.ceil(math.log2(over))  # a power of two, so levels line up
        self._overview: np.ndarray | None = None
        self._levels: tuple[float, float] | None = None
        self._lock = threading.Lock()

    # overview and display levels -----------------------------------------------------------------
    def overview(self) -> np.ndarray:
        """The image averaged by :attr:`overview_factor` (cached in memory and on disk)."""
        with self._lock:
            if self._overview is None:
                npy = self.cache_dir / "overview.npy"
                if npy.exists():
                    self._overview = np.load(npy)
                else:
                    self._overview = self._make_overview()
                    self.cache_dir.mkdir(parents=True, exist_ok=True)
                    tmp = npy.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp.npy")
                    np.save(tmp, self._overview)
                    os.replace(tmp, npy)
            return self._overview

    def _make_overview(self) -> np.ndarray:
        f = self.overview_factor
        step = max(1, f // 4)  # strided read, then average (f / step) blocks: fast and hardly aliased
        band = f * max(1, 2048 // f)
        parts = []
        for y in range(0, self.height, band):
            rows = self.source.read(y, 0, min(y + band, self.height), self.width, step)
            parts.append(_block_mean(rows, f // step).astype(np.float32))
        return np.concatenate(parts, axis=0)

    def display_levels(self) -> tuple[float, float]:
        """Sample values shown as black and white: the dtype's range for 8-bit, percentiles otherwise."""
        if self._levels is None:
            dtype = self.source.array.dtype
            if dtype == np.uint8:
                self._levels = (0.0, 255.0)
            else:
                ov = self.overview()
                lo, hi = (float(v) for v in np.percentile(ov, [0.5, 99.5]))
                self._levels = (lo, hi if hi > lo else lo + 1.0)
        return self._levels

    # tiles ---------------------------------------------------------------------------------------
    def tile_path(self, level: int, col: int, row: int) -> Path:
        return self.cache_dir / str(level) / f"{col}_{row}.jpg"

    def valid(self, level: int, col: int, row: int) -> bool:
        if not 0 <= level <= self.max_level or col < 0 or row < 0:
            return False
        w, h = level_size(self.width, self.height, level)
        return col * TILE < w and row * TILE < h

    def tile(self, level: int, col: int, row: int) -> Path:
        """The JPEG of one tile, made now if it is not cached yet."""
        path = self.tile_path(level, col, row)
        if path.exists():
            return path
        pixels = self._render(level, col, row)
        data = _encode_jpeg(pixels)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return path

    def _render(self, level: int, col: int, row: int) -> np.ndarray:
        d = 2 ** (self.max_level - level)
        lw, lh = level_size(self.width, self.height, level)
        tw, th = min(TILE, lw - col * TILE), min(TILE, lh - row * TILE)
        x0, y0 = col * TILE * d, row * TILE * d
        f = self.overview_factor
        if f == 1 or d < f:  # a region of the full image, read with a stride of at most d / 4
            step = max(1, d // 4) if d > 4 else 1
            block = self.source.read(y0, x0, min(y0 + TILE * d, self.height), min(x0 + TILE * d, self.width), step)
            out = _block_mean(block, d // step)
        else:  # coarse levels: cut from the overview
            ov = self.overview()
            k = d // f
            block = ov[y0 // f: (y0 + TILE * d) // f, x0 // f: (x0 + TILE * d) // f]
            out = _block_mean(block, k)
        out = out[:th, :tw]
        lo, hi = self.display_levels()
        return np.clip((out - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)

    def close(self) -> None:
        self.source.close()


def _encode_jpeg(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


class TileStore:
    """The open pyramids of the app, a few at a time (least recently used closed first)."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "tiles"
        self._open: OrderedDict[str, TileImage] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, sha256: str) -> TileImage:
        with self._lock:
            img = self._open.get(sha256)
            if img is not None:
                self._open.move_to_end(sha256)
                return img
        img = TileImage(path, self.root / sha256)
        with self._lock:
            if sha256 in self._open:  # another thread opened it meanwhile
                img.close()
                return self._open[sha256]
            self._open[sha256] = img
            while len(self._open) > _OPEN_SOURCES:
                _, old = self._open.popitem(last=False)
                old.close()
        return img

    def cached_tile(self, sha256: str, level: int, col: int, row: int) -> Path | None:
        """A tile already on disk, without opening the image."""
        p = self.root / sha256 / str(level) / f"{col}_{row}.jpg"
        return p if p.exists() else None

    def thumbnail_level(self, width: int, height: int, side: int = TILE) -> int:
        """The DZI level at which the whole image fits one tile of ``side`` px."""
        return max(0, max_level(width, height) - max(0, math.ceil(math.log2(max(width, height) / side))))

    def close(self) -> None:
        with self._lock:
            for img in self._open.values():
                img.close()
            self._open.clear()


def descriptor(width: int, height: int) -> dict[str, Any]:
    """The pyramid's geometry as JSON for the viewer."""
    return {"width": width, "height": height, "tile_size": TILE, "max_level": max_level(width, height),
            "format": "jpg"}

