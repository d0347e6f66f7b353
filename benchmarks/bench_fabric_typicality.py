"""Would a typicality rule make the fabric model's probabilities safer out of family? (issue 18)

The paintings verifier moves a pair's probability towards 0.5, or abstains, when an image lies far from its
training images (``artlens.paintings.typicality``). The same rule for canvases would measure how far a cut's
yarn statistics (``artlens.canvas.yarn.yarn_descriptor``, the fabric model's input) lie from those of the
rolls the model learned from, and distrust the pairs of atypical cuts. It helps only if the atypical pairs
are the badly calibrated ones. This script checks that before anything is built:

- bank: the cuts of artlens' widened rolls (``wide_collection``, the fabric model's training imaging; the
  same collection as ``bench_fabric.py``'s ``wide``); distance of a cut = mean of the distances to its 5
  nearest bank cuts, in features standardised by the bank's median and MAD (either orientation of the cut;
  NaN features count as the median);
- thresholds: the 95 % and 99.5 % quantiles of the distances of another draw of widened rolls (held out);
- a pair is as typical as its less typical cut. Per collection, pairs split into typical (≤ 95 %) and
  atypical: AUC, ECE at the collection's base rate and the share of different-roll pairs given ≥ 0.9, of
  the combined ``canvas compare`` probability that ``bench_fabric.py --json`` recorded.

    python benchmarks/bench_fabric.py --model fabric_default --collections classic,wide,familyb \\
        --familyb-seeds 0,1 --wide-rolls 12 --permutations 199 --json PAIRS.json
    python benchmarks/bench_fabric_typicality.py PAIRS.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

K = 5


def descriptors(kind: str, opts: SimpleNamespace) -> tuple[np.ndarray, np.ndarray]:
    """Compared yarn features of every cut of a collection, in both orientations ``(n, F)`` × 2."""
    from bench_fabric import load_collection

    from artlens.canvas.yarn import _compared, yarn_descriptor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = [yarn_descriptor(img, ppc) for _, img, ppc in load_collection(kind, opts)]
    return (np.array([_compared(d, ("horizontal", "vertical")) for d in ds]),
            np.array([_compared(d, ("vertical", "horizontal")) for d in ds]))


def main() -> None:
    from bench_fabric import reliability

    from artlens.train.fabric import roc_auc

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs_json", type=Path, help="bench_fabric.py --json output (with the wide collection)")
    ap.add_argument("--held-out-seed", type=int, default=777, help="seed of the held-out widened rolls")
    args = ap.parse_args()
    report = json.loads(args.pairs_json.read_text())
    opts = SimpleNamespace(rolls=12, wide_rolls=12, canvases_per_roll=4, canvas_cm=5.0, seed=90210)  # bench_fabric's
    bank, _ = descriptors("wide", opts)
    med = np.nanmedian(bank, axis=0)
    mad = 1.4826 * np.nanmedian(np.abs(bank - med), axis=0) + 1e-9

    def z(v: np.ndarray) -> np.ndarray:
        return np.clip(np.nan_to_num((v - med) / mad, nan=0.0), -10, 10)

    zb = z(bank)

    def distance(v: np.ndarray, v2: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        d = np.minimum(np.sqrt(((zb[None] - z(v)[:, None]) ** 2).mean(-1)),
                       np.sqrt(((zb[None] - z(v2)[:, None]) ** 2).mean(-1)))
        d = np.sort(d, axis=1)
        return d[:, 1:K + 1].mean(1) if exclude_self else d[:, :K].mean(1)

    held = distance(*descriptors("wide", SimpleNamespace(**{**vars(opts), "seed": args.held_out_seed})))
    threshold, limit = (float(q) for q in np.quantile(held, [0.95, 0.995]))
    print(f"held-out widened cuts: distance median {np.median(held):.3f}, 95 % {threshold:.3f}, 99.5 % {limit:.3f}")
    out: dict = {"threshold": threshold, "limit": limit, "collections": {}}
    for kind, rep in report["collections"].items():
        dist = distance(*descriptors(kind, opts), exclude_self=(kind == "wide"))
        m = rep["models"]["fabric_default"]["pairs"]
        y, p = np.array(m["same_roll"], float), np.array(m["combined"], float)
        pi = float(y.mean())
        at_base = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + math.log(pi / (1 - pi)))))
        pair_d = np.array([max(dist[i], dist[j]) for i, j in itertools.combinations(range(len(dist)), 2)])
        res = {"cuts_atypical": float((dist > threshold).mean()), "cuts_outside": float((dist > limit).mean())}
        line = (f"{kind:10s} cuts beyond 95 % {res['cuts_atypical']:.2f}, beyond 99.5 % {res['cuts_outside']:.2f}; ")
        for name, sel in (("typical", pair_d <= threshold), ("atypical", pair_d > threshold)):
            if sel.sum() < 10 or y[sel].sum() in (0, sel.sum()):
                continue
            g = {"pairs": int(sel.sum()), "same_roll": int(y[sel].sum()), "auc": roc_auc(p[sel], y[sel]),
                 "ece_base_rate": reliability(at_base[sel], y[sel], balanced=False)[1],
                 "different_at_0.9": float((p[sel][y[sel] == 0] >= 0.9).mean())}
            res[name] = g
            line += (f"{name} {g['pairs']} pairs: AUC {g['auc']:.3f}, ECE {g['ece_base_rate']:.3f}, "
                     f"different ≥ 0.9 {g['different_at_0.9']:.3f}; ")
        out["collections"][kind] = res
        print(line.rstrip("; "))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
