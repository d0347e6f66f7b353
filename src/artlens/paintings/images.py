"""Open paintings (photographs of artworks) as 8-bit RGB, whatever the file holds.

Grayscale, palette, CMYK, 16-bit and alpha images are converted with a ``notice:`` (a Python
warning) saying what was done; unreadable files raise a one-line
:class:`~artlens.errors.ArtlensError`. Files are only opened for reading.

Which files of a folder are images is decided in one place, :mod:`artlens.io.scan`
(:func:`scan_images`, :func:`is_image_file`, :data:`IMAGE_SUFFIXES`), re-exported here.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError, features

from artlens.errors import InputNotFoundError, InvalidImageError, UnreadableInputError
from artlens.io.scan import IMAGE_SUFFIXES, is_image_file, scan_images

__all__ = ["IMAGE_SUFFIXES", "MAX_PIXELS", "is_image_file", "load_rgb", "scan_images"]

MAX_PIXELS = 400_000_000
"""A painting photograph with more pixels than this is refused (decompression-bomb guard)."""


def load_rgb(path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS, notify: bool = True,
             min_side: int | None = None, min_long_side: int | None = None) -> Image.Image:
    """Decode an image file into an 8-bit RGB :class:`PIL.Image.Image`.

    Args:
        path: image file (JPEG, PNG, TIFF, BMP, WebP, GIF, JPEG 2000: every format of
            :data:`IMAGE_SUFFIXES`).
        max_pixels: refuse larger images (:class:`InvalidImageError`).
        notify: warn (``notice:`` on the command line) when a conversion changes the pixels' kind:
            grayscale → RGB, CMYK → RGB, 16-bit → 8-bit, alpha dropped.
        min_side, min_long_side: when given, a JPEG may be decoded at 1/2, 1/4 or 1/8 size (libjpeg
            DCT scaling, much faster) as long as both sides stay ≥ ``min_side`` px and the long side
            ≥ ``min_long_side`` px. Other formats are decoded in full.

    Returns:
        An RGB image, fully loaded (the file is closed).

    Raises:
        InputNotFoundError: no such file.
        UnreadableInputError: empty, truncated, corrupt or not an image.
        InvalidImageError: too many pixels, or zero-sized.

    Example:
        >>> import tempfile
        >>> from PIL import Image as PILImage
        >>> path = Path(tempfile.mkdtemp()) / "painting.png"
        >>> PILImage.new("RGB", (4, 3), "white").save(path)
        >>> load_rgb(path).mode
        'RGB'
    """
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"{p}: no such file")
    if p.is_dir():
        raise UnreadableInputError(f"{p}: is a folder, not an image")
    if p.stat().st_size == 0:
        raise UnreadableInputError(f"{p}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise InvalidImageError(f"{p}: {w} x {h} px is more than the {max_pixels:,} pixels allowed")
                if w == 0 or h == 0:
                    raise InvalidImageError(f"{p}: image has no pixels ({w} x {h})")
                if (min_side or min_long_side) and im.format == "JPEG":
                    scale = max((min_side or 0) / min(w, h), (min_long_side or 0) / max(w, h))
                    if scale < 0.5:
                        im.draft("RGB", (math.ceil(w * scale), math.ceil(h * scale)))
                im.load()
                return _to_rgb8(im, p, notify)
    except (InvalidImageError, InputNotFoundError):
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        if p.suffix.lower() in (".jp2", ".j2k", ".jpx") and not features.check("jpg_2000"):
            raise UnreadableInputError(f"{p}: cannot decode JPEG 2000: this Pillow was built without OpenJPEG "
                                       f"(install a Pillow wheel, which includes it)") from None
        raise UnreadableInputError(f"{p}: cannot decode image ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _to_rgb8(im: Image.Image, p: Path, notify: bool) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im.copy()
    note = None
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(np.min(arr)), float(np.max(arr))
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        gray = np.clip((arr - lo) * scale, 0, 255).round().astype(np.uint8)
        out = Image.fromarray(gray, "L").convert("RGB")
        note = f"{mode} ({'16-bit' if '16' in mode else 'high bit-depth'}) grayscale stretched to 8-bit RGB"
    elif mode == "CMYK":
        out = im.convert("RGB")
        note = "CMYK converted to RGB (no colour profile applied)"
    elif mode in ("L", "1", "LA"):
        out = im.convert("L").convert("RGB")
        note = "grayscale converted to RGB (three equal channels)"
    elif mode in ("RGBA", "P", "PA", "RGBa", "LAB", "YCbCr", "HSV"):
        out = im.convert("RGBA").convert("RGB") if mode in ("P", "PA", "RGBA", "RGBa") else im.convert("RGB")
        note = f"{mode} converted to RGB" + (" (alpha dropped)" if "A" in mode or mode == "P" else "")
    else:
        arr = np.asarray(im)
        if arr.ndim == 3 and arr.shape[2] >= 3 and arr.dtype == np.uint16:
            out = Image.fromarray((arr[..., :3] // 256).astype(np.uint8), "RGB")  # the high byte
            note = "16-bit RGB reduced to 8-bit"
        else:
            out = im.convert("RGB")
            note = f"{mode} converted to RGB"
    if notify and note:
        warnings.warn(f"{p.name}: {note}", stacklevel=3)
    return out
