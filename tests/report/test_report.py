"""Tests for artlens.report: figures, map PNGs and the self-contained HTML report."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from artlens import __version__
from artlens.canvas.threads.result import DirectionMaps, ThreadCountResult
from artlens.report import (
    MAP_NAMES,
    PlateSection,
    angle_map_figure,
    density_map_figure,
    figure_to_png_bytes,
    plate_figure,
    preview_image,
    save_figure,
    write_maps,
    write_threads_report,
)

PX_PER_CM = 100.0
PLATE_PX = (400, 500)  # 4 x 5 cm


def _maps(base: float, seed: int) -> DirectionMaps:
    rng = np.random.default_rng(seed)
    density = base + 0.3 * rng.standard_normal((4, 5))
    angle = 0.8 * rng.standard_normal((4, 5))
    confidence = rng.uniform(0.4, 0.95, (4, 5))
    outlier = np.zeros((4, 5), dtype=bool)
    density[0, 0] = angle[0, 0] = np.nan  # no peak
    density[2, 3] = np.nan
    outlier[1, 1] = True
    density[1, 1] = base + 6.0  # a wild outlier must not stretch the colour scale
    outlier[3, 4] = True
    return DirectionMaps(density=density, angle=angle, confidence=confidence, outlier=outlier)


@pytest.fixture
def result() -> ThreadCountResult:
    return ThreadCountResult(
        method="spectral",
        px_per_cm=PX_PER_CM,
        window_cm=1.5,
        step_cm=1.0,
        x_cm=np.arange(5) + 0.5,
        y_cm=np.arange(4) + 0.5,
        horizontal=_maps(12.0, 0),
        vertical=_maps(15.0, 1),
        plate_shape_px=PLATE_PX,
        parameters={"band": [5.0, 40.0], "taper": "hann"},
    )


@pytest.fixture
def plate() -> np.ndarray:
    """A plain-weave-like texture with a brightness gradient, 400 x 500 px."""
    y, x = np.mgrid[0 : PLATE_PX[0], 0 : PLATE_PX[1]] / PX_PER_CM
    weave = np.cos(2 * np.pi * 12 * y) + np.cos(2 * np.pi * 15 * x)
    return (1000 + 200 * weave + 300 * x).astype(np.uint16)


def _is_png(path) -> bool:
    with Image.open(path) as im:
        im.verify()
        return im.format == "PNG"


# --------------------------------------------------------------------------------------------------
# preview_image
# --------------------------------------------------------------------------------------------------


def test_preview_image_shape_and_range():
    a = np.arange(1000 * 3000, dtype=np.uint16).reshape(1000, 3000)
    p = preview_image(a, max_side=300)
    assert p.dtype == np.float32
    assert max(p.shape) <= 300 and max(p.shape) >= 250
    assert abs(p.shape[1] / p.shape[0] - 3.0) < 0.1  # aspect kept
    assert p.min() == 0.0 and p.max() == 1.0


def test_preview_image_small_and_degenerate():
    assert preview_image(np.ones((10, 20)), max_side=800).shape == (10, 20)  # never upsampled
    assert np.all(preview_image(np.full((5, 5), 7.0)) == 0.5)  # constant image: mid-gray
    a = np.random.default_rng(0).random((50, 50))
    a[0, 0] = np.nan
    assert np.isfinite(preview_image(a)).all()
    with pytest.raises(ValueError, match="2-D"):
        preview_image(np.zeros((4, 4, 3)))


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["horizontal", "vertical"])
def test_density_figure(result, plate, direction):
    fig = density_map_figure(result, direction, preview_image(plate))
    assert isinstance(fig, Figure)
    ax, cax = fig.axes
    assert cax.get_ylabel() == "threads/cm"
    assert ax.get_xlabel() == "x (cm)" and ax.get_ylabel() == "y (cm)"
    assert ax.get_xlim() == (0.0, 5.0) and ax.get_ylim() == (4.0, 0.0)  # cm, y downwards
    assert direction in ax.get_title()
    # The colour range comes from the valid windows: the outlier at base + 6 is out of range.
    mesh = ax.collections[0]
    maps = result.direction(direction)
    valid = maps.density[np.isfinite(maps.density) & ~maps.outlier]
    assert mesh.norm.vmax == pytest.approx(valid.max())
    assert mesh.norm.vmin == pytest.approx(valid.min())
    assert mesh.get_array().mask.sum() == 2  # NaN windows are masked (transparent)
    assert figure_to_png_bytes(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_angle_figure_is_centred_on_zero(result):
    fig = angle_map_figure(result, "horizontal")  # no preview
    ax, cax = fig.axes
    assert cax.get_ylabel() == "degrees (counter-clockwise +)"
    norm = ax.collections[0].norm
    assert norm.vmin == pytest.approx(-norm.vmax) and norm.vmax >= 0.5


def test_bad_direction(result):
    with pytest.raises(ValueError, match="direction"):
        density_map_figure(result, "diagonal")


def test_figures_are_deterministic(result, plate):
    prev = preview_image(plate)
    a = figure_to_png_bytes(density_map_figure(result, "vertical", prev))
    b = figure_to_png_bytes(density_map_figure(result, "vertical", prev))
    assert a == b


def test_save_figure(result, plate, tmp_path):
    path = save_figure(plate_figure(result, preview_image(plate)), tmp_path / "sub" / "plate.png")
    assert path.is_file() and _is_png(path)


# --------------------------------------------------------------------------------------------------
# Maps and report
# --------------------------------------------------------------------------------------------------


def test_write_maps(result, plate, tmp_path):
    paths = write_maps(tmp_path, result, preview_image(plate), prefix="p1_")
    assert set(paths) == set(MAP_NAMES)
    for name, path in paths.items():
        assert path.name == f"p1_{name}.png"
        assert _is_png(path)


def test_write_threads_report(result, plate, tmp_path):
    prev = preview_image(plate)
    paths = write_maps(tmp_path, result, prev)
    section = PlateSection(
        name="synthetic <plate> 1",
        result=result,
        preview=prev,
        source={"path": "/data/plate1.tif", "sha256": "ab" * 32, "px_per_cm": PX_PER_CM,
                "px_per_cm_source": "override", "size": [400, 500]},
        truth={"horizontal": 12.0, "vertical": 15.0},
        figure_paths={k: str(v) for k, v in paths.items()},
    )
    second = PlateSection(name="no preview", result=result, preview=None)
    created = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    out = write_threads_report(tmp_path, [section, second], title="Thread count",
                               parameters={"window_cm": 1.5, "step_cm": 1.0, "band": [5, 40]},
                               notes="synthetic test plate", created=created)
    assert out == tmp_path / "report.html"
    html = out.read_text(encoding="utf-8")

    assert __version__ in html
    assert "2025-01-02T03:04:05+00:00" in html
    assert "threads/cm" in html
    assert "synthetic &lt;plate&gt; 1" in html and "<plate>" not in html  # autoescaped
    assert "ab" * 32 in html and "synthetic test plate" in html
    # 1 plate preview + 4 maps for the first section, 4 maps for the second
    assert html.count("data:image/png;base64,") == 9
    # self-contained: no external resources or links
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.IGNORECASE)
    assert "<link" not in html and "<script" not in html

    summary = result.summary()
    for direction, truth in (("horizontal", 12.0), ("vertical", 15.0)):
        s = summary[direction]
        mean = s["threads_per_cm"]["mean"]
        assert f"{mean:.2f}" in html
        assert f"{s['threads_per_cm']['std']:.2f}" in html
        assert f"{s['threads_per_cm']['median']:.2f}" in html
        assert f"{mean - truth:+.2f}" in html  # error column
        assert f"<td class=\"num\">{s['valid_windows']}</td>" in html
    assert summary["horizontal"]["valid_windows"] == 16  # 20 - 2 no-peak - 2 outliers


def test_report_without_truth_has_no_truth_columns(result, tmp_path):
    out = write_threads_report(tmp_path, [PlateSection("p", result)], title="t", parameters={})
    html = out.read_text(encoding="utf-8")
    assert "ground truth" not in html
    assert html.count("data:image/png;base64,") == 4
