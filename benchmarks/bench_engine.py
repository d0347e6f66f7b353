"""Batch engine and canvas matching at scale (issue 20).

Part ``threads``: the same ``--plates`` (40) synthetic plates (5 x 5 cm at 100 px/cm, spectral) counted
through :func:`artlens.canvas.threads.batch.count_plates` (what ``artlens threads count FOLDER`` runs) with
``--engine local`` and ``--engine ray`` (a private local Ray cluster, ``num_cpus`` = workers), 1 and 2
workers, each into a fresh output folder, catalog off; wall time including worker start-up, plates/s.

Part ``match``: synthetic collections as in ``bench_fabric.py``'s timing (``synthetic_collection``, rolls in
families of 3 within 0.3 threads/cm, 4 canvases of 5 x 5 cm per roll, non-contiguous cuts) of N canvases for
each N of ``--sizes``, matched by :func:`artlens.canvas.collection.match_collection` (what ``artlens canvas
match`` runs, default comparer: fabric_default, 199 permutations) with

- ``all-pairs``: ``prefilter=None``, 1 worker in process: density alignment on every pair (today's path);
- ``scaled``: the density prefilter (1.0 threads/cm) and ``--workers`` (2) local workers;

wall time (counting, describing, pairs, clusters, figures and report), pairs density-aligned, ROC-AUC of the
same-roll probability, and the share of same-roll pairs the prefilter keeps. ``--all-pairs-sizes`` limits the
slow all-pairs path to some sizes.

    python benchmarks/bench_engine.py --part threads [--plates 40]
    python benchmarks/bench_engine.py --part match --sizes 50,100,200 --all-pairs-sizes 50 [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def bench_threads(args: argparse.Namespace) -> dict:
    from artlens.canvas.threads import SpectralParams
    from artlens.canvas.threads.batch import count_plates
    from artlens.engine import BatchOptions
    from artlens.synth import make_plate, write_plate_tiff

    rng = np.random.default_rng(20)
    out: dict = {"plates": args.plates, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "plates"
        folder.mkdir()
        for k in range(args.plates):
            p = make_plate(height_cm=5.0, width_cm=5.0, px_per_cm=100, horizontal_density=float(rng.uniform(9, 20)),
                           vertical_density=float(rng.uniform(9, 20)), seed=k)
            write_plate_tiff(folder / f"p{k:03d}.tif", p)
        configs = [("local", 1), ("local", 2), ("ray", 2), ("ray", 1)]
        for engine, workers in configs:
            dest = Path(tmp) / f"out-{engine}-{workers}"
            t = time.perf_counter()
            rep = count_plates(folder, dest, SpectralParams(), options=BatchOptions(engine=engine, workers=workers),
                               use_catalog=False)
            dt = time.perf_counter() - t
            assert rep.new == args.plates, rep
            row = {"engine": engine, "workers": workers, "seconds": round(dt, 2),
                   "plates_per_s": round(args.plates / dt, 3)}
            out["runs"].append(row)
            print(f"threads count {args.plates} plates, --engine {engine} --workers {workers}: {dt:6.1f} s, "
                  f"{args.plates / dt:.2f} plates/s", flush=True)
    by = {(r["engine"], r["workers"]): r["seconds"] for r in out["runs"]}
    out["ray_vs_local_2_workers"] = round(by[("ray", 2)] / by[("local", 2)] - 1, 4)
    print(f"ray vs local, 2 workers: {100 * out['ray_vs_local_2_workers']:+.1f} % time", flush=True)
    return out


def bench_match(args: argparse.Namespace) -> dict:
    from bench_fabric import write_plates

    from artlens.canvas.collection import CanvasComparer, match_collection
    from artlens.canvas.fabric import load_fabric_model
    from artlens.train.fabric import roc_auc, synthetic_collection

    model = load_fabric_model("fabric_default")
    out: dict = {"sizes": {}}
    all_pairs_sizes = {int(v) for v in args.all_pairs_sizes.split(",") if v}
    for n in [int(v) for v in args.sizes.split(",") if v]:
        t = time.perf_counter()
        canvases = synthetic_collection(max(1, math.ceil(n / 4)), 4, canvas_cm=5.0, seed=args.seed + n)[:n]
        print(f"\n== {n} canvases ({n * (n - 1) // 2} pairs, {len({c.roll for c in canvases})} rolls); generated in "
              f"{time.perf_counter() - t:.0f} s", flush=True)
        res: dict = {}
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "plates").mkdir()
            paths = write_plates([(c.roll, c.image, c.px_per_cm) for c in canvases], Path(tmp) / "plates")
            roll = {p.name: c.roll for p, c in zip(paths, canvases, strict=True)}
            runs = [("scaled", args.prefilter, args.workers)]
            if n in all_pairs_sizes:
                runs.insert(0, ("all-pairs", None, 1))
            for name, prefilter, workers in runs:
                cmp = CanvasComparer(model, n_permutations=args.permutations, seed=0)
                dest = Path(tmp) / name
                t = time.perf_counter()
                s = match_collection(paths, dest, cmp, prefilter=prefilter, workers=workers, use_catalog=False)
                dt = time.perf_counter() - t
                with (dest / "pairs.csv").open(newline="") as fh:
                    rows = list(csv.DictReader(fh))
                y = np.array([int(roll[r["a"]] == roll[r["b"]]) for r in rows])
                prob = np.array([float(r["same_roll_probability"]) for r in rows])
                aligned = np.array([r["density_prefilter"] != "skipped" for r in rows])
                res[name] = {"seconds": round(dt, 1), "pairs": len(rows), "density_aligned": int(aligned.sum()),
                             "same_roll_pairs": int(y.sum()),
                             "same_roll_kept": int((aligned & (y == 1)).sum()),
                             "auc": round(float(roc_auc(prob, y)), 4), "workers": workers, "prefilter": prefilter,
                             "clusters": len(s["clusters"])}
                print(f"  {name:9s} workers {workers}: {dt:7.1f} s; {len(rows)} pairs, {aligned.sum()} density-aligned;"
                      f" same-roll pairs kept by the prefilter {res[name]['same_roll_kept']}/{y.sum()}; "
                      f"AUC {res[name]['auc']:.4f}", flush=True)
        out["sizes"][n] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("threads", "match"), required=True)
    ap.add_argument("--plates", type=int, default=40)
    ap.add_argument("--sizes", default="50,100,200")
    ap.add_argument("--all-pairs-sizes", default="50")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--prefilter", type=float, default=1.0)
    ap.add_argument("--permutations", type=int, default=199)
    ap.add_argument("--seed", type=int, default=90210)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    result = bench_threads(args) if args.part == "threads" else bench_match(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
