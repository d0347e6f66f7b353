"""The default ``artlens threads count`` on family C (``benchmarks/familyc``), a third simulator written without
reading the thread counters: per thread direction, the plate's count against the cut's true density.

Seed 0 is a development draw since 2026-12-07 (the spectral counter's lattice rules were developed on it); seeds 1-4
have each been measured (BENCHMARKS.md): measure a new rule on a fresh seed (5 and up).

Renders every ``--every``-th cut of a family C collection (``--rolls`` rolls × 4 cuts, ``--seed``) as
16-bit TIFFs with a manifest (``path,px_per_cm``), runs the command a user types on it
(``artlens threads count MANIFEST --out DIR --no-catalog`` plus ``--method`` when given), then scores
``DIR/plates.csv``: mean absolute error (threads/cm), directions off by more than 0.4, octave-like errors
(a half, a third, a double or a triple, within 12 %), how many plates off by more than 0.4 the command
flagged, by its second opinion (``cross_check_flagged``) and by any reason to check (``check``: the second
opinion, an octave doubt, few windows agreeing), how many right plates got a ``check``, and the share of
directions whose 90 % interval (``*_interval_90``) holds the true density. Cuts with and
without a lining canvas apart (a relined painting's radiograph shows two canvases; the truth is the original's).

    python benchmarks/bench_threads_familyc.py [--rolls 96 --every 4 --seed 0] [--method spectral] [--json OUT]

About 6 minutes for the defaults (96 plates) on 2 busy cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rolls", type=int, default=96)
    ap.add_argument("--every", type=int, default=4, help="count every N-th cut (one per roll with 4 cuts)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--method", default=None, help="--method of threads count (default: the command's default)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    from familyc import rolls as family_c

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        family_c.write_collection(folder, args.rolls, 4, seed=args.seed, workers=2)
        meta = {json.loads(line)["plate"]: json.loads(line) for line in (folder / "plates_meta.jsonl").open()}
        with (folder / "plates.csv").open(newline="") as fh:
            chosen = list(csv.DictReader(fh))[:: args.every]
        manifest = folder / "manifest.csv"
        with manifest.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "px_per_cm"])
            w.writerows([r["plate"], r["px_per_cm"]] for r in chosen)
        artlens = str(Path(sys.executable).with_name("artlens"))  # the environment's command, as a user types it
        cmd = [artlens, "threads", "count", str(manifest), "--out", str(folder / "counts"), "--no-catalog"]
        if args.method:
            cmd += ["--method", args.method]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with (folder / "counts" / "plates.csv").open(newline="") as fh:
            counted = list(csv.DictReader(fh))
    groups: dict[str, dict[str, list]] = {}
    for r in counted:
        m = meta[Path(r["path"]).name]
        g = groups.setdefault("lining" if m["lining"] else "no lining", {"err": [], "ratio": [], "plates": []})
        got = [float(r["horizontal_threads_per_cm"] or "nan"), float(r["vertical_threads_per_cm"] or "nan")]
        truth = m["densities"]
        g["err"] += [abs(a - t) for a, t in zip(got, truth, strict=True)]
        g["ratio"] += [a / t for a, t in zip(got, truth, strict=True)]
        intervals = [[float(x) for x in r[f"{d}_interval_90"].split(";")] if r.get(f"{d}_interval_90") else None
                     for d in ("horizontal", "vertical")]
        g.setdefault("covered", []).extend(iv is not None and iv[0] <= t <= iv[1]
                                           for iv, t in zip(intervals, truth, strict=True))
        g["plates"].append((max(abs(a - t) for a, t in zip(got, truth, strict=True)) > 0.4,
                            r["cross_check_flagged"] == "true", bool(r.get("check"))))
        g.setdefault("rows", []).append({"plate": Path(r["path"]).name, "truth": truth, "read": got,
                                         "second_opinion": r["cross_check_flagged"], "check": r.get("check"),
                                         "interval_90": intervals})
    out = {}
    for name, g in groups.items():
        err, ratio = np.asarray(g["err"]), np.asarray(g["ratio"])
        octave = np.zeros(ratio.shape, bool)
        for k in (0.5, 1 / 3, 2.0, 3.0):
            octave |= np.abs(ratio / k - 1) < 0.12
        wrong = [p for p in g["plates"] if p[0]]
        out[name] = {"plates": len(g["plates"]), "directions": int(err.size), "mae": float(np.nanmean(err)),
                     "median_error": float(np.nanmedian(err)), "directions_off_0_4": int(np.sum(err > 0.4)),
                     "octave_like": int(octave.sum()), "plates_off_0_4": len(wrong),
                     "of_them_flagged": sum(f for _, f, _ in wrong),
                     "plates_flagged": sum(f for _, f, _ in g["plates"]),
                     "of_them_checked": sum(c for _, _, c in wrong),
                     "right_plates_checked": sum(c for w, _, c in g["plates"] if not w),
                     "interval_90_coverage": float(np.mean(g["covered"])), "rows": g["rows"]}
        r = out[name]
        print(f"{name:10s} plates {r['plates']:3d}  MAE {r['mae']:.3f} (median {r['median_error']:.3f}) threads/cm  "
              f"directions off > 0.4: {r['directions_off_0_4']} (octave-like {r['octave_like']})  "
              f"plates off > 0.4: {r['plates_off_0_4']}, flagged by the second opinion {r['of_them_flagged']}, "
              f"by any check {r['of_them_checked']}; right plates checked {r['right_plates_checked']}; "
              f"plates flagged by the second opinion {r['plates_flagged']}; "
              f"90 % intervals holding the truth {r['interval_90_coverage']:.2f} of the directions")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": out}, indent=2))


if __name__ == "__main__":
    main()
