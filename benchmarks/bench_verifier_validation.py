"""Issue 21, deliverable 3: a verifier recipe against the shipped default on validation artists only.

The candidate recipe is ``artlens paintings train-verifier`` on ``peopleart_artists`` (29 artists) plus
the ``rasta_wikipaintings_small`` artists with 5-12 images that peopleart does not have
(``--extra-data ... --extra-min-images 5 --extra-max-images 12``), ``--val-artists 9`` of those held
out of training to choose the blend and calibrate, their pairs centred on their own images' mean (the
trainer's defaults), ``--epochs 8``. It runs here through the same ``VerifierTrainConfig`` and
:func:`~artlens.train.verifier.train_verifier` the CLI builds, on cached features.

For each split seed: the candidate's AUC on its validation artists' pairs (blend chosen on them, so
slightly optimistic) beside the shipped default's on the very same pairs, scored the same way, at its
own blend (0.4) and at 0 / 0.2 / 1. ``--no-extra`` trains on peopleart only with the same validation
artists (the other RASTA artists held out, untrained): what the blend rule alone gives.

Nothing here touches ``shazam_7artists`` or the RASTA artists with 13+ images (measuring only:
``benchmarks/bench_attribution.py --model RUN/model``).

    python benchmarks/bench_verifier_validation.py --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "paintings"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--val-artists", type=int, default=9)
    ap.add_argument("--no-extra", action="store_true", help="Also train on peopleart only, same validation artists.")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "artlens-verifier-validation")
    args = ap.parse_args()
    from artlens.models.calibration import roc_auc
    from artlens.paintings.features import Features, cached_features
    from artlens.paintings.pairs import balanced_eval_pairs
    from artlens.paintings.verify import load_verifier, verifier_extractor
    from artlens.train.verifier import VerifierTrainConfig, pair_scores, train_verifier, training_images

    base = dict(
        data=str(SHARED / "peopleart_artists" / "labels.csv"),
        label_column="label",
        extra_data=[
            {
                "data": str(SHARED / "rasta_wikipaintings_small" / "labels.csv"),
                "label_column": "artist",
                "min_images": 5,
                "max_images": 12,
            }
        ],
        val_artists=args.val_artists,
        feature_cache=str(args.work / "features.npz"),
        trainer={"max_epochs": args.epochs, "accelerator": "cpu"},
    )
    cfg0 = VerifierTrainConfig(**base)
    paths, labels, source = training_images(cfg0)
    extra = {a for a, s in zip(labels, source, strict=True) if s != cfg0.data}
    f = cached_features(paths, verifier_extractor(cfg0.verifier_config(), workers=2), args.work / "features.npz")
    if len(f.paths) != len(paths):
        raise SystemExit(f"{len(paths) - len(f.paths)} images could not be read")
    lab = np.asarray(labels)
    shipped = load_verifier()
    results = []
    for seed in args.seeds:
        run = args.work / f"extra_seed{seed}"
        r = train_verifier(VerifierTrainConfig(**base, seed=seed), run)
        val = json.loads((run / "evaluation.json").read_text())["artists"]["val_unseen"]
        sel = np.flatnonzero(np.isin(lab, val))
        fv = Features(paths=[f.paths[i] for i in sel], global_=f.global_[sel], patches=f.patches[sel])
        pairs = balanced_eval_pairs(list(lab[sel]), max_pairs=cfg0.val_pairs, seed=seed)  # the trainer's pairs
        row = {
            "seed": seed,
            "val_artists": val,
            "pairs": int(len(pairs)),
            "candidate": {
                "blend": json.loads((run / "model" / "config.json").read_text())["config"]["blend"],
                "auc": r["evaluation"]["val_unseen"]["auc"],
            },
            "shipped_by_blend": {
                w: roc_auc(pair_scores(shipped.head, fv, pairs, "metric", w, adapt=True), pairs[:, 2])
                for w in (0.0, 0.2, shipped.config.blend, 1.0)
            },
        }
        if args.no_extra:
            held = sorted(extra - set(val))
            r2 = train_verifier(VerifierTrainConfig(**base, seed=seed, unseen=held), args.work / f"noextra_seed{seed}")
            row["peopleart_only"] = {
                "auc": r2["evaluation"]["val_unseen"]["auc"],  # blend chosen on them too
                "blend_table": r2["evaluation"].get("blend_auc_on_validation"),
            }
        results.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
