"""The shipped thread CNN against the spectral counter, on an easy and a hard synthetic suite and on
the real DL4ART sample.

Targets (issue: learned thread counting): on the hard suite (heavy paint, cracks, holes, equalised
noise, irregular threads) the CNN's mean-density MAE is at least 30 % lower than the spectral
counter's; on the easy suite it is no worse than spectral + 0.05 threads/cm; Crop0139 within
+-0.5 threads/cm in both directions.

    python benchmarks/bench_cnn_vs_spectral.py [--plates 20] [--model DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from artlens.canvas.threads import SpectralParams, count_threads_spectral
from artlens.canvas.threads.cnn import CNNCounter, count_threads_cnn
from artlens.synth import WeaveParams, make_plate

SUITES = {
    "easy": dict(noise=0.03, spacing_jitter=0.02, thickness_variation=0.1, blur_px=0.7),
    "hard": dict(noise=0.08, spacing_jitter=0.10, thickness_variation=0.35, slub_rate=0.8, paint=0.8,
                 craquelure=0.8, lead_white_strokes=3, holes=0.1, equalize=True, blur_px=1.2),
}
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "canvas" / "dl4art_crop0139" / "Crop0139.tif"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plates", type=int, default=20)
    ap.add_argument("--model", default=None, help="checkpoint folder (default: shipped weights)")
    args = ap.parse_args()
    counter = CNNCounter.load(args.model)
    print(f"model: {counter.path} ({counter.config['model']}, sha256 {counter.config['sha256'][:12]})")
    params = SpectralParams(window_cm=counter.crop_cm, step_cm=0.5)
    for suite, nuisances in SUITES.items():
        rng = np.random.default_rng(7 if suite == "easy" else 8)
        err = {"spectral": [], "cnn": []}
        t = {"spectral": 0.0, "cnn": 0.0}
        for _ in range(args.plates):
            wp = WeaveParams(height_cm=4.0, width_cm=4.0, horizontal_density=float(rng.uniform(8, 28)),
                             vertical_density=float(rng.uniform(8, 28)),
                             horizontal_angle_deg=float(rng.uniform(-3, 3)),
                             vertical_angle_deg=float(rng.uniform(-3, 3)), seed=int(rng.integers(1 << 31)),
                             **nuisances)
            plate = make_plate(wp)
            for name in err:
                t0 = time.perf_counter()
                if name == "spectral":
                    r = count_threads_spectral(plate.image, params, px_per_cm=wp.px_per_cm)
                else:
                    r = count_threads_cnn(plate.image, counter, step_cm=0.5, px_per_cm=wp.px_per_cm)
                t[name] += time.perf_counter() - t0
                s = r.summary()
                for d in ("horizontal", "vertical"):
                    m = s[d]["threads_per_cm"]["mean"]
                    truth = float(plate.truth[f"{d}_density"].mean())
                    err[name].append(abs(m - truth) if m is not None else np.nan)
        e_s, e_c = np.nanmean(err["spectral"]), np.nanmean(err["cnn"])
        print(f"{suite}: {args.plates} plates (4 x 4 cm), plate-mean MAE spectral {e_s:.3f}, cnn {e_c:.3f} threads/cm;"
              f" cnn/spectral = {e_c / e_s:.2f}; max spectral {np.nanmax(err['spectral']):.3f},"
              f" cnn {np.nanmax(err['cnn']):.3f}; time spectral {t['spectral']:.1f} s, cnn {t['cnn']:.1f} s")
    if SHARED.exists():
        from artlens.io import open_plate

        with open_plate(SHARED) as pl:
            img = pl.read()
        # the CNN's 1 cm window on the 1.5 cm crop: 4 windows every 0.5 cm
        r = count_threads_cnn(img, counter, step_cm=0.5, px_per_cm=200.0)
        s = r.summary()
        print(f"Crop0139 (label 12.0 / 12.0): cnn horizontal {s['horizontal']['threads_per_cm']['mean']:.2f}, "
              f"vertical {s['vertical']['threads_per_cm']['mean']:.2f} threads/cm "
              f"(windows: {np.round(r.horizontal.density.ravel(), 2)}, {np.round(r.vertical.density.ravel(), 2)})")


if __name__ == "__main__":
    main()
