"""Family C rolls (benchmarks/familyc/rolls.py): determinism, densities as stated, roll-mates that share the
yarn but not the threads, and the plates CSV that ``canvas train --method yarn --data`` reads."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from familyc import rolls  # noqa: E402


def _axis_peak(img: np.ndarray, ppc: float, axis: int) -> float:
    """Strongest spectral line (threads/cm) within 6 degrees of one image axis, 4-40 threads/cm."""
    h, w = img.shape
    spec = np.abs(np.fft.fft2((img - img.mean()) * np.outer(np.hanning(h), np.hanning(w))))
    fr = np.fft.fftfreq(h, 1 / ppc)[:, None] * np.ones((1, w))
    fx = np.fft.fftfreq(w, 1 / ppc)[None, :] * np.ones((h, 1))
    along, across = (fr, fx) if axis == 0 else (fx, fr)
    rad = np.hypot(fr, fx)
    sector = (along > 0) & (np.abs(across) <= np.tan(np.radians(6)) * along) & (rad >= 4) & (rad <= 40)
    return float(rad[sector][np.argmax(spec[sector])])


def test_same_seed_same_cut_and_stated_densities():
    roll = rolls.make_roll(11, family_densities=(12.0, 15.0))
    a, meta = rolls.render_cut(roll, 3, size_cm=3.0, px_per_cm=120.0)
    b, _ = rolls.render_cut(roll, 3, size_cm=3.0, px_per_cm=120.0)
    assert np.array_equal(a, b) and a.dtype == np.float32 and 0.0 <= a.min() and a.max() <= 1.0
    c, _ = rolls.render_cut(roll, 4, size_cm=3.0, px_per_cm=120.0)
    assert not np.array_equal(a, c)
    h, v = meta["densities"]
    assert sorted([round(h), round(v)]) == [12, 15]
    # the weave's frequencies are where the metadata says, on most cuts of a regular yarn (an irregular one
    # spreads the line into side bands, and a harmonic can be stronger on some cuts)
    for y in (roll["yarn"]["warp"], roll["yarn"]["weft"]):
        y.update(irregularity=0.02, stripe_per_100=0.0, fault_every=0)
    hits = 0
    for seed in range(6):
        img, m = rolls.render_cut(roll, seed, size_cm=4.0, px_per_cm=120.0)
        for axis, d in ((0, m["densities"][0]), (1, m["densities"][1])):
            hits += abs(_axis_peak(img, 120.0, axis) / d - 1) < 0.03
    assert hits >= 10, hits


def test_collection_families_share_densities_and_the_csv_lists_every_cut(tmp_path):
    csv_path = rolls.write_collection(tmp_path, 4, 2, seed=5, rolls_per_family=2, size_cm=2.5)
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [list(r) for r in rows[:1]] == [["plate", "roll", "px_per_cm", "family"]]
    assert len(rows) == 8 and len({r["roll"] for r in rows}) == 4 and len({r["family"] for r in rows}) == 2
    coll = rolls.make_collection(4, 2, seed=5, rolls_per_family=2, size_cm=2.5)
    for r, c in zip(rows, coll, strict=True):
        img = tifffile.imread(tmp_path / r["plate"])
        assert img.dtype == np.uint16 and img.shape == c["image"].shape
        assert np.abs(img / 65535.0 - c["image"]).max() <= 1 / 65535
        assert r["roll"] == c["roll"] and abs(float(r["px_per_cm"]) - c["px_per_cm"]) < 1e-5
    # rolls of one family lie within 0.3 threads/cm of each other in both directions (nominal densities)
    by_family: dict[str, list] = {}
    for c in coll:
        by_family.setdefault(c["family"], []).append(sorted(c["meta"]["nominal_warp_weft"]))
    for dens in by_family.values():
        d = np.array(dens)
        assert np.ptp(d[:, 0]) <= 0.3 and np.ptp(d[:, 1]) <= 0.3
