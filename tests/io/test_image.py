"""Opening plates: formats, windows, resolution, and every bad input the issue lists.

All files are generated in ``tmp_path``; nothing here needs shared data.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

import artlens.io.image as image_mod
from artlens.errors import (
    ArtlensError,
    InputNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    MissingResolutionError,
    UnreadableInputError,
)
from artlens.io.image import MAX_PIXELS, ImageInfo, Plate, open_plate

RNG = np.random.default_rng(20240611)
LUMA = np.array([0.299, 0.587, 0.114])


# -- helpers ----------------------------------------------------------------------------------------
def _u8(shape: tuple[int, ...]) -> np.ndarray:
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


def _u16(shape: tuple[int, ...]) -> np.ndarray:
    return RNG.integers(0, 65536, size=shape, dtype=np.uint16)


def _fingerprint(path: Path) -> tuple[int, int, str]:
    """Size, mtime and SHA-256 of a file (to prove it was not written to)."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def _open_and_read(path: Path, **kwargs) -> np.ndarray:
    """Open and read the whole plate (errors may surface at either step)."""
    with open_plate(path, **kwargs) as plate:
        return plate.read()


def _assert_one_line(err: pytest.ExceptionInfo) -> None:
    msg = str(err.value)
    assert msg and "\n" not in msg, repr(msg)


def _huge_sparse_tiff(path: Path) -> Path:
    """A 50000 x 50000 uint8 BigTIFF (2.5e9 px > 2^31) whose pixel data is a hole: a few kB on disk."""
    tifffile.imwrite(path, shape=(50_000, 50_000), dtype="uint8", bigtiff=True)
    if path.stat().st_blocks * 512 > 16 * 2**20:  # filesystem without sparse files: don't keep 2.5 GB
        path.unlink()
        pytest.skip("filesystem does not support sparse files")
    return path


# -- TIFF reading -----------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [_u8, _u16], ids=["8bit", "16bit"])
def test_tiff_integer_read_back_exactly(tmp_path: Path, make) -> None:
    arr = make((70, 90))
    path = tmp_path / "plate.tif"
    tifffile.imwrite(path, arr)
    with open_plate(path) as plate:
        assert isinstance(plate, Plate)
        assert isinstance(plate.info, ImageInfo)
        assert plate.shape == (70, 90)
        assert plate.info.format == "tiff"
        assert plate.info.dtype == arr.dtype.name
        assert plate.info.channels == 1
        assert plate.info.n_pages == 1 and plate.info.page == 0
        assert plate.info.path == str(path.resolve())
        got = plate.read()
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, arr.astype(np.float32))


def test_tiff_uncompressed_is_read_only_memmap(tmp_path: Path) -> None:
    arr = _u16((64, 80))
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, arr)
    with open_plate(path) as plate:
        assert plate.info.storage == "memmap"
        np.testing.assert_array_equal(plate.read(5, 7, 20, 30), arr[5:25, 7:37].astype(np.float32))


def test_bigtiff(tmp_path: Path) -> None:
    arr = _u16((50, 60))
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, arr, bigtiff=True)
    assert path.read_bytes()[:4] in (b"II+\x00", b"MM\x00+")
    with open_plate(path) as plate:
        np.testing.assert_array_equal(plate.read(), arr.astype(np.float32))


def test_big_endian_tiff(tmp_path: Path) -> None:
    arr = _u16((40, 50))
    path = tmp_path / "be.tif"
    tifffile.imwrite(path, arr, byteorder=">")
    with open_plate(path) as plate:
        np.testing.assert_array_equal(plate.read(), arr.astype(np.float32))


@pytest.mark.parametrize("make", [_u8, _u16], ids=["8bit", "16bit"])
def test_tiled_compressed_tiff_reads_through_zarr(tmp_path: Path, make) -> None:
    arr = make((150, 170))
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, arr, tile=(32, 48), compression="zlib")
    with open_plate(path) as plate:
        assert plate.info.storage == "zarr"
        assert plate.shape == (150, 170)
        np.testing.assert_array_equal(plate.read(), arr.astype(np.float32))
        # windows across tile boundaries, and windows clipped at the image edge
        for y0, x0, h, w in [(0, 0, 10, 10), (30, 40, 37, 59), (100, 150, 100, 100), (149, 0, 5, None)]:
            expected = arr[y0:y0 + h, x0:None if w is None else x0 + w].astype(np.float32)
            np.testing.assert_array_equal(plate.read(y0, x0, h, w), expected)
        np.testing.assert_array_equal(plate.rows(33, 97), arr[33:97].astype(np.float32))


def test_striped_compressed_tiff(tmp_path: Path) -> None:
    arr = _u8((120, 64))
    path = tmp_path / "strips.tif"
    tifffile.imwrite(path, arr, rowsperstrip=16, compression="zlib")
    with open_plate(path) as plate:
        assert plate.info.storage == "zarr"
        np.testing.assert_array_equal(plate.read(10, 3, 50, 40), arr[10:60, 3:43].astype(np.float32))


def _two_page_tiff(path: Path) -> tuple[np.ndarray, np.ndarray]:
    first, second = _u16((50, 60)), _u16((40, 70))
    with tifffile.TiffWriter(path) as tw:
        tw.write(first)
        tw.write(second)
    return first, second


def test_multipage_first_page_by_default(tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    first, _ = _two_page_tiff(path)
    with open_plate(path) as plate:
        assert plate.info.n_pages == 2 and plate.info.page == 0
        np.testing.assert_array_equal(plate.read(), first.astype(np.float32))


def test_multipage_second_page(tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    _, second = _two_page_tiff(path)
    with open_plate(path, page=1) as plate:
        assert plate.info.page == 1
        assert plate.shape == (40, 70)
        np.testing.assert_array_equal(plate.read(), second.astype(np.float32))


@pytest.mark.parametrize("page", [2, 99, -1])
def test_multipage_page_out_of_range(tmp_path: Path, page: int) -> None:
    path = tmp_path / "pages.tif"
    _two_page_tiff(path)
    with pytest.raises(InvalidParameterError) as err:
        open_plate(path, page=page)
    assert err.value.exit_code == 7
    _assert_one_line(err)


def test_page_on_single_page_png_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "one.png"
    Image.fromarray(_u8((20, 20))).save(path)
    with pytest.raises(InvalidParameterError):
        open_plate(path, page=1)


# -- resolution -------------------------------------------------------------------------------------
def test_resolution_inch(tmp_path: Path) -> None:
    path = tmp_path / "dpi.tif"
    tifffile.imwrite(path, _u8((30, 30)), resolution=(508, 508), resolutionunit="INCH")
    with open_plate(path) as plate:
        assert plate.info.file_px_per_cm == pytest.approx(200.0)
        assert plate.px_per_cm == pytest.approx(200.0)
        assert plate.px_per_cm_source == "file"
        assert plate.size_cm == pytest.approx((30 / 200, 30 / 200))


def test_resolution_centimetre(tmp_path: Path) -> None:
    path = tmp_path / "dpcm.tif"
    tifffile.imwrite(path, _u8((30, 30)), resolution=(200, 200), resolutionunit="CENTIMETER")
    with open_plate(path, require_resolution=True) as plate:
        assert plate.px_per_cm == pytest.approx(200.0)
        assert plate.px_per_cm_source == "file"


def test_resolution_unit_none_is_no_resolution(tmp_path: Path) -> None:
    path = tmp_path / "nounit.tif"
    tifffile.imwrite(path, _u8((30, 30)), resolution=(508, 508), resolutionunit="NONE")
    with open_plate(path) as plate:  # opening works; the resolution is simply unknown
        assert plate.info.file_px_per_cm is None
        assert plate.px_per_cm is None
        with pytest.raises(MissingResolutionError):
            plate.require_px_per_cm()
    with pytest.raises(MissingResolutionError) as err:
        open_plate(path, require_resolution=True)
    assert err.value.exit_code == 6
    assert "px_per_cm" in str(err.value) and err.value.param == "px_per_cm"  # the CLI: --px-per-cm
    _assert_one_line(err)


def test_tiff_without_resolution_tags(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, _u8((30, 30)))  # tifffile's default: 1/1 with unit NONE
    with pytest.raises(MissingResolutionError, match="px_per_cm"):
        open_plate(path, require_resolution=True)


def test_override_wins_over_tags(tmp_path: Path) -> None:
    path = tmp_path / "dpi.tif"
    tifffile.imwrite(path, _u8((30, 30)), resolution=(508, 508), resolutionunit="INCH")
    with open_plate(path, 150.0, require_resolution=True) as plate:
        assert plate.px_per_cm == 150.0
        assert plate.px_per_cm_source == "override"
        assert plate.info.file_px_per_cm == pytest.approx(200.0)


def test_override_gives_resolution_to_untagged_file(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.fromarray(_u8((30, 30))).save(path)
    with open_plate(path, 120, require_resolution=True) as plate:
        assert plate.px_per_cm == 120.0 and plate.px_per_cm_source == "override"


@pytest.mark.parametrize("bad", [0, -5, float("nan"), float("inf")])
def test_invalid_override(tmp_path: Path, bad: float) -> None:
    path = tmp_path / "dpi.tif"
    tifffile.imwrite(path, _u8((30, 30)))
    with pytest.raises(InvalidParameterError, match="px_per_cm"):
        open_plate(path, bad)


def test_anisotropic_resolution_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "aniso.tif"
    tifffile.imwrite(path, _u8((30, 30)), resolution=(508, 300), resolutionunit="INCH")
    with pytest.raises(InvalidImageError, match="px_per_cm") as err:
        open_plate(path)
    _assert_one_line(err)


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp")])
def test_pil_formats_without_resolution(tmp_path: Path, fmt: str, suffix: str) -> None:
    arr = _u8((40, 50))
    path = tmp_path / f"plate{suffix}"
    Image.fromarray(arr).save(path, format=fmt)
    with open_plate(path) as plate:
        assert plate.info.format == {"PNG": "png", "JPEG": "jpeg", "BMP": "bmp"}[fmt]
        assert plate.shape == (40, 50)
        assert plate.info.channels == 1
        assert plate.px_per_cm is None and plate.info.file_px_per_cm is None
        got = plate.read()
        assert got.dtype == np.float32
        if fmt != "JPEG":  # lossless formats read back exactly
            np.testing.assert_array_equal(got, arr.astype(np.float32))
        else:
            assert abs(float(got.mean()) - float(arr.mean())) < 5
    with pytest.raises(MissingResolutionError, match="px_per_cm"):
        open_plate(path, require_resolution=True)


def test_png_16bit(tmp_path: Path) -> None:
    arr = _u16((30, 40))
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    with open_plate(path) as plate:
        np.testing.assert_array_equal(plate.read(), arr.astype(np.float32))


def test_png_physical_resolution(tmp_path: Path) -> None:
    path = tmp_path / "phys.png"
    Image.fromarray(_u8((30, 30))).save(path, dpi=(508, 508))
    with open_plate(path) as plate:
        assert plate.px_per_cm == pytest.approx(200.0, rel=1e-3)
        assert plate.px_per_cm_source == "file"


def test_jpeg_density_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "dpi.jpg"
    Image.fromarray(_u8((30, 30))).save(path, dpi=(300, 300))
    with open_plate(path) as plate:
        assert plate.px_per_cm is None


def test_mislabelled_png_named_tif_opens_by_content(tmp_path: Path) -> None:
    arr = _u8((20, 30))
    path = tmp_path / "really_a_png.tif"
    Image.fromarray(arr).save(path, format="PNG")
    with open_plate(path) as plate:
        assert plate.info.format == "png"
        np.testing.assert_array_equal(plate.read(), arr.astype(np.float32))


# -- bad inputs -------------------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError) as err:
        open_plate(tmp_path / "nope.tif")
    assert err.value.exit_code == 3
    assert "nope.tif" in str(err.value)
    _assert_one_line(err)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInputError) as err:
        open_plate(tmp_path)
    assert err.value.exit_code == 4


@pytest.mark.parametrize("suffix", [".tif", ".png", ".jpg", ".bmp", ".dat"])
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.touch()
    with pytest.raises(UnreadableInputError, match="empty") as err:
        open_plate(path)
    assert err.value.exit_code == 4
    _assert_one_line(err)


@pytest.mark.parametrize("layout", ["plain", "bigtiff", "tiled"])
@pytest.mark.parametrize("keep", [0.5, 0.9, 0.02])
def test_truncated_tiff(tmp_path: Path, layout: str, keep: float) -> None:
    whole = tmp_path / "whole.tif"
    kwargs = {"bigtiff": True} if layout == "bigtiff" else {}
    if layout == "tiled":
        kwargs = {"tile": (32, 32), "compression": "zlib"}
    tifffile.imwrite(whole, _u16((200, 200)), **kwargs)
    data = whole.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(UnreadableInputError) as err:
        _open_and_read(cut)
    assert err.value.exit_code == 4
    _assert_one_line(err)


def test_corrupt_tile_data(tmp_path: Path) -> None:
    """Garbage in the middle of compressed tiles: an error at open or first read, never a crash."""
    path = tmp_path / "bad_tiles.tif"
    tifffile.imwrite(path, _u16((200, 200)), tile=(32, 32), compression="zlib")
    with tifffile.TiffFile(path) as tf:
        start = tf.pages[0].dataoffsets[0]
    data = bytearray(path.read_bytes())
    data[start:] = RNG.integers(0, 256, size=len(data) - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(UnreadableInputError) as err:
        _open_and_read(path)
    _assert_one_line(err)


@pytest.mark.parametrize(
    "name,content",
    [
        ("random.tif", RNG.integers(0, 256, size=4096, dtype=np.uint8).tobytes()),
        ("random.tiff", b"\x00\x01" * 1000),
        ("tiff_magic_then_garbage.tif", b"II*\x00" + b"\xff\xff\xff\x7f" + RNG.bytes(2000)),
        ("bigtiff_magic_then_garbage.tif", b"II+\x00\x08\x00\x00\x00" + RNG.bytes(2000)),
        ("text.png", b"this is not a picture\n" * 20),
        ("text.jpg", b"hello"),
        ("png_magic_then_garbage.png", b"\x89PNG\r\n\x1a\n" + RNG.bytes(500)),
        ("jpeg_magic_then_garbage.jpg", b"\xff\xd8\xff" + RNG.bytes(500)),
        ("bmp_magic_then_garbage.bmp", b"BM" + RNG.bytes(500)),
    ],
)
def test_corrupt_file(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableInputError) as err:
        _open_and_read(path)
    assert err.value.exit_code == 4
    _assert_one_line(err)


def test_tifffile_log_messages_do_not_leak(tmp_path: Path, caplog) -> None:
    """tifffile logs its complaints; they must not reach stderr as stray lines (they would print
    next to the CLI's one ``error:`` line) but end up in the error message."""
    path = tmp_path / "bad_ifd.tif"
    path.write_bytes(b"II*\x00\xff\xff\xff\x7f" + bytes(2000))  # first IFD offset past the end
    with caplog.at_level(logging.DEBUG), pytest.raises(UnreadableInputError) as err:
        open_plate(path)
    assert not [r for r in caplog.records if r.name.startswith("tifffile")]
    assert "tifffile" in str(err.value)
    _assert_one_line(err)
    assert not logging.getLogger("tifffile").handlers  # capture handler removed again
    assert logging.getLogger("tifffile").propagate


def test_unsupported_gif(tmp_path: Path) -> None:
    path = tmp_path / "plate.gif"
    Image.fromarray(_u8((20, 20))).save(path, format="GIF")
    with pytest.raises(UnreadableInputError, match="unsupported") as err:
        open_plate(path)
    assert err.value.exit_code == 4
    _assert_one_line(err)


def test_unsupported_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("thread counts: 12 x 14\n")
    with pytest.raises(UnreadableInputError, match="unsupported"):
        open_plate(path)


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp")])
def test_truncated_pil_formats(tmp_path: Path, fmt: str, suffix: str) -> None:
    whole = tmp_path / f"whole{suffix}"
    Image.fromarray(_u8((120, 160))).save(whole, format=fmt)  # noise: does not compress away
    data = whole.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableInputError) as err:
        _open_and_read(cut)
    assert err.value.exit_code == 4
    _assert_one_line(err)


def test_too_many_pixels_real_limit(tmp_path: Path) -> None:
    path = _huge_sparse_tiff(tmp_path / "huge.tif")
    assert 50_000 * 50_000 > MAX_PIXELS == 2**31
    with pytest.raises(InvalidImageError, match="allow_huge") as err:
        open_plate(path)
    assert err.value.exit_code == 5
    _assert_one_line(err)
    with open_plate(path, allow_huge=True) as plate:  # memory-mapped: nothing is loaded
        assert plate.shape == (50_000, 50_000)
        assert plate.info.storage == "memmap"
        np.testing.assert_array_equal(plate.read(30_000, 40_000, 8, 8), np.zeros((8, 8), np.float32))


@pytest.mark.parametrize("kind", ["tiff", "tiled", "png"])
def test_too_many_pixels_monkeypatched_limit(tmp_path: Path, monkeypatch, kind: str) -> None:
    arr = _u8((20, 30))
    path = tmp_path / ("p.png" if kind == "png" else "p.tif")
    if kind == "png":
        Image.fromarray(arr).save(path)
    else:
        tifffile.imwrite(path, arr, **({"tile": (16, 16), "compression": "zlib"} if kind == "tiled" else {}))
    monkeypatch.setattr(image_mod, "MAX_PIXELS", 599)
    with pytest.raises(InvalidImageError, match="allow_huge"):
        open_plate(path)
    with open_plate(path, allow_huge=True) as plate:
        np.testing.assert_array_equal(plate.read(), arr.astype(np.float32))
    monkeypatch.setattr(image_mod, "MAX_PIXELS", 600)  # exactly at the limit is fine
    open_plate(path).close()


def test_tiny_image_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "line.tif"
    tifffile.imwrite(path, _u8((1, 50)))
    with pytest.raises(InvalidImageError):
        open_plate(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("tiled", [False, True], ids=["strips", "tiled"])
def test_nonfinite_float_tiff(tmp_path: Path, bad: float, tiled: bool) -> None:
    arr = RNG.random((64, 64), dtype=np.float32)
    arr[40, 17] = bad
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, arr, **({"tile": (32, 32), "compression": "zlib"} if tiled else {}))
    with pytest.raises(InvalidImageError, match="NaN or infinite") as err:
        open_plate(path)
    assert err.value.exit_code == 5
    _assert_one_line(err)


def test_nonfinite_found_in_window_of_large_float_plate(tmp_path: Path, monkeypatch) -> None:
    """Plates too big to check at open are checked window by window."""
    arr = RNG.random((64, 64), dtype=np.float32)
    arr[40, 17] = np.nan
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, arr)
    monkeypatch.setattr(image_mod, "_CHECK_FINITE_AT_OPEN", 0)
    with open_plate(path) as plate:
        np.testing.assert_array_equal(plate.read(0, 0, 32, 64), arr[:32])  # clean window
        with pytest.raises(InvalidImageError, match="NaN or infinite"):
            plate.read(32, 0, 32, 64)


def test_finite_float_tiff_reads(tmp_path: Path) -> None:
    arr = (RNG.random((30, 40)) * 1000).astype(np.float32)
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, arr)
    with open_plate(path) as plate:
        assert plate.info.dtype == "float32"
        np.testing.assert_array_equal(plate.read(), arr)


# -- colour -----------------------------------------------------------------------------------------
def _expected_gray(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ LUMA


@pytest.mark.parametrize("kind", ["tiff", "tiff_tiled", "tiff_rgba", "tiff16", "png", "png_rgba", "bmp"])
def test_rgb_converted_with_notice(tmp_path: Path, kind: str) -> None:
    channels = 4 if kind.endswith("rgba") else 3
    rgb = _u16((30, 40, 3)) if kind == "tiff16" else _u8((30, 40, channels))
    if kind.startswith("tiff"):
        path = tmp_path / "colour.tif"
        tiled = {"tile": (16, 16), "compression": "zlib"} if kind == "tiff_tiled" else {}
        extra = {"extrasamples": ["unassalpha"]} if kind == "tiff_rgba" else {}
        tifffile.imwrite(path, rgb, photometric="rgb", **tiled, **extra)
    else:
        path = tmp_path / ("colour.bmp" if kind == "bmp" else "colour.png")
        Image.fromarray(rgb).save(path)
    with pytest.warns(UserWarning, match="grayscale"):
        plate = open_plate(path)
    with plate:
        assert plate.info.channels == channels
        gray = plate.read()
        assert gray.shape == (30, 40) and gray.dtype == np.float32
        np.testing.assert_allclose(gray, _expected_gray(rgb), rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(plate.read(3, 5, 10, 12), _expected_gray(rgb[3:13, 5:17]),
                                   rtol=1e-5, atol=1e-3)


def test_rgb_jpeg_converted_with_notice(tmp_path: Path) -> None:
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50  # flat colour: JPEG keeps it almost exactly
    path = tmp_path / "colour.jpg"
    Image.fromarray(rgb).save(path, quality=95)
    with pytest.warns(UserWarning, match="grayscale"), open_plate(path) as plate:
        np.testing.assert_allclose(plate.read(), _expected_gray(rgb), atol=3)


def test_colour_palette_png_converted_with_notice(tmp_path: Path) -> None:
    rgb = _u8((20, 30, 3))
    im = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    path = tmp_path / "palette.png"
    im.save(path)
    expected = _expected_gray(np.asarray(im.convert("RGB")))
    with pytest.warns(UserWarning, match="grayscale"), open_plate(path) as plate:
        np.testing.assert_allclose(plate.read(), expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("kind", ["png_la", "png_gray_palette", "tiff_gray_alpha"])
def test_gray_with_alpha_or_palette_is_not_colour(tmp_path: Path, kind: str) -> None:
    """Gray + alpha and gray palettes are grayscale: no colour notice, values kept exactly."""
    la = _u8((20, 30, 2))
    if kind == "png_la":
        path = tmp_path / "la.png"
        Image.fromarray(la, "LA").save(path)
    elif kind == "png_gray_palette":
        path = tmp_path / "pal.png"
        Image.fromarray(la[..., 0]).convert("P").save(path)
        with Image.open(path) as im:
            assert im.mode == "P"
    else:
        path = tmp_path / "ga.tif"
        tifffile.imwrite(path, la, photometric="minisblack", planarconfig="contig",
                         extrasamples=["unassalpha"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with open_plate(path) as plate:
            np.testing.assert_array_equal(plate.read(), la[..., 0].astype(np.float32))
            assert plate.info.channels in (1, 2)


def test_rgb_modality_does_not_warn(tmp_path: Path) -> None:
    path = tmp_path / "colour.png"
    Image.fromarray(_u8((20, 20, 3))).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        open_plate(path, modality="rgb").close()


def test_grayscale_does_not_warn(tmp_path: Path) -> None:
    path = tmp_path / "gray.tif"
    tifffile.imwrite(path, _u8((20, 20)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        open_plate(path).close()


# -- inputs are never written -----------------------------------------------------------------------
def _write_any(path: Path, kind: str) -> None:
    if kind == "tiff":
        tifffile.imwrite(path, _u16((300, 200)), resolution=(508, 508), resolutionunit="INCH")
    elif kind == "tiled":
        tifffile.imwrite(path, _u16((300, 200)), tile=(64, 64), compression="zlib")
    elif kind == "multipage":
        _two_page_tiff(path)
    elif kind == "float":
        tifffile.imwrite(path, RNG.random((100, 100), dtype=np.float32))
    elif kind == "nan":
        tifffile.imwrite(path, np.full((100, 100), np.nan, dtype=np.float32))
    elif kind == "rgb":
        tifffile.imwrite(path, _u8((100, 100, 3)), photometric="rgb")
    elif kind == "truncated":
        tifffile.imwrite(path, _u16((300, 200)))
        path.write_bytes(path.read_bytes()[:20_000])
    else:
        Image.fromarray(_u8((100, 120))).save(path, format=kind.upper())


@pytest.mark.parametrize("kind", ["tiff", "tiled", "multipage", "float", "nan", "rgb", "truncated",
                                  "png", "jpeg", "bmp"])
def test_inputs_are_never_written(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"input.{kind}"
    _write_any(path, kind)
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))  # distinctive old mtime
    os.chmod(path, 0o444)  # a write attempt would fail loudly
    before = _fingerprint(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            with open_plate(path, 100.0, page=0) as plate:
                plate.read()
                plate.read(10, 10, 50, 50)
                plate.thumbnail(40)
                assert len(plate.sha256) == 64
        except ArtlensError:
            assert kind in ("nan", "truncated")
        else:
            assert kind not in ("nan", "truncated")
    assert _fingerprint(path) == before


# -- thumbnail --------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1000, 3000), (3000, 1000), (1003, 2999)])
@pytest.mark.parametrize("tiled", [False, True], ids=["memmap", "zarr"])
def test_thumbnail(tmp_path: Path, shape: tuple[int, int], tiled: bool) -> None:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    arr = (RNG.integers(0, 20000, size=shape) + 20 * yy + 10 * xx).astype(np.uint16)
    path = tmp_path / "thumb.tif"
    tifffile.imwrite(path, arr, **({"tile": (128, 128), "compression": "zlib"} if tiled else {}))
    with open_plate(path) as plate:
        thumb = plate.thumbnail(800)
    assert thumb.ndim == 2
    assert max(thumb.shape) <= 800
    assert max(thumb.shape) >= 500  # not needlessly small
    assert abs(float(thumb.mean()) - float(arr.mean())) <= 0.01 * float(arr.mean())


def test_thumbnail_of_small_plate_is_whole_image(tmp_path: Path) -> None:
    arr = _u8((50, 60))
    path = tmp_path / "small.tif"
    tifffile.imwrite(path, arr)
    with open_plate(path) as plate:
        np.testing.assert_array_equal(plate.thumbnail(800), arr.astype(np.float32))
