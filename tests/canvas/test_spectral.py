"""Tests of artlens.canvas.threads.spectral (windowed 2-D FFT thread counting)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from artlens.canvas.threads import SpectralParams, count_threads_spectral
from artlens.errors import InvalidImageError, InvalidParameterError

PPC = 200.0


def grating(shape, h_density, v_density, h_angle=0.0, v_angle=0.0, ppc=PPC, harmonic=0.0):
    """Two cosine gratings with the DESIGN.md conventions: horizontal threads at density d and
    angle t have spatial frequency (f_row, f_x) = d (cos t, sin t); vertical (-sin t, cos t)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64) / ppc  # cm
    th, tv = np.radians(h_angle), np.radians(v_angle)
    ph = 2 * np.pi * h_density * (yy * np.cos(th) + xx * np.sin(th))
    pv = 2 * np.pi * v_density * (-yy * np.sin(tv) + xx * np.cos(tv))
    img = 100 + 20 * np.cos(ph) + 20 * np.cos(pv)
    if harmonic:
        img += 20 * harmonic * (np.cos(2 * ph) + np.cos(2 * pv))
    return img


@pytest.mark.parametrize(
    ("h", "v", "ha", "va", "window"),
    [
        (12.0, 15.0, 0.0, 0.0, 1.0),
        (7.3, 9.87, 2.5, -1.5, 1.0),
        (12.37, 12.91, -3.0, 3.0, 1.5),
        (23.45, 29.1, 1.0, 0.5, 1.0),
        (35.2, 18.6, 0.0, -2.0, 0.7),
    ],
)
def test_pure_gratings_recovered_within_0_02(h, v, ha, va, window):
    img = grating((500, 600), h, v, ha, va)
    r = count_threads_spectral(img, SpectralParams(window_cm=window, step_cm=0.5), px_per_cm=PPC)
    for maps, truth, angle in ((r.horizontal, h, ha), (r.vertical, v, va)):
        assert np.all(np.abs(maps.density - truth) < 0.02), (maps.density, truth)
        assert np.all(np.abs(maps.angle - angle) < 0.05)
        assert not maps.outlier.any()
        assert maps.confidence.min() > 0.9


def test_summary_contract_and_grid():
    img = grating((600, 800), 12.0, 15.5)
    r = count_threads_spectral(img, SpectralParams(window_cm=1.5, step_cm=0.5), px_per_cm=PPC)
    s = r.summary()
    # 3 x 4 cm plate, 1.5 cm windows every 0.5 cm -> 4 x 6 windows
    assert (r.y_cm.size, r.x_cm.size) == (4, 6)
    assert s["windows"] == 24
    assert s["method"] == "spectral" and s["px_per_cm"] == PPC
    assert s["window_cm"] == 1.5 and s["step_cm"] == 0.5
    assert abs(s["horizontal"]["threads_per_cm"]["mean"] - 12.0) < 0.01
    assert abs(s["vertical"]["threads_per_cm"]["median"] - 15.5) < 0.01
    assert set(s["horizontal"]["angle_deg"]) == {"mean", "std"}
    # window centres are in cm from the top-left corner, symmetric on the plate
    assert r.x_cm[0] == pytest.approx(0.75) and r.x_cm[-1] == pytest.approx(3.25)


def test_strong_second_harmonic_does_not_double_the_count():
    img = grating((400, 400), 10.0, 13.0, harmonic=1.1)  # 2nd harmonic stronger than the fundamental
    r = count_threads_spectral(img, px_per_cm=PPC)
    assert np.all(np.abs(r.horizontal.density - 10.0) < 0.05)
    assert np.all(np.abs(r.vertical.density - 13.0) < 0.05)


def test_robust_to_paint_and_a_lead_white_stroke():
    rng = np.random.default_rng(1)
    img = grating((600, 600), 14.0, 16.0)
    yy, xx = np.mgrid[0:600, 0:600]
    img += 40 * np.sin(xx / 180.0) * np.cos(yy / 250.0)  # smooth brushwork
    img[200:240, 50:550] += 120  # a sharp bright stroke
    img += rng.normal(0, 10, img.shape)
    r = count_threads_spectral(img, px_per_cm=PPC)
    s = r.summary()
    assert abs(s["horizontal"]["threads_per_cm"]["median"] - 14.0) < 0.1
    assert abs(s["vertical"]["threads_per_cm"]["median"] - 16.0) < 0.1


def test_noise_window_is_flagged_not_averaged():
    rng = np.random.default_rng(0)
    img = grating((1000, 1000), 12.0, 15.0)
    img[400:600, 400:600] = rng.normal(100, 40, (200, 200))  # one window's worth of pure noise
    r = count_threads_spectral(img, SpectralParams(window_cm=1.0, step_cm=1.0), px_per_cm=PPC)
    assert r.horizontal.outlier[2, 2] and r.vertical.outlier[2, 2]
    assert r.horizontal.outlier.sum() == 1
    s = r.summary()
    assert s["horizontal"]["outlier_windows"] + s["horizontal"]["no_peak_windows"] == 1
    assert abs(s["horizontal"]["threads_per_cm"]["mean"] - 12.0) < 0.01


def test_plate_smaller_than_window_is_a_clear_error():
    with pytest.raises(InvalidImageError, match="smaller than the 1.5 cm window"):
        count_threads_spectral(np.zeros((100, 400)), SpectralParams(window_cm=1.5), px_per_cm=PPC)


@pytest.mark.parametrize(
    "params",
    [
        SpectralParams(band=(30.0, 10.0)),
        SpectralParams(band=(5.0, 150.0)),  # above Nyquist at 200 px/cm
        SpectralParams(window_cm=0.0),
        SpectralParams(window_cm=0.2, band=(5.0, 40.0)),  # fewer than 2 threads per window
    ],
)
def test_bad_parameters(params):
    with pytest.raises(InvalidParameterError):
        count_threads_spectral(np.zeros((400, 400)), params, px_per_cm=PPC)


def test_spectral_counting_does_not_import_torch(tmp_path: Path):
    """The spectral counter needs numpy and scipy only (its second opinion, the phase CNN, is torch's)."""
    src = Path(__file__).resolve().parents[2] / "src"
    code = (
        "import sys, numpy as np\n"
        "from artlens.canvas.threads.run import count_plate_file\n"
        "import tifffile\n"
        f"p = r'{tmp_path / 'p.tif'}'\n"
        "tifffile.imwrite(p, (np.random.default_rng(0).random((300, 300)) * 255).astype('uint8'),"
        " resolution=(200, 200), resolutionunit='CENTIMETER')\n"
        f"count_plate_file(p, r'{tmp_path / 'out'}', use_catalog=False, second_opinion=False)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'lightning' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr


def _fading_interstice_lattice(fh: float, fv: float, amp: float, seed: int = 1) -> np.ndarray:
    """Threads (cosines, bright at their centres) plus a spot at every crossing whose fundamental
    cancels the threads' own, fading across the plate: where the spots are strong the windows' peak
    is the second harmonic, elsewhere the fundamental (the flip of issue 18's coarse plate)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:800, 0:800] / 200.0
    img = 0.15 * (np.cos(2 * np.pi * fh * y) + np.cos(2 * np.pi * fv * x))
    py, px = (y * fh) % 1 - 0.5, (x * fv) % 1 - 0.5
    img += amp * (1 + 0.5 * np.cos(2 * np.pi * x / 4.0)) * np.exp(-(py**2 + px**2) / (2 * 0.12**2))
    return (img + 0.3 * rng.standard_normal(img.shape)).astype(np.float32)


@pytest.mark.parametrize(("fh", "fv"), [(8.2, 9.0), (12.1, 12.1)])
def test_windows_flipping_to_the_harmonic_are_resolved_per_plate(fh, fv):
    img = _fading_interstice_lattice(fh, fv, amp=0.9)
    # Without the plate-level step, a majority of windows read the double and the mean is neither
    # (measured 2026-12-05: 12.89 / 14.14 for 8.2 / 9.0, 19.01 / 19.02 for 12.1 / 12.1) ...
    plain = count_threads_spectral(img, SpectralParams(resolve_fundamental=False), px_per_cm=200.0).summary()
    assert plain["horizontal"]["threads_per_cm"]["mean"] > fh + 2
    # ... with it (the default) the fundamental, and the summary says how many windows were divided back.
    s = count_threads_spectral(img, px_per_cm=200.0).summary()
    for d, truth in (("horizontal", fh), ("vertical", fv)):
        assert s[d]["threads_per_cm"]["mean"] == pytest.approx(truth, abs=0.05)
        assert s[d]["harmonic_windows_corrected"] >= 10  # of 49 windows


@pytest.mark.parametrize("subharmonic", ["alternating threads", "checkerboard"])
def test_weave_with_half_frequency_content_is_not_halved(subharmonic):
    """Alternating thick and thin threads (on-axis half frequency) or a strong over/under checkerboard
    (diagonal half frequency, as in real radiographs): the density stays the thread frequency."""
    y, x = np.mgrid[0:800, 0:800] / 200.0
    img = np.cos(2 * np.pi * 12.0 * y) + np.cos(2 * np.pi * 15.0 * x)
    if subharmonic == "alternating threads":
        img += 0.3 * np.cos(2 * np.pi * 6.0 * y)
    else:
        img += 1.5 * np.cos(2 * np.pi * 6.0 * y) * np.cos(2 * np.pi * 7.5 * x)
    s = count_threads_spectral(img.astype(np.float32), px_per_cm=200.0).summary()
    assert s["horizontal"]["threads_per_cm"]["mean"] == pytest.approx(12.0, abs=0.05)
    assert s["vertical"]["threads_per_cm"]["mean"] == pytest.approx(15.0, abs=0.05)
    assert s["horizontal"]["harmonic_windows_corrected"] == 0


def test_resolve_harmonics_mode_subharmonic_alternative_and_off_windows():
    """The windows' majority is the base; a third / half found by at least half as many windows is the
    fundamental; an unchosen octave found by >= 10 % is reported; a lining's windows are set aside."""
    from artlens.canvas.threads.spectral import resolve_harmonics

    rng = np.random.default_rng(0)

    def windows(*groups):  # (density, count) groups, shuffled onto a 7 x 7 grid
        d = np.concatenate([f + rng.normal(0, 0.05, n) for f, n in groups])
        return rng.permutation(d).reshape(7, 7)

    # two-ply yarn: windows split between f = 7.3 and 3f; f is the fundamental, 3f windows divided back
    fund = resolve_harmonics(windows((7.3, 25), (21.9, 24)))
    assert fund.threads_per_cm == pytest.approx(7.3, abs=0.05)
    assert fund.harmonic.sum() == 24 and not fund.off.any()
    assert fund.alternative["relation"] == "triple"  # and it says the windows were split
    # a lining canvas at 0.75x in a quarter of the windows: the main weave wins, lining windows are off
    fund = resolve_harmonics(windows((20.0, 37), (15.0, 12)))
    assert fund.threads_per_cm == pytest.approx(20.0, abs=0.05)
    assert fund.off.sum() == 12 and fund.alternative is None
    # a few windows at half: not enough to halve the plate, but reported as a doubt
    fund = resolve_harmonics(windows((15.6, 43), (7.8, 6)))
    assert fund.threads_per_cm == pytest.approx(15.6, abs=0.05)
    assert fund.alternative == {"threads_per_cm": pytest.approx(7.8, abs=0.05), "windows": 6, "relation": "half"}
    # no finite window
    assert resolve_harmonics(np.full((3, 3), np.nan)).threads_per_cm is None


def test_octave_doubt_is_printed(tmp_path):
    from artlens.canvas.threads.run import summary_line

    s = {"threads_per_cm": {"mean": 15.6, "std": 0.1, "median": 15.6}, "angle_deg": {"mean": 0.1, "std": 0.1},
         "valid_windows": 40, "outlier_windows": 0, "interval_90": [15.4, 15.8],
         "harmonic_alternative": {"threads_per_cm": 7.8, "windows": 6, "relation": "half"}}
    text = summary_line({"horizontal": s, "vertical": {**s, "harmonic_alternative": None}})
    assert "check: 6 windows found 7.80 threads/cm, the half of this" in text
    assert text.count("check:") == 1


def test_few_agreeing_windows_are_a_reason_to_check():
    """A plate figure that rests on fewer than 40 % of the windows that found a peak is marked "check here" in
    the printed summary, the report's notes and the ``check`` column of ``plates.csv``; an octave doubt and a
    second opinion that disagrees are listed there too."""
    from artlens.canvas.threads.batch import check_reasons
    from artlens.canvas.threads.run import few_windows_agree, few_windows_note, summary_line

    def direction(valid: int, outliers: int, alt: dict | None = None) -> dict:
        return {"threads_per_cm": {"mean": 6.6, "std": 0.4, "median": 6.6}, "angle_deg": {"mean": 1.0, "std": 7.0},
                "valid_windows": valid, "outlier_windows": outliers, "no_peak_windows": 0,
                "interval_90": [5.8, 7.1], "harmonic_alternative": alt}

    few, many = direction(6, 36), direction(40, 2)
    assert few_windows_agree(few) and not few_windows_agree(many)
    assert not few_windows_agree(direction(0, 0))  # nothing read at all: no figure to doubt
    text = summary_line({"horizontal": few, "vertical": many})
    assert "check: only 6 of 42 windows agree" in text and text.count("check:") == 1
    assert "only 6 of 42 windows agree on the 6.60 threads/cm" in few_windows_note("horizontal", few)
    alt = {"threads_per_cm": 13.2, "windows": 9, "relation": "double"}
    assert check_reasons({"horizontal": few, "vertical": direction(40, 2, alt)}, {"plate_flagged": True}) == [
        "second opinion", "few windows agree horizontal", "octave doubt vertical"]
    assert check_reasons({"horizontal": many, "vertical": many}, {"plate_flagged": False}) == []
    assert check_reasons({"horizontal": many, "vertical": many}, None) == []


def test_interstice_lattice_fundamental_from_the_plate_spectrum():
    """A spot at every interstice puts peaks at u +- w; when the axis peak of the vertical threads is weak
    and its double strong, every window reads the double, and the plate spectrum's lattice places u."""
    yy, xx = np.mgrid[0:800, 0:800].astype(np.float64) / PPC
    fv, fh = 9.3, 14.2
    img = (100 + 3 * np.cos(2 * np.pi * fv * xx) + 20 * np.cos(2 * np.pi * 2 * fv * xx)
           + 20 * np.cos(2 * np.pi * fh * yy) + 20 * np.cos(2 * np.pi * fv * xx) * np.cos(2 * np.pi * fh * yy))
    off = count_threads_spectral(img, SpectralParams(resolve_fundamental=False), px_per_cm=PPC)
    assert np.nanmedian(off.vertical.density) == pytest.approx(2 * fv, abs=0.1)  # the windows' own reading
    s = count_threads_spectral(img, px_per_cm=PPC).summary()
    assert s["vertical"]["threads_per_cm"]["mean"] == pytest.approx(fv, abs=0.05)
    assert s["horizontal"]["threads_per_cm"]["mean"] == pytest.approx(fh, abs=0.05)
    assert s["vertical"]["harmonic_windows_corrected"] > 0
    # an ordinary weave: the lattice changes nothing
    s = count_threads_spectral(grating((800, 800), 12.0, 15.0), px_per_cm=PPC).summary()
    assert s["vertical"]["harmonic_windows_corrected"] == 0
    assert s["vertical"]["threads_per_cm"]["mean"] == pytest.approx(15.0, abs=0.02)


def test_lattice_fit_undoes_a_halved_direction_the_checkerboard_refutes():
    """Strong interstice sums u +- w, a weak axis peak u, a weak checkerboard (u +- w) / 2 and no peak at w:
    windows that read w / 2 explain all but the checkerboard, within the slack of the true pair; the
    checkerboard, on the true lattice and off the halved one, settles it (fit_lattice)."""
    from artlens.canvas.threads import spectral as sp

    yy, xx = np.mgrid[0:800, 0:800].astype(np.float64) / PPC
    fv, fh = 23.5, 21.0
    img = (100 + 20 * np.cos(2 * np.pi * (fv * xx + fh * yy)) + 20 * np.cos(2 * np.pi * (fv * xx - fh * yy))
           + 6 * np.cos(2 * np.pi * fv * xx) + 4 * np.cos(np.pi * (fv * xx + fh * yy))
           + 4 * np.cos(np.pi * (fv * xx - fh * yy)))
    p = sp.SpectralParams()
    geo = sp._geometry(img.shape, PPC, p)
    _, power = sp._scan(lambda a, b: img[a:b], geo, p, PPC, None)
    n = geo.grid.window_px
    lattice = sp.fit_lattice(power, PPC, n, p.band, {"vertical": fv, "horizontal": fh / 2},
                             {"vertical": 0.0, "horizontal": 0.0})
    assert lattice is not None
    assert lattice.threads_per_cm["horizontal"] == pytest.approx(fh, abs=0.1)
    assert lattice.threads_per_cm["vertical"] == pytest.approx(fv, abs=0.1)
    # the true pair stands: nothing to change
    assert sp.fit_lattice(power, PPC, n, p.band, {"vertical": fv, "horizontal": fh},
                          {"vertical": 0.0, "horizontal": 0.0}) is None


def test_one_dimensional_stripes_give_way_to_the_crossings_they_cannot_explain():
    """A strong one-dimensional pattern on the vertical threads' axis (brush marks, slubs, banding: here 6.4
    cycles/cm and its harmonics) outweighs their own peak, so the windows read it. Only the interlacing puts
    peaks off the axes, in mirror pairs (the crossings u ± w); the stripes' pair cannot explain them at low
    order, the weave's can (fit_lattice, _off_axis)."""
    yy, xx = np.mgrid[0:800, 0:800].astype(np.float64) / PPC
    fv, fh, stripes = 14.5, 15.8, 6.4
    img = (100 + 8 * np.cos(2 * np.pi * fv * xx) + 8 * np.cos(2 * np.pi * fh * yy)
           + 6 * np.cos(2 * np.pi * (fv * xx + fh * yy)) + 6 * np.cos(2 * np.pi * (fv * xx - fh * yy))
           + 20 * np.cos(2 * np.pi * stripes * xx) + 6 * np.cos(2 * np.pi * 3 * stripes * xx))
    raw = count_threads_spectral(img, SpectralParams(resolve_fundamental=False), px_per_cm=PPC)
    assert np.nanmedian(raw.vertical.density) == pytest.approx(stripes, abs=0.1)  # what the windows see
    s = count_threads_spectral(img, px_per_cm=PPC).summary()
    assert s["vertical"]["threads_per_cm"]["mean"] == pytest.approx(fv, abs=0.1)
    assert s["horizontal"]["threads_per_cm"]["mean"] == pytest.approx(fh, abs=0.1)
    # the same stripes without the crossings: nothing off the axes to settle it, the windows' reading stands
    flat = img - 6 * np.cos(2 * np.pi * (fv * xx + fh * yy)) - 6 * np.cos(2 * np.pi * (fv * xx - fh * yy))
    s = count_threads_spectral(flat, px_per_cm=PPC).summary()
    assert s["vertical"]["threads_per_cm"]["mean"] == pytest.approx(stripes, abs=0.1)


def test_a_stroke_near_half_a_thread_frequency_does_not_halve_the_weave():
    """A plain weave whose over/under checkerboard ((u ± w) / 2) is its strongest off-axis pattern, and a strong
    stroke near half the horizontal threads' frequency. The half pair (u / 2, w / 2) explains every peak, the
    stroke too (its crossings are the checkerboard); the weave's pair explains all but the stroke. The half pair's
    own fundamentals do not show on the axes where the weave's both do, so the weave's pair is read
    (fit_lattice, _doubled). The old rule read 12.4 / 8.6."""
    yy, xx = np.mgrid[0:800, 0:800].astype(np.float64) / PPC
    fv, fh, stroke = 24.8, 18.2, 8.6
    img = (100 + 4 * np.cos(2 * np.pi * fv * xx) + 6 * np.cos(2 * np.pi * fh * yy)
           + 6 * np.cos(np.pi * (fv * xx + fh * yy)) + 6 * np.cos(np.pi * (fv * xx - fh * yy))
           + 14 * np.cos(2 * np.pi * stroke * yy))
    raw = count_threads_spectral(img, SpectralParams(resolve_fundamental=False), px_per_cm=PPC)
    assert np.nanmedian(raw.horizontal.density) == pytest.approx(stroke, abs=0.1)  # what the windows see
    s = count_threads_spectral(img, px_per_cm=PPC).summary()
    assert s["vertical"]["threads_per_cm"]["mean"] == pytest.approx(fv, abs=0.1)
    assert s["horizontal"]["threads_per_cm"]["mean"] == pytest.approx(fh, abs=0.1)
    # crossings u ± w with the weave's own fundamentals and faint doubles: the double's checkerboard would put
    # the same off-axis peaks there, but the axes favour the weave's pair and the windows found it: it stands
    fv, fh = 11.5, 12.8
    img = (100 + 1.5 * np.cos(2 * np.pi * fv * xx) + 1.5 * np.cos(2 * np.pi * fh * yy)
           + 6 * np.cos(2 * np.pi * (fv * xx + fh * yy)) + 6 * np.cos(2 * np.pi * (fv * xx - fh * yy))
           + 0.5 * np.cos(4 * np.pi * fv * xx) + 0.5 * np.cos(4 * np.pi * fh * yy))
    s = count_threads_spectral(img, px_per_cm=PPC).summary()
    assert s["vertical"]["threads_per_cm"]["mean"] == pytest.approx(fv, abs=0.1)
    assert s["horizontal"]["threads_per_cm"]["mean"] == pytest.approx(fh, abs=0.1)
