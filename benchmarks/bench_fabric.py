"""Same-roll detection on a held-out synthetic collection: density matching, the Siamese fabric model
(three aggregations), and their combinations; and the time of a whole collection against its size.

Collection: ``--rolls`` rolls (default 12) in families of 3 whose nominal densities lie within
0.3 threads/cm of each other, ``--canvases-per-roll`` canvases each (default 4, so 48 canvases),
``--canvas-cm`` square (default 5 cm) at 100 px/cm, cut at independent random places on 120 × 80 cm
rolls (generally far apart: non-contiguous pieces), each in a random orientation with paint, cracks,
thread angles, blur and noise (:func:`artlens.train.fabric.synthetic_collection`, seed distinct from
the training seed). Every plate is counted (spectral, 1 cm windows every 0.25 cm) and embedded once.

Printed: ROC-AUC of same-roll detection over all pairs for
- density matching (score ``-log p``),
- Siamese, aggregated by mean, trimmed mean (10 %) and median of the patch-pair logits,
- the naive-Bayes combination used by ``artlens canvas compare`` (Sellke bound + calibrated logit),
- a logistic combination of the Siamese logit and ``-log p``, fitted on half the rolls and scored on
  the other half (two folds);
then the wall time of ``CanvasComparer`` over all pairs of N canvases for each N of ``--timing-sizes``.

Targets (issue 4): combined AUC >= 0.95; Siamese alone >= 0.90 on the non-contiguous pairs where
density matching is near chance.

    python benchmarks/bench_fabric.py --model RUN/model [--rolls 12] [--canvases-per-roll 4]
        [--permutations 199] [--patches 32] [--timing-sizes 10,25,50] [--no-density]
"""

from __future__ import annotations

import argparse
import itertools
import math
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="fabric model folder (without: density only)")
    ap.add_argument("--rolls", type=int, default=12)
    ap.add_argument("--canvases-per-roll", type=int, default=4)
    ap.add_argument("--canvas-cm", type=float, default=5.0)
    ap.add_argument("--permutations", type=int, default=199)
    ap.add_argument("--patches", type=int, default=None)
    ap.add_argument("--timing-sizes", default="10,25,50")
    ap.add_argument("--seed", type=int, default=90210)
    ap.add_argument("--no-density", action="store_true",
                    help="Siamese only (no counting or density matching): fast on larger collections")
    args = ap.parse_args()

    from artlens.canvas.collection import CanvasComparer, combine_evidence
    from artlens.canvas.fabric import FabricModel, aggregate, canvas_embeddings, pair_logits
    from artlens.canvas.matching import match_density_maps
    from artlens.canvas.threads import SpectralParams, count_threads_spectral
    from artlens.train.fabric import roc_auc, synthetic_collection

    params = SpectralParams(window_cm=1.0, step_cm=0.25)
    t0 = time.perf_counter()
    canv = synthetic_collection(args.rolls, args.canvases_per_roll, canvas_cm=args.canvas_cm, seed=args.seed)
    print(f"collection: {len(canv)} canvases from {args.rolls} rolls ({time.perf_counter() - t0:.1f} s)")
    counts = None if args.no_density else [count_threads_spectral(c.image, params, px_per_cm=c.px_per_cm)
                                           for c in canv]
    model = FabricModel.load(args.model) if args.model else None
    embs = [canvas_embeddings(c.image, model, args.patches, seed=i, px_per_cm=c.px_per_cm)
            for i, c in enumerate(canv)] if model else None

    rows = []
    for i, j in itertools.combinations(range(len(canv)), 2):
        p = 1.0  # no density evidence (too little overlap, or --no-density)
        if counts is not None:
            try:
                p = match_density_maps(counts[i], counts[j], n_permutations=args.permutations,
                                       seed=i * 1000 + j).p_value
            except Exception:  # noqa: BLE001 - too little overlap
                pass
        row = {"same": int(canv[i].roll == canv[j].roll), "roll_i": canv[i].roll, "roll_j": canv[j].roll, "p": p}
        if model:
            m = pair_logits(embs[i], embs[j], model)
            for method in ("mean", "trimmed", "median"):
                row[method] = aggregate(m, method)
        rows.append(row)
    y = np.array([r["same"] for r in rows])
    neglogp = np.array([-math.log(r["p"]) for r in rows])
    print(f"pairs: {len(rows)} ({y.sum()} same-roll)")
    if counts is not None:
        print(f"ROC-AUC density matching (-log p): {roc_auc(neglogp, y):.3f}")
    if model:
        for method in ("mean", "trimmed", "median"):
            print(f"ROC-AUC Siamese, {method:8s}: {roc_auc(np.array([r[method] for r in rows]), y):.3f}")
        cal = model.calibration
        s = np.array([r[model.aggregation['method']] for r in rows])
        nb = np.array([combine_evidence(r["p"], cal["a"] * v + cal["b"]) for r, v in zip(rows, s, strict=True)])
        if counts is None:  # Siamese only
            return
        print(f"ROC-AUC combined, naive Bayes (artlens canvas compare): {roc_auc(nb, y):.3f}")
        # logistic combination, 2 folds by roll (fit on pairs within one half, score pairs within the other)
        rolls = np.arange(args.rolls)
        np.random.default_rng(0).shuffle(rolls)
        halves = [set(rolls[: len(rolls) // 2].tolist()), set(rolls[len(rolls) // 2:].tolist())]
        scores, labels = [], []
        for k in (0, 1):
            fit = [n for n, r in enumerate(rows) if r["roll_i"] in halves[k] and r["roll_j"] in halves[k]]
            test = [n for n, r in enumerate(rows) if r["roll_i"] in halves[1 - k] and r["roll_j"] in halves[1 - k]]
            X = np.stack([s, neglogp], axis=1)
            w = _logistic(X[fit], y[fit])
            scores.append(X[test] @ w[:2] + w[2])
            labels.append(y[test])
        auc = roc_auc(np.concatenate(scores), np.concatenate(labels))
        print(f"ROC-AUC combined, logistic (2-fold by roll): {auc:.3f}")

    # timing: CanvasComparer over all pairs of N plates written as TIFF
    import tifffile

    for n in [int(v) for v in args.timing_sizes.split(",") if v]:
        extra = synthetic_collection(max(1, math.ceil(n / args.canvases_per_roll)), args.canvases_per_roll,
                                     canvas_cm=args.canvas_cm, seed=args.seed + n)[:n]
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for k, c in enumerate(extra):
                path = Path(tmp) / f"c{k:03d}.tif"
                tifffile.imwrite(path, c.image, resolution=(c.px_per_cm, c.px_per_cm), resolutionunit="CENTIMETER")
                paths.append(path)
            cmp = CanvasComparer(model, n_permutations=args.permutations, n_patches=args.patches, n_boot=200)
            t = time.perf_counter()
            for a, b in itertools.combinations(paths, 2):
                cmp.compare(a, b)
            dt = time.perf_counter() - t
        npairs = n * (n - 1) // 2
        print(f"time N={n:3d} canvases, {npairs:5d} pairs: {dt:7.1f} s ({cmp.counts_computed} counts, "
              f"{cmp.embeddings_computed} embeddings, {1000 * dt / max(npairs, 1):.0f} ms per pair)")


def _logistic(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights and bias of an L2-regularised logistic regression (BFGS)."""
    from scipy.optimize import minimize

    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = (X - mu) / sd

    def nll(w: np.ndarray) -> float:
        z = Z @ w[:-1] + w[-1]
        return float(np.sum(np.logaddexp(0, z) - y * z) + 0.01 * np.sum(w[:-1] ** 2))

    w = minimize(nll, np.zeros(X.shape[1] + 1), method="BFGS").x
    return np.concatenate([w[:-1] / sd, [w[-1] - np.sum(w[:-1] * mu / sd)]])


if __name__ == "__main__":
    main()
