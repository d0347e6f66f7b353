"""Issue 21 through the CLI defaults: the shipped verifier on collections it never saw, and attribution
against reference sets of unseen artists.

Everything here is held out of the shipped verifier's training, calibration and selection (it was
trained, calibrated and had its blend and typicality thresholds chosen on ``peopleart_artists`` only):

- ``shazam_7artists``: 7 painters, 280 images, another collection (Art UK / WikiArt photographs).
- ``rasta_wikipaintings_small``: its artists with at least 13 images that are *not* among the 29
  ``peopleart_artists`` (27 artists, 484 images; albrecht-durer is in both and left out). The RASTA
  artists with 5-12 images recalibrated the shipped verifier's probability
  (``artlens paintings train-verifier --calibrate-on``, the model card's command) and are never used here.

1. **Pairs** (``artlens verify --pairs P.csv --json --no-catalog``, the defaults: adapted to the pairs'
   own images, typicality rule on): all same-artist pairs and as many random different-artist pairs
   (seed 0). AUC of the printed probability (and of the raw score), accuracy at 0.5, the fraction of
   different-artist pairs at 0.9 or more, expected calibration error (10 equal-width bins), the
   fraction abstained, and a reliability diagram (PNG). ``--no-adapt`` is run too, for comparison.
2. **Attribution** (``artlens verify QDIR --reference A ... --json --no-catalog``): per artist 10
   reference works drawn at random (seed 0), every other work of those artists questioned; top-1 /
   top-3 of the ranking. Shazam's 7 painters; RASTA's 8 unseen artists with the most images (20+);
   and all 27 (10 references + at least 3 questioned each).

The folders handed to the CLI are symbolic links into ../shared/data (nothing is copied). ``--model DIR``
measures another verifier the same way (``verify --model DIR``; a ``bank.npz`` in DIR turns the
typicality rule on, as in the shipped folder).

    python benchmarks/bench_attribution.py --figure docs/figures/verify_reliability.png
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "paintings"
ARTLENS = str(Path(sys.executable).with_name("artlens"))
MIN_EVAL_IMAGES = 13


MODEL: list[str] = []  # ["--model", DIR] to measure another verifier than the shipped one


def _cli(*args: str) -> list[dict]:
    t = time.time()
    proc = subprocess.run([ARTLENS, *args, *MODEL], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"artlens {' '.join(args)} failed: {proc.stderr.strip()[-800:]}")
    print(
        f"  artlens {' '.join(a if len(a) < 60 else '...' + a[-40:] for a in args)}: {time.time() - t:.0f} s",
        flush=True,
    )
    return [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]


def collections() -> dict[str, tuple[list[str], list[str]]]:
    """``name → (paths, artist labels)`` of the held-out collections."""
    out = {}
    rows = list(csv.DictReader(open(SHARED / "shazam_7artists" / "labels.csv")))
    out["shazam_7artists"] = ([str(SHARED / "shazam_7artists" / r["file"]) for r in rows], [r["label"] for r in rows])
    seen = {r["label"] for r in csv.DictReader(open(SHARED / "peopleart_artists" / "labels.csv"))}
    rows = [
        r for r in csv.DictReader(open(SHARED / "rasta_wikipaintings_small" / "labels.csv")) if r["artist"] not in seen
    ]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["artist"]] = counts.get(r["artist"], 0) + 1
    rows = [r for r in rows if counts[r["artist"]] >= MIN_EVAL_IMAGES]  # 5-12: the calibration artists
    out["rasta_unseen"] = (
        [str(SHARED / "rasta_wikipaintings_small" / r["path"]) for r in rows],
        [r["artist"] for r in rows],
    )
    return out


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    idx = np.minimum((p * bins).astype(int), bins - 1)
    return float(
        sum((idx == b).mean() * abs(p[idx == b].mean() - y[idx == b].mean()) for b in range(bins) if (idx == b).any())
    )


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[tuple[float, float, int]]:
    idx = np.minimum((p * bins).astype(int), bins - 1)
    return [
        (float(p[idx == b].mean()), float(y[idx == b].mean()), int((idx == b).sum()))
        for b in range(bins)
        if (idx == b).any()
    ]


def pair_benchmark(name: str, paths: list[str], labels: list[str], work: Path, adapt: bool) -> dict:
    from artlens.models.calibration import roc_auc
    from artlens.paintings.pairs import balanced_eval_pairs

    pairs = balanced_eval_pairs(labels, max_pairs=20000, seed=0)
    pfile = work / f"{name}_pairs.csv"
    with open(pfile, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b"])
        w.writerows([(paths[i], paths[j]) for i, j, _ in pairs])
    rows = _cli("verify", "--pairs", str(pfile), "--json", "--no-catalog", *([] if adapt else ["--no-adapt"]))
    ok = [(r, s) for r, s in zip(rows, pairs[:, 2], strict=True) if "error" not in r]
    p = np.array([r["same_artist_probability"] for r, _ in ok])
    score = np.array([r["score"] for r, _ in ok])
    y = np.array([s for _, s in ok], float)
    abst = np.array([bool(r.get("abstained")) for r, _ in ok])
    return {
        "pairs": len(ok),
        "same": int(y.sum()),
        "auc": roc_auc(p, y),
        "auc_score": roc_auc(score, y),
        "accuracy": float(((p > 0.5) == (y > 0)).mean()),
        "different_at_0.9": float((p[y == 0] >= 0.9).mean()),
        "ece": ece(p, y),
        "abstained": float(abst.mean()),
        "ece_answered": ece(p[~abst], y[~abst]) if (~abst).any() else None,
        "reliability": reliability(p, y),
    }


def attribution_benchmark(
    name: str, paths: list[str], labels: list[str], work: Path, artists: list[str], n_ref: int = 10, seed: int = 0
) -> dict:
    rng = np.random.default_rng(seed)
    root = work / name
    qdir = root / "questioned"
    qdir.mkdir(parents=True)
    truth, refs = {}, []
    lab = np.asarray(labels)
    for a in artists:
        idx = np.flatnonzero(lab == a)
        idx = idx[rng.permutation(len(idx))]
        rdir = root / "references" / a
        rdir.mkdir(parents=True)
        for i in idx[:n_ref]:
            os.symlink(paths[i], rdir / Path(paths[i]).name)
        for i in idx[n_ref:]:
            link = qdir / f"{a}__{Path(paths[i]).name}"
            os.symlink(paths[i], link)
            truth[str(link)] = str(rdir)
        refs += ["--reference", str(rdir)]
    rows = _cli("verify", str(qdir), *refs, "--json", "--no-catalog")
    top1 = [r["ranking"][0]["reference"] == truth[r["image"]] for r in rows]
    top3 = [truth[r["image"]] in [c["reference"] for c in r["ranking"][:3]] for r in rows]
    lr_true = [next(c for c in r["ranking"] if c["reference"] == truth[r["image"]]) for r in rows]
    inside = [c["interval"][0] > 1 for c in lr_true]
    wrong_best = [r["ranking"][0] for r, t in zip(rows, top1, strict=True) if not t]
    return {
        "artists": len(artists),
        "references_per_artist": n_ref,
        "questioned": len(rows),
        "top1": float(np.mean(top1)),
        "top3": float(np.mean(top3)),
        "true_artist_lr_interval_above_1": float(np.mean(inside)),
        "median_lr_true_artist": float(np.median([c["likelihood_ratio"] for c in lr_true])),
        "wrong_top1_with_interval_above_1": float(np.mean([c["interval"][0] > 1 for c in wrong_best]))
        if wrong_best
        else 0.0,
    }


def typicality_breakdown(name: str, paths: list[str], labels: list[str], cache_dir: Path) -> dict:
    """The default scores (adapted to the collection) split by the typicality rule's verdict, with the
    probabilities as calibrated (in Python, features cached: the same numbers the CLI prints)."""
    from artlens.models.calibration import roc_auc
    from artlens.paintings.features import cached_features
    from artlens.paintings.pairs import balanced_eval_pairs
    from artlens.paintings.verify import load_verifier

    v = load_verifier(MODEL[1] if MODEL else None)
    f = cached_features(paths, v.extractor, cache_dir / f"{name}_eval_stats_sqrt.npz")
    v.remember(f)
    v.adapt(f.paths)
    ok, codes, _ = v.encode(f.paths)
    c, d = codes.numpy(), v.bank.distance(v.features_of(ok))
    lab = [labels[paths.index(p)] for p in ok]
    pairs = balanced_eval_pairs(lab, max_pairs=20000, seed=0)
    s = (c[pairs[:, 0]] * c[pairs[:, 1]]).sum(1)
    y, p = pairs[:, 2].astype(float), np.asarray(v.probability(s))
    dp = np.maximum(d[pairs[:, 0]], d[pairs[:, 1]])
    groups = {"typical": dp <= v.bank.threshold, "outside": dp >= v.bank.limit}
    groups["atypical"] = ~groups["typical"] & ~groups["outside"]
    return {
        g: {
            "pairs": int(m.sum()),
            "auc": roc_auc(s[m], y[m]),
            "ece": ece(p[m], y[m]),
            "different_at_0.9": float((p[m][y[m] == 0] >= 0.9).mean()),
        }
        for g, m in groups.items()
        if m.any()
    }


def figure(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 4.2), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items(), strict=True):
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--")
        for tag, m, style in (("CLI default", r["default"], "o-"), ("--no-adapt", r["no_adapt"], "s:")):
            if m is None:
                continue
            xs, ys, ns = zip(*m["reliability"], strict=True)
            ax.plot(xs, ys, style, label=f"{tag}: ECE {m['ece']:.3f}")
        ax.set(
            xlabel="same-artist probability (printed)",
            ylabel="fraction same artist",
            xlim=(0, 1),
            ylim=(0, 1),
            title=f"{name} ({r['default']['pairs']} pairs)",
        )
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle("Shipped verifier on collections it never saw: reliability (10 bins)", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"reliability diagram: {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--figure", type=Path, default=Path("bench-output") / "verify_reliability.png")
    ap.add_argument("--json-out", type=Path, default=None)
    ap.add_argument("--skip-pairs", action="store_true")
    ap.add_argument("--skip-no-adapt", action="store_true")
    ap.add_argument("--skip-attribution", action="store_true")
    ap.add_argument(
        "--typicality-breakdown",
        action="store_true",
        help="Only: the default pair scores split by typicality (features cached in --cache-dir).",
    )
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "artlens-bench-features")
    ap.add_argument("--model", type=Path, default=None, help="Verifier folder to measure (default: the shipped one).")
    args = ap.parse_args()
    if args.model is not None:
        MODEL[:] = ["--model", str(args.model)]
    if not SHARED.is_dir():
        raise SystemExit(f"shared data not found at {SHARED}")
    cols = collections()
    if args.typicality_breakdown:
        print(json.dumps({n: typicality_breakdown(n, *cols[n], args.cache_dir) for n in cols}, indent=1))
        return
    results: dict = {"pairs": {}, "attribution": {}}
    with tempfile.TemporaryDirectory(prefix="artlens-attr-") as tmp:
        work = Path(tmp)
        if not args.skip_pairs:
            for name, (paths, labels) in cols.items():
                results["pairs"][name] = {
                    "default": pair_benchmark(name, paths, labels, work, adapt=True),
                    "no_adapt": None if args.skip_no_adapt else pair_benchmark(name, paths, labels, work, False),
                }
                print(
                    name,
                    json.dumps({k: v for k, v in results["pairs"][name]["default"].items() if k != "reliability"}),
                    flush=True,
                )
            figure(results["pairs"], args.figure)
        if not args.skip_attribution:
            lab_s = cols["shazam_7artists"][1]
            lab_r = cols["rasta_unseen"][1]
            counts = {a: lab_r.count(a) for a in sorted(set(lab_r))}
            top8 = sorted(counts, key=lambda a: (-counts[a], a))[:8]
            wide = sorted(counts)
            for name, col, artists in (
                ("shazam_7artists", "shazam_7artists", sorted(set(lab_s))),
                ("rasta_unseen_8", "rasta_unseen", top8),
                (f"rasta_unseen_{len(wide)}", "rasta_unseen", wide),
            ):
                results["attribution"][name] = attribution_benchmark(name, *cols[col], work, artists)
                print(name, json.dumps(results["attribution"][name]), flush=True)
    print(
        json.dumps(
            {
                k: {
                    n: (
                        {m: {x: y for x, y in (v or {}).items() if x != "reliability"} for m, v in r.items()}
                        if k == "pairs"
                        else r
                    )
                    for n, r in d.items()
                }
                for k, d in results.items()
            },
            indent=1,
        )
    )
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
