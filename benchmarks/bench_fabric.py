"""Same-roll detection on held-out collections: in family (artlens' own synthetic rolls) and out of family
(an independently written roll simulator, ``benchmarks/familyb``), through the code path of
``artlens canvas compare``; ROC-AUC side by side, reliability tables (``--figure``: diagrams); and the time
of a whole collection.

Collections (all canvases cut at independent random places: non-contiguous pieces):

- ``classic``: ``--rolls`` (12) artlens rolls in families of 3 within 0.3 threads/cm,
  ``--canvases-per-roll`` (4) canvases of ``--canvas-cm`` (5) cm at 100 px/cm
  (:func:`artlens.train.fabric.synthetic_collection`, the issue-4 benchmark);
- ``wide``: ``--wide-rolls`` (16) artlens rolls in families of 4 within 0.3 threads/cm, every yarn
  factor and imaging condition drawn over wide ranges (:func:`artlens.train.fabric.wide_collection`);
- ``familyb:SEED``: ``roll_suite(n_rolls=8, cuts=4, cut_cm=5.0, px_per_cm=200.0, seed0=SEED,
  density_spread=0.3)`` from ``benchmarks/familyb/rolls.py`` (written independently of artlens; all
  roll densities within 0.3 threads/cm), for each seed of ``--familyb-seeds``.

The seeds differ from every training and selection seed. Every plate is written as a TIFF with its
resolution and compared through :class:`artlens.canvas.collection.CanvasComparer` (counted and
described once per plate, density matching with ``--permutations`` surrogates per pair, the fabric
model, the naive-Bayes combination of ``canvas compare``); ``--no-density`` skips density matching
(fabric score only). Each ``--model`` (folder or shipped name) is scored on the same pairs and the same
density p-values.

Printed per collection and model: ROC-AUC of density matching (-log p), of the fabric score and of
the combined probability; for a Siamese model also its three aggregations. Then reliability tables
(10 bins) of the fabric score and of the combined same-roll probability: mean predicted vs observed
same-roll rate, (a) with the probabilities as output (even prior odds) and the observed rate weighted
so that both classes count equally, and (b) with the prior set to the collection's share of same-roll
pairs (what ``prior`` would be for a user who knew it) and the raw observed rate; plus the expected
calibration error (ECE, pair-weighted mean |predicted - observed| over the bins). Finally the wall time
of ``CanvasComparer`` over all pairs of N canvases for each N of ``--timing-sizes``.

    python benchmarks/bench_fabric.py [--model fabric_default --model siamese_v1] [--collections classic,wide,familyb]
        [--familyb-seeds 0,1] [--permutations 199] [--no-density] [--timing-sizes 10,25,50] [--json OUT]
        [--figure docs/figures/fabric_reliability.png]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def load_collection(kind: str, args: argparse.Namespace) -> list[tuple[int, np.ndarray, float]]:
    """``[(roll, image, px_per_cm)]`` of one collection."""
    if kind == "classic":
        from artlens.train.fabric import synthetic_collection

        c = synthetic_collection(args.rolls, args.canvases_per_roll, canvas_cm=args.canvas_cm, seed=args.seed)
        return [(x.roll, x.image, x.px_per_cm) for x in c]
    if kind == "wide":
        from artlens.train.fabric import wide_collection

        c = wide_collection(args.wide_rolls, args.canvases_per_roll, seed=args.seed + 1,
                            canvas_cm=(args.canvas_cm, args.canvas_cm))
        return [(x.roll, x.image, x.px_per_cm) for x in c]
    if kind.startswith("familyb:"):
        from familyb import rolls  # benchmarks/familyb/rolls.py

        suite = rolls.roll_suite(n_rolls=8, cuts=4, cut_cm=5.0, px_per_cm=200.0, seed0=int(kind.split(":")[1]),
                                 density_spread=0.3)
        return [(int(r), np.asarray(p.image, np.float32), float(p.px_per_cm)) for r, p in suite]
    raise SystemExit(f"unknown collection {kind!r}")


def write_plates(items: list[tuple[int, np.ndarray, float]], folder: Path) -> list[Path]:
    import tifffile

    paths = []
    for k, (_, img, ppc) in enumerate(items):
        path = folder / f"c{k:03d}.tif"
        if img.dtype.kind == "f":  # float plates: 16-bit, full range
            lo, hi = float(np.min(img)), float(np.max(img))
            img = np.round((img - lo) / max(hi - lo, 1e-12) * 65535).astype(np.uint16)
        tifffile.imwrite(path, img, resolution=(ppc, ppc), resolutionunit="CENTIMETER")
        paths.append(path)
    return paths


def reliability(prob: np.ndarray, y: np.ndarray, balanced: bool, bins: int = 10) -> tuple[list[tuple], float]:
    """Rows ``(lo, hi, n, mean predicted, observed)`` and the ECE; ``balanced`` weights the classes equally."""
    w = np.where(y == 1, 0.5 / max(y.sum(), 1), 0.5 / max((1 - y).sum(), 1)) if balanced else np.ones(len(y))
    edges = np.linspace(0, 1, bins + 1)
    rows, ece = [], 0.0
    for k in range(bins):
        m = (prob >= edges[k]) & ((prob < edges[k + 1]) if k < bins - 1 else (prob <= 1))
        if not m.any():
            continue
        obs = float(np.sum(w[m] * y[m]) / np.sum(w[m]))
        pred = float(np.sum(w[m] * prob[m]) / np.sum(w[m]))
        rows.append((edges[k], edges[k + 1], int(m.sum()), pred, obs))
        ece += float(np.sum(w[m])) / float(np.sum(w)) * abs(pred - obs)
    return rows, ece


def print_reliability(title: str, prob: np.ndarray, y: np.ndarray) -> dict:
    out = {}
    pi = float(y.mean())
    shifted = 1 / (1 + np.exp(-(np.log(np.clip(prob, 1e-12, 1 - 1e-12) / np.clip(1 - prob, 1e-12, 1))
                                + math.log(pi / (1 - pi)))))
    for label, p, bal in (("as output (even prior odds), observed rate with the classes weighted equally", prob, True),
                          (f"prior = share of same-roll pairs ({pi:.3f}), raw observed rate", shifted, False)):
        rows, ece = reliability(p, y, bal)
        print(f"  reliability of {title}, {label}: ECE {ece:.3f}")
        print("    bin        pairs  mean predicted  observed")
        for lo, hi, n, pred, obs in rows:
            print(f"    {lo:.1f}-{hi:.1f}  {n:6d}  {pred:14.3f}  {obs:8.3f}")
        out["balanced" if bal else "base_rate"] = {"ece": ece, "rows": rows}
    return out


def reliability_figure(report: dict, path: Path) -> Path:
    """Reliability diagrams, one panel per collection (in family, then out of family), one row per probability
    (the fabric score; the combined ``canvas compare`` probability where density matching ran): mean predicted
    against observed same-roll rate per bin, the classes weighted equally (the probabilities assume even prior
    odds); marker area grows with the pairs in the bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(report["collections"])
    rows = [("reliability_fabric", "fabric score"), ("reliability_combined", "combined probability")]
    rows = [r for r in rows if any(r[0] in m for c in report["collections"].values() for m in c["models"].values())]
    fig, axes = plt.subplots(len(rows), len(kinds), figsize=(3.0 * len(kinds), 3.0 * len(rows)), squeeze=False)
    for i, (key, label) in enumerate(rows):
        for j, kind in enumerate(kinds):
            ax = axes[i][j]
            ax.plot([0, 1], [0, 1], color="0.7", lw=1)
            for name, res in report["collections"][kind]["models"].items():
                if key not in res:
                    continue
                rel = res[key]["balanced"]
                pts = np.array([(pred, obs, n) for _, _, n, pred, obs in rel["rows"]])
                ax.plot(pts[:, 0], pts[:, 1], "-", lw=1)
                ax.scatter(pts[:, 0], pts[:, 1], s=8 + 60 * pts[:, 2] / pts[:, 2].max(),
                           label=f"{name} (ECE {rel['ece']:.3f})")
            family = "out of family" if kind.startswith("familyb") else "in family"
            ax.set_title(f"{kind} ({family})\n{label}", fontsize=8)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("predicted same-roll probability", fontsize=7)
            ax.set_ylabel("observed (classes weighted equally)", fontsize=7)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=None,
                    help="fabric model folder or shipped name (repeatable; default: fabric_default)")
    ap.add_argument("--collections", default="classic,wide,familyb")
    ap.add_argument("--familyb-seeds", default="0,1")
    ap.add_argument("--rolls", type=int, default=12)
    ap.add_argument("--wide-rolls", type=int, default=16)
    ap.add_argument("--canvases-per-roll", type=int, default=4)
    ap.add_argument("--canvas-cm", type=float, default=5.0)
    ap.add_argument("--permutations", type=int, default=199)
    ap.add_argument("--patches", type=int, default=None)
    ap.add_argument("--timing-sizes", default="")
    ap.add_argument("--seed", type=int, default=90210)
    ap.add_argument("--no-density", action="store_true", help="fabric score only (no counting or density matching)")
    ap.add_argument("--json", type=Path, default=None, help="write all figures to this JSON file")
    ap.add_argument("--figure", type=Path, default=None, help="write the reliability diagrams to this PNG")
    args = ap.parse_args()
    import warnings

    warnings.filterwarnings("ignore", message=".*differ in resolution.*")  # the wide collection mixes px/cm

    from artlens.canvas.collection import CanvasComparer, combine_evidence
    from artlens.canvas.fabric import aggregate, load_fabric_model, pair_logits
    from artlens.canvas.threads import SpectralParams
    from artlens.train.fabric import roc_auc

    models = [load_fabric_model(m) for m in (args.model or ["fabric_default"])]
    names = args.model or ["fabric_default"]
    kinds = []
    for k in args.collections.split(","):
        if k == "familyb":
            kinds += [f"familyb:{s}" for s in args.familyb_seeds.split(",") if s]
        elif k:
            kinds.append(k)
    report: dict = {"models": names, "collections": {}}
    summary = []
    for kind in kinds:
        t0 = time.perf_counter()
        try:
            items = load_collection(kind, args)
        except ImportError as exc:
            print(f"\n== {kind}: not available ({exc}); skipped")
            continue
        rolls = np.array([r for r, _, _ in items])
        n_pairs = len(items) * (len(items) - 1) // 2
        y = np.array([int(rolls[i] == rolls[j]) for i, j in itertools.combinations(range(len(items)), 2)])
        print(f"\n== {kind}: {len(items)} canvases from {len(set(rolls.tolist()))} rolls, {n_pairs} pairs "
              f"({y.sum()} same-roll); px/cm {sorted({round(p) for _, _, p in items})[:4]}... "
              f"({time.perf_counter() - t0:.1f} s)")
        rep: dict = {"canvases": len(items), "pairs": n_pairs, "same_roll": int(y.sum()), "rolls": rolls.tolist(),
                     "models": {}}
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_plates(items, Path(tmp))
            pvals = None
            yarn_desc: dict = {}  # yarn descriptors do not depend on the fitted comparison: described once
            for name, model in zip(names, models, strict=True):
                t = time.perf_counter()
                cmp = CanvasComparer(model, params=SpectralParams(window_cm=1.0, step_cm=0.25),
                                     n_permutations=args.permutations, n_patches=args.patches, n_boot=0)
                fabric, probs, ps, extra = [], [], [], {m: [] for m in ("mean", "trimmed", "median")}
                for i, j in itertools.combinations(range(len(paths)), 2):
                    if pvals is None and not args.no_density:
                        r = cmp.compare(paths[i], paths[j])
                        d = r["density_match"]
                        p = d["p_value"] if d is not None else None
                        f = r["fabric"]
                    else:
                        p = None if pvals is None else pvals[len(ps)]
                        if model.kind == "yarn":
                            for k in (i, j):
                                if k not in yarn_desc:
                                    yarn_desc[k] = cmp.entry(paths[k]).embedding
                            ea, eb = yarn_desc[i], yarn_desc[j]
                        else:
                            ea, eb = cmp.entry(paths[i]).embedding, cmp.entry(paths[j]).embedding
                        f = model.compare(ea, eb, n_boot=0)
                    ps.append(p)
                    cal = model.calibration
                    fabric.append(f["score"])
                    probs.append(combine_evidence(p, cal["a"] * f["logit"] + cal["b"]))
                    if model.kind == "siamese":
                        ea, eb = cmp.entry(paths[i]).embedding, cmp.entry(paths[j]).embedding
                        m = pair_logits(ea, eb, model)
                        for a in extra:
                            extra[a].append(aggregate(m, a))
                if pvals is None and not args.no_density:
                    pvals = ps
                fabric_a, probs_a = np.array(fabric), np.array(probs)
                res = {"fabric_auc": roc_auc(fabric_a, y), "method": model.method,
                       "pairs": {"same_roll": y.tolist(), "fabric": fabric_a.tolist(), "combined": probs_a.tolist()}}
                line = f"  [{name}] {model.method}: fabric score ROC-AUC {res['fabric_auc']:.3f}"
                if pvals is not None:
                    neglogp = np.array([-math.log(p) if p else 0.0 for p in pvals])
                    res["density_auc"] = roc_auc(neglogp, y)
                    res["combined_auc"] = roc_auc(probs_a, y)
                    line += (f"; density matching (-log p) {res['density_auc']:.3f}; combined (canvas compare) "
                             f"{res['combined_auc']:.3f}")
                if model.kind == "siamese":
                    res["aggregations"] = {a: roc_auc(np.array(v), y) for a, v in extra.items()}
                    line += "; aggregations " + ", ".join(f"{a} {v:.3f}" for a, v in res["aggregations"].items())
                print(line + f"  ({time.perf_counter() - t:.0f} s)")
                res["reliability_fabric"] = print_reliability(f"the {model.method} score", fabric_a, y)
                if pvals is not None:
                    res["reliability_combined"] = print_reliability("the combined probability", probs_a, y)
                rep["models"][name] = res
                summary.append((kind, name, res))
        report["collections"][kind] = rep

    print("\n== summary: ROC-AUC of same-roll detection (fabric score; combined with density matching)")
    for kind, name, res in summary:
        comb = f"{res['combined_auc']:.3f}" if "combined_auc" in res else "-"
        ece = res["reliability_fabric"]["base_rate"]["ece"]
        print(f"  {kind:12s} {name:28s} fabric {res['fabric_auc']:.3f}  combined {comb}  ECE(fabric, base rate) "
              f"{ece:.3f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")
    if args.figure:
        print(f"reliability diagrams: {reliability_figure(report, args.figure)}")

    # timing: CanvasComparer over all pairs of N plates written as TIFF (first model)
    from artlens.train.fabric import synthetic_collection

    for n in [int(v) for v in args.timing_sizes.split(",") if v]:
        extra_c = synthetic_collection(max(1, math.ceil(n / args.canvases_per_roll)), args.canvases_per_roll,
                                       canvas_cm=args.canvas_cm, seed=args.seed + n)[:n]
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_plates([(c.roll, c.image, c.px_per_cm) for c in extra_c], Path(tmp))
            cmp = CanvasComparer(models[0], n_permutations=args.permutations, n_patches=args.patches, n_boot=200)
            t = time.perf_counter()
            for a, b in itertools.combinations(paths, 2):
                cmp.compare(a, b)
            dt = time.perf_counter() - t
        npairs = n * (n - 1) // 2
        print(f"time N={n:3d} canvases, {npairs:5d} pairs: {dt:7.1f} s ({cmp.counts_computed} counts, "
              f"{cmp.embeddings_computed} descriptions, {1000 * dt / max(npairs, 1):.0f} ms per pair)")


if __name__ == "__main__":
    main()
