"""Accuracy of the spectral thread counter on a synthetic suite with ground truth.

36 plates (4 x 4 cm at 200 px/cm), densities drawn in 7-30 threads/cm, angles in +-3 degrees, in
three difficulty levels (easy: clean weave and noise; medium: paint, cracks, jitter, slubs; hard:
everything — strong paint, lead-white strokes, craquelure, holes, cusping, density gradient,
irregular yarn, noise, blur, and 16-bit / inverted / equalised variants). For each plate and
direction it compares the summary mean density with the mean of the generator's truth map, and
each window's density with the mean truth inside that window.

Targets (issue: foundation): mean absolute error of the plate mean <= 0.10 threads/cm, no plate off
by more than 0.4 threads/cm.

    python benchmarks/bench_spectral_accuracy.py [--plates 36] [--window-cm 1.0] [--step-cm 0.5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from artlens.canvas.threads import SpectralParams, count_threads_spectral
from artlens.synth import WeaveParams, make_plate

LEVELS = {
    "easy": dict(noise=0.03, spacing_jitter=0.02, thickness_variation=0.1),
    "medium": dict(noise=0.04, spacing_jitter=0.05, thickness_variation=0.2, slub_rate=0.3, paint=0.3,
                   craquelure=0.3),
    "hard": dict(noise=0.06, spacing_jitter=0.08, thickness_variation=0.3, slub_rate=0.6, paint=0.6,
                 craquelure=0.6, lead_white_strokes=3, holes=0.08, cusping_amplitude=0.1, density_gradient=0.1,
                 blur_px=1.0),
}


def suite(n: int, seed: int = 2026) -> list[tuple[str, WeaveParams]]:
    rng = np.random.default_rng(seed)
    plates = []
    names = list(LEVELS)
    for i in range(n):
        level = names[i % 3]
        extra = {}
        if level == "hard":
            variant = (i // 3) % 4
            extra = [{}, {"bit_depth": 16}, {"invert": True}, {"equalize": True}][variant]
            extra["cusping_edge"] = ["left", "top", "right", "bottom"][(i // 3) % 4]
        p = WeaveParams(height_cm=4.0, width_cm=4.0, px_per_cm=200.0,
                        horizontal_density=float(rng.uniform(7, 30)), vertical_density=float(rng.uniform(7, 30)),
                        horizontal_angle_deg=float(rng.uniform(-3, 3)), vertical_angle_deg=float(rng.uniform(-3, 3)),
                        seed=int(rng.integers(1 << 31)), **LEVELS[level], **extra)
        plates.append((level, p))
    return plates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plates", type=int, default=36)
    ap.add_argument("--window-cm", type=float, default=1.0)
    ap.add_argument("--step-cm", type=float, default=0.5)
    args = ap.parse_args()
    params = SpectralParams(window_cm=args.window_cm, step_cm=args.step_cm)

    plate_err: list[float] = []
    window_err: list[np.ndarray] = []
    by_level: dict[str, list[float]] = {k: [] for k in LEVELS}
    t_gen = t_count = 0.0
    print(f"{'#':>3} {'level':<6} {'dir':<4} {'truth':>7} {'measured':>9} {'error':>7} {'win MAE':>8} {'outl':>5}")
    for i, (level, wp) in enumerate(suite(args.plates)):
        t = time.perf_counter()
        plate = make_plate(wp)
        t_gen += time.perf_counter() - t
        t = time.perf_counter()
        r = count_threads_spectral(plate.image, params, px_per_cm=wp.px_per_cm)
        t_count += time.perf_counter() - t
        s = r.summary()
        n = int(r.parameters["window_px"])
        ppc = wp.px_per_cm
        for d in ("horizontal", "vertical"):
            truth = float(plate.truth[f"{d}_density"].mean())
            measured = s[d]["threads_per_cm"]["mean"]
            err = float("nan") if measured is None else measured - truth
            plate_err.append(err)
            by_level[level].append(err)
            maps = r.direction(d)
            wt = np.array([[plate.truth_in_window(int(round(y * ppc - n / 2)), int(round(x * ppc - n / 2)), n, n)
                            [f"{d}_density"] for x in r.x_cm] for y in r.y_cm])
            ok = np.isfinite(maps.density) & ~maps.outlier
            werr = np.abs(maps.density - wt)[ok]
            window_err.append(werr)
            print(f"{i:>3} {level:<6} {d[0]:<4} {truth:7.2f} {measured if measured is not None else float('nan'):9.2f}"
                  f" {err:+7.3f} {werr.mean():8.3f} {int(maps.outlier.sum()):>5}")

    e = np.abs(np.array(plate_err))
    w = np.concatenate(window_err)
    print()
    print(f"plates: {args.plates} ({args.plates * 2} plate-direction means), window {args.window_cm} cm, "
          f"step {args.step_cm} cm")
    for level, errs in by_level.items():
        a = np.abs(np.array(errs))
        print(f"  {level:<6} MAE {np.nanmean(a):.3f}  max {np.nanmax(a):.3f} threads/cm")
    print(f"MAE of plate mean density: {np.nanmean(e):.3f} threads/cm (target <= 0.10)")
    print(f"max plate error:           {np.nanmax(e):.3f} threads/cm (target <= 0.4); failures (no peak): "
          f"{int(np.isnan(e).sum())}")
    print(f"per-window MAE (valid windows): {w.mean():.3f} threads/cm, 95th percentile {np.percentile(w, 95):.3f}")
    print(f"time: generation {t_gen:.1f} s, counting {t_count:.1f} s")


if __name__ == "__main__":
    main()
