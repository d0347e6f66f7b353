"""Open the images users have — big TIFF X-ray plates, PNG, JPEG, BMP — as grayscale plates
with a physical resolution, read lazily in windows.

A :class:`Plate` never holds a large image in memory: uncompressed TIFF pages are memory-mapped
read-only, compressed or tiled pages are read through tifffile's zarr store, one window or band of
rows at a time. Small formats (PNG, JPEG, BMP) are decoded once. Files are only ever opened for
reading.

Errors are :class:`~artlens.errors.ArtlensError` subclasses with a one-line message, so the CLI
can report them without a traceback.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artlens.errors import (
    InputNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    MissingResolutionError,
    UnreadableInputError,
)
from artlens.provenance import sha256_file

log = logging.getLogger(__name__)

MAX_PIXELS = 2**31
"""Images with more pixels than this need ``allow_huge=True`` (``--allow-huge``)."""

_TIFF_SUFFIXES = {".tif", ".tiff", ".btf", ".tf8", ".tf2"}
_PIL_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
_CHECK_FINITE_AT_OPEN = 64_000_000  # float images up to this many pixels are checked when opened
_INCH_CM = 2.54


@dataclass(frozen=True)
class ImageInfo:
    """What the file says about itself.

    Attributes:
        path: absolute path of the file.
        format: ``"tiff"``, ``"png"``, ``"jpeg"`` or ``"bmp"``.
        shape: ``(height, width)`` in pixels.
        channels: samples per pixel in the file (1 for grayscale, 2 for grayscale + alpha, 3 or 4
            for colour; 3 for a colour-palette PNG/BMP).
        dtype: numpy dtype name of the stored samples.
        page: index of the TIFF page read (0 for other formats).
        n_pages: number of pages (1 for other formats).
        file_px_per_cm: resolution found in the file, px/cm, or ``None``.
        storage: ``"memmap"``, ``"zarr"`` or ``"memory"``: how pixels are read.
    """

    path: str
    format: str
    shape: tuple[int, int]
    channels: int
    dtype: str
    page: int
    n_pages: int
    file_px_per_cm: float | None
    storage: str


class Plate:
    """A grayscale image with physical resolution, read in windows.

    Use :func:`open_plate` to make one. Pixel values are returned as ``float32`` in the file's
    own range (0..255 for 8-bit, 0..65535 for 16-bit); colour files are converted to luminance
    (ITU-R BT.601 weights).

    Attributes:
        info: :class:`ImageInfo` of the file.
        px_per_cm: resolution used for measurements, px/cm.
        px_per_cm_source: ``"file"`` (TIFF tags / PNG pHYs) or ``"override"``.
        modality: ``"xray"``, ``"rgb"``, ``"ir"``, ``"band@550nm"`` ...
    """

    def __init__(self, info: ImageInfo, source: Any, px_per_cm: float | None, px_per_cm_source: str | None,
                 modality: str, handle: Any = None):
        self.info = info
        self._src = source  # array-like (H, W[, C]) supporting basic slicing
        self._handle = handle  # open TiffFile, closed by close()
        self.px_per_cm = px_per_cm
        self.px_per_cm_source = px_per_cm_source
        self.modality = modality
        self._sha256: str | None = None

    # -- geometry -------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.info.shape

    @property
    def path(self) -> Path:
        return Path(self.info.path)

    @property
    def size_cm(self) -> tuple[float, float]:
        """``(height, width)`` in cm. Needs :attr:`px_per_cm`."""
        ppc = self.require_px_per_cm()
        return self.shape[0] / ppc, self.shape[1] / ppc

    def require_px_per_cm(self) -> float:
        if self.px_per_cm is None:
            raise MissingResolutionError(
                f"{self.path.name} has no physical resolution (no TIFF/PNG resolution tags); "
                "pass it as px_per_cm (e.g. 200 for a 508 dpi scan)", param="px_per_cm",
            )
        return self.px_per_cm

    # -- pixels ---------------------------------------------------------------------------------
    def read(self, y0: int = 0, x0: int = 0, height: int | None = None,
             width: int | None = None) -> np.ndarray:
        """Read a window as ``float32`` grayscale of shape ``(height, width)``.

        The window is clipped to the image. Raises :class:`InvalidImageError` when it holds NaN
        or infinite values.
        """
        h_img, w_img = self.shape
        y1 = h_img if height is None else min(h_img, y0 + height)
        x1 = w_img if width is None else min(w_img, x0 + width)
        try:
            block = np.asarray(self._src[y0:y1, x0:x1])
        except Exception as exc:  # decoding errors of truncated tiles surface here
            raise UnreadableInputError(
                f"{self.path.name}: cannot decode pixels at rows {y0}-{y1} ({type(exc).__name__}: {exc})"
            ) from exc
        gray = _to_gray(block)
        if gray.dtype.kind == "f" and not np.isfinite(gray).all():
            raise InvalidImageError(f"{self.path.name} contains NaN or infinite pixel values near row {y0}")
        return gray

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0:y1`` over the full width, ``float32``."""
        return self.read(y0, 0, y1 - y0, None)

    def thumbnail(self, max_side: int = 800) -> np.ndarray:
        """A downscaled ``float32`` view (block means) whose longer side is at most ``max_side``,
        read band by band so that a large plate is never loaded whole."""
        h, w = self.shape
        f = max(1, int(np.ceil(max(h, w) / max_side)))
        band = f * max(1, 4096 // f)
        out = []
        for y in range(0, h - h % f if h >= f else h, band):
            rows = self.rows(y, min(y + band, h - h % f if h >= f else h))
            hh, ww = rows.shape[0] // f * f, rows.shape[1] // f * f
            if hh == 0 or ww == 0:
                continue
            out.append(rows[:hh, :ww].reshape(hh // f, f, ww // f, f).mean(axis=(1, 3)))
        if not out:
            return self.read()
        return np.concatenate(out, axis=0)

    @property
    def sha256(self) -> str:
        """SHA-256 of the file's bytes (computed once, streamed)."""
        if self._sha256 is None:
            self._sha256 = sha256_file(self.path)
        return self._sha256

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> Plate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Plate({self.path.name!r}, shape={self.shape}, px_per_cm={self.px_per_cm}, "
                f"modality={self.modality!r}, storage={self.info.storage!r})")


def _to_gray(block: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) samples → float32 (H, W) luminance."""
    if block.ndim == 2:
        return block.astype(np.float32, copy=False)
    if block.ndim == 3 and block.shape[2] in (3, 4):
        rgb = block[..., :3].astype(np.float32)
        return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if block.ndim == 3 and block.shape[2] in (1, 2):  # gray or gray + alpha
        return block[..., 0].astype(np.float32)
    raise InvalidImageError(f"unsupported pixel layout {block.shape}")


def open_plate(
    path: str | os.PathLike[str],
    px_per_cm: float | None = None,
    *,
    page: int = 0,
    allow_huge: bool = False,
    modality: str = "xray",
    require_resolution: bool = False,
) -> Plate:
    """Open an image for windowed grayscale reading.

    Args:
        path: TIFF (8/16-bit or float, BigTIFF, tiled, multi-page), PNG, JPEG or BMP file.
        px_per_cm: resolution override in px/cm; when ``None`` the file's resolution tags are used.
        page: page of a multi-page TIFF (0 = first).
        allow_huge: permit images with more than 2**31 pixels.
        modality: recorded with the plate (``"xray"``, ``"rgb"``, ``"ir"``, ``"band@550nm"``...).
        require_resolution: raise :class:`MissingResolutionError` at once when no px/cm is known.

    Returns:
        A :class:`Plate`; close it (or use ``with``) to release a TIFF file handle.

    Raises:
        InputNotFoundError, UnreadableInputError, InvalidImageError, MissingResolutionError,
        InvalidParameterError — each with a one-line message.

    Example:
        >>> plate = open_plate("Crop0139.tif")  # doctest: +SKIP
        >>> plate.px_per_cm, plate.shape  # doctest: +SKIP
        (200.0, (300, 300))
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise InputNotFoundError(f"{p}: no such file")
    if p.is_dir():
        raise UnreadableInputError(f"{p} is a directory, not an image file")
    if p.stat().st_size == 0:
        raise UnreadableInputError(f"{p.name} is empty (0 bytes)")
    if px_per_cm is not None and not (np.isfinite(px_per_cm) and px_per_cm > 0):
        raise InvalidParameterError(f"px_per_cm must be a positive number, got {px_per_cm}", param="px_per_cm")
    if page < 0:
        raise InvalidParameterError(f"page must be >= 0, got {page}", param="page")

    kind = _sniff(p)
    if kind == "tiff":
        plate = _open_tiff(p, page, modality)
    elif kind in ("png", "jpeg", "bmp"):
        if page != 0:
            raise InvalidParameterError(
                f"page {page} is invalid: {p.name} is a {kind.upper()} file with one page", param="page"
            )
        plate = _open_pil(p, kind, modality)
    else:
        raise UnreadableInputError(
            f"{p.name}: unsupported or unrecognised format (expected TIFF, PNG, JPEG or BMP)"
        )

    h, w = plate.shape
    if h * w > MAX_PIXELS and not allow_huge:
        plate.close()
        raise InvalidImageError(
            f"{p.name} has {h}x{w} = {h * w:,} pixels (more than 2^31); allow_huge accepts it", param="allow_huge"
        )
    if h < 2 or w < 2:
        plate.close()
        raise InvalidImageError(f"{p.name} is only {h}x{w} pixels")
    if plate.info.channels >= 3 and modality != "rgb":  # gray + alpha (2) is not colour
        warnings.warn(f"{p.name} has {plate.info.channels} channels; converted to grayscale (luminance)",
                      UserWarning, stacklevel=2)
    if np.dtype(plate.info.dtype).kind == "f" and h * w <= _CHECK_FINITE_AT_OPEN:
        try:
            plate.read()
        except InvalidImageError:
            plate.close()
            raise

    if px_per_cm is not None:
        plate.px_per_cm, plate.px_per_cm_source = float(px_per_cm), "override"
    elif plate.info.file_px_per_cm is not None:
        plate.px_per_cm, plate.px_per_cm_source = plate.info.file_px_per_cm, "file"
    if require_resolution:
        try:
            plate.require_px_per_cm()
        except MissingResolutionError:
            plate.close()
            raise
    return plate


def _sniff(p: Path) -> str | None:
    """Format from the file's magic bytes (the suffix only breaks ties)."""
    with open(p, "rb") as fh:
        head = fh.read(16)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:2] == b"BM":
        return "bmp"
    if p.suffix.lower() in _TIFF_SUFFIXES | _PIL_SUFFIXES:
        raise UnreadableInputError(
            f"{p.name}: the file is not a valid {p.suffix.lstrip('.').upper()} (corrupt or mislabelled)"
        )
    return None


def _tiff_px_per_cm(page: Any, name: str) -> float | None:
    tags = page.tags
    if "XResolution" not in tags or "ResolutionUnit" not in tags:
        return None
    unit = int(tags["ResolutionUnit"].value)
    if unit not in (2, 3):  # 1 = no absolute unit: an aspect ratio, not a resolution
        return None

    def _val(tag: str) -> float | None:
        if tag not in tags:
            return None
        num, den = tags[tag].value
        return num / den if den else None

    xres, yres = _val("XResolution"), _val("YResolution")
    if xres is None or xres <= 0:
        return None
    if yres is not None and abs(yres - xres) > 0.01 * xres:
        raise InvalidImageError(
            f"{name} has different x and y resolution ({xres:g} and {yres:g} per "
            f"{'inch' if unit == 2 else 'cm'}); resample it to square pixels or pass px_per_cm", param="px_per_cm",
        )
    return xres / _INCH_CM if unit == 2 else xres


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(" ".join(record.getMessage().split()))


def _open_tiff(p: Path, page_index: int, modality: str) -> Plate:
    """Open a TIFF page with tifffile's log messages captured: they would otherwise reach stderr
    as stray lines; when the file is unreadable the first one is added to the error message."""
    tiff_log = logging.getLogger("tifffile")
    capture, propagate = _LogCapture(), tiff_log.propagate
    tiff_log.addHandler(capture)
    tiff_log.propagate = False
    try:
        return _open_tiff_page(p, page_index, modality)
    except UnreadableInputError as exc:
        if capture.messages:
            raise UnreadableInputError(f"{exc} [tifffile: {capture.messages[0]}]") from exc
        raise
    finally:
        tiff_log.removeHandler(capture)
        tiff_log.propagate = propagate
        for message in capture.messages:
            log.debug("%s: tifffile: %s", p.name, message)


def _open_tiff_page(p: Path, page_index: int, modality: str) -> Plate:
    import tifffile

    try:
        tf = tifffile.TiffFile(p, mode="r")  # tifffile opens files in binary mode ("r" is "rb")
    except Exception as exc:
        raise UnreadableInputError(f"{p.name}: corrupt or truncated TIFF ({exc})") from exc
    try:
        n_pages = len(tf.pages)
        if n_pages == 0:
            raise UnreadableInputError(f"{p.name}: TIFF has no pages")
        if page_index >= n_pages:
            raise InvalidParameterError(f"page {page_index} does not exist: {p.name} has {n_pages} page(s)",
                                        param="page")
        page = tf.pages[page_index]
        if not isinstance(page, tifffile.TiffPage):  # a TiffFrame only when pages are read as frames
            raise UnreadableInputError(f"{p.name}: page {page_index} is not a full TIFF page")
        if not hasattr(page, "shape") or len(page.shape) not in (2, 3):
            raise UnreadableInputError(f"{p.name}: page {page_index} is not a 2-D image (shape {page.shape})")
        shape = page.shape
        channels = 1 if len(shape) == 2 else int(shape[2])
        if len(shape) == 3 and page.planarconfig == 1 and shape[2] > 4:
            raise UnreadableInputError(f"{p.name}: unsupported TIFF layout {shape}")
        if len(shape) == 3 and int(shape[0]) <= 4 and int(shape[2]) > 4:
            raise UnreadableInputError(
                f"{p.name}: planar (channel-first) TIFF layouts are not supported; save it as interleaved"
            )
        dtype = np.dtype(page.dtype)
        if dtype.kind not in "uif":
            raise UnreadableInputError(f"{p.name}: unsupported sample type {dtype}")
        if dtype.kind in "ui" and dtype.itemsize > 2:
            log.info("%s: %d-bit integer samples", p.name, dtype.itemsize * 8)
        ppc = _tiff_px_per_cm(page, p.name)
        _check_tiff_complete(tf, page, p)
        source: Any  # a NumPy array (memory map or in memory) or a zarr array
        if page.is_memmappable:
            source = _memmap_page(p, page)
            storage = "memmap"
        elif page.is_tiled or page.compression != 1 or len(page.dataoffsets) > 1:
            import zarr

            source = zarr.open(page.aszarr(), mode="r")
            storage = "zarr"
        else:
            source = page.asarray()
            storage = "memory"
    except (UnreadableInputError, InvalidParameterError, InvalidImageError):
        tf.close()
        raise
    except Exception as exc:
        tf.close()
        raise UnreadableInputError(f"{p.name}: cannot read TIFF page {page_index} ({exc})") from exc

    info = ImageInfo(str(p.resolve()), "tiff", (int(shape[0]), int(shape[1])), channels, dtype.name,
                     page_index, n_pages, ppc, storage)
    return Plate(info, source, None, None, modality, handle=tf)


def _memmap_page(p: Path, page: Any) -> np.ndarray:
    """Read-only memory map of an uncompressed, contiguous TIFF page."""
    offset = page.dataoffsets[0]
    dtype = np.dtype(page.dtype).newbyteorder(page.parent.byteorder)
    return np.memmap(p, dtype=dtype, mode="r", offset=offset, shape=page.shape)


def _check_tiff_complete(tf: Any, page: Any, p: Path) -> None:
    """Detect truncation: every strip/tile must lie inside the file."""
    size = p.stat().st_size
    for off, count in zip(page.dataoffsets, page.databytecounts, strict=False):
        if off + count > size:
            raise UnreadableInputError(
                f"{p.name}: truncated TIFF (pixel data ends at byte {off + count:,}, file has {size:,})"
            )


def _open_pil(p: Path, kind: str, modality: str) -> Plate:
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # our own limit (MAX_PIXELS) applies, with --allow-huge
    try:
        with Image.open(p) as im:
            im.load()
            dpi = im.info.get("dpi")
            mode = im.mode
            channels = len(im.getbands())  # samples per pixel in the file (gray + alpha: 2, RGBA: 4)
            if mode in ("I;16", "I;16B", "I;16L"):
                arr = np.asarray(im, dtype=np.uint16)
            elif mode in ("1", "L", "LA", "La"):
                arr = np.asarray(im.convert("L"))  # alpha dropped: not a colour image
            elif mode in ("P", "PA"):
                rgb = np.asarray(im.convert("RGB"))
                if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
                    arr, channels = rgb[..., 0].copy(), 1  # gray palette
                else:
                    arr, channels = rgb, 3  # colour palette: converted (with a notice) like RGB
            elif mode in ("I", "F"):
                arr = np.asarray(im)
            else:
                arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableInputError(f"{p.name}: corrupt or truncated {kind.upper()} ({exc})") from exc

    ppc = None
    # PNG pHYs in metres is a physical resolution; JPEG/BMP densities are so often a default
    # 72/96 dpi that we never trust them.
    if kind == "png" and dpi:
        x = float(dpi[0])
        if x > 0 and round(x) not in (72, 96):
            ppc = x / _INCH_CM
    info = ImageInfo(str(p.resolve()), kind, (int(arr.shape[0]), int(arr.shape[1])), channels,
                     arr.dtype.name, 0, 1, ppc, "memory")
    return Plate(info, arr, None, None, modality)
