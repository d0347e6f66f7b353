"""Same-artist verification: AUC and accuracy on seen artists, unseen artists and shazam_7artists.

Trains on ``peopleart_artists`` (29 artists) with ``--unseen-artists`` artists held out for the final
test and ``--val-artists`` more held out to choose the blend weight and calibrate; reports, side by
side on the same split and pairs:

- frozen Lite0 cosine (no training): global view, and global + patches (multi-crop); the same for
  the verifier's default features (channel mean and std of the last four stages, signed square
  root), raw, centred on the training images' mean, and centred on shazam's own mean;
- the seed project's Siamese recipe (``--kind siamese``: |a − b| feature maps, global max pooling,
  dropout, one sigmoid unit, BCE) on the frozen backbone;
- artlens' metric verifier (contrastive head on multi-crop features, blended with the frozen
  similarity by a weight chosen on validation artists): the default (stage statistics with signed
  square root, centred on the training images' mean), and on the backbone's pooled (avg) features
  centred and not centred (the recipes before session 8 and 7); the centred ones also adapted to
  shazam_7artists as ``verify --background`` does (centred on shazam's own mean feature; no labels).

``shazam_7artists`` is never trained on: all seven painters are unseen. Balanced pairs: every
positive pair (or 20 000 at most) and as many random negatives. Anchors: Painter by Numbers winner
AUC 0.929 (0.942 seen / 0.825 unseen); the seed's Siamese 67.45 % validation accuracy.

    python benchmarks/bench_verification.py --unseen-artists 6 --val-artists 4
    python benchmarks/bench_verification.py --model src/artlens/paintings/weights/verifier_default  # shazam only
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "paintings"


def _pairs_auc(codes: np.ndarray, labels: np.ndarray, calibration: dict | None = None) -> dict:
    from artlens.models.calibration import roc_auc, sigmoid
    from artlens.paintings.pairs import balanced_eval_pairs

    pairs = balanced_eval_pairs(list(labels), max_pairs=20000, seed=0)
    s = (codes[pairs[:, 0]] * codes[pairs[:, 1]]).sum(1)
    out = {"pairs": int(len(pairs)), "auc": roc_auc(s, pairs[:, 2])}
    if calibration:
        p = sigmoid(calibration["a"] * s + calibration["b"])
        out["accuracy"] = float(((p > 0.5) == (pairs[:, 2] > 0)).mean())
    return out


def _features(csv_path: Path, cache: Path, n_patches: int = 4, maps: bool = False, extractor=None):
    from artlens.paintings.datasets import load_dataset
    from artlens.paintings.features import FeatureExtractor, cached_features

    ds = load_dataset(csv_path)
    fe = extractor or FeatureExtractor(n_patches=n_patches, return_maps=maps)
    return ds, cached_features(ds.paths(), fe, cache)


def _cache_name(collection: str, pooling: str, signed_sqrt: bool, maps: bool = False) -> str:
    """Feature cache per collection and feature kind (the avg names are the ones used since session 4)."""
    if maps:
        return f"{collection}_maps.npz"
    if pooling == "avg" and not signed_sqrt:
        return f"{collection}_mc.npz"
    return f"{collection}_{pooling}{'_sqrt' if signed_sqrt else ''}.npz"


def shazam_eval(model: str, cache_dir: Path) -> dict:
    """A trained verifier on shazam_7artists (never trained on)."""
    from artlens.paintings.verify import load_verifier

    v = load_verifier(model)
    ds, f = _features(SHARED / "shazam_7artists" / "labels.csv",
                      cache_dir / _cache_name("shazam", v.config.pooling, v.config.signed_sqrt,
                                              maps=v.config.kind == "siamese"), extractor=v.extractor)
    lab = np.asarray(ds.labels("label"))
    if v.config.kind == "siamese":
        from artlens.models.calibration import roc_auc, sigmoid
        from artlens.paintings.pairs import balanced_eval_pairs
        from artlens.train.verifier import pair_scores

        pairs = balanced_eval_pairs(list(lab), max_pairs=20000, seed=0)
        s = pair_scores(v.head, f, pairs, "siamese")
        cal = v.config.calibration
        p = sigmoid(cal["a"] * s + cal["b"])
        acc = float(((p > 0.5) == pairs[:, 2]).mean())
        return {"pairs": len(pairs), "auc": roc_auc(s, pairs[:, 2]), "accuracy": acc}
    out = _pairs_auc(v.codes_from_features(f).numpy(), lab, v.config.calibration)
    if v.config.centre:  # `verify --background shazam`: centred on shazam's own mean (no labels used)
        v.head.set_means(f.global_.mean(0), f.patches.mean(axis=(0, 1)) if f.patches.shape[1] else None)
        out["adapted"] = _pairs_auc(v.codes_from_features(f).numpy(), lab, v.config.calibration)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--unseen-artists", type=int, default=6)
    ap.add_argument("--val-artists", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "artlens-bench-features")
    ap.add_argument("--out", type=Path, default=None, help="Folder for the training runs (default: a temp dir).")
    ap.add_argument("--model", default=None, help="Only evaluate this verifier on shazam_7artists.")
    ap.add_argument("--skip-siamese", action="store_true")
    args = ap.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"shared data not found at {SHARED}")
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    if args.model:
        print(json.dumps({"shazam_7artists": shazam_eval(args.model, args.cache_dir)}, indent=2))
        return

    from artlens.paintings.embedding import l2_normalise
    from artlens.paintings.features import FeatureExtractor, combine_views
    from artlens.train.verifier import VerifierTrainConfig, split_indices, train_verifier

    torch_threads = os.environ.get("OMP_NUM_THREADS", "all")
    people = SHARED / "peopleart_artists" / "labels.csv"
    shazam = SHARED / "shazam_7artists" / "labels.csv"
    t0 = time.time()
    ds, f = _features(people, args.cache_dir / _cache_name("peopleart", "avg", False))
    ds_s, fs = _features(shazam, args.cache_dir / _cache_name("shazam", "avg", False))
    stats = FeatureExtractor(pooling="stats", signed_sqrt=True, n_patches=4)
    _, f2 = _features(people, args.cache_dir / _cache_name("peopleart", "stats", True), extractor=stats)
    _, fs2 = _features(shazam, args.cache_dir / _cache_name("shazam", "stats", True), extractor=stats)
    print(f"features: {time.time() - t0:.0f} s (cached in {args.cache_dir})")
    lab = np.asarray(ds.labels("label"))
    lab_s = np.asarray(ds_s.labels("label"))
    common = {"data": str(people), "label_column": "label", "unseen_artists": args.unseen_artists,
              "val_artists": args.val_artists, "seed": args.seed,
              "trainer": {"max_epochs": args.epochs, "accelerator": "cpu", "patience": 3}}
    split = split_indices(list(lab), VerifierTrainConfig(**common))
    rows = []

    tr = split["train"]
    mg, mp = f2.global_[tr].mean(0), f2.patches[tr].mean((0, 1))  # training images only
    for name, codes, codes_s in (
            ("frozen Lite0 cosine, global view", l2_normalise(f.global_), l2_normalise(fs.global_)),
            ("frozen Lite0 cosine, multi-crop", combine_views(f.global_, f.patches),
             combine_views(fs.global_, fs.patches)),
            ("frozen stats + signed sqrt, multi-crop", combine_views(f2.global_, f2.patches),
             combine_views(fs2.global_, fs2.patches)),
            ("  same, centred on the training images' mean", combine_views(f2.global_ - mg, f2.patches - mp),
             combine_views(fs2.global_ - mg, fs2.patches - mp))):
        rows.append((name, _pairs_auc(codes[split["test_seen"]], lab[split["test_seen"]]),
                     _pairs_auc(codes[split["test_unseen"]], lab[split["test_unseen"]]), _pairs_auc(codes_s, lab_s)))
    rows.append(("  same, centred on shazam's own mean (no labels)", {}, {},
                 _pairs_auc(combine_views(fs2.global_ - fs2.global_.mean(0), fs2.patches - fs2.patches.mean((0, 1))),
                            lab_s)))

    out = args.out or Path(tempfile.mkdtemp(prefix="artlens-verif-"))
    # (name, kind, patches, pooling, signed sqrt, centre)
    runs = [("artlens metric verifier, avg features, not centred", "metric", 4, "avg", False, False),
            ("artlens metric verifier, avg features, centred", "metric", 4, "avg", False, True),
            ("artlens metric verifier (default: stats + sqrt, centred)", "metric", 4, "stats", True, True)]
    if not args.skip_siamese:
        runs.insert(0, ("seed Siamese recipe (|a-b| maps, GMP, BCE)", "siamese", 0, "avg", False, False))
    for name, kind, n_patches, pooling, sqrt, centre in runs:
        run = out / f"{kind}_{pooling}{'_sqrt' if sqrt else ''}{'_centred' if centre else ''}"
        cache = args.cache_dir / _cache_name("peopleart", pooling, sqrt, maps=kind == "siamese")
        t1 = time.time()
        model = {"kind": kind, "n_patches": n_patches, "centre": centre, "pooling": pooling, "signed_sqrt": sqrt}
        result = train_verifier(VerifierTrainConfig(**common, model=model, feature_cache=str(cache)), run)
        ev = result["evaluation"]
        sh = shazam_eval(str(run / "model"), args.cache_dir)
        rows.append((name, ev["test_seen"], ev["test_unseen"], sh))
        if "adapted" in sh:
            rows.append(("  + adapted to shazam (--background: its images)", {}, {}, sh["adapted"]))
        blend = json.loads((run / "model" / "config.json").read_text())["config"].get("blend")
        print(f"{name}: trained in {time.time() - t1:.0f} s; blend {blend}")

    print(f"\npeopleart_artists split (seed {args.seed}): {len(split['train'])} train images, "
          f"{len(split['test_seen'])} test images of seen artists, {args.unseen_artists} unseen artists "
          f"({len(split['test_unseen'])} images), {args.val_artists} validation artists; "
          f"torch threads: {torch_threads}")
    print(f"{'method':58s} {'seen AUC':>9s} {'seen acc':>9s} {'unseen AUC':>11s} {'unseen acc':>11s} "
          f"{'shazam AUC':>11s} {'shazam acc':>11s}")
    for name, se, un, sh in rows:
        def fmt(m: dict, k: str) -> str:
            return f"{m[k]:.3f}" if k in m else "-"

        print(f"{name:58s} {fmt(se, 'auc'):>9s} {fmt(se, 'accuracy'):>9s} {fmt(un, 'auc'):>11s} "
              f"{fmt(un, 'accuracy'):>11s} {fmt(sh, 'auc'):>11s} {fmt(sh, 'accuracy'):>11s}")
    print("targets: AUC >= 0.90 seen, >= 0.80 unseen, accuracy >= 0.85 seen")


if __name__ == "__main__":
    main()
