"""Family B canvas rolls: several cuts from each of several rolls (measuring only; nothing ships tuned on it).

Each roll (bolt) has its own yarn statistics, drawn here: cross-section, per-system thread-width fraction,
along-thread width variation and its correlation length, slub rate / size / length, AR(1) spacing
irregularity (standard deviation and coefficient), per-thread thickness scatter, crimp, relief (thread
thickness / spacing), waviness, stripes of thicker threads, two-ply groove and twist, and a small skew between
the systems. The warp runs VERTICALLY in every cut (straighter, more regular, less crimped, fewer slubs); the
weft runs horizontally.

All rolls' mean densities lie within ``density_spread`` threads/cm of one common value per direction, so
density alone cannot tell rolls apart; each cut's own density drifts a little around its roll's mean
(bolt-level variation, sd = density_spread / 2, clipped to stay within the spread of the common value), so
cut densities of different rolls overlap.

Cuts are non-contiguous pieces of a roll: every cut has its own independent thread geometry (its seed comes
from (seed0, roll, cut)), so no two cuts share a thread; only the roll's yarn statistics are shared. Every cut
also has its own rotation (0-2 degrees, either sign), ground, paint, defects and imaging conditions (these
belong to the painting and the radiograph, not to the roll).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: python benchmarks/familyb/rolls.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from familyb import xray
else:
    from . import xray

PlateB = xray.PlateB


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return round(float(rng.uniform(lo, hi)), 4)


def draw_roll_stats(rng: np.random.Generator) -> dict[str, Any]:
    """Yarn statistics of one roll; per-system values are ``[horizontal (weft), vertical (warp)]``."""
    stripes: dict[str, Any] | None = None
    if rng.random() < 0.4:
        spec = [int(rng.integers(10, 31)), int(rng.integers(1, 4)), _u(rng, 1.3, 1.8)]
        which = ("h", "v")[int(rng.integers(0, 2))]
        stripes = {"h": spec if which == "h" else None, "v": spec if which == "v" else None}
    return {
        "cross_section": xray.CROSS_SECTIONS[int(rng.choice(4, p=[0.3, 0.25, 0.3, 0.15]))],
        "width_frac": [_u(rng, 0.62, 0.95), _u(rng, 0.62, 0.95)],
        "width_var": [_u(rng, 0.05, 0.2), _u(rng, 0.02, 0.1)],
        "width_corr_cm": _u(rng, 0.06, 0.35),
        "slub_rate": [_u(rng, 0.1, 0.7), _u(rng, 0.0, 0.25)],  # per cm of thread
        "slub_size": [_u(rng, 0.3, 1.0), _u(rng, 0.2, 0.6)],
        "slub_len_cm": _u(rng, 0.12, 0.7),
        "spacing_sd": [_u(rng, 0.025, 0.065), _u(rng, 0.01, 0.035)],
        "spacing_phi": [_u(rng, 0.3, 0.85), _u(rng, 0.3, 0.85)],
        "thick_sd": [_u(rng, 0.04, 0.16), _u(rng, 0.02, 0.08)],
        "stripes": stripes,
        "crimp": [_u(rng, 0.8, 1.2), _u(rng, 0.4, 0.8)],
        "crimp_shape": _u(rng, 0.5, 1.0),
        "relief": _u(rng, 0.26, 0.48),
        "waviness": _u(rng, 0.0, 0.25),
        "groove": _u(rng, 0.3, 0.6),
        "twist_cm": _u(rng, 0.1, 0.4),
        "skew_deg": _u(rng, -0.4, 0.4),
    }


def _cut_conditions(rng: np.random.Generator) -> dict[str, Any]:
    """Painting and radiograph conditions of one cut (not shared within a roll)."""
    return {
        "ground_mm": _u(rng, 0.04, 0.15), "levelling": _u(rng, 0.0, 0.35), "penetration": _u(rng, 0.2, 0.6),
        "mu_ground": _u(rng, 2.0, 5.0), "interstice": "none", "interstice_strength": 0.0, "lining": False,
        "paint": _u(rng, 0.0, 0.7), "paint_lead": _u(rng, 0.5, 0.9),
        "cracks": _u(rng, 0.3, 0.8) if rng.random() < 0.3 else 0.0, "stretcher": "none", "nails": 0,
        "patch": False, "tear": False, "response": ["film", "log", "linear"][int(rng.choice(3, p=[0.5, 0.35, 0.15]))],
        "film_gamma": _u(rng, 2.5, 4.0), "exposure": _u(rng, -0.3, 0.3), "scatter": _u(rng, 0.0, 0.3),
        "heel": _u(rng, -0.08, 0.08), "blur_px": _u(rng, 0.4, 1.6),
        "blur_kind": ["gauss", "screen"][int(rng.integers(2))], "grain": _u(rng, 0.0, 0.6),
        "grain_px": _u(rng, 0.8, 1.6), "banding": _u(rng, 0.2, 0.8) if rng.random() < 0.3 else 0.0,
        "banding_axis": ["rows", "cols"][int(rng.integers(2))],
        "equalise": bool(rng.random() < 0.1), "inverted": False, "bit_depth": 8,
    }  # fmt: skip


def _cut_seed(seed0: int, roll: int, cut: int) -> int:
    return int(np.random.SeedSequence([int(seed0), int(roll), int(cut), 0xB017]).generate_state(1)[0])


def roll_suite(
    n_rolls: int = 8,
    cuts: int = 4,
    cut_cm: float = 5.0,
    px_per_cm: float = 200.0,
    seed0: int = 0,
    density_spread: float = 0.3,
) -> list[tuple[int, PlateB]]:
    """``n_rolls`` x ``cuts`` plates of ``cut_cm`` x ``cut_cm`` cm, as ``(roll, plate)`` in roll-major order.

    Densities in threads/cm. ``plate.meta`` holds ``roll``, ``cut``, ``roll_stats`` (identical for all cuts
    of a roll), ``roll_horizontal`` / ``roll_vertical`` (the roll means), ``common_horizontal`` /
    ``common_vertical`` and ``rotation_deg`` (the cut's rotation, degrees counter-clockwise as displayed).
    """
    top = np.random.default_rng(np.random.SeedSequence([int(seed0), 0x0B17]))
    common_h, common_v = _u(top, 12.0, 20.0), _u(top, 12.0, 20.0)
    out: list[tuple[int, PlateB]] = []
    for r in range(n_rolls):
        rr = np.random.default_rng(np.random.SeedSequence([int(seed0), r, 0x2011]))
        stats = draw_roll_stats(rr)
        roll_h = round(common_h + float(rr.uniform(-0.95, 0.95)) * density_spread, 4)
        roll_v = round(common_v + float(rr.uniform(-0.95, 0.95)) * density_spread, 4)
        yarn = {k: v for k, v in stats.items() if k != "skew_deg"}
        for c in range(cuts):
            seed = _cut_seed(seed0, r, c)
            rc = np.random.default_rng(np.random.SeedSequence([seed, 0xC07]))
            cond = _cut_conditions(rc)
            dh = float(np.clip(roll_h + rc.normal(0, density_spread / 2), common_h - density_spread,
                               common_h + density_spread))  # fmt: skip
            dv = float(np.clip(roll_v + rc.normal(0, density_spread / 2), common_v - density_spread,
                               common_v + density_spread))  # fmt: skip
            rot = float(rc.uniform(0.0, 2.0)) * (1.0 if rc.random() < 0.5 else -1.0)
            skew = float(stats["skew_deg"])
            plate = xray.make_plate(
                seed, height_cm=cut_cm, width_cm=cut_cm, px_per_cm=px_per_cm, horizontal=dh, vertical=dv,
                horizontal_angle=rot + skew / 2, vertical_angle=rot - skew / 2, **yarn, **cond,
            )  # fmt: skip
            plate.meta.update({
                "roll": r, "cut": c, "roll_stats": stats, "roll_horizontal": roll_h, "roll_vertical": roll_v,
                "common_horizontal": common_h, "common_vertical": common_v, "rotation_deg": round(rot, 4),
                "warp": "vertical", "density_spread": density_spread,
            })  # fmt: skip
            out.append((r, plate))
    return out


def write_rolls(items: list[tuple[int, PlateB]], out: str | Path, seed: int = 0) -> Path:
    """Write anonymous ``cut-XX.tif`` files in a shuffled order plus ``rolls.csv`` (file, roll, cut, truths)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(len(items))
    width = max(2, len(str(len(items) - 1)))
    cols = ["file", "roll", "cut", "horizontal", "vertical", "horizontal_angle", "vertical_angle",
            "roll_horizontal", "roll_vertical"]  # fmt: skip
    with open(out / "rolls.csv", "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(cols)
        for i, j in enumerate(order):
            roll, p = items[int(j)]
            name = f"cut-{i:0{width}d}.tif"
            xray.write_tiff(out / name, p)
            wr.writerow([name, roll, p.meta["cut"], f"{p.horizontal:.6g}", f"{p.vertical:.6g}",
                         f"{p.horizontal_angle:.6g}", f"{p.vertical_angle:.6g}", p.meta["roll_horizontal"],
                         p.meta["roll_vertical"]])  # fmt: skip
    return out / "rolls.csv"


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python benchmarks/familyb/rolls.py --rolls 8 --cuts 4 --out DIR``."""
    ap = argparse.ArgumentParser(description="Family B canvas-roll cuts (measuring only).")
    ap.add_argument("--rolls", type=int, default=8)
    ap.add_argument("--cuts", type=int, default=4)
    ap.add_argument("--cut-cm", type=float, default=5.0)
    ap.add_argument("--px-per-cm", type=float, default=200.0)
    ap.add_argument("--seed0", type=int, default=0)
    ap.add_argument("--density-spread", type=float, default=0.3)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    t = time.perf_counter()
    items = roll_suite(a.rolls, a.cuts, a.cut_cm, a.px_per_cm, a.seed0, a.density_spread)
    path = write_rolls(items, a.out, a.seed0)
    print(f"{len(items)} cuts -> {path} ({(time.perf_counter() - t) / max(len(items), 1):.2f} s/cut)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
