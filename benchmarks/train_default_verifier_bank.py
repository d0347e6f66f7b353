"""Build ``paintings/weights/verifier_default/bank.npz``: the shipped verifier's typicality bank.

The bank holds backbone features (channel statistics of four stages, float16; no pixels) of at most
``--per-artist`` training images per artist of ``peopleart_artists``, chosen evenly from the images
the shipped verifier was trained on (its own split: 5 validation artists, seed 0). The typicality
thresholds are the 95 % / 99.5 % quantiles of the k-NN code distance of the images of the 5
validation artists (never trained on) to the bank. The bank also serves as the default impostors of
``artlens verify Q --reference DIR`` with a single reference folder.

    python benchmarks/train_default_verifier_bank.py
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
    ap.add_argument("--per-artist", type=int, default=12)
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "artlens-bench-features")
    ap.add_argument("--out", type=Path, default=None, help="Default: beside the shipped verifier's weights.")
    args = ap.parse_args()
    from artlens.models import pretrained_path
    from artlens.paintings.datasets import load_dataset
    from artlens.paintings.features import cached_features
    from artlens.paintings.typicality import build_bank
    from artlens.paintings.verify import BANK, DEFAULT_VERIFIER, load_verifier
    from artlens.train.verifier import VerifierTrainConfig, split_indices

    folder = pretrained_path(DEFAULT_VERIFIER)
    doc = json.loads((folder / "config.json").read_text())
    trained = doc["trained_on"]
    v = load_verifier()
    csv = SHARED / "peopleart_artists" / "labels.csv"
    ds = load_dataset(csv)
    f = cached_features(ds.paths(), v.extractor, args.cache_dir / "peopleart_stats_sqrt.npz")
    if len(f.paths) != len(ds):
        raise SystemExit("some training images could not be read")
    labels = list(ds.labels("label"))
    split = split_indices(labels, VerifierTrainConfig(data=str(csv), label_column="label",
                                                      val_artists=len(trained.get("val_artists", [])) or 5,
                                                      unseen_artists=0, seed=0))
    sizes = {k: len(v_) for k, v_ in split.items() if hasattr(v_, "__len__")}
    for key in ("train", "val_unseen"):
        if sizes.get(key) != trained["images"].get(key):
            raise SystemExit(f"split {key}: {sizes.get(key)} images, the model card says {trained['images'].get(key)}")
    train = np.asarray(split["train"])
    lab = np.asarray(labels)
    chosen = []
    for a in sorted(set(lab[train])):
        idx = train[lab[train] == a]
        chosen += list(idx[np.linspace(0, len(idx) - 1, min(args.per_artist, len(idx))).round().astype(int)])
    out = args.out or folder / BANK
    meta = build_bank(v, f.global_, f.patches.mean(1), labels, np.asarray(sorted(set(chosen))),
                      np.asarray(split["val_unseen"]), out,
                      source=f"peopleart_artists (training images of the shipped verifier, <= {args.per_artist} "
                             "per artist)")
    print(json.dumps({k: meta[k] for k in ("threshold", "limit", "held_out_images", "k")}), out)


if __name__ == "__main__":
    main()
