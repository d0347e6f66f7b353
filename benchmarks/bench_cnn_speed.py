"""Windows per second of a thread CNN on a 10 000 x 10 000 px plate (1 cm windows every 0.5 cm at
200 px/cm: 9 801 windows).

The regVGG regressor runs two forward passes per window (horizontal and rotated crop); the phase CNN
(the shipped threads_phase) runs over the plate once in 512 px tiles (+48 px context), both directions,
and sums each window from the per-pixel phase steps, so its cost grows with the plate's area, not with
the number of windows. ``--batch-size``: crops (regVGG) or tiles (phase CNN) per forward pass.

    python benchmarks/bench_cnn_speed.py [--size 10000] [--batch-size N] [--device cpu|cuda] [--model NAME|DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from artlens.canvas.threads.cnn import CNNCounter, CnnParams, count_threads_cnn
from artlens.io import open_plate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=None, help="default: 64 crops (regVGG), 4 tiles (phase CNN)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default=None)
    ap.add_argument("--plate", type=Path, default=None, help="reuse a plate (e.g. from bench_spectral_speed)")
    args = ap.parse_args()
    plate_path = args.plate
    if plate_path is None:
        from bench_spectral_speed import make_plate

        plate_path = Path(tempfile.mkdtemp()) / "plate.tif"
        make_plate(plate_path, args.size)
    counter = CNNCounter.load(args.model, device=args.device)
    with open_plate(plate_path) as plate:
        t = time.perf_counter()
        r = count_threads_cnn(plate, CnnParams(model=counter, step_cm=0.5, batch_size=args.batch_size))
        dt = time.perf_counter() - t
    batch = args.batch_size or (4 if counter.task == "thread_phase" else 64)
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, batch size {batch}")
    print(f"model {counter.config['model']} ({counter.task}), {r.plate_shape_px[0]} x {r.plate_shape_px[1]} px")
    print(f"{r.n_windows} windows in {dt:.1f} s: {r.n_windows / dt:.1f} windows/s, "
          f"{r.plate_shape_px[0] * r.plate_shape_px[1] / dt / 1e6:.2f} Mpx/s")
    s = r.summary()
    print(f"densities: horizontal {s['horizontal']['threads_per_cm']['mean']}, "
          f"vertical {s['vertical']['threads_per_cm']['mean']} threads/cm (plate truth 12.0 / 15.0)")


if __name__ == "__main__":
    main()
