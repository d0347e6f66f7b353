"""Choosing `classify train` settings without touching test: a two-fold check on train and val.

`classify train` early-stops each head on ``val`` and then refits it on train + val, so ``val`` alone
(250 RASTA images) is the only place a setting can be chosen, and one val figure moves by about
±2 points with the heads' seeds. This benchmark halves that noise: every setting is scored twice,
heads trained on ``train`` and scored on ``val`` (fold 0, the figure `classify evaluate --split val`
gives for heads trained with ``--no-refit-train-val``), then the other way round (fold 1), and the two
are averaged (499 images scored). ``test`` is never read.

The blend is what `classify train` builds by default: ``--heads`` heads of each of the three variants
(two-branch, global-only, patch-only) with seeds ``seed0, seed0 + 1, ...``, each early-stopped on the
other fold by :func:`artlens.train.classify.fit_head` (the code training uses), averaged, with 8
crops of the whole image and the mirrored global view as further global views in training and as
TTA (``crops=K``: another number, ``crops=0`` the defaults before 2026-12-08).

Features are read from a `classify train` feature cache (``--feature-cache DIR`` of a run with the
default backbone: ``features_stats_grid4.npz``, ``features_stats_mirror0.npz`` and
``features_stats_crops8.npz``, extracted here when missing). Settings are
``ClassifierTrainConfig`` fields, ``model.`` fields of its classifier config, or two feature changes
made here: ``xform=ssqrt`` (signed square root of every feature), ``global_size=PX`` (the global
view, and its mirror, extracted again at PX instead of the backbone's input size) and ``stages=N``
(every view extracted again with the statistics of the backbone's last N block stages instead of 4);
both are cached in the feature folder. ``crops=K`` uses ``K`` crops of the whole image as further
global views, as `classify train --crops K` does (augmentation and test-time augmentation; cached as
`classify train` caches them, so a run with the same ``--feature-cache`` reuses them).

Before 2026-12-08 the base had no crops: the figures of BENCHMARKS.md's earlier screening row are
``crops=0`` runs.

    python benchmarks/bench_classify_twofold.py --cache DIR --name base
    python benchmarks/bench_classify_twofold.py --cache DIR --name ls02 label_smoothing=0.2
    python benchmarks/bench_classify_twofold.py --cache DIR --name g448 global_size=448
    python benchmarks/bench_classify_twofold.py --cache DIR --name stages7 stages=7
    python benchmarks/bench_classify_twofold.py --cache DIR --name mirror_only crops=0
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "paintings"
VARIANTS = ("two_branch", "global", "patch")


def _extract(ex: object, paths: list[str]) -> object:
    """``ex.extract(paths)``, stopping where an image could not be read (rows would no longer line up)."""
    f = ex.extract(paths)  # type: ignore[attr-defined]
    if f.paths != paths:
        raise SystemExit(f"some images could not be read: {f.failures[:3]}")
    return f


def _global_features(paths: list[str], size: int, backbone: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Stats features of the whole image resized to ``size`` px, and of its mirror image (cached)."""
    from artlens.paintings.features import FeatureExtractor

    cache = folder / f"twofold_global{size}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            if [str(p) for p in z["paths"]] == paths:
                return z["global_"], z["mirror"]
    out = {}
    for view in ("grid", "mirror"):
        ex = FeatureExtractor(backbone, n_patches=0, pooling="stats", view=view, workers=2, batch_size=8)
        ex.size = size  # the global view is the whole image squashed to size x size px
        out[view] = _extract(ex, paths).global_
    np.savez(cache, paths=np.array(paths), global_=out["grid"], mirror=out["mirror"])
    return out["grid"], out["mirror"]


def _stage_features(paths: list[str], n: int, backbone: str, folder: Path) -> Path:
    """A feature folder like `classify train`'s, with the statistics of the last ``n`` block stages."""
    from artlens.paintings.features import FeatureExtractor

    out = folder / f"twofold_stages{n}"
    out.mkdir(exist_ok=True)
    for view, tiles, name in (("grid", 4, "features_stats_grid4.npz"), ("mirror", 0, "features_stats_mirror0.npz")):
        if (out / name).is_file():
            continue
        kw = dict(n_patches=tiles, pooling="stats", view=view, workers=2, batch_size=8)
        ex = FeatureExtractor(backbone, **kw)
        blocks = len(ex.model.blocks)
        ex = FeatureExtractor(backbone, model=ex.model, preprocess=ex.preprocess,
                              levels=[f"blocks.{i}" for i in range(max(0, blocks - n), blocks)], **kw)
        f = _extract(ex, paths)
        np.savez(out / name, paths=np.array(paths), global_=f.global_, patches=f.patches)
    return out


def _crop_features(paths: list[str], k: int, backbone: str, folder: Path) -> np.ndarray:
    """``(n, k, D)`` stats features of the ``k`` crops `classify train --crops k` extracts (its cache)."""
    from artlens.paintings.features import FeatureExtractor, cached_features
    from artlens.train.classify import cache_name

    ex = FeatureExtractor(backbone, view="crops", n_patches=k, pooling="stats", workers=2)
    f = cached_features(paths, ex, folder / cache_name("crops", k, "stats"))
    if f.paths != paths:
        raise SystemExit(f"some images could not be read: {f.failures[:3]}")
    return f.patches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, required=True, help="feature-cache folder of a `classify train` run")
    ap.add_argument("--data", type=Path, default=SHARED / "rasta_wikipaintings_small" / "labels.csv")
    ap.add_argument("--label", default="style")
    ap.add_argument("--name", default="run", help="name of this setting in the output")
    ap.add_argument("--heads", type=int, default=5, help="heads per variant (the `classify train` default)")
    ap.add_argument("--seed0", type=int, default=0)
    ap.add_argument("--backbone", default="tf_efficientnet_lite2", help="backbone of the cached features")
    ap.add_argument("--json", type=Path, help="append the result as one JSON line to this file")
    ap.add_argument("settings", nargs="*", help="KEY=JSON_VALUE: a ClassifierTrainConfig field, model.FIELD, "
                                                "xform=ssqrt, global_size=PX, stages=N or crops=K")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    from artlens.paintings.classify import Classifier, softmax
    from artlens.paintings.datasets import load_dataset
    from artlens.train.classify import ClassifierTrainConfig, _train_extra_head, _variant_config

    over = dict(s.split("=", 1) for s in a.settings)
    xform = over.pop("xform", "")
    global_size = int(over.pop("global_size", 0))
    stages = int(over.pop("stages", 0))
    n_crops = int(over.pop("crops", 8))  # the `classify train` default
    cache = a.cache
    if stages:
        with np.load(a.cache / "features_stats_grid4.npz") as z:
            cache = _stage_features([str(p) for p in z["paths"]], stages, a.backbone, a.cache)
    with np.load(cache / "features_stats_grid4.npz") as z, np.load(cache / "features_stats_mirror0.npz") as zm:
        paths = [str(p) for p in z["paths"]]
        g, tiles, mirror = z["global_"], z["patches"], zm["global_"]
    if global_size:
        g, mirror = _global_features(paths, global_size, a.backbone, a.cache)
    if xform == "ssqrt":
        g, tiles, mirror = (np.sign(x) * np.sqrt(np.abs(x)) for x in (g, tiles, mirror))
    elif xform:
        raise SystemExit(f"unknown xform {xform!r}")
    crops = _crop_features(paths, n_crops, a.backbone, a.cache) if n_crops else np.zeros((len(paths), 0, g.shape[1]))
    others = np.concatenate([mirror[:, None], crops], axis=1)  # the other global views, mirror first
    row = {p: i for i, p in enumerate(paths)}
    ds = load_dataset(str(a.data), label_column=a.label)
    labels, splits, dpaths = ds.labels(a.label), ds.labels("split"), ds.paths()
    classes = sorted(set(labels))
    idx = {s: np.array([row[dpaths[i]] for i in range(len(dpaths)) if splits[i] == s and dpaths[i] in row])
           for s in ("train", "val")}
    y = {s: np.array([classes.index(labels[i]) for i in range(len(dpaths)) if splits[i] == s and dpaths[i] in row])
         for s in ("train", "val")}
    model = {k[6:]: json.loads(v) for k, v in over.items() if k.startswith("model.")}
    top = {k: json.loads(v) for k, v in over.items() if not k.startswith("model.")}
    cfg = ClassifierTrainConfig(data=str(a.data), label_column=a.label, model=model, **top)
    ccfg = cfg.classifier_config(classes, g.shape[1], ["cached"])
    ccfg.crops = n_crops
    result: dict = {"name": a.name, "settings": a.settings, "heads_per_variant": a.heads, "seed0": a.seed0}
    t0 = time.perf_counter()
    work = Path(a.cache) / "twofold_runs" / a.name
    for fold, (fit_on, score_on) in enumerate((("train", "val"), ("val", "train"))):
        tr = (g[idx[fit_on]], tiles[idx[fit_on]], y[fit_on])
        va = (g[idx[score_on]], tiles[idx[score_on]], y[score_on])
        probs = []
        for v in VARIANTS:
            vc = _variant_config(ccfg, v)

            def view(d: tuple, vc=vc) -> tuple:
                return d if vc.uses_tiles else (d[0], d[1][:, :0], d[2])

            for j in range(a.heads):
                head, _ = _train_extra_head(vc, cfg.model_copy(update={"seed": a.seed0 + j}), view(tr), view(va), None,
                                            work / f"fold{fold}" / f"{v}{j}",
                                            others[idx[fit_on]] if vc.uses_global else None, None)
                clf = Classifier(vc, head)
                t = va[1] if vc.uses_tiles else None
                p = softmax(clf.logits(va[0], t))
                if vc.uses_global:  # TTA: the mirrored global view (and the crops), tiles shared
                    p = clf.augmented(va[0], t, mirror[idx[score_on]], crops[idx[score_on]])
                probs.append(p)
        blend = np.mean(probs, axis=0)
        result[f"fold{fold}"] = {"fit_on": fit_on, "scored_on": score_on, "images": int(len(va[2])),
                                 "top1": float((blend.argmax(1) == va[2]).mean()),
                                 "single_head_top1_mean": float(np.mean([(p.argmax(1) == va[2]).mean()
                                                                         for p in probs]))}
    result["top1_mean"] = float(np.mean([result["fold0"]["top1"], result["fold1"]["top1"]]))
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result))
    if a.json:
        with open(a.json, "a") as fh:
            fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
