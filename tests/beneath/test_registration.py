"""Registration of a second modality onto a first: known transforms recovered, aligned pairs skipped,
sizes, inverted contrast, the intensity fallback, and failures that say so.

Test images are synthetic: a "painting" of blobs and speckle rendered larger than needed, so that the
moving image is warped from real content everywhere (no artificial black border).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import artlens.beneath.registration as reg
from artlens.beneath.registration import RegistrationResult, register
from artlens.errors import InvalidImageError, InvalidParameterError

N = 224  # fixed image side
B = 32  # margin of the rendered canvas around the fixed view


def _painting(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.standard_normal(shape), 6)
    img = 0.5 + 0.5 * np.tanh(2 * f / f.std())  # blobs with firm edges
    img += 0.3 * (ndimage.gaussian_filter(rng.standard_normal(shape), 2) > 0.05)  # speckle
    return img / img.max()


def _similarity(tx: float, ty: float, scale: float, deg: float, centre: tuple[float, float]) -> np.ndarray:
    c, s = scale * math.cos(math.radians(deg)), scale * math.sin(math.radians(deg))
    cx, cy = centre
    return np.array([[c, -s, cx - c * cx + s * cy + tx], [s, c, cy - s * cx - c * cy + ty], [0, 0, 1.0]])


def _pair(seed: int = 1, n: int = N, tx: float = 6.0, ty: float = -4.0, scale: float = 1.05, deg: float = 3.0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fixed, moving, T_true)`` with ``T_true`` mapping moving (x, y) to fixed (x, y)."""
    canvas = _painting((n + 2 * B, n + 2 * B), seed)
    fixed = canvas[B : B + n, B : B + n]
    T_true = _similarity(tx, ty, scale, deg, ((n - 1) / 2, (n - 1) / 2))
    offset = np.array([[1, 0, B], [0, 1, B], [0, 0, 1.0]])
    to_canvas = offset @ T_true  # moving (x, y) -> canvas (x, y)
    rows, cols = np.mgrid[0:n, 0:n].astype(float)
    x = to_canvas[0, 0] * cols + to_canvas[0, 1] * rows + to_canvas[0, 2]
    y = to_canvas[1, 0] * cols + to_canvas[1, 1] * rows + to_canvas[1, 2]
    moving = ndimage.map_coordinates(canvas, [y, x], order=3, mode="reflect")
    moving += 0.01 * np.random.default_rng(seed + 100).standard_normal(moving.shape)
    return fixed, moving, T_true


def _true_error(result: RegistrationResult, T_true: np.ndarray) -> float:
    """Largest distance (fixed px) between where the estimate and the truth put moving pixels, over the
    valid region."""
    rows, cols = np.nonzero(result.valid)
    p = np.c_[cols, rows, np.ones(rows.size)].T
    moved = T_true @ np.linalg.inv(result.transform) @ p
    return float(np.hypot(*(moved[:2] - p[:2])).max())


def _one_line(err: pytest.ExceptionInfo) -> None:
    assert str(err.value) and "\n" not in str(err.value)


def test_known_similarity_recovered_below_one_pixel() -> None:
    fixed, moving, T_true = _pair()
    r = register(fixed, moving)
    assert r.method_used == "feature" and not r.skipped and r.inliers >= 12
    # measured: residual 0.00 px (median tile shift), true error <= 0.03 px, inlier residual ~0.6 px
    assert r.residual_px < 1.0
    assert _true_error(r, T_true) < 1.0
    d = r.to_dict()
    assert d["scale"] == pytest.approx(1.05, abs=0.005) and d["rotation_deg"] == pytest.approx(3.0, abs=0.1)
    json.dumps(d)
    assert r.warped.shape == fixed.shape and r.warped.dtype == np.float32
    inner = ndimage.binary_erosion(r.valid, iterations=3)
    assert np.corrcoef(r.warped[inner], fixed[inner])[0, 1] > 0.95


def test_already_aligned_pair_is_skipped_with_notice() -> None:
    fixed, _, _ = _pair()
    moving = fixed + 0.01 * np.random.default_rng(3).standard_normal(fixed.shape)
    with pytest.warns(UserWarning, match="already aligned"):
        r = register(fixed, moving)
    assert r.skipped and r.method_used == "none" and r.residual_px < 0.5
    np.testing.assert_array_equal(r.transform, np.eye(3))
    np.testing.assert_allclose(r.warped, moving.astype(np.float32))
    assert any("skipped" in n for n in r.notes)


def test_different_sizes() -> None:
    fixed, moving, T_true = _pair(seed=2)
    small = ndimage.zoom(moving, 0.6, order=1)  # lower-resolution moving image
    n_in, n_out = moving.shape[0], small.shape[0]
    zoom = np.diag([(n_in - 1) / (n_out - 1), (n_in - 1) / (n_out - 1), 1.0])  # small (x, y) -> moving (x, y)
    r = register(fixed, small)
    assert r.warped.shape == fixed.shape and not r.skipped
    assert r.residual_px < 1.0
    assert _true_error(r, T_true @ zoom) < 1.0


def test_ir_like_inverted_contrast_still_registers() -> None:
    fixed, moving, T_true = _pair(seed=3, tx=-5.0, ty=7.0, scale=0.96, deg=-2.0)
    ir_like = 1.0 - np.clip(moving, 0, 1) ** 0.6  # inverted, with another tone curve
    r = register(fixed, ir_like)
    assert r.residual_px < 1.0 and _true_error(r, T_true) < 1.0


def test_intensity_fallback_when_features_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed, moving, T_true = _pair(seed=4, tx=4.0, ty=3.0, scale=1.04, deg=2.0)
    monkeypatch.setattr(reg, "_orb_matches", lambda *a, **k: (None, 0, np.empty((0, 2)), np.empty((0, 2)), ""))
    r = register(fixed, moving)
    assert r.method_used == "intensity" and r.inliers is None
    assert any("fell back to intensity" in n for n in r.notes)
    assert r.residual_px < 1.0 and _true_error(r, T_true) < 1.0
    with pytest.raises(InvalidParameterError, match="feature registration failed"):
        register(fixed, moving, method="feature")


def test_pure_noise_pair_raises_clear_error() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random((128, 128)), rng.random((128, 128))
    with pytest.raises(InvalidParameterError, match="registration failed") as err:
        register(a, b)
    _one_line(err)


def test_nonrigid_reports_displacement_statistics() -> None:
    fixed, moving, _ = _pair(seed=5, n=128, scale=1.02, deg=1.0)
    r = register(fixed, moving, nonrigid=True)
    assert r.flow is not None and r.flow.shape == (2, 128, 128)
    assert set(r.flow_stats) == {"median_px", "p95_px", "max_px", "mean_px"}
    assert r.flow_stats["median_px"] < 1.0  # the global transform already explains nearly everything
    assert r.to_dict()["nonrigid"]["median_px"] == pytest.approx(r.flow_stats["median_px"], abs=1e-4)


def test_method_none_and_bad_inputs() -> None:
    fixed, moving, _ = _pair(n=96)
    r = register(fixed, moving[::2, ::2], method="none")
    assert r.skipped and r.warped.shape == fixed.shape
    assert r.transform[0, 0] == pytest.approx(2.0, rel=0.02)
    with pytest.raises(InvalidParameterError, match="unknown registration method"):
        register(fixed, moving, method="magic")
    with pytest.raises(InvalidParameterError, match="model"):
        register(fixed, moving, model="projective")
    with pytest.raises(InvalidImageError, match="colour"):
        register(np.dstack([fixed] * 3), moving)
    with pytest.raises(InvalidImageError, match="at least 32x32"):
        register(fixed, moving[:20, :20])
    bad = moving.copy()
    bad[5, 5] = np.nan
    with pytest.raises(InvalidImageError, match="NaN"):
        register(fixed, bad)
    with pytest.raises(InvalidImageError, match="flat"):
        register(fixed, np.ones_like(moving))


@pytest.mark.slow
def test_visible_vs_ir_of_hidden_scene() -> None:
    """Different modalities: the RGB luminance and the IR band of a synthetic hidden-layer scene."""
    from artlens.synth.hidden import builtin_pigments, make_hidden_scene

    n = 256
    scene = make_hidden_scene((n + 2 * B, n + 2 * B), kind="mixed", seed=1, pigments=builtin_pigments())
    vis = (scene.visible_rgb @ np.array([0.299, 0.587, 0.114]) / 255.0)[B : B + n, B : B + n]
    T_true = _similarity(-3.0, 5.0, 1.03, -2.0, ((n - 1) / 2, (n - 1) / 2))
    to_canvas = np.array([[1, 0, B], [0, 1, B], [0, 0, 1.0]]) @ T_true
    rows, cols = np.mgrid[0:n, 0:n].astype(float)
    x = to_canvas[0, 0] * cols + to_canvas[0, 1] * rows + to_canvas[0, 2]
    y = to_canvas[1, 0] * cols + to_canvas[1, 1] * rows + to_canvas[1, 2]
    ir = ndimage.map_coordinates(scene.ir / 65535.0, [y, x], order=3, mode="reflect")
    r = register(vis, ir)
    # measured for this pair: residual ~0.2 px, true error < 1 px (content-dependent bias across modalities)
    assert r.residual_px < 1.0 and _true_error(r, T_true) < 1.5


@pytest.mark.shared_data
@pytest.mark.slow
def test_cave_bands_against_rgb(shared_data: Path) -> None:
    from PIL import Image

    folder = shared_data / "multispectral" / "cave_oil_painting"
    rgb = np.asarray(Image.open(folder / "oil_painting_RGB.bmp")) / 255.0
    lum = rgb @ np.array([0.299, 0.587, 0.114])
    b700 = np.asarray(Image.open(folder / "oil_painting_ms_31.png")) / 65535.0
    with pytest.warns(UserWarning, match="already aligned"):
        assert register(lum, b700).skipped
    # the redistributed 590 nm band is stretched to 640x512: an affine model finds the 0.8 x-scale
    # (both halved by 2x2 block means to keep the test quick)
    stretched = np.asarray(Image.open(folder / "bands_400-590nm_stretched_640x512" / "oil_painting_ms_20.png"))

    def halve(a: np.ndarray) -> np.ndarray:
        return a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2).mean(axis=(1, 3))

    r = register(halve(lum), halve(stretched / 65535.0), model="affine")
    assert r.transform[0, 0] == pytest.approx(0.8, abs=0.005) and r.transform[1, 1] == pytest.approx(1.0, abs=0.005)
    assert abs(r.transform[0, 1]) < 0.005 and abs(r.transform[1, 0]) < 0.005
    assert r.residual_px < 1.0


def test_valid_pixels_are_not_blended_with_the_zero_fill() -> None:
    """A sub-pixel warp: every pixel marked valid is interpolated from moving samples only (none reads darker
    for being half outside the moving image)."""
    from artlens.beneath.registration import _warp

    rng = np.random.default_rng(0)
    img = (0.6 + 0.4 * rng.random((64, 64))).astype(np.float32)
    T = np.array([[1.0, 0.0, 2.4], [0.0, 1.0, -1.7], [0.0, 0.0, 1.0]])
    warped, valid = _warp(img, T, img.shape)
    assert valid.mean() > 0.85 and warped[valid].min() >= 0.6 - 1e-6
