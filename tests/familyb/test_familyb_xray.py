"""Tests of the family B X-ray plate simulator (benchmarks/familyb): determinism, truth, conventions, files."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from familyb import rolls, xray  # noqa: E402

SMALL = {"height_cm": 2.5, "width_cm": 2.5}
# clean imaging, nearly regular spacing, straight threads: the Fourier peak must sit on the truth
REGULAR = dict(xray.PLAIN, **SMALL, waviness=0.0, spacing_sd=0.01, cross_section="elliptical")


def _profile_peak(img: np.ndarray, px_per_cm: float, axis: int) -> float:
    """Frequency (cycles/cm) of the strongest peak (>= 3/cm) of the mean profile along image axis ``axis``."""
    prof = img.astype(float).mean(axis=1 - axis)
    prof = (prof - prof.mean()) * np.hanning(prof.size)
    nfft = 1 << 15
    spec = np.abs(np.fft.rfft(prof, nfft))
    freq = np.fft.rfftfreq(nfft, 1.0 / px_per_cm)
    spec[freq < 3.0] = 0.0
    return float(freq[np.argmax(spec)])


def _fft_angles(p: xray.PlateB, fh: float, fv: float) -> tuple[float, float]:
    """Angles (deg, CCW as displayed) from the 2-D spectrum peaks near (fy, fx) = (fh, 0) and (0, fv)."""
    im = p.image.astype(float)
    im = (im - im.mean()) * np.outer(np.hanning(im.shape[0]), np.hanning(im.shape[1]))
    n = 2048
    spec = np.abs(np.fft.fft2(im, (n, n)))
    f = np.fft.fftfreq(n, 1.0 / p.px_per_cm)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    near_h = (np.abs(fy - fh) < 0.25 * fh) & (np.abs(fx) < 0.25 * fh)
    i = int(np.argmax(np.where(near_h, spec, 0.0)))
    ah = np.degrees(np.arctan2(fx.flat[i], fy.flat[i]))  # normal of horizontal threads: (sin a, cos a)
    near_v = (np.abs(fx - fv) < 0.25 * fv) & (np.abs(fy) < 0.25 * fv)
    i = int(np.argmax(np.where(near_v, spec, 0.0)))
    av = np.degrees(np.arctan2(-fy.flat[i], fx.flat[i]))  # normal of vertical threads: (cos a, -sin a)
    return float(ah), float(av)


def _lattice_contrast(p: xray.PlateB) -> float:
    """(mean at interstice centres - mean at thread crossings) / image std."""
    h, w = p.image.shape
    xg, yg = np.meshgrid((np.arange(w) + 0.5) / p.px_per_cm, (np.arange(h) + 0.5) / p.px_per_cm)
    fh = xray.thread_index(p, "horizontal", xg, yg) % 1.0
    fv = xray.thread_index(p, "vertical", xg, yg) % 1.0
    inter = (np.abs(fh - 0.5) < 0.1) & (np.abs(fv - 0.5) < 0.1)
    cross = (np.minimum(fh, 1 - fh) < 0.1) & (np.minimum(fv, 1 - fv) < 0.1)
    im = p.image.astype(float)
    return float((im[inter].mean() - im[cross].mean()) / im.std())


def test_same_seed_same_image_and_different_seed_differs() -> None:
    a = xray.make_plate(7, height_cm=1.5, width_cm=1.5)
    b = xray.make_plate(7, height_cm=1.5, width_cm=1.5)
    c = xray.make_plate(8, height_cm=1.5, width_cm=1.5)
    assert a.image.shape == (300, 300) and a.image.dtype == np.float32
    assert np.array_equal(a.image, b.image)
    assert a.meta == b.meta and a.horizontal == b.horizontal
    assert not np.array_equal(a.image, c.image)
    assert 0.0 <= float(a.image.min()) and float(a.image.max()) <= 1.0
    json.dumps(a.meta)  # JSON-serialisable


def test_plain_plate_fourier_peak_and_window_truth() -> None:
    p = xray.make_plate(3, horizontal=13.0, vertical=17.5, horizontal_angle=0.0, vertical_angle=0.0, **REGULAR)
    assert p.horizontal == pytest.approx(13.0, abs=0.01)
    assert p.vertical == pytest.approx(17.5, abs=0.01)
    # horizontal threads repeat down the image (axis 0), vertical threads across it (axis 1)
    assert _profile_peak(p.image, p.px_per_cm, 0) == pytest.approx(p.horizontal, abs=0.2)
    assert _profile_peak(p.image, p.px_per_cm, 1) == pytest.approx(p.vertical, abs=0.2)
    for direction, mean in (("horizontal", p.horizontal), ("vertical", p.vertical)):
        local = xray.window_truth(p, direction, 1.25, 1.25, 1.0)
        assert local == pytest.approx(mean, rel=0.04)
    # the centreline lists agree with the densities
    assert len(p.h_centres_cm) == pytest.approx(2.5 * p.horizontal, abs=1.5)
    assert 1.0 / np.diff(p.v_centres_cm).mean() == pytest.approx(p.vertical, rel=0.02)
    assert np.all(np.diff(p.h_centres_cm) > 0) and 0 <= p.h_centres_cm[0] and p.h_centres_cm[-1] <= 2.5


def test_window_truth_follows_irregular_spacing() -> None:
    p = xray.make_plate(5, horizontal=15.0, vertical=15.0, **dict(REGULAR, spacing_sd=0.08, spacing_phi=0.9))
    # direct count of centrelines in a horizontal band (angles are small) vs window_truth over that band
    y0, y1 = 0.4, 1.4
    c = p.h_centres_cm
    direct = (np.interp(y1, c, np.arange(c.size)) - np.interp(y0, c, np.arange(c.size))) / (y1 - y0)
    truth = xray.window_truth(p, "horizontal", 1.25, 0.9, 1.0)
    axis_truth = truth * np.cos(np.radians(xray.window_angle(p, "horizontal", 1.25, 0.9, 1.0)))
    assert axis_truth == pytest.approx(direct, rel=0.01)


@pytest.mark.parametrize("angle", [3.0, -2.5])
def test_angle_convention_counter_clockwise_as_displayed(angle: float) -> None:
    p = xray.make_plate(4, horizontal=15.0, vertical=12.0, horizontal_angle=angle, vertical_angle=angle, **REGULAR)
    assert p.horizontal_angle == pytest.approx(angle, abs=0.05)
    ah, av = _fft_angles(p, 15.0, 12.0)
    assert ah == pytest.approx(angle, abs=0.6)
    assert av == pytest.approx(angle, abs=0.6)
    # geometry: with a > 0 a horizontal thread rises to the right, so at fixed y the index (counted downwards)
    # grows to the right; a vertical thread followed upwards moves left, so at fixed x the index grows upwards
    xs, ys = np.array([0.5, 2.0]), np.array([1.25, 1.25])
    nh = xray.thread_index(p, "horizontal", xs, ys)
    nv = xray.thread_index(p, "vertical", ys, np.array([2.0, 0.5]))
    assert np.sign(nh[1] - nh[0]) == np.sign(angle)
    assert np.sign(nv[1] - nv[0]) == np.sign(angle)


def test_interstice_lattices_are_bright_or_dark_dots() -> None:
    base = dict(xray.PLAIN, **SMALL, horizontal=14.0, vertical=17.0, interstice_strength=1.0)
    none = _lattice_contrast(xray.make_plate(1, **dict(base, interstice="none")))
    bright = _lattice_contrast(xray.make_plate(1, **dict(base, interstice="bright")))
    dark = _lattice_contrast(xray.make_plate(1, **dict(base, interstice="dark")))
    assert bright > none + 0.3
    assert dark < 0.0 < none
    # under heavy paint the dark lattice still marks every interstice
    heavy = _lattice_contrast(xray.make_plate(1, **dict(base, interstice="dark", paint=0.9)))
    assert heavy < -0.3


def test_write_tiff_round_trip(tmp_path: Path) -> None:
    for depth in (8, 16, None):
        p = xray.make_plate(2, height_cm=1.0, width_cm=1.5, bit_depth=depth)
        path = tmp_path / f"p{depth}.tif"
        xray.write_tiff(path, p)
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            data = page.asarray()
            num, den = page.tags["XResolution"].value
            assert num / den == pytest.approx(200.0)
            num, den = page.tags["YResolution"].value
            assert num / den == pytest.approx(200.0)
            assert int(page.tags["ResolutionUnit"].value) == 3  # CENTIMETER
        assert data.shape == (200, 300)
        if depth == 8:
            assert data.dtype == np.uint8
            assert np.array_equal((data / np.float32(255.0)).astype(np.float32), p.image)
        else:
            assert data.dtype == p.image.dtype
            assert np.array_equal(data, p.image)


def test_suites_respect_their_factor_ranges() -> None:
    coarse = xray.suite("coarse", 2, seed0=0, height_cm=1.2, width_cm=1.2)
    for p in coarse:
        assert 7.0 <= p.meta["horizontal_nominal"] <= 10.0 and 7.0 <= p.meta["vertical_nominal"] <= 10.0
        assert p.meta["interstice"] in ("bright", "dark") and p.meta["paint"] >= 0.75
        assert p.meta["suite"] == "coarse"
    lat = xray.suite("lattice", 2, seed0=5, height_cm=1.2, width_cm=1.2)
    assert all(p.meta["interstice"] != "none" and p.meta["interstice_strength"] >= 0.7 for p in lat)
    lin = xray.suite("lining", 1, seed0=1, height_cm=1.2, width_cm=1.2)[0]
    assert lin.meta["lining"] and 0.2 <= lin.meta["lining_strength"] <= 0.5
    assert "lining" in lin.geom and lin.meta["lining_horizontal"] != pytest.approx(lin.horizontal, rel=0.1)
    with pytest.raises(ValueError):
        xray.suite("nope", 1)
    with pytest.raises(TypeError):
        xray.make_plate(0, not_a_factor=1)


def test_cli_writes_tiffs_and_truth(tmp_path: Path) -> None:
    args = ["--suite", "hard", "--n", "2", "--out", str(tmp_path), "--size-cm", "1", "--px-per-cm", "100"]
    assert xray.main(args) == 0
    with open(tmp_path / "truth.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows] == ["plate-00.tif", "plate-01.tif"]
    assert {"horizontal", "vertical", "horizontal_angle", "vertical_angle", "paint", "interstice"} <= set(rows[0])
    for r in rows:
        assert 7.0 <= float(r["horizontal"]) <= 26.5
        assert tifffile.imread(tmp_path / r["file"]).shape == (100, 100)


def test_roll_suite_shares_statistics_not_densities() -> None:
    spread = 0.3
    items = rolls.roll_suite(n_rolls=3, cuts=2, cut_cm=1.2, px_per_cm=100.0, seed0=4, density_spread=spread)
    assert [r for r, _ in items] == [0, 0, 1, 1, 2, 2]
    common_h, common_v = items[0][1].meta["common_horizontal"], items[0][1].meta["common_vertical"]
    for _, p in items:
        assert abs(p.meta["roll_horizontal"] - common_h) <= spread
        assert abs(p.meta["roll_vertical"] - common_v) <= spread
        assert abs(p.horizontal - common_h) <= spread + 0.01 and abs(p.vertical - common_v) <= spread + 0.01
        assert abs(p.meta["rotation_deg"]) <= 2.0 and p.image.shape == (120, 120)
    by_roll: dict[int, list[xray.PlateB]] = {}
    for r, p in items:
        by_roll.setdefault(r, []).append(p)
    keys = ("cross_section", "width_frac", "slub_rate", "spacing_sd", "spacing_phi", "relief", "stripes", "crimp")
    for cuts in by_roll.values():
        a, b = cuts
        assert a.meta["roll_stats"] == b.meta["roll_stats"]
        assert all(a.meta[k] == b.meta[k] == a.meta["roll_stats"][k] for k in keys)
        assert a.meta["seed"] != b.meta["seed"] and not np.array_equal(a.image, b.image)  # separate pieces
    assert by_roll[0][0].meta["roll_stats"] != by_roll[1][0].meta["roll_stats"]
