"""What the second opinion costs: ``count_plate_file`` (what ``artlens threads count`` runs) with and
without the phase CNN's check, alternated in one process, on synthetic plates of three sizes.

    python benchmarks/bench_second_opinion_speed.py [--repeats 3]

Prints the median wall time of each and their ratio. The first call (torch import, model load) is left
out: it is paid once per process.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from artlens.canvas.threads.run import count_plate_file
from artlens.synth import make_plate
from artlens.synth.weave import write_plate_tiff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=float, nargs="+", default=[5.0, 10.0, 20.0], help="plate sides, cm")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for size in args.sizes:
            plate = make_plate(height_cm=size, width_cm=size, horizontal_density=13.0, vertical_density=16.0, seed=1)
            path = write_plate_tiff(d / f"plate-{size:g}.tif", plate)
            count_plate_file(path, d / "warm", use_catalog=False)
            times: dict[bool, list[float]] = {False: [], True: []}
            for k in range(args.repeats):
                for opinion in (False, True):
                    t = time.perf_counter()
                    count_plate_file(path, d / f"out-{k}-{opinion}", use_catalog=False, second_opinion=opinion)
                    times[opinion].append(time.perf_counter() - t)
            without, with_ = statistics.median(times[False]), statistics.median(times[True])
            print(f"{size:g} x {size:g} cm: without {without:.2f} s, with {with_:.2f} s, ratio {with_ / without:.2f}")


if __name__ == "__main__":
    main()
