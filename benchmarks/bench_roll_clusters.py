"""Roll clusters through ``artlens canvas match``: which linkage and threshold recover the rolls, in family and out.

For each collection of canvases (the same four as ``bench_fabric.py``: artlens' classic and widened rolls, and
two draws of family B, ``benchmarks/familyb/rolls.py``, never trained or calibrated on), the plates are written
as TIFF files and matched by the command a user types, with its defaults except the clustering:

    artlens canvas match DIR --out OUT --no-catalog --json [--linkage L] [--threshold T]

The pairs are scored once (``pairs.csv`` is reused by the later runs: the clustering options are not part of a
pair's key). Per linkage and threshold: the adjusted Rand index of the clusters against the rolls (singletons
count as clusters of one), and over the pairs of plates put in one cluster, the fraction truly cut from one roll
(pair precision: how often "same roll" is right) and the fraction of same-roll pairs put together (recall).

    python benchmarks/bench_roll_clusters.py [--collections classic,wide,familyb] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

LINKAGES = ("single", "average", "complete")
THRESHOLDS = (0.5, 0.7, 0.9)


def run_match(*args: str) -> dict:
    """``artlens canvas match ARGS --json`` in-process; the printed clusters.json."""
    from artlens.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            main(["canvas", "match", *args, "--no-catalog", "--json"])
    except SystemExit as exc:
        if exc.code:
            raise RuntimeError(f"canvas match exited {exc.code}: {err.getvalue().strip()[-800:]}") from None
    return json.loads(out.getvalue())


def scores(labels: np.ndarray, rolls: np.ndarray) -> dict[str, float]:
    """Adjusted Rand index, pair precision and pair recall of cluster ``labels`` against ``rolls``."""
    from sklearn.metrics import adjusted_rand_score

    iu = np.triu_indices(len(rolls), 1)
    together = (labels[:, None] == labels[None, :])[iu]
    truth = (rolls[:, None] == rolls[None, :])[iu]
    return {"ari": float(adjusted_rand_score(rolls, labels)),
            "precision": float(truth[together].mean()) if together.any() else float("nan"),
            "recall": float(together[truth].mean()) if truth.any() else float("nan"),
            "clusters": int(len(set(labels.tolist())))}


def labels_of(summary: dict, names: list[str]) -> np.ndarray:
    """One label per plate name from clusters.json (singletons get their own)."""
    lab = {}
    for c in summary["clusters"]:
        for m in c["members"]:
            lab[m] = c["id"]
    nxt = max(lab.values(), default=0) + 1
    out = []
    for n in names:
        if n not in lab:
            lab[n], nxt = nxt, nxt + 1
        out.append(lab[n])
    return np.array(out)


def main() -> None:
    from bench_fabric import load_collection, write_plates

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collections", default="classic,wide,familyb")
    ap.add_argument("--familyb-seeds", default="0,1")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    # the collections exactly as bench_fabric.py draws them (its defaults, --wide-rolls 12)
    opts = SimpleNamespace(rolls=12, wide_rolls=12, canvases_per_roll=4, canvas_cm=5.0, seed=90210)
    kinds = []
    for k in args.collections.split(","):
        kinds += [f"familyb:{s}" for s in args.familyb_seeds.split(",") if s] if k == "familyb" else [k] if k else []
    report: dict = {}
    for kind in kinds:
        items = load_collection(kind, opts)
        rolls = np.array([r for r, _, _ in items])
        with tempfile.TemporaryDirectory() as tmp:
            plates = Path(tmp) / "plates"
            plates.mkdir()
            names = [p.name for p in write_plates(items, plates)]
            rep: dict = {"canvases": len(items), "rolls": len(set(rolls.tolist())), "runs": {}}
            t = time.perf_counter()
            for linkage in LINKAGES:
                for thr in THRESHOLDS:
                    s = run_match(str(plates), "--out", str(Path(tmp) / "out"), "--linkage", linkage,
                                  "--threshold", str(thr))
                    rep["runs"][f"{linkage}@{thr:g}"] = scores(labels_of(s, names), rolls)
            rep["seconds"] = round(time.perf_counter() - t, 1)
        report[kind] = rep
        print(f"\n== {kind}: {rep['canvases']} canvases from {rep['rolls']} rolls ({rep['seconds']} s)")
        for key, r in rep["runs"].items():
            print(f"  {key:14s} ARI {r['ari']:6.3f}  pair precision {r['precision']:.3f}  recall {r['recall']:.3f}  "
                  f"{r['clusters']} clusters")
    print("\n| linkage @ threshold | " + " | ".join(report) + " |")
    print("|---|" + "---|" * len(report))
    for key in next(iter(report.values()))["runs"]:
        print(f"| {key} | " + " | ".join(f"{r['runs'][key]['ari']:.3f} / {r['runs'][key]['precision']:.2f}"
                                         for r in report.values()) + " |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
