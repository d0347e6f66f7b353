"""Family B hidden-layer scenes (benchmarks/familyb/scenes.py): determinism, physics, mask rule, files, speed."""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from familyb import scenes  # noqa: E402

REGISTERED = {"shift": (0.0, 0.0), "rotation_deg": 0.0, "scale": 1.0}
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


@pytest.fixture(scope="module")
def lines_registered() -> scenes.SceneB:
    """A 384 px line scene with the IR camera exactly registered to the visible one."""
    return scenes.make_scene(2, "lines", **REGISTERED)


def test_same_seed_identical_different_seed_differs() -> None:
    a = scenes.make_scene(5, "mixed", size=64)
    b = scenes.make_scene(5, "mixed", size=64)
    c = scenes.make_scene(6, "mixed", size=64)
    assert np.array_equal(a.visible_rgb, b.visible_rgb)
    assert np.array_equal(a.ir, b.ir)
    assert np.array_equal(a.mask, b.mask)
    assert a.meta == b.meta
    assert json.loads(json.dumps(a.meta)) == a.meta  # JSON-serialisable, nothing lost
    assert not np.array_equal(a.visible_rgb, c.visible_rgb)
    assert not np.array_equal(a.ir, c.ir)
    assert a.meta != c.meta


def test_output_types_and_ranges(lines_registered: scenes.SceneB) -> None:
    s = lines_registered
    assert s.visible_rgb.shape == (384, 384, 3) and s.visible_rgb.dtype == np.float32
    assert s.ir.shape == (384, 384) and s.ir.dtype == np.float32
    assert s.mask.shape == (384, 384) and s.mask.dtype == bool
    assert 0.0 <= s.visible_rgb.min() and s.visible_rgb.max() <= 1.0
    assert 0.0 <= s.ir.min() and s.ir.max() <= 1.0
    assert s.kind == "lines"
    assert s.meta["ir_camera"]["band"] in scenes.IR_BANDS
    with pytest.raises(ValueError):
        scenes.make_scene(0, "circles")
    with pytest.raises(ValueError):
        scenes.make_scene(0, "lines", size=64, not_a_factor=1)


def test_hidden_lines_dark_in_ir_but_not_in_visible(lines_registered: scenes.SceneB) -> None:
    s = lines_registered
    lay = s.layers
    hidden_any = ndimage.binary_dilation((lay["underdrawing"] > 0) | (lay["pentimento"] > 0), iterations=2)
    clean = (lay["top_strokes"] == 0) & (lay["craquelure"] == 0) & (lay["glaze"] == 0)
    ring = ndimage.binary_dilation(s.mask, iterations=4) & ~hidden_any & clean
    assert s.mask.sum() > 300 and ring.sum() > 300
    lum = s.visible_rgb @ LUMA
    ir_contrast = (s.ir[ring].mean() - s.ir[s.mask].mean()) / s.ir[ring].mean()
    vis_contrast = abs(lum[ring].mean() - lum[s.mask].mean()) / lum[ring].mean()
    assert ir_contrast > 0.08  # the lines are clearly darker in the IR than right beside them
    assert ir_contrast > 3.0 * vis_contrast  # ... much more than in visible luminance
    # the noise-free truth maps agree: every mask pixel darkens the IR by >= TAU_IR, changes display RGB <= TAU_VIS
    assert (lay["ir_drop"][s.mask] >= scenes.TAU_IR).all()
    assert (lay["vis_drop"][s.mask] <= scenes.TAU_VIS).all()


def test_hidden_layers_change_ir_not_visible(lines_registered: scenes.SceneB) -> None:
    """Against the same picture painted without its hidden layers (identical noise), only the IR changes."""
    s = lines_registered
    control = scenes.make_scene(2, "lines", hidden=False, **REGISTERED)
    assert not control.mask.any() and control.meta["hidden_painted"] is False
    m = s.mask
    ir_darkening = ((control.ir - s.ir)[m] / control.ir[m]).mean()
    lum_change = (np.abs(control.visible_rgb @ LUMA - s.visible_rgb @ LUMA)[m] / (control.visible_rgb @ LUMA)[m]).mean()
    assert ir_darkening > 0.08
    assert lum_change < 0.02
    assert ir_darkening > 5.0 * lum_change
    reach = int(3 * s.meta["ir_camera"]["blur_sigma_px"]) + 2
    far = ~ndimage.binary_dilation(s.layers["underdrawing"] > 0, iterations=reach)
    assert np.abs(control.ir - s.ir)[far].max() < 1e-3  # nothing else moved
    assert np.abs(control.visible_rgb - s.visible_rgb)[far].max() < 1.5 / 255


def test_top_strokes_dark_in_both_views_and_never_in_mask() -> None:
    with_top = scenes.make_scene(3, "mixed", size=192, n_top_strokes=8, **REGISTERED)
    without = scenes.make_scene(3, "mixed", size=192, n_top_strokes=0, **REGISTERED)
    top = with_top.layers["top_strokes"]
    core = top > 0.9
    assert core.sum() > 100
    lum_ratio = (with_top.visible_rgb @ LUMA)[core].mean() / (without.visible_rgb @ LUMA)[core].mean()
    ir_ratio = with_top.ir[core].mean() / without.ir[core].mean()
    assert lum_ratio < 0.6 and ir_ratio < 0.6
    assert not (with_top.mask & (top > scenes.TOP_EXCLUDE)).any()
    assert not (with_top.mask & (with_top.layers["craquelure"] >= scenes.CRACK_EXCLUDE)).any()


def test_glaze_decoy_dark_in_visible_only() -> None:
    with_glaze = scenes.make_scene(4, "lines", size=192, n_glaze=6, **REGISTERED)
    without = scenes.make_scene(4, "lines", size=192, n_glaze=0, **REGISTERED)
    core = (with_glaze.layers["glaze"] > 0.9) & (with_glaze.layers["top_strokes"] == 0)
    assert core.sum() > 50
    lum_ratio = (with_glaze.visible_rgb @ LUMA)[core].mean() / (without.visible_rgb @ LUMA)[core].mean()
    ir_ratio = with_glaze.ir[core].mean() / without.ir[core].mean()
    assert lum_ratio < 0.6
    assert ir_ratio > 0.9


def test_masks_non_empty_lines_thin_shapes_filled() -> None:
    for kind in scenes.KINDS:
        s = scenes.make_scene(0, kind, size=384 if kind == "lines" else 192)
        assert s.mask.sum() > 200, kind
        depth = ndimage.distance_transform_edt(s.mask)
        if kind == "lines":
            assert (depth[s.mask] <= 2.0).mean() > 0.9  # thin lines and hatching
            assert 1.0 <= s.meta["underdrawing"]["width_px_min"] <= s.meta["underdrawing"]["width_px_max"] <= 3.0
        if kind == "shapes":
            assert (depth > 4.0).sum() > 200  # filled areas, not lines
            assert s.meta["pentimenti"] and not s.meta["underdrawing"]


def test_misregistration_follows_recorded_convention() -> None:
    base = scenes.make_scene(1, "shapes", size=96, noise=0.0, ir_blur=0.6, **REGISTERED)
    moved = scenes.make_scene(1, "shapes", size=96, noise=0.0, ir_blur=0.6, shift=(2.0, 0.0),
                              rotation_deg=0.0, scale=1.0)
    assert moved.meta["registration"]["shift_px"] == [2.0, 0.0]
    errs = [np.abs(moved.ir[8:-8, 8:-8] - base.ir[8:-8, 8 + k:88 + k]).mean() for k in range(-3, 4)]
    assert int(np.argmin(errs)) - 3 == 2  # IR pixel x sees visible-frame point x + shift
    drawn = [scenes.make_scene(seed, "lines", size=48).meta["registration"] for seed in range(4)]
    assert all(0.2 <= np.hypot(*d["shift_px"]) <= 1.5 + 1e-6 for d in drawn)
    assert all(abs(d["rotation_deg"]) <= 0.25 and abs(d["scale"] - 1.0) <= 0.005 for d in drawn)


def test_write_pair_round_trip(tmp_path: Path) -> None:
    s = scenes.make_scene(7, "mixed", size=96)
    paths = scenes.write_pair(tmp_path, s, stem="x")
    assert {p.name for p in paths.values()} == {"x_visible.png", "x_ir.png", "x_mask.png"}
    vis = np.asarray(Image.open(paths["visible"]))
    assert vis.dtype == np.uint8 and vis.shape == (96, 96, 3)
    assert np.array_equal(vis, np.round(s.visible_rgb * 255).astype(np.uint8))
    ir = np.asarray(Image.open(paths["ir"]))
    assert ir.dtype == np.uint16 and ir.shape == (96, 96)
    assert ir.max() > 255  # really 16-bit
    assert np.array_equal(ir, np.round(s.ir * 65535).astype(np.uint16))
    mask = np.asarray(Image.open(paths["mask"]))
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    assert np.array_equal(mask == 255, s.mask)


def test_baselines_and_pixel_ap(lines_registered: scenes.SceneB) -> None:
    s = lines_registered
    maps = scenes.baseline_maps(s)
    assert set(maps) == {"dark", "lstsq_residual"}
    assert all(m.shape == s.ir.shape for m in maps.values())
    assert scenes.pixel_ap(s.mask, s.mask.astype(float)) == pytest.approx(1.0)
    chance = s.mask.mean()
    rand_ap = scenes.pixel_ap(s.mask, np.random.default_rng(0).random(s.mask.shape))
    assert rand_ap < 3 * chance
    ap = scenes.pixel_ap(s.mask, maps["lstsq_residual"])
    assert 3 * chance < ap < 0.9  # informative, far from trivial


def test_cli_writes_pairs_and_csv(tmp_path: Path) -> None:
    assert scenes.main(["--kind", "shapes", "--n", "2", "--seed0", "10", "--size", "64", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "scenes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["stem"] for r in rows] == ["shapes_00010", "shapes_00011"]
    assert json.loads(rows[0]["factors"])["kind"] == "shapes"
    for r in rows:
        for suffix in ("visible", "ir", "mask"):
            assert (tmp_path / f"{r['stem']}_{suffix}.png").is_file()


def test_one_scene_under_two_seconds() -> None:
    scenes.make_scene(0, "mixed", size=48)  # warm caches and imports
    # CPU time of this process, so that other jobs sharing the machine do not count against the generator
    t0 = time.process_time()
    scenes.make_scene(11, "mixed", size=384)
    assert time.process_time() - t0 < 2.0
