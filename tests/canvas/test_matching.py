"""Tests of artlens.canvas.matching: density-profile alignment of plates cut from synthetic rolls."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from artlens.canvas.matching import (
    ORIENTATIONS,
    DensityMatch,
    apply_orientation,
    density_match_figure,
    density_profile,
    inverse_orientation,
    match_density_maps,
    orient_result,
    warp_direction,
)
from artlens.canvas.threads import SpectralParams, count_threads_spectral
from artlens.canvas.threads.result import DirectionMaps
from artlens.errors import InvalidParameterError
from artlens.synth import Roll

PPC = 100.0  # small plates at 100 px/cm keep every count a few tens of ms
PARAMS = SpectralParams(window_cm=1.0, step_cm=0.25, band=(8.0, 25.0))
N_PERM = 199


def count(image: np.ndarray, params: SpectralParams = PARAMS, ppc: float = PPC):
    return count_threads_spectral(np.ascontiguousarray(image), params, px_per_cm=ppc)


@pytest.fixture(scope="module")
def roll() -> Roll:
    return Roll(12.0, 15.0, seed=3, length_cm=30, width_cm=20, spacing_jitter=0.05)


@pytest.fixture(scope="module")
def overlapping(roll: Roll):
    """Two 5 x 5 cm pieces overlapping on the roll: B's corner at (+1.0, +0.75) cm in A's frame, so
    they share warp and weft threads and the orientation is fully determined."""
    a = roll.cut(2.0, 1.0, 5.0, 5.0, seed=1, px_per_cm=PPC)
    b = roll.cut(3.0, 1.75, 5.0, 5.0, seed=2, px_per_cm=PPC, paint=0.2, vertical_angle_deg=0.7)
    return count(a.image), b


def test_orientation_helpers_are_consistent():
    img = np.arange(12).reshape(3, 4)
    for name in ORIENTATIONS:
        back = apply_orientation(apply_orientation(img, name), inverse_orientation(name))
        assert np.array_equal(back, img), name
    distinct = {(apply_orientation(img, n).shape, apply_orientation(img, n).tobytes()) for n in ORIENTATIONS}
    assert len(distinct) == 8
    with pytest.raises(InvalidParameterError, match="orientation must be one of"):
        apply_orientation(img, "rot45")


def test_orient_result_agrees_with_counting_the_transformed_image(overlapping):
    _, b = overlapping
    rb = count(b.image)
    for name in ("rot90", "flip-rot0", "flip-rot270"):
        direct = count(apply_orientation(b.image, name))
        mapped = orient_result(rb, name)
        assert mapped.vertical.density.shape == direct.vertical.density.shape
        for fam in ("vertical", "horizontal"):
            pd, vd = density_profile(direct, fam)
            pm, vm = density_profile(mapped, fam)
            # the window grids may sit differently in the oriented plate: compare at the same cm
            vm_at = np.interp(pd, pm, vm)
            inside = (pd >= pm.min()) & (pd <= pm.max())
            assert np.corrcoef(vd[inside], vm_at[inside])[0, 1] > 0.95, (name, fam)
            # angles follow the image: a flip negates them, a rotation keeps them (B's warp is at 0.7 deg)
            ad = np.nanmedian(direct.direction(fam).angle)
            assert np.nanmedian(mapped.direction(fam).angle) == pytest.approx(ad, abs=0.2), (name, fam)


def test_recovers_known_offset_of_pieces_cut_along_the_roll(roll: Roll):
    # pieces one after the other along the roll: they share warp threads only; B starts 1.5 cm
    # further across the width, so B's origin lies at x = +1.5 cm in A's frame
    a = roll.cut(2.0, 1.0, 3.0, 6.0, seed=4, px_per_cm=PPC, noise=0.04)
    b = roll.cut(3.5, 12.0, 3.0, 6.0, seed=5, px_per_cm=PPC, paint=0.3, horizontal_angle_deg=1.0)
    m = match_density_maps(count(a.image), count(b.image), n_permutations=N_PERM)
    assert abs(m.offset_xy_cm[0] - 1.5) < 0.5
    assert m.matched_direction_a == "vertical" and m.matched_direction_b == "vertical"
    # only the warp matches, so the flip along the warp threads stays undecided
    assert {m.orientation, m.orientation_alternative} == {"rot0", "flip-rot180"}
    assert m.correlation > 0.8 and m.p_value < 0.05
    assert m.overlap_cm >= 2.0 and 0.98 <= m.scale <= 1.02


@pytest.mark.parametrize("transform", ["rot90", "rot180", "flip-rot0", "flip-rot270"])
def test_recovers_known_orientation(overlapping, transform: str):
    ra, b = overlapping
    rb = count(apply_orientation(b.image, transform))
    m = match_density_maps(ra, rb, n_permutations=N_PERM)
    assert m.orientation == inverse_orientation(transform)
    assert m.orientation_resolved
    assert m.offset_xy_cm[0] == pytest.approx(1.0, abs=0.5)
    assert m.offset_xy_cm[1] == pytest.approx(0.75, abs=0.5)
    assert m.p_value < 0.05


def test_significance_same_roll_small_unrelated_rolls_not(roll: Roll):
    rng = np.random.default_rng(7)
    size = dict(height_cm=2.0, width_cm=5.0, px_per_cm=PPC)
    same, other = [], []
    for i in range(2):
        a = roll.cut(1.0 + 2 * i, 1.0, seed=10 + i, **size)
        b = roll.cut(2.0 + 2 * i, 15.0, seed=20 + i, **size)
        same.append(match_density_maps(count(a.image), count(b.image), n_permutations=N_PERM, seed=i).p_value)
    for i in range(6):
        # the hard case: a different roll with mean densities within 0.3 threads/cm
        twin = Roll(*(12.0, 15.0) + rng.uniform(-0.3, 0.3, 2), seed=100 + i, length_cm=30, width_cm=20,
                    spacing_jitter=0.05)
        a = roll.cut(float(rng.uniform(0, 10)), 5.0, seed=30 + i, **size)
        b = twin.cut(float(rng.uniform(0, 10)), 5.0, seed=40 + i, **size)
        other.append(match_density_maps(count(a.image), count(b.image), n_permutations=N_PERM, seed=i).p_value)
    print("same-roll p:", same, "other-roll p:", other)
    assert max(same) < 0.05, same
    assert np.median(other) > 0.1, other
    assert min(other) > 1.0 / (N_PERM + 1), other  # not every unrelated pair at the floor


def test_different_resolution_and_step_are_resampled(roll: Roll):
    a = roll.cut(2.0, 1.0, 3.0, 6.0, seed=4, px_per_cm=PPC)
    b = roll.cut(3.0, 12.0, 3.0, 6.0, seed=5, px_per_cm=80.0)
    rb = count(b.image, SpectralParams(window_cm=1.0, step_cm=0.2, band=(8.0, 25.0)), ppc=80.0)
    m = match_density_maps(count(a.image), rb, n_permutations=N_PERM)
    assert m.grid_cm == pytest.approx(0.25)
    assert abs(m.offset_xy_cm[0] - 1.0) < 0.5 and m.p_value < 0.05
    assert any("resampled" in n for n in m.notes)


def test_to_dict_contract_and_figure(overlapping):
    ra, b = overlapping
    m = match_density_maps(ra, count(b.image), n_permutations=19)
    assert isinstance(m, DensityMatch)
    d = json.loads(json.dumps(m.to_dict()))
    assert {"correlation", "p_value", "offset_cm", "orientation"} <= set(d)
    assert len(d["offset_cm"]) == 2 and d["orientation"] in ORIENTATIONS
    assert {"scale", "overlap_cm", "warp_a", "warp_b", "n_shifts_tested"} <= set(d)
    assert d["n_shifts_tested"] > 100 and d["n_permutations"] == 19
    assert d["p_value"] >= 1 / 20
    fig = density_match_figure(m)
    title = fig._suptitle.get_text()
    assert f"r = {m.correlation:.3f}" in title and "p = " in title
    assert len(fig.axes) == 2


def test_warp_direction_reports_scores(overlapping):
    ra, _ = overlapping
    warp, scores = warp_direction(ra)
    assert warp in ("vertical", "horizontal")
    assert set(scores) == {"vertical", "horizontal"} and all(v > 0 for v in scores.values())
    assert scores[warp] == max(scores.values())


def test_bad_input_is_a_clear_error(overlapping, roll: Roll):
    ra, _ = overlapping
    nan = np.full_like(ra.vertical.density, np.nan)
    empty = replace(
        ra,
        vertical=DirectionMaps(nan, nan, nan * 0, np.zeros(nan.shape, bool)),
        horizontal=DirectionMaps(nan, nan, nan * 0, np.zeros(nan.shape, bool)),
    )
    with pytest.raises(InvalidParameterError, match="plate B has no valid density windows"):
        match_density_maps(ra, empty)
    # a 1.5 cm sliver holds 3 profile samples across its width, fewer than the 8 required
    sliver = count(roll.cut(2.0, 1.0, 1.5, 1.5, seed=1, px_per_cm=PPC).image)
    with pytest.raises(InvalidParameterError, match="too small|fewer than"):
        match_density_maps(sliver, sliver)
    with pytest.raises(InvalidParameterError, match="no alignment overlaps|fewer than"):
        match_density_maps(ra, ra, min_overlap_cm=20.0)
    with pytest.raises(InvalidParameterError, match="warp must be"):
        match_density_maps(ra, ra, warp="weft")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="orientation must be one of"):
        match_density_maps(ra, ra, orientations=("rot45",))
