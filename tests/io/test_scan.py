"""The one image-folder scanner (artlens.io.scan): suffixes, hidden entries, order, recursion, plates."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artlens.collect.base import _EXT
from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError
from artlens.io.scan import IMAGE_SUFFIXES, PLATE_SUFFIXES, is_image_file, scan_images
from artlens.paintings.images import load_rgb


def _rgb(path: Path, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def test_what_the_collectors_save_is_scanned() -> None:
    # every extension a collector writes (collect/base.py) is an image suffix, .gif and .jp2 included
    assert {f".{ext}" for ext in _EXT.values()} <= set(IMAGE_SUFFIXES)
    assert is_image_file("a/b/Scan.JP2") and is_image_file("x.gif") and not is_image_file("labels.csv")
    # plates are opened by open_plate, which reads TIFF, PNG, JPEG and BMP only
    assert set(PLATE_SUFFIXES) < set(IMAGE_SUFFIXES)
    assert not is_image_file("x.gif", PLATE_SUFFIXES) and is_image_file("x.TIF", PLATE_SUFFIXES)


def test_scan_order_hidden_and_recursion(tmp_path: Path) -> None:
    for rel in ("z.png", "b/c.jpg", "b/a.GIF", "a/deep/x.jp2", ".hidden/y.png", "b/.z.png", "notes.txt"):
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"x")
    (tmp_path / "dir.png").mkdir()  # a folder named like an image is not a file
    rels = [p.relative_to(tmp_path).as_posix() for p in scan_images(tmp_path)]
    assert rels == ["a/deep/x.jp2", "b/a.GIF", "b/c.jpg", "z.png"]
    assert all(p.is_absolute() for p in scan_images(tmp_path))
    assert [p.name for p in scan_images(tmp_path, recursive=False)] == ["z.png"]
    assert [p.name for p in scan_images(tmp_path, suffixes=PLATE_SUFFIXES)] == ["c.jpg", "z.png"]
    # a link loop is followed once
    os.symlink(tmp_path, tmp_path / "b" / "loop")
    assert [p.relative_to(tmp_path).as_posix() for p in scan_images(tmp_path)] == rels
    with pytest.raises(InputNotFoundError, match="no such folder"):
        scan_images(tmp_path / "missing")
    with pytest.raises(InvalidParameterError, match="not a folder"):
        scan_images(tmp_path / "z.png")


def test_gif_and_jpeg2000_are_read(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="P converted to RGB"):
        gif = load_rgb(_rgb(tmp_path / "a.gif", "GIF"))
    assert gif.mode == "RGB" and gif.size == (48, 40)
    jp2 = load_rgb(_rgb(tmp_path / "a.jp2", "JPEG2000"))
    assert jp2.mode == "RGB" and jp2.size == (48, 40)
    (tmp_path / "bad.jp2").write_bytes(b"\x00\x00\x00\x0cjP  not a real file")
    with pytest.raises(UnreadableInputError, match="bad.jp2"):
        load_rgb(tmp_path / "bad.jp2")
