"""The training-free ``pixel`` method (``artlens.beneath.pixel``) and the maps' cross-check."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import average_precision_score

from artlens.beneath.disagreement import cross_check
from artlens.beneath.pixel import PixelParams, fit_colour_lut, lut_predict, pixel_evidence
from artlens.errors import InvalidImageError, InvalidParameterError

N = 96


def _painting(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb, ir)``: 36 flat paints in 16 px squares, each with its own IR that no formula of its colour gives."""
    rng = np.random.default_rng(seed)
    cells = rng.random((6, 6, 3))
    rgb = np.kron(cells, np.ones((16, 16, 1))).astype(np.float32)
    ir_of_paint = 0.3 + 0.6 * rng.random((6, 6))  # arbitrary per paint
    ir = np.kron(ir_of_paint, np.ones((16, 16))) + 0.01 * rng.standard_normal((N, N))
    return rgb, ir.astype(np.float32)


def _thin_lines(ir: np.ndarray, depth: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Two 1 px lines (a row and a diagonal) darker in IR only, and their mask."""
    mask = np.zeros(ir.shape, bool)
    mask[40, 8:88] = True
    idx = np.arange(10, 80)
    mask[idx, idx + 5] = True
    return (ir - depth * mask).astype(np.float32), mask


def test_a_one_pixel_line_ranks_above_everything_else() -> None:
    rgb, ir = _painting()
    ir_lines, mask = _thin_lines(ir)
    heat, info = pixel_evidence(rgb, ir_lines)
    assert heat.shape == (N, N) and heat.dtype == np.float32
    assert average_precision_score(mask.ravel(), heat.ravel()) > 0.8  # prevalence 1.7 %
    assert info["shift_px"] == [0.0, 0.0] and info["params"] == PixelParams().to_dict()


def test_decoys_dark_in_both_views_are_explained() -> None:
    """A black stroke painted on top (dark in RGB and IR) is not hidden content; a line only in IR is."""
    rgb, ir = _painting(1)
    ir_lines, mask = _thin_lines(ir)
    decoy = np.zeros((N, N), bool)
    decoy[70:73, 10:90] = True  # 3 px black stroke on top
    rgb[decoy] = 0.05
    ir_lines[decoy] = 0.05
    heat, _ = pixel_evidence(rgb, ir_lines)
    assert np.median(heat[decoy]) < np.median(heat[mask])
    assert average_precision_score(mask.ravel(), heat.ravel()) > 0.7


def test_misregistered_thin_lines_are_still_found() -> None:
    """The other view shifted by (1.0, -0.6) px: the residual registration finds the shift."""
    rgb, ir = _painting(2)
    ir_lines, mask = _thin_lines(ir)
    shifted = ndimage.shift(ir_lines, (1.0, -0.6), order=1, mode="nearest").astype(np.float32)
    heat, info = pixel_evidence(rgb, shifted)
    assert info["shift_px"] == pytest.approx([-1.0, 0.6], abs=0.15)
    assert average_precision_score(mask.ravel(), heat.ravel()) > 0.6


def test_uneven_lighting_is_divided_out() -> None:
    """IR lamp fall-off of ±20 % towards the corners does not outrank 10 % dark lines."""
    rgb, ir = _painting(3)
    ir_lines, mask = _thin_lines(ir, depth=0.1)
    yy, xx = np.mgrid[0:N, 0:N] / (N - 1) - 0.5
    lit = (ir_lines * (1.2 - 1.6 * (xx**2 + yy**2))).astype(np.float32)
    heat, info = pixel_evidence(rgb, lit)
    assert info["lighting_range"][1] / info["lighting_range"][0] > 1.3
    assert average_precision_score(mask.ravel(), heat.ravel()) > 0.7


def test_uncovered_pixels_raise_no_evidence() -> None:
    """Pixels outside ``valid`` (zero in the registered view) must not light up the border."""
    rgb, ir = _painting(4)
    ir_lines, mask = _thin_lines(ir)
    valid = np.ones((N, N), bool)
    valid[:, :6] = False
    ir_lines[~valid] = 0.0
    heat, _ = pixel_evidence(rgb, ir_lines, valid=valid)
    border = np.zeros((N, N), bool)
    border[:, :9] = True  # the uncovered columns and the three beside them
    assert heat[border & ~mask].max() < np.percentile(heat[mask], 25)


def test_same_seed_same_map() -> None:
    rgb, ir = _painting(5)
    a, _ = pixel_evidence(rgb, ir, seed=3)
    b, _ = pixel_evidence(rgb, ir, seed=3)
    assert np.array_equal(a, b)


def test_colour_lut_fits_a_smooth_relation_robustly() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((4000, 3))
    y = 0.2 + 0.5 * x[:, 0] * x[:, 1] + 0.2 * x[:, 2] ** 2
    y_out = y.copy()
    y_out[:300] -= 0.5  # 7.5 % outliers
    values, scale = fit_colour_lut(x, y_out, grid=8)
    pred = lut_predict(values, x, 8)
    assert np.median(np.abs(pred[300:] - y[300:])) < 0.01 and scale < 0.02


@pytest.mark.parametrize("kwargs", [{"grid": 2}, {"tolerance_px": 9}, {"sigmas": ()}, {"illumination_degree": 7},
                                    {"max_shift_px": -1.0}])
def test_bad_parameters_are_refused(kwargs) -> None:
    rgb, ir = _painting()
    with pytest.raises(InvalidParameterError):
        pixel_evidence(rgb, ir, params=PixelParams(**kwargs))


def test_mismatched_shapes_are_refused() -> None:
    rgb, ir = _painting()
    with pytest.raises(InvalidImageError):
        pixel_evidence(rgb, ir[:50])


def test_cross_check_flags_only_where_one_map_points() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((128, 128)).astype(np.float32) * 0.1
    b = a.copy()
    assert cross_check(a, b, cell_px=32)["n_flagged"] == 0  # identical maps agree everywhere
    a, b = np.zeros((128, 128), np.float32), np.zeros((128, 128), np.float32)
    a[10:20, 10:20] = 5.0  # only a points at the top-left cell
    b[100:110, 100:110] = 5.0  # only b at the bottom-right one
    r = cross_check(a, b, names=("pixel", "residual"), cell_px=32, top=0.1, low=0.5)
    got = {(c["x0"], c["y0"]): c["higher"] for c in r["cells"]}
    assert got == {(0, 0): "pixel", (96, 96): "residual"} and r["n_flagged"] == 2
    with pytest.raises(InvalidImageError):
        cross_check(a, b[:64])
