"""Which files of a folder are images: the one scanner every command uses to list a folder.

:func:`scan_images` lists the image files of a folder (optionally recursively) by their name's
ending, skipping hidden files and folders (``.name``), in a deterministic order. Two suffix lists
exist, for two kinds of readers:

- :data:`IMAGE_SUFFIXES`: photographs of paintings, read by Pillow
  (:func:`artlens.paintings.images.load_rgb`). It includes what the collectors (:mod:`artlens.collect`)
  save: ``.gif`` and JPEG 2000 ``.jp2`` besides JPEG, PNG, TIFF, BMP and WebP.
- :data:`PLATE_SUFFIXES`: X-ray plates, read by :func:`artlens.io.open_plate`, which opens TIFF, PNG,
  JPEG and BMP only (it checks the file's magic bytes and refuses other formats); a folder of plates
  therefore lists only those.

Example:
    >>> is_image_file("scan.JP2"), is_image_file("notes.txt"), is_image_file("a.gif", PLATE_SUFFIXES)
    (True, False, False)
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from artlens.errors import InputNotFoundError, InvalidParameterError

__all__ = ["IMAGE_SUFFIXES", "PLATE_SUFFIXES", "is_image_file", "scan_images"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".jp2")
"""File name endings of photographs (compared lower-case): what Pillow reads and the collectors save."""

PLATE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
"""File name endings of X-ray plates (compared lower-case): the formats :func:`~artlens.io.open_plate` reads."""


def is_image_file(path: str | os.PathLike[str], suffixes: Collection[str] = IMAGE_SUFFIXES) -> bool:
    """True when the name ends like an image file (one of ``suffixes``, compared lower-case).

    Args:
        path: a file name or path (only the name is looked at; the file need not exist).
        suffixes: accepted endings, lower-case with the dot (default :data:`IMAGE_SUFFIXES`).
    """
    return Path(path).suffix.lower() in suffixes


def scan_images(folder: str | os.PathLike[str], *, recursive: bool = True,
                suffixes: Collection[str] = IMAGE_SUFFIXES) -> list[Path]:
    """The image files of a folder, sorted by their path relative to it.

    Hidden files and folders (names starting with ``.``) are skipped, and so are files whose name
    does not end in one of ``suffixes``. Links to folders are followed, each real folder once (a
    link loop does not recurse forever).

    Args:
        folder: the folder.
        recursive: also look in sub-folders, at any depth.
        suffixes: accepted endings, lower-case with the dot (default :data:`IMAGE_SUFFIXES`; X-ray
            plates use :data:`PLATE_SUFFIXES`).

    Returns:
        ``folder / relative path`` of each image (absolute when ``folder`` is), sorted by the
        relative POSIX path. An empty list when the folder holds no image.

    Raises:
        InputNotFoundError: ``folder`` does not exist.
        InvalidParameterError: ``folder`` is a file, not a folder.
    """
    base = Path(folder).expanduser()
    if not base.exists():
        raise InputNotFoundError(f"{base}: no such folder")
    if not base.is_dir():
        raise InvalidParameterError(f"{base}: not a folder")
    found: list[str] = []
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:  # a symbolic link loop, or a second link to a folder already seen
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        rel_dir = Path(dirpath).relative_to(base)
        for name in filenames:
            if name.startswith(".") or not is_image_file(name, suffixes):
                continue
            if os.path.isfile(os.path.join(dirpath, name)):  # not a broken link
                found.append((rel_dir / name).as_posix())
    return [base / rel for rel in sorted(found)]
