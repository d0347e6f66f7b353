"""Uploads: streamed to the app's data folder under their SHA-256, checked by decoding, catalogued.

A client's file name is never used as a path: the stored file is ``DATA/images/<sha256>.<ext>``, the
extension coming from the decoded format (TIFF, PNG, JPEG, BMP), not from the name. Nothing the user
already has is ever modified.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from artlens.errors import ArtlensError, InvalidParameterError, UnreadableInputError

EXTENSIONS = {"tiff": ".tif", "png": ".png", "jpeg": ".jpg", "bmp": ".bmp"}
MODALITY_RE = re.compile(r"^[a-z][a-z0-9@._-]{0,31}$")
CHUNK = 1 << 20


class UploadTooLarge(ArtlensError):
    """The upload is bigger than ``--max-upload-mb`` (HTTP 413)."""


@dataclass(frozen=True)
class StoredImage:
    """An ingested image: where it lies and what it is."""

    path: Path
    sha256: str
    format: str
    width_px: int
    height_px: int
    channels: int
    px_per_cm: float | None


def check_modality(modality: str) -> str:
    """A modality name such as ``xray``, ``rgb``, ``ir`` or ``band@550nm``; raises otherwise."""
    modality = modality.strip().lower()
    if not MODALITY_RE.match(modality):
        raise InvalidParameterError(
            f"modality must be a short lower-case name such as xray, rgb, ir or band@550nm, not {modality[:40]!r}")
    return modality


def check_px_per_cm(value: float | None) -> float | None:
    """A positive, finite resolution in px/cm, or ``None``."""
    if value is None:
        return None
    if not (value > 0 and value < 1e6):
        raise InvalidParameterError(f"px_per_cm must be a positive number of pixels per centimetre, not {value:g}")
    return float(value)


def ingest_stream(stream: BinaryIO, data_dir: Path, max_bytes: int) -> StoredImage:
    """Copy ``stream`` into ``data_dir/images/<sha256>.<ext>`` after checking that it decodes as an image.

    Raises:
        UploadTooLarge: more than ``max_bytes`` bytes.
        UnreadableInputError, InvalidImageError: not an image artlens can read (one-line message).
    """
    images = data_dir / "images"
    tmp_dir = data_dir / "tmp"
    images.mkdir(parents=True, exist_ok=True)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            while block := stream.read(CHUNK):
                size += len(block)
                if size > max_bytes:
                    raise UploadTooLarge(f"the upload is larger than the limit of {max_bytes / 2**20:.3g} MB "
                                         "(serve with a larger --max-upload-mb to accept it)")
                digest.update(block)
                out.write(block)
        if size == 0:
            raise UnreadableInputError("the uploaded file is empty (0 bytes)")
        info = probe_image(tmp)
        sha = digest.hexdigest()
        final = images / f"{sha}{EXTENSIONS[info[0]]}"
        if final.exists():
            tmp.unlink()
        else:
            os.replace(tmp, final)
            final.chmod(0o444)  # stored inputs are never modified
        fmt, height, width, channels, ppc = info
        return StoredImage(final, sha, fmt, width, height, channels, ppc)
    finally:
        tmp.unlink(missing_ok=True)


def probe_image(path: Path) -> tuple[str, int, int, int, float | None]:
    """Decode ``path`` (format from its bytes, never its name): ``(format, height, width, channels, px_per_cm)``.

    A corner of the pixels is read too, so that a truncated TIFF is refused here and not at the first tile.
    """
    from artlens.io.image import open_plate

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # colour images are fine here; no luminance notice
            with open_plate(path, modality="rgb") as plate:
                plate.read(0, 0, 16, 16)
                h, w = plate.shape
                return plate.info.format, h, w, plate.info.channels, plate.info.file_px_per_cm
    except ArtlensError as exc:
        # open_plate names the temporary file; the client only needs to know what was wrong with it
        message = str(exc).replace(path.name, "the uploaded file").replace(str(path.parent) + os.sep, "")
        raise UnreadableInputError(message) from None
