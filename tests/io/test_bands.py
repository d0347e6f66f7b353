"""Band stacks and modalities: reading 8/16-bit files, RGB → stack / one band, bad inputs, CAVE scenes.

Files are generated in ``tmp_path``; the CAVE test reads ../shared/data (marker ``shared_data``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from artlens.errors import InputNotFoundError, InvalidImageError, InvalidParameterError, UnreadableInputError
from artlens.io.bands import (
    Band,
    BandStack,
    cave_wavelength,
    load_cave_scene,
    open_modality,
    to_single_band,
)

RNG = np.random.default_rng(7)


def _one_line(err: pytest.ExceptionInfo) -> None:
    assert str(err.value) and "\n" not in str(err.value)


# -- reading ----------------------------------------------------------------------------------------
def test_16bit_png_read_as_band_scaled_to_unit_range(tmp_path: Path) -> None:
    arr = RNG.integers(0, 65536, size=(40, 50), dtype=np.uint16)
    arr[0, 0], arr[0, 1] = 0, 65535
    path = tmp_path / "ir.png"
    Image.fromarray(arr).save(path)
    band = open_modality(path, modality="ir", wavelength_nm=1000)
    assert isinstance(band, Band)
    assert band.modality == "ir" and band.wavelength_nm == 1000.0 and band.bit_depth == 16
    assert band.data.dtype == np.float32 and band.shape == (40, 50)
    np.testing.assert_allclose(band.data, arr / 65535.0, atol=1e-6)
    assert band.name == "ir@1000nm" and band.source.endswith("ir.png")


def test_16bit_tiff_and_8bit_gray(tmp_path: Path) -> None:
    a16 = RNG.integers(0, 65536, size=(20, 30), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "x.tif", a16)
    b = open_modality(tmp_path / "x.tif", modality="xray")
    assert isinstance(b, Band) and b.bit_depth == 16 and b.modality == "xray"
    np.testing.assert_allclose(b.data, a16 / 65535.0, atol=1e-6)

    a8 = RNG.integers(0, 256, size=(20, 30), dtype=np.uint8)
    Image.fromarray(a8).save(tmp_path / "g.png")
    g = open_modality(tmp_path / "g.png", wavelength_nm=550)
    assert isinstance(g, Band) and g.bit_depth == 8 and g.modality == "band" and g.name == "550nm"
    np.testing.assert_allclose(g.data, a8 / 255.0, atol=1e-6)
    assert open_modality(tmp_path / "g.png").modality == "gray"


def test_8bit_rgb_becomes_three_band_stack(tmp_path: Path) -> None:
    rgb = RNG.integers(0, 256, size=(16, 24, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no notice for a plain RGB open
        stack = open_modality(tmp_path / "c.png")
    assert isinstance(stack, BandStack)
    assert stack.names == ["rgb-r", "rgb-g", "rgb-b"] and stack.shape == (16, 24)
    np.testing.assert_allclose(stack.as_array(), np.moveaxis(rgb, -1, 0) / 255.0, atol=1e-6)


def test_rgb_given_as_single_band_is_converted_with_notice(tmp_path: Path) -> None:
    rgb = RNG.integers(0, 256, size=(16, 24, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    with pytest.warns(UserWarning, match="colour.*converted"):
        band = open_modality(tmp_path / "c.png", modality="ir")
    assert isinstance(band, Band) and band.modality == "ir"
    expected = (rgb / 255.0) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(band.data, expected, atol=1e-5)
    assert any("luminance" in n for n in band.notes)
    # the public helper on a stack does the same
    stack = open_modality(tmp_path / "c.png")
    with pytest.warns(UserWarning, match="converted"):
        again = to_single_band(stack, modality="xray")
    np.testing.assert_allclose(again.data, band.data)


def test_gray_stored_as_rgb_is_kept_as_one_band_silently(tmp_path: Path) -> None:
    g = RNG.integers(0, 256, size=(10, 12), dtype=np.uint8)
    Image.fromarray(np.dstack([g, g, g])).save(tmp_path / "grey_rgb.bmp")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        band = open_modality(tmp_path / "grey_rgb.bmp", modality="xray")
    assert isinstance(band, Band)
    np.testing.assert_allclose(band.data, g / 255.0, atol=1e-6)


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        (None, InputNotFoundError, "no such file"),
        (b"", UnreadableInputError, "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, UnreadableInputError, "corrupt or truncated PNG"),
        (b"hello, not an image at all", UnreadableInputError, "not a valid PNG"),
    ],
    ids=["missing", "empty", "truncated", "mislabelled"],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, content: bytes | None, error: type, match: str) -> None:
    path = tmp_path / "band.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=match) as err:
        open_modality(path, modality="ir")
    _one_line(err)


def test_nan_float_tiff_and_bad_modality(tmp_path: Path) -> None:
    a = np.ones((8, 8), np.float32)
    a[3, 3] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", a)
    with pytest.raises(InvalidImageError, match="NaN") as err:
        open_modality(tmp_path / "nan.tif")
    _one_line(err)
    tifffile.imwrite(tmp_path / "ok.tif", np.full((8, 8), 0.25, np.float32))
    assert open_modality(tmp_path / "ok.tif").data.max() == pytest.approx(0.25)
    with pytest.raises(InvalidParameterError, match="unknown modality"):
        open_modality(tmp_path / "ok.tif", modality="uv")
    with pytest.raises(InvalidImageError, match="not RGB"):
        open_modality(tmp_path / "ok.tif", modality="rgb")


# -- stacks ------------------------------------------------------------------------------------------
def test_stack_select_nearest_and_resample() -> None:
    bands = [Band(np.full((6, 8), v, np.float32), "band", nm) for v, nm in ((0.1, 450), (0.5, 550), (0.9, 650))]
    stack = BandStack([*bands, Band(np.zeros((6, 8)), "ir", None)])
    assert stack.names == ["450nm", "550nm", "650nm", "ir"]
    np.testing.assert_array_equal(stack.wavelengths[:3], [450, 550, 650])
    assert np.isnan(stack.wavelengths[3])
    assert stack.select(550).data[0, 0] == pytest.approx(0.5)
    assert stack.select("650nm") is bands[2] and stack.select("ir").modality == "ir"
    assert stack.nearest(600.1) is bands[2] and stack.nearest(10) is bands[0]
    with pytest.raises(InvalidParameterError, match="available"):
        stack.select(500)
    small = stack.resample((3, 4))
    assert small.shape == (3, 4) and small.as_array().shape == (4, 3, 4)
    assert small.select(550).data == pytest.approx(0.5)
    assert any("resampled" in n for n in small.select(550).notes)
    with pytest.raises(InvalidImageError, match="differ in size"):
        BandStack([bands[0], Band(np.zeros((5, 8)), "ir")])
    assert BandStack.on_grid([bands[0], Band(np.zeros((5, 9)), "ir")]).shape == (6, 8)


def test_cave_wavelengths() -> None:
    assert cave_wavelength(1) == 400 and cave_wavelength(20) == 590 and cave_wavelength(31) == 700


def test_cave_loader_on_synthetic_scene(tmp_path: Path) -> None:
    """Same layout as the real scene: an RGB, one band on the grid, stretched copies in a subfolder."""
    rgb = RNG.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "scene_RGB.bmp")
    Image.fromarray(np.full((32, 32), 30000, np.uint16)).save(tmp_path / "scene_ms_31.png")
    sub = tmp_path / "stretched"
    sub.mkdir()
    for k in (1, 2):
        Image.fromarray(np.full((32, 40), 1000 * k, np.uint16)).save(sub / f"scene_ms_{k:02d}.png")
    with pytest.warns(UserWarning, match="bands 400–410 nm were 40×32 \\(stretched\\); resized to 32×32"):
        out_rgb, stack = load_cave_scene(tmp_path)
    assert out_rgb.shape == (32, 32, 3) and out_rgb.dtype == np.float32
    np.testing.assert_allclose(out_rgb, rgb / 255.0, atol=1e-6)
    assert stack.names == ["400nm", "410nm", "700nm"] and stack.shape == (32, 32)
    assert stack.select(410).data == pytest.approx(2000 / 65535, abs=1e-6)
    assert any("stretched" in n for n in stack.select(400).notes)
    assert not any("stretched" in n for n in stack.select(700).notes)
    with pytest.raises(InputNotFoundError):
        load_cave_scene(sub)  # no RGB image there


@pytest.mark.shared_data
def test_cave_oil_painting_real(shared_data: Path) -> None:
    folder = shared_data / "multispectral" / "cave_oil_painting"
    with pytest.warns(UserWarning, match="bands 400–590 nm were 640×512 \\(stretched\\); resized to 512×512"):
        rgb, stack = load_cave_scene(folder)
    assert rgb.shape == (512, 512, 3)
    assert len(stack) == 21 and stack.shape == (512, 512)
    np.testing.assert_array_equal(stack.wavelengths, [*range(400, 600, 10), 700])
    assert all(b.bit_depth == 16 for b in stack)
    assert stack.nearest(700).notes == [] and any("stretched" in n for n in stack.select(590).notes)
    # once resized the stretched bands line up with the original-geometry band 31 (MANIFEST: NCC 0.975)
    a, b = stack.select(590).data, stack.select(700).data
    ncc = float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    assert ncc > 0.95
