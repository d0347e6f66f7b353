"""Tests of artlens.synth (weave.py and roll.py): truth consistency, conventions, output formats."""

import math

import numpy as np
import pytest
import tifffile

from artlens.errors import InvalidParameterError
from artlens.synth import Roll, WeaveParams, make_plate, write_plate_tiff

CLEAN = dict(noise=0.0, blur_px=0.0, spacing_jitter=0.0, thickness_variation=0.0)


def test_same_seed_same_plate_and_other_seed_differs():
    kw = dict(
        height_cm=1.5,
        width_cm=1.5,
        paint=0.5,
        craquelure=0.5,
        holes=0.1,
        slub_rate=0.5,
        lead_white_strokes=2,
        cusping_amplitude=0.2,
        seed=7,
    )
    a, b = make_plate(**kw), make_plate(**kw)
    assert np.array_equal(a.image, b.image)
    for key in a.truth:
        assert np.array_equal(a.truth[key], b.truth[key])
    c = make_plate(**{**kw, "seed": 8})
    assert not np.array_equal(a.image, c.image)


def test_params_object_and_overrides_agree():
    p = WeaveParams(height_cm=1.0, width_cm=1.0, seed=3)
    assert np.array_equal(make_plate(p).image, make_plate(height_cm=1.0, width_cm=1.0, seed=3).image)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_truth_matches_requested_densities(seed):
    plate = make_plate(seed=seed, px_per_cm=100.0)
    truth = plate.mean_truth()
    assert truth["horizontal_density"] == pytest.approx(12.0, rel=0.01)
    assert truth["vertical_density"] == pytest.approx(15.0, rel=0.01)
    assert truth["horizontal_angle"] == pytest.approx(0.0, abs=1e-6)
    assert plate.truth["horizontal_density"].dtype == np.float32
    assert plate.truth["vertical_angle"].shape == plate.image.shape == (300, 300)


def test_truth_in_window_is_the_window_mean():
    plate = make_plate(height_cm=1.0, width_cm=1.0, density_gradient=0.3)
    win = plate.truth_in_window(10, 20, 30, 40)
    assert win["vertical_density"] == pytest.approx(
        plate.truth["vertical_density"][10:40, 20:60].mean(), rel=1e-6
    )
    with pytest.raises(InvalidParameterError):
        plate.truth_in_window(190, 0, 20, 20)


def test_density_gradient_increases_to_the_right_and_down():
    plate = make_plate(density_gradient=0.2, spacing_jitter=0.0)
    v = plate.truth["vertical_density"].mean(axis=0)
    h = plate.truth["horizontal_density"].mean(axis=1)
    assert v[-1] / v[0] == pytest.approx(1.1 / 0.9, rel=0.01)  # +-10 % at the sides
    assert h[-1] / h[0] == pytest.approx(1.1 / 0.9, rel=0.01)  # +-10 % at the sides


@pytest.mark.parametrize(
    ("edge", "direction"),
    [("left", "vertical"), ("right", "vertical"), ("top", "horizontal"), ("bottom", "horizontal")],
)
def test_cusping_raises_density_near_the_tacking_edge(edge, direction):
    plate = make_plate(cusping_amplitude=0.3, cusping_depth_cm=0.5, cusping_edge=edge, spacing_jitter=0.0)
    d = plate.truth[f"{direction}_density"]
    if direction == "horizontal":
        d = d.T
    near, far = (d[:, :20], d[:, -20:]) if edge in ("left", "top") else (d[:, -20:], d[:, :20])
    assert near.mean() > 1.08 * far.mean()
    assert far.mean() == pytest.approx(getattr(plate.params, f"{direction}_density"), rel=0.02)
    # The threads parallel to the edge bend into scallops: their angle varies near the edge.
    angle = plate.truth[f"{direction}_angle"]
    assert np.ptp(angle) > 2.0


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"density_gradient": 0.25, "spacing_jitter": 0.1},
        {"cusping_amplitude": 0.3, "cusping_edge": "top", "cusping_depth_cm": 1.0},
    ],
)
def test_direct_count_matches_integral_of_truth_density(overrides):
    plate = make_plate(**overrides)
    rows, cols = plate.image.shape
    for c in (5, cols // 2, cols - 5):
        counted = plate.count_threads_along("horizontal", (0, c), (rows - 1, c))
        integral = plate.truth["horizontal_density"][:, c].astype(np.float64).sum() / plate.px_per_cm
        assert abs(counted - integral) <= 1.0
    for r in (5, rows // 2):
        counted = plate.count_threads_along("vertical", (r, 0), (r, cols - 1))
        integral = plate.truth["vertical_density"][r, :].astype(np.float64).sum() / plate.px_per_cm
        assert abs(counted - integral) <= 1.0


def _spectral_peak(image, px_per_cm, row_band, x_band):
    """(f_row, f_x) in cycles/cm of the strongest peak with f_row, f_x in the given bands."""
    img = image.astype(np.float64)
    img -= img.mean()
    img *= np.outer(np.hanning(img.shape[0]), np.hanning(img.shape[1]))
    n = 2048
    spec = np.abs(np.fft.fft2(img, s=(n, n)))
    f = np.fft.fftfreq(n, d=1.0 / px_per_cm)
    fr, fx = np.meshgrid(f, f, indexing="ij")
    band = (fr > row_band[0]) & (fr < row_band[1]) & (fx > x_band[0]) & (fx < x_band[1])
    i = np.argmax(np.where(band, spec, -1.0))
    return fr.ravel()[i], fx.ravel()[i]


def test_angle_convention_matches_the_fft_peak():
    ppc = 100.0
    # Horizontal threads at +3 deg: peak at (f_row, f_x) = d (cos t, sin t), f_x > 0 when f_row > 0.
    plate = make_plate(height_cm=6, width_cm=6, px_per_cm=ppc, horizontal_angle_deg=3.0, **CLEAN)
    fr, fx = _spectral_peak(plate.image, ppc, (8, 16), (-3, 3))
    assert fx / fr == pytest.approx(math.tan(math.radians(3.0)), abs=0.01)
    assert math.hypot(fr, fx) == pytest.approx(12.0, abs=0.1)
    assert plate.mean_truth()["horizontal_angle"] == pytest.approx(3.0, abs=1e-4)
    # Vertical threads at +3 deg: peak at (-d sin t, d cos t).
    plate = make_plate(height_cm=6, width_cm=6, px_per_cm=ppc, vertical_angle_deg=3.0, **CLEAN)
    fr, fx = _spectral_peak(plate.image, ppc, (-3, 3), (11, 19))
    assert fr / fx == pytest.approx(-math.tan(math.radians(3.0)), abs=0.01)
    assert math.hypot(fr, fx) == pytest.approx(15.0, abs=0.1)
    assert plate.mean_truth()["vertical_angle"] == pytest.approx(3.0, abs=1e-4)


def test_output_formats_inversion_and_equalisation():
    kw = dict(height_cm=1.5, width_cm=1.5, seed=4)
    p8 = make_plate(**kw)
    p16 = make_plate(bit_depth=16, **kw)
    assert p8.image.dtype == np.uint8 and p16.image.dtype == np.uint16
    assert p16.image.max() > 255
    inv = make_plate(invert=True, **kw)
    assert np.abs(inv.image.astype(int) - (255 - p8.image.astype(int))).max() <= 1
    eq = make_plate(equalize=True, paint=0.5, **kw)
    counts = np.histogram(eq.image, bins=8, range=(0, 256))[0]
    assert counts.min() > 0.5 * eq.image.size / 8 and counts.max() < 1.5 * eq.image.size / 8
    assert eq.image.min() == 0 and eq.image.max() == 255


def _on_thread_centres(plate, direction, near=0.08):
    """Pixels within ``near`` threads of a centre line of ``direction`` and far from the other's."""
    ph = plate.thread_phase[direction]
    other = plate.thread_phase["vertical" if direction == "horizontal" else "horizontal"]
    return (np.abs(ph - np.rint(ph)) < near) & (np.abs(other - np.rint(other)) > 0.45)


def test_yarn_texture_ply_groove_and_twist():
    kw = dict(height_cm=1.5, width_cm=1.5, seed=5, weave_contrast=0.0, **CLEAN)
    plain, ply = make_plate(**kw), make_plate(ply_groove=0.9, **kw)
    centre = _on_thread_centres(plain, "horizontal")
    flank = (np.abs(plain.thread_phase["horizontal"] % 1 - 0.25) < 0.05) & ~_on_thread_centres(plain, "vertical", 0.3)
    # threads are dark: the groove brightens the centre line of a thread, hardly its flanks
    assert ply.image[centre].mean() - plain.image[centre].mean() > 20
    assert abs(ply.image[flank].mean() - plain.image[flank].mean()) < 0.5 * (
        ply.image[centre].mean() - plain.image[centre].mean())
    twist = make_plate(twist=0.8, **kw)
    assert twist.image[centre].std() > 2 * plain.image[centre].std() + 5
    # the truth is the thread's, whatever its look
    np.testing.assert_array_equal(ply.truth["horizontal_density"], plain.truth["horizontal_density"])


def test_flat_topped_broad_threads_leave_thin_bright_gaps():
    kw = dict(height_cm=1.5, width_cm=1.5, seed=5, weave_contrast=0.0, **CLEAN)
    plain, broad = make_plate(**kw), make_plate(flat_top=0.7, thread_width=1.25, **kw)
    # a quarter of a thread from its centre line: the rounded yarn has fallen off, the flat-topped one not
    flank = (np.abs(plain.thread_phase["horizontal"] % 1 - 0.25) < 0.04) & ~_on_thread_centres(plain, "vertical", 0.3)
    assert plain.image[flank].mean() - broad.image[flank].mean() > 20  # threads are dark
    # the gap between two threads stays brighter than the threads themselves
    gap = (np.abs(plain.thread_phase["horizontal"] % 1 - 0.5) < 0.03) & ~_on_thread_centres(plain, "vertical", 0.3)
    assert broad.image[gap].mean() > broad.image[_on_thread_centres(plain, "horizontal")].mean() + 10
    np.testing.assert_array_equal(broad.truth["horizontal_density"], plain.truth["horizontal_density"])
    # the defaults draw the plates as before
    np.testing.assert_array_equal(make_plate(flat_top=0.0, thread_width=1.0, **kw).image, plain.image)


def test_broad_training_plates_draw_last():
    from artlens.train.threads import _random_weave

    for seed in range(20):
        a = _random_weave(np.random.default_rng(seed), 1.0, yarn_texture=True, wider=0.5)
        b = _random_weave(np.random.default_rng(seed), 1.0, yarn_texture=True, wider=0.5, broad=1.0)
        changed = {k for k in b if b[k] != a.get(k)}
        assert changed <= {"flat_top", "thread_width", "weave_contrast", "ply_groove"}
        assert 0.3 <= b["flat_top"] <= 0.8 and 1.0 <= b["thread_width"] <= 1.3


def test_cell_variation_and_grain_add_texture_at_their_scales():
    from scipy import ndimage

    kw = dict(height_cm=1.5, width_cm=1.5, seed=6, **CLEAN)
    plain, blotchy, grainy = make_plate(**kw), make_plate(cell_variation=1.0, **kw), make_plate(grain=1.0, **kw)
    cells = (np.abs(plain.thread_phase["horizontal"] % 1 - 0.5) < 0.1) & (
        np.abs(plain.thread_phase["vertical"] % 1 - 0.5) < 0.1)  # interstice centres
    assert blotchy.image[cells].astype(float).std() > 3 * plain.image[cells].astype(float).std() + 5

    def fine(img):  # energy below ~0.02 cm
        f = img.astype(float)
        return (f - ndimage.gaussian_filter(f, 2.0)).std()

    assert fine(grainy.image) > 1.5 * fine(plain.image)
    assert fine(blotchy.image) < 1.2 * fine(plain.image)


def test_yarn_texture_draws_after_the_other_training_parameters():
    from artlens.train.threads import _random_weave

    a = _random_weave(np.random.default_rng(3), 1.0)
    b = _random_weave(np.random.default_rng(3), 1.0, yarn_texture=True)
    assert set(b) - set(a) == {"ply_groove", "twist", "cell_variation", "grain"}
    assert all(b[k] == v for k, v in a.items())


def test_thread_balance_makes_one_system_fainter():
    kw = dict(height_cm=1.5, width_cm=1.5, seed=5, **CLEAN)

    def contrasts(plate):
        ph, pv = plate.thread_phase["horizontal"], plate.thread_phase["vertical"]
        gap = (np.abs(ph % 1 - 0.5) < 0.08) & (np.abs(pv % 1 - 0.5) < 0.08)  # interstices (bright)
        img = plate.image.astype(float)
        return (img[gap].mean() - img[_on_thread_centres(plate, "horizontal")].mean(),
                img[gap].mean() - img[_on_thread_centres(plate, "vertical")].mean())

    h0, v0 = contrasts(make_plate(**kw))
    h1, v1 = contrasts(make_plate(thread_balance=0.5, **kw))
    assert h1 < 0.6 * h0 and v1 > 1.2 * v0
    h2, v2 = contrasts(make_plate(thread_balance=-0.5, **kw))
    assert v2 < 0.6 * v0 and h2 > 1.2 * h0
    with pytest.raises(InvalidParameterError, match="thread_balance"):
        make_plate(thread_balance=0.95)


def test_thread_balance_draws_after_the_other_training_parameters():
    from artlens.train.threads import _random_weave

    draws = [_random_weave(np.random.default_rng(s), 1.0, True, 0.6) for s in range(40)]
    for s, b in enumerate(draws):
        a = _random_weave(np.random.default_rng(s), 1.0, True)
        assert set(b) - set(a) == {"thread_balance"} and all(b[k] == v for k, v in a.items())
    balance = np.array([d["thread_balance"] for d in draws])
    assert np.all(np.abs(balance) <= 0.6) and 8 < np.count_nonzero(balance) < 32


def test_impasto_hides_the_weave_under_a_stronger_lumpy_texture():
    kw = dict(height_cm=1.5, width_cm=1.5, seed=8, **CLEAN)
    plain, thick = make_plate(**kw), make_plate(impasto=1.0, **kw)
    np.testing.assert_array_equal(plain.thread_phase["horizontal"], thick.thread_phase["horizontal"])

    def weave_amplitude(plate):  # the image's projection on the horizontal threads' phase
        img = plate.image.astype(float)
        return abs(np.mean((img - img.mean()) * np.exp(2j * np.pi * plate.thread_phase["horizontal"])))

    assert weave_amplitude(thick) < 0.5 * weave_amplitude(plain)
    assert thick.image.astype(float).std() > plain.image.astype(float).std()
    with pytest.raises(InvalidParameterError, match="impasto"):
        make_plate(impasto=1.5)


def test_harder_draws_after_the_other_training_parameters():
    from artlens.train.threads import _random_weave

    draws = [_random_weave(np.random.default_rng(s), 1.0, True, 0.6, 0.5, 0.4) for s in range(40)]
    hard = 0
    for s, b in enumerate(draws):
        a = _random_weave(np.random.default_rng(s), 1.0, True, 0.6, 0.5)
        changed = {k for k in b if a.get(k) != b[k]}
        assert changed <= {"impasto", "paint", "blur_px", "noise", "grain"}
        if "impasto" in b:
            hard += 1
            assert 0.3 <= b["impasto"] <= 1 and 0.5 <= b["paint"] <= 1 and 0.8 <= b["blur_px"] <= 2.2
        else:
            assert b == a
    assert 8 < hard < 30


def test_invalid_parameters_are_refused():
    with pytest.raises(InvalidParameterError, match="valid"):
        make_plate(no_such_field=1)
    with pytest.raises(InvalidParameterError):
        make_plate(bit_depth=12)
    with pytest.raises(InvalidParameterError):
        make_plate(cusping_edge="middle")
    with pytest.raises(InvalidParameterError):
        make_plate(vertical_density=90.0)  # under 3 px per thread at 200 px/cm
    for name in ("ply_groove", "twist", "cell_variation", "grain"):
        with pytest.raises(InvalidParameterError, match=name):
            make_plate(**{name: 1.5})
    for name, value in (("flat_top", 0.95), ("thread_width", 0.3), ("thread_width", 2.5)):
        with pytest.raises(InvalidParameterError, match=name):
            make_plate(**{name: value})


def test_write_plate_tiff_records_resolution_and_params(tmp_path):
    plate = make_plate(height_cm=1.0, width_cm=1.5, bit_depth=16)
    path = write_plate_tiff(tmp_path / "plate.tif", plate)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert np.array_equal(page.asarray(), plate.image)
        x_num, x_den = page.tags["XResolution"].value
        assert x_num / x_den == pytest.approx(200.0)
        assert page.tags["ResolutionUnit"].value == tifffile.RESUNIT.CENTIMETER
        assert '"artlens_synth"' in page.description and '"vertical_density": 15.0' in page.description
    write_plate_tiff(path, plate)  # overwriting is allowed


def test_roll_cuts_share_the_warp_sequence_and_other_rolls_differ():
    roll = Roll(12.0, 15.0, seed=11, length_cm=50, width_cm=30, spacing_jitter=0.08)
    a = roll.cut(2.0, 5.0, 2.0, 3.0, seed=1, paint=0.3)
    b = roll.cut(3.5, 40.0, 2.0, 3.0, seed=2, horizontal_angle_deg=1.0)
    ka, xa = a.thread_centres("vertical")
    kb, xb = b.thread_centres("vertical")
    common = np.intersect1d(ka, kb)
    assert common.size >= 20
    pos_a = xa[np.isin(ka, common)] + 2.0  # positions on the roll (cm)
    pos_b = xb[np.isin(kb, common)] + 3.5
    assert np.allclose(pos_a, pos_b, atol=1e-3)
    assert np.allclose(np.diff(pos_a), roll.warp_spacings_cm()[common[:-1]], atol=1e-3)
    # The truth of the overlap agrees too (same threads, same spacings), up to pixels on a centre line.
    same = np.isclose(a.truth["vertical_density"][:, 300:], b.truth["vertical_density"][:, :300], atol=1e-3)
    assert same.mean() > 0.99

    other = Roll(12.0, 15.0, seed=12, length_cm=50, width_cm=30, spacing_jitter=0.08)
    c = other.cut(2.0, 5.0, 2.0, 3.0, seed=1)
    kc, xc = c.thread_centres("vertical")
    n = min(xa.size, xc.size) - 1
    assert not np.allclose(np.diff(xa)[:n], np.diff(xc)[:n], atol=0.01)


def test_roll_refuses_fabric_overrides_and_cuts_off_the_roll():
    roll = Roll(12.0, 15.0, seed=0, length_cm=10, width_cm=10)
    with pytest.raises(InvalidParameterError):
        roll.cut(0.0, 0.0, 1.0, 1.0, vertical_density=20.0)
    with pytest.raises(InvalidParameterError):
        roll.cut(9.5, 0.0, 1.0, 1.0)
