"""Kubelka-Munk formulas, pigment tables and synthetic hidden-layer scenes.

Most tests use the built-in pigment set, so they run without ../shared/data; the Wiersma tests carry
the ``shared_data`` marker.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError
from artlens.synth.hidden import (
    WIERSMA_SUBPATH,
    Camera,
    HiddenScene,
    PigmentSet,
    builtin_pigments,
    default_pigment_folder,
    km_mix,
    km_reflectance_infinite,
    km_reflectance_layer,
    load_pigments,
    make_hidden_scene,
    mask_contrast,
    render_views,
)

SIZE = (128, 128)


@pytest.fixture(scope="module")
def builtin() -> PigmentSet:
    return builtin_pigments()


# -- Kubelka-Munk, against values computed by hand ------------------------------------------------------
def test_mixture_is_concentration_weighted_sum() -> None:
    # c = [1, 3] normalised to [0.25, 0.75]: K = 0.25*2 + 0.75*0 = 0.5, S = 0.25*1 + 0.75*3 = 2.5
    K, S = km_mix([1.0, 3.0], [[2.0, 4.0], [0.0, 0.0]], [[1.0, 1.0], [3.0, 3.0]])
    np.testing.assert_allclose(K, [0.5, 1.0])
    np.testing.assert_allclose(S, [2.5, 2.5])
    # per pixel: (2, 2) concentrations over P = 2 -> (2, 1)
    K2, _ = km_mix([[1, 0], [0, 1]], [[2.0], [6.0]], [[1.0], [1.0]])
    np.testing.assert_allclose(K2, [[2.0], [6.0]])
    with pytest.raises(InvalidParameterError):
        km_mix([0.0, 0.0], [[1.0], [1.0]], [[1.0], [1.0]])
    with pytest.raises(InvalidParameterError):
        km_mix([-1.0, 2.0], [[1.0], [1.0]], [[1.0], [1.0]])


def test_reflectance_infinite_hand_values() -> None:
    # K/S = 1:   R = 1 + 1 - sqrt(1 + 2)        = 2 - 1.7320508 = 0.2679492
    # K/S = 0.5: R = 1.5 - sqrt(0.25 + 1)       = 1.5 - 1.1180340 = 0.3819660
    # K/S = 0:   R = 1 (a non-absorbing layer reflects everything)
    # K/S = 8:   R = 9 - sqrt(64 + 16) = 9 - 8.9442719 = 0.0557281
    np.testing.assert_allclose(km_reflectance_infinite([1.0, 0.5, 0.0, 8.0], [1.0, 1.0, 1.0, 1.0]),
                               [0.2679492, 0.3819660, 1.0, 0.0557281], atol=1e-7)
    assert km_reflectance_infinite(2.0, 0.0) == pytest.approx(0.0)  # pure absorber


def test_reflectance_layer_hand_values() -> None:
    # K = 1, S = 1, X = 1, R_g = 0: a = 2, b = sqrt(3) = 1.7320508,
    #   coth(sqrt 3) = (e^3.4641016 + 1) / (e^3.4641016 - 1) = 32.947734 / 30.947734 = 1.0646258
    #   R = 1 / (a + b coth) = 1 / (2 + 1.8439849) = 0.2601467
    assert km_reflectance_layer(1.0, 1.0, 1.0, 0.0) == pytest.approx(0.2601467, abs=1e-7)
    # same layer on R_g = 0.5: R = (1 - 0.5 (2 - 1.8439849)) / (2 - 0.5 + 1.8439849) = 0.9219925 / 3.3439849
    assert km_reflectance_layer(1.0, 1.0, 1.0, 0.5) == pytest.approx(0.9219925 / 3.3439849, abs=1e-7)
    # K = 0 limit: R = (S X (1 - R_g) + R_g) / (S X (1 - R_g) + 1); S X = 1, R_g = 0 -> 1/2; R_g = 0.5 -> 1/1.5
    assert km_reflectance_layer(0.0, 1.0, 1.0, 0.0) == pytest.approx(0.5)
    assert km_reflectance_layer(0.0, 1.0, 1.0, 0.5) == pytest.approx(2.0 / 3.0)
    assert km_reflectance_layer(1e-12, 1.0, 1.0, 0.5) == pytest.approx(2.0 / 3.0, abs=1e-9)  # continuous
    # S = 0 limit (clear absorbing film, Beer-Lambert both ways): R = R_g exp(-2 K X) = 0.8 e^-1 = 0.2943036
    assert km_reflectance_layer(0.5, 0.0, 1.0, 0.8) == pytest.approx(0.2943036, abs=1e-7)
    # thickness 0 gives the background; a thick layer its R_inf whatever lies beneath
    np.testing.assert_allclose(km_reflectance_layer(1.0, 1.0, 0.0, [0.0, 0.3, 1.0]), [0.0, 0.3, 1.0])
    np.testing.assert_allclose(km_reflectance_layer(1.0, 1.0, 60.0, [0.0, 0.3, 1.0]), 2 - math.sqrt(3), atol=1e-12)
    # R_g = R_inf is a fixed point at any thickness
    r_inf = float(km_reflectance_infinite(0.3, 0.7))
    np.testing.assert_allclose(km_reflectance_layer(0.3, 0.7, [0.1, 1.0, 5.0], r_inf), r_inf, atol=1e-12)
    with pytest.raises(InvalidParameterError):
        km_reflectance_layer(1.0, 1.0, -1.0, 0.5)
    with pytest.raises(InvalidParameterError):
        km_reflectance_layer(1.0, 1.0, 1.0, 1.5)


def test_thicker_paint_hides_more() -> None:
    x = np.array([0.5, 1, 2, 4, 8])
    over_white = km_reflectance_layer(1.0, 0.5, x, 0.9)
    over_black = km_reflectance_layer(1.0, 0.5, x, 0.02)
    assert (np.diff(over_white - over_black) < 0).all()


# -- camera -----------------------------------------------------------------------------------------------
def test_render_views_flat_spectrum_and_coverage() -> None:
    wl = np.arange(400.0, 1001.0, 10.0)
    rgb, ir = render_views(np.full((2, 3, wl.size), 0.4), wl)
    np.testing.assert_allclose(rgb, 0.4)
    np.testing.assert_allclose(ir, 0.4)
    spectrum = np.where(wl >= 900, 1.0, 0.0)  # bright only in the IR band
    rgb, ir = render_views(spectrum, wl)
    assert ir == pytest.approx(1.0) and rgb.max() < 1e-6
    w = Camera(ir_band_nm=(850.0, 950.0)).weights(wl)
    assert w.shape == (wl.size, 4)
    np.testing.assert_allclose(w.sum(axis=0), 1.0)
    with pytest.raises(InvalidParameterError, match="do not cover"):
        Camera().weights(np.arange(380.0, 701.0, 10.0))


# -- pigments -------------------------------------------------------------------------------------------
def test_builtin_pigments_physics(builtin: PigmentSet) -> None:
    assert not builtin.measured and builtin.source == "built-in"
    wl = builtin.wavelengths_nm
    nir = (wl >= 800) & (wl <= 1000)
    vis = (wl >= 400) & (wl <= 700)
    black = builtin.K[builtin.index("carbon black")]
    assert black[vis].min() > 2.5 and black[nir].min() > 2.5  # black absorbs everywhere
    white = builtin.index("lead white")
    assert builtin.K[white].max() < 0.2 and builtin.S[white][vis].min() > 0.5
    for name in ("ochre", "vermilion", "ultramarine", "green earth"):
        i = builtin.index(name)
        assert builtin.K[i][nir].max() <= 0.1, name  # nearly transparent in the NIR
        assert builtin.K[i][vis].max() > 0.6, name  # absorbs somewhere in the visible
    assert (builtin.K >= 0).all() and (builtin.S > 0).all()


def test_fallback_pigments_when_shared_data_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTLENS_SHARED_DATA", str(tmp_path / "nowhere"))
    with pytest.warns(UserWarning, match="built-in approximate pigment set"):
        ps = load_pigments()
    assert not ps.measured and "Carbon black" in ps.names
    with pytest.warns(UserWarning, match="built-in approximate"):
        scene = make_hidden_scene((64, 64), seed=0)
    assert scene.parameters["pigments"]["measured"] is False


def test_pigment_folder_only_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tables = tmp_path / "shared" / "data" / WIERSMA_SUBPATH
    tables.mkdir(parents=True)
    (tables / "spectra.txt").write_text("400 500\n")
    (tables / "set.rs").write_text('"White"\t0.1\t0.1\t1\t1\n')
    monkeypatch.delenv("ARTLENS_SHARED_DATA", raising=False)
    monkeypatch.chdir(tmp_path / "shared")  # tables below and above the working directory: not looked for
    assert default_pigment_folder() is None
    monkeypatch.setenv("ARTLENS_SHARED_DATA", "")
    assert default_pigment_folder() is None
    monkeypatch.setenv("ARTLENS_SHARED_DATA", str(tmp_path / "shared" / "data"))
    assert default_pigment_folder() == tables
    ps = load_pigments()
    assert ps.measured and ps.names == ["White"] and ps.source == str(tables)


def test_pigment_table_parsing(tmp_path: Path) -> None:
    (tmp_path / "spectra.txt").write_text("400 500 600\n")  # one line, space separated
    rows = [
        '"White one"\t0.1\t0.0\t0.0\t1\t1\t1',  # K then S
        '"Noisy"\t0.2\t-0.1\t0.3\t0.5\t0.5\t-0.2',  # negative values are clipped, with a note
        '"Refl"\t0.5\t0.25\t1.0',  # reflectance row -> K/S with S = 1
    ]
    (tmp_path / "set.rs").write_text("\n".join(rows) + "\n\n")
    ps = load_pigments(tmp_path)
    assert ps.measured and ps.names == ["White one", "Noisy", "Refl"]
    np.testing.assert_allclose(ps.wavelengths_nm, [400, 500, 600])
    np.testing.assert_allclose(ps.K[1], [0.2, 0.0, 0.3])
    assert ps.S[1, 2] > 0
    # R = 0.5 -> K/S = 0.25 / 1 = 0.25; R = 0.25 -> 0.5625 / 0.5 = 1.125; R = 1 -> 0
    np.testing.assert_allclose(ps.K[2], [0.25, 1.125, 0.0])
    assert any("Noisy" in n and "clipped" in n for n in ps.notes)
    assert ps.index("noisy") == 1 and ps.find("refl") == "Refl"
    with pytest.raises(InvalidParameterError, match="unknown pigment"):
        ps.index("vermilion")
    (tmp_path / "set.rs").write_text('"Short"\t0.1\t0.2\n')
    with pytest.raises(UnreadableInputError, match="line 1"):
        load_pigments(tmp_path)
    with pytest.raises(InputNotFoundError):
        load_pigments(tmp_path / "missing")


@pytest.mark.shared_data
def test_wiersma_oilpaint_tables(shared_data: Path) -> None:
    ps = load_pigments(shared_data / "multispectral" / "pigment_spectra_wiersma" / "oilpaint")
    assert ps.measured and len(ps) == 10 and ps.K.shape == (10, 204)
    assert ps.wavelengths_nm[0] == pytest.approx(397.3, abs=0.1)
    assert ps.wavelengths_nm[-1] == pytest.approx(1003.6, abs=0.1)
    assert {"Titanium white", "Bone black", "Indigo", "Red lake"} <= set(ps.names)
    assert (ps.K >= 0).all() and (ps.S > 0).all()
    assert any(n.startswith("Jaune de reseda") and "clipped" in n for n in ps.notes)
    wl = ps.wavelengths_nm
    nir, red = (wl >= 900) & (wl <= 1000), (wl >= 600) & (wl <= 680)
    assert ps.K[ps.index("bone black")][nir].mean() > 1.0
    assert ps.K[ps.index("indigo")][nir].max() < 0.1 < 1.0 < ps.K[ps.index("indigo")][red].min()


# -- scenes -----------------------------------------------------------------------------------------------
def _contrasts(scene: HiddenScene) -> dict[str, float]:
    lum, ir = scene.visible_rgb / 255.0, scene.ir / 65535.0
    out = {}
    for name, img in (("rgb", lum), ("ir", ir)):
        out[name] = mask_contrast(img, scene.mask, exclude=scene.decoy_mask, labels=scene.patch_map)
        out[f"decoy_{name}"] = mask_contrast(img, scene.decoy_mask, exclude=scene.hidden_mask,
                                             labels=scene.patch_map)
    out["rgb_channel_max"] = max(
        abs(mask_contrast(scene.visible_rgb[..., c] / 255.0, scene.mask, exclude=scene.decoy_mask,
                          labels=scene.patch_map)) for c in range(3))
    return out


@pytest.mark.parametrize("kind", ["underdrawing", "composition", "mixed"])
def test_hidden_layer_faint_in_rgb_dark_in_ir(kind: str, builtin: PigmentSet) -> None:
    scene = make_hidden_scene(SIZE, kind=kind, seed=1, pigments=builtin)
    assert scene.visible_rgb.shape == (*SIZE, 3) and scene.visible_rgb.dtype == np.uint8
    assert scene.ir.shape == SIZE and scene.ir.dtype == np.uint16
    assert scene.mask.any() and scene.decoy_mask.any() and not (scene.mask & scene.decoy_mask).any()
    c = _contrasts(scene)
    # measured for seeds 0-2 at 160x160: rgb <= 0.004, ir 0.16-0.36, decoys >= 0.30 (rgb) and >= 0.57 (ir)
    assert abs(c["rgb"]) < 0.01 and c["rgb_channel_max"] < 0.01, c
    assert c["ir"] > 0.1, c
    assert c["ir"] > 10 * abs(c["rgb"]), c
    assert c["decoy_rgb"] > 0.2 and c["decoy_ir"] > 0.4, c  # decoys are dark in both views
    for paint in scene.parameters["paints"]:
        assert max(paint["rgb_contrast"]) <= 0.02 + 1e-9 and paint["ir_contrast"] >= 0.15
    json.dumps(scene.parameters)  # serialisable


def test_ochre_and_umber_rejected_for_hiding_in_ir_too(builtin: PigmentSet) -> None:
    scene = make_hidden_scene((64, 64), seed=0, pigments=builtin)
    rejected = scene.parameters["rejected_paints"]
    assert "umber" in rejected and "IR" in rejected["umber"]
    assert {p["name"] for p in scene.parameters["paints"]} >= {"blue", "green"}


def test_determinism_by_seed(builtin: PigmentSet) -> None:
    a = make_hidden_scene((64, 80), seed=5, pigments=builtin)
    b = make_hidden_scene((64, 80), seed=5, pigments=builtin)
    c = make_hidden_scene((64, 80), seed=6, pigments=builtin)
    for field in ("visible_rgb", "ir", "mask", "decoy_mask", "patch_map"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.ir, c.ir)
    assert a.shape == (64, 80)


def test_no_decoys_and_reflectance_cube(builtin: PigmentSet) -> None:
    scene = make_hidden_scene((48, 48), decoys=False, seed=2, pigments=builtin, return_reflectance=True, noise=0)
    assert not scene.decoy_mask.any() and np.array_equal(scene.mask, scene.hidden_mask)
    assert scene.reflectance is not None and scene.reflectance.shape == (48, 48, 61)
    assert scene.spectra["wavelengths_nm"].shape == (61,)
    assert 0.0 <= scene.reflectance.min() and scene.reflectance.max() <= 1.0


def test_bad_scene_parameters(builtin: PigmentSet) -> None:
    with pytest.raises(InvalidParameterError, match="kind"):
        make_hidden_scene(SIZE, kind="pentimento", pigments=builtin)
    with pytest.raises(InvalidParameterError, match="size"):
        make_hidden_scene((8, 8), pigments=builtin)
    with pytest.raises(InvalidParameterError, match="fewer than two paints"):
        make_hidden_scene((64, 64), pigments=builtin, min_ir_contrast=0.99)


@pytest.mark.shared_data
def test_scene_with_measured_pigments(shared_data: Path) -> None:
    folder = shared_data / "multispectral" / "pigment_spectra_wiersma" / "oilpaint"
    scene = make_hidden_scene(SIZE, kind="mixed", seed=0, pigments=folder)
    assert scene.parameters["pigments"]["measured"] is True
    c = _contrasts(scene)
    assert abs(c["rgb"]) < 0.01 and c["ir"] > 0.08 and c["decoy_ir"] > 0.4, c
    # ochre (iron absorption near 900 nm) and umber hide the drawing in IR as well: rejected
    assert "ochre" in scene.parameters["rejected_paints"]


def test_widening_options_do_what_they_say() -> None:
    """Thinner strokes cover less; a shifted IR camera moves the IR content, not the masks; bad values are refused."""
    from artlens.synth.hidden import builtin_pigments, make_varied_hidden_scene

    ps = builtin_pigments()
    thin = make_hidden_scene((96, 96), kind="underdrawing", seed=4, pigments=ps, line_width_px=(1.0, 1.0))
    thick = make_hidden_scene((96, 96), kind="underdrawing", seed=4, pigments=ps, line_width_px=(3.0, 3.0))
    assert 0 < thin.mask.sum() < 0.7 * thick.mask.sum()
    base = make_hidden_scene((96, 96), kind="mixed", seed=4, pigments=ps)
    moved = make_hidden_scene((96, 96), kind="mixed", seed=4, pigments=ps, ir_shift_px=(2.0, 0.0))
    assert np.array_equal(base.mask, moved.mask) and np.array_equal(base.visible_rgb, moved.visible_rgb)
    shift = np.argmax([np.corrcoef(np.roll(base.ir.astype(float), k, axis=0)[8:-8].ravel(),
                                   moved.ir.astype(float)[8:-8].ravel())[0, 1] for k in range(4)])
    assert shift == 2
    a = make_varied_hidden_scene((64, 64), kind="mixed", seed=2, pigments=ps)
    b = make_varied_hidden_scene((64, 64), kind="mixed", seed=2, pigments=ps)
    assert np.array_equal(a.ir, b.ir) and set(a.parameters["widening"]) >= {"line_width_px", "ir_shift_px"}
    with pytest.raises(InvalidParameterError):
        make_hidden_scene((64, 64), seed=0, pigments=ps, line_width_px=(3.0, 1.0))
    with pytest.raises(InvalidParameterError):
        make_hidden_scene((64, 64), seed=0, pigments=ps, shape_style="cubist")
