"""Speed and memory of `artlens threads count` on a 10 000 x 10 000 px plate (issue: foundation).

Side by side in one run:
  A. baseline: a bare numpy/scipy pass that reads the same 9 604 windows (1.5 cm every 0.5 cm at
     200 px/cm) from a memory map and computes a 512x512 zero-padded rfft2 of each (2 workers);
  B. `artlens threads count PLATE --window-cm 1.5 --step-cm 0.5` end to end in a fresh process
     (reading, counting, maps, report, catalog), with its peak RSS.
Prints the ratio B / A (target <= 1.0) and peak RSS (target <= 1.5 GB).

    python benchmarks/bench_spectral_speed.py [--size 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.fft
import tifffile

PPC = 200.0


def make_plate(path: Path, size: int, seed: int = 0) -> None:
    """A plain 8-bit weave-like plate (two gratings + noise), written strip by strip."""
    rng = np.random.default_rng(seed)
    x = np.arange(size, dtype=np.float32)
    fv = 15.0 / PPC  # vertical threads, 15 threads/cm
    fh = 12.0 / PPC  # horizontal threads, 12 threads/cm
    col = np.cos(2 * np.pi * fv * x)

    def strips():
        for y0 in range(0, size, 500):
            y = np.arange(y0, min(size, y0 + 500), dtype=np.float32)[:, None]
            block = 128 + 40 * col[None, :] + 40 * np.cos(2 * np.pi * fh * y) + rng.normal(0, 10, (y.size, size))
            yield np.clip(block, 0, 255).astype(np.uint8)

    tifffile.imwrite(path, strips(), shape=(size, size), dtype=np.uint8, bigtiff=True,
                     resolution=(PPC, PPC), resolutionunit="CENTIMETER", rowsperstrip=500)


def baseline(path: Path, window: int, step: int) -> tuple[float, int]:
    arr = tifffile.memmap(path, mode="r")
    h, w = arr.shape
    t0 = time.perf_counter()
    n = 0
    for y in range(0, h - window + 1, step):
        band = np.asarray(arr[y:y + window], dtype=np.float32)
        for x in range(0, w - window + 1, step):
            scipy.fft.rfft2(band[:, x:x + window], s=(512, 512), workers=2)
            n += 1
    return time.perf_counter() - t0, n


def artlens_run(path: Path, out: Path) -> tuple[float, dict, float]:
    cmd = [sys.executable, "-m", "artlens.cli.main", "threads", "count", str(path), "--out", str(out),
           "--window-cm", "1.5", "--step-cm", "0.5", "--catalog", str(out / "bench.db"), "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"artlens failed: {proc.stderr}")
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    del before
    return dt, json.loads(proc.stdout), rss_kb / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, default=None, help="folder to keep the plate and outputs in")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="artlens-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    plate = work / f"plate_{args.size}.tif"
    if not plate.exists():
        t = time.perf_counter()
        make_plate(plate, args.size)
        print(f"made {plate} in {time.perf_counter() - t:.1f} s")
    window, step = int(1.5 * PPC), int(0.5 * PPC)
    # warm the page cache so that both passes read from memory
    with open(plate, "rb") as fh:
        while fh.read(1 << 24):
            pass
    t_base, n = baseline(plate, window, step)
    t_art, summary, rss_gb = artlens_run(plate, work / "out")
    print(f"windows: baseline {n}, artlens {summary['windows']}")
    print(f"baseline (512x512 rfft2 per window, 2 workers): {t_base:.2f} s")
    print(f"artlens threads count end to end:              {t_art:.2f} s")
    print(f"ratio artlens / baseline: {t_art / t_base:.3f}  (target <= 1.0)")
    print(f"artlens peak RSS: {rss_gb:.2f} GB  (target <= 1.5 GB)")
    h, v = summary["horizontal"]["threads_per_cm"], summary["vertical"]["threads_per_cm"]
    print(f"densities: horizontal {h['mean']} (truth 12.0), vertical {v['mean']} (truth 15.0) threads/cm")
    print(f"cpu count: {os.cpu_count()}")


if __name__ == "__main__":
    main()
