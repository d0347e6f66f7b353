"""Style and depiction classification: two-branch vs global-only vs patch-only, blends, TTA, the two
feature poolings, and the frozen-feature logistic-regression baseline, with training time per epoch.

Data (../shared/data/paintings):

- ``rasta_wikipaintings_small`` — 25 Wikipaintings styles, 10 images per style and split; heads train
  on ``train``, choose their epoch on ``val`` (early stopping on the validation loss), and are
  scored on ``test``. "refit" rows then retrain a fresh head on train + val for the epoch count
  chosen on val — the same images the baseline fits.
- ``pacs_depiction`` — 4 depictions (art painting, cartoon, photo, sketch), 150 each, no split
  column: seeded stratified split (:func:`artlens.train.splits.holdout_split`, ``by="class"``, seed 0: per
  class round(15 %) to val, round(25 %) to test, the rest to train → 360 / 88 / 152).
- ``kaggle_artimages_128px`` — smoke test only (128-px images), through ``train_classifier``.

Every model sees cached frozen Lite0 features (offline ImageNet weights) of the same views: the
global view (whole image at 224 px), ``--tiles`` grid tiles of 224 px at the image's resolution (long
side ≤ 1024 px) and the mirrored global view, pooled either as the backbone's output (``avg``) or as
channel statistics of the last four block stages (``stats``, the default). The baseline is
scikit-learn's logistic regression on the ``avg`` features of the centre crop (short side 224 px).
Heads are trained with the library's Lightning code (:func:`artlens.train.classify.fit_head`) with
the same epochs, patience, learning rate and seeds for every variant. TTA averages the
probabilities of the global view and of its mirror image.

    nice -n 10 python benchmarks/bench_classify.py --out /tmp/bench_classify.json
    nice -n 10 python benchmarks/bench_classify.py --seeds 3 --skip-pacs --skip-kaggle
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "paintings"
VARIANTS = ("two_branch", "global", "patch")


def _features(csv_path: Path, cache: Path, n_tiles: int, pooling: str, views=("grid", "mirror")) -> tuple:
    """Dataset and cached features per view, under the names ``train_classifier --feature-cache`` uses."""
    from artlens.models.backbones import create_backbone
    from artlens.paintings.datasets import load_dataset
    from artlens.paintings.features import FeatureExtractor, cached_features
    from artlens.train.classify import cache_name

    ds = load_dataset(csv_path)
    model, prep = create_backbone()
    out, seconds = {}, {}
    for view in views:
        n = n_tiles if view == "grid" else 0
        ex = FeatureExtractor(view=view, n_patches=n, max_side=1024, workers=2, model=model, preprocess=prep,
                           pooling=pooling)
        t = time.perf_counter()
        out[view] = cached_features(ds.paths(), ex, cache / cache_name(view, n, pooling))
        seconds[f"{pooling}_{view}{n}"] = time.perf_counter() - t
        assert out[view].paths == ds.paths(), "unreadable images: the benchmark expects all images readable"
    return ds, out, seconds


def _metrics(y_true, probs, classes) -> dict:
    from artlens.paintings.evaluate import classification_metrics

    m = classification_metrics(list(y_true), probs, classes)
    return {"top1": m["top1"], "top3": m.get("top3"), "macro_f1": m["macro_f1"], "n": m["n"]}


def logistic_baseline(x_train, y_train, x_test, c: float = 1.0) -> np.ndarray:
    """Standardised features → multinomial logistic regression (scikit-learn, L2, C = ``c``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(x_train)
    lr = LogisticRegression(C=c, max_iter=3000)
    lr.fit(sc.transform(x_train), y_train)
    return lr.predict_proba(sc.transform(x_test))


class _NullBackbone:
    """Stands in for the backbone when only cached features are classified."""

    num_features = 0

    def eval(self):  # noqa: ANN201
        return self


def train_heads(feats: dict, idx: dict, y: np.ndarray, classes: list[str], variant: str, seed: int, args,
                workdir: Path, pooling: str, refit: bool = False) -> dict:
    """One head on cached features (library code), scored on test with and without TTA; with
    ``refit`` also a fresh head trained on train + val for the epoch count chosen on val."""
    import lightning as L

    from artlens.paintings.classify import Classifier
    from artlens.paintings.features import Features
    from artlens.train.classify import ClassifierTrainConfig, Stage, fit_head

    g, t, m = feats["grid"].global_, feats["grid"].patches, feats["mirror"].global_
    model = {"variant": variant, "n_tiles": t.shape[1], "hidden": args.hidden, "dropout": args.dropout,
             "feature_pooling": pooling}
    cfg = ClassifierTrainConfig(data="-", model=model, tiles_per_step=args.tiles_per_step,
                                label_smoothing=args.label_smoothing,
                                stages=[Stage(unfreeze=0, epochs=args.epochs, lr=args.lr)], batch_size=args.batch_size,
                                weight_decay=args.weight_decay, seed=seed, balance="loss",
                                trainer={"patience": args.patience, "accelerator": "cpu"})
    ccfg = cfg.classifier_config(classes, g.shape[1], ["-"] if pooling == "stats" else [])

    def part(ix):
        return g[ix], t[ix], y[ix]

    L.seed_everything(seed, verbose=False)
    head = ccfg.head()
    run = workdir / f"{pooling}-{variant}-s{seed}"
    info = fit_head(head, part(idx["train"]), part(idx["val"]), cfg, run, alternates=m[idx["train"]])
    out = {"fit": info}
    ix, iv = idx["test"], idx["val"]
    f = Features(paths=[str(i) for i in ix], global_=g[ix], patches=t[ix])
    fm = Features(paths=[str(i) for i in ix], global_=m[ix], patches=t[ix][:, :0])
    fv = Features(paths=[str(i) for i in iv], global_=g[iv], patches=t[iv])

    def evaluate(h, tag: str) -> None:
        clf = Classifier(ccfg, h, backbone=_NullBackbone(), preprocess=None)
        out[f"probs{tag}"] = clf.probabilities(f)
        out[f"probs_tta{tag}"] = clf.probabilities(f, fm if ccfg.uses_global else None)
        out[f"val_probs{tag}"] = clf.probabilities(fv)

    evaluate(head, "")
    if refit:
        epochs = (info["best_epoch"] or 0) + 1
        both = np.concatenate([idx["train"], idx["val"]])
        L.seed_everything(seed, verbose=False)
        head2 = ccfg.head()
        out["refit"] = {**fit_head(head2, part(both), None, cfg, run / "refit",
                                   stage=Stage(unfreeze=0, epochs=epochs, lr=args.lr), alternates=m[both]),
                        "epochs": epochs}
        evaluate(head2, "_refit")
    return out


def epoch_times(ds, split_idx, classes, labels, args, pooling: str) -> dict:
    """Seconds per training epoch on images, over the train split: frozen backbone (decode, views,
    forward of the global view and ``tiles_per_step`` tiles, backward through the head only) and with
    the backbone's last two layer groups trainable; measured on ``args.time_images`` images and
    scaled to the split's size."""
    import torch

    from artlens.models.backbones import create_backbone
    from artlens.models.heads import ImageClassifier
    from artlens.models.pooling import feature_levels, forward_pooled
    from artlens.paintings.classify import ClassifierConfig
    from artlens.train.classify import ImageSet
    from artlens.train.finetune import set_trainable

    model, prep = create_backbone()
    levels = feature_levels(model, pooling)
    n = min(args.time_images, len(split_idx))
    paths = [ds.records[i].path for i in split_idx[:n]]
    y = [classes.index(labels[i]) for i in split_idx[:n]]
    with torch.no_grad():
        dim = int(forward_pooled(model, torch.zeros(1, 3, 224, 224), pooling, levels)[0].shape[1])
    head = ClassifierConfig(classes=classes, feature_dim=dim, n_tiles=args.tiles, hidden=args.hidden).head()
    net = ImageClassifier(model, head, pooling=pooling, levels=levels)
    out = {}
    for unfreeze in (0, 2):
        set_trainable(model, unfreeze)
        net.train()
        images = ImageSet(paths, y, size=prep.input_size, preprocess=prep, max_side=1024, n_tiles=args.tiles,
                          tiles_per_step=args.tiles_per_step, train=True)
        dl = torch.utils.data.DataLoader(images, batch_size=8, num_workers=0)
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
        t = time.perf_counter()
        for views, yy in dl:
            loss = torch.nn.functional.cross_entropy(net(views), torch.as_tensor(yy))
            opt.zero_grad()
            loss.backward()
            opt.step()
        out[f"images, last {unfreeze} groups trainable"] = (time.perf_counter() - t) / n * len(split_idx)
    set_trainable(model, 0)
    return out


def _variant_rows(rows: dict, results: dict, ytest, classes, label: str, refit: bool) -> None:
    for variant, rs in results.items():
        each = [_metrics(ytest, r["probs"], classes) for r in rs]
        rows[f"{label} {variant}, 1 head, mean of {len(rs)} seeds"] = {
            k: float(np.mean([e[k] for e in each])) for k in ("top1", "top3", "macro_f1")}
        rows[f"{label} {variant}, 1 head + TTA, mean of {len(rs)} seeds"] = {
            k: float(np.mean([_metrics(ytest, r["probs_tta"], classes)[k] for r in rs]))
            for k in ("top1", "top3", "macro_f1")}
        rows[f"{label} {variant}, average blend of {len(rs)} seeds + TTA"] = _metrics(
            ytest, np.mean([r["probs_tta"] for r in rs], axis=0), classes)
    if refit:
        for variant, rs in results.items():
            rows[f"{label} {variant}, refit train+val, blend of {len(rs)} seeds + TTA"] = _metrics(
                ytest, np.mean([r["probs_tta_refit"] for r in rs], axis=0), classes)


def rasta(args, cache: Path, workdir: Path) -> dict:
    from artlens.paintings.classify import stack_probabilities
    from artlens.train.finetune import fit_stacker

    csv_path = SHARED / "rasta_wikipaintings_small" / "labels.csv"
    ds, avg, sec_a = _features(csv_path, cache / "rasta", args.tiles, "avg", ("grid", "mirror", "centre"))
    _, stats, sec_s = _features(csv_path, cache / "rasta", args.tiles, "stats")
    labels = ds.labels("style")
    split = np.array(ds.labels("split"))
    classes = sorted(set(labels))
    y = np.array([classes.index(v) for v in labels])
    idx = {k: np.flatnonzero(split == k) for k in ("train", "val", "test")}
    ytest = [labels[i] for i in idx["test"]]
    tv, te = np.concatenate([idx["train"], idx["val"]]), idx["test"]
    rows: dict[str, dict] = {}
    cc = avg["centre"].global_
    rows["LR, avg centre crop, train+val (baseline)"] = _metrics(ytest, logistic_baseline(cc[tv], y[tv], cc[te]),
                                                                 classes)
    rows["LR, avg centre crop, train only"] = _metrics(
        ytest, logistic_baseline(cc[idx["train"]], y[idx["train"]], cc[te]), classes)
    gt = np.hstack([stats["grid"].global_, stats["grid"].patches.mean(axis=1)])
    rows["LR, stats global + tile mean, train+val"] = _metrics(ytest, logistic_baseline(gt[tv], y[tv], gt[te]),
                                                               classes)
    results: dict[str, dict[str, list]] = {"stats": {}, "avg": {}}
    plan = [("stats", v) for v in VARIANTS] + [("avg", "two_branch")]
    for pooling, variant in plan:
        feats = stats if pooling == "stats" else avg
        for seed in range(args.seeds):
            r = train_heads(feats, idx, y, classes, variant, seed, args, workdir, pooling, refit=args.refit)
            results[pooling].setdefault(variant, []).append(r)
            print(f"  rasta {pooling} {variant} seed {seed}: test top-1 "
                  f"{_metrics(ytest, r['probs'], classes)['top1']:.3f} (best epoch {r['fit']['best_epoch']}, "
                  f"{r['fit']['seconds_per_epoch']:.2f} s/epoch)", flush=True)
    for pooling in ("stats", "avg"):
        _variant_rows(rows, results[pooling], ytest, classes, pooling, args.refit)
    sv = results["stats"]
    allm = [r for v in sv.values() for r in v]
    rows[f"stats, average blend of the 3 variants x {args.seeds} seeds + TTA"] = _metrics(
        ytest, np.mean([r["probs_tta"] for r in allm], axis=0), classes)
    members_val = [np.mean([r["val_probs"] for r in sv[v]], axis=0) for v in VARIANTS]
    members_test = [np.mean([r["probs_tta"] for r in sv[v]], axis=0) for v in VARIANTS]
    st = fit_stacker(members_val, y[idx["val"]])
    rows["stats, stacked blend of the 3 variant blends (fitted on val) + TTA"] = _metrics(
        ytest, stack_probabilities(st, members_test), classes)
    if args.refit:
        rows[f"stats, refit train+val, average blend of 3 variants x {args.seeds} seeds + TTA"] = _metrics(
            ytest, np.mean([r["probs_tta_refit"] for r in allm], axis=0), classes)
        everything = allm + results["avg"]["two_branch"]
        rows[f"stats + avg, refit train+val, average blend of all {len(everything)} heads + TTA"] = _metrics(
            ytest, np.mean([r["probs_tta_refit"] for r in everything], axis=0), classes)
    timing = {"feature_extraction_s (748 images; 0 when cached)": {**sec_a, **sec_s},
              "cached_features_epoch_s (249 train images, incl. validation)": {
                  f"{p} {v}": float(np.mean([r["fit"]["seconds_per_epoch"] for r in rs]))
                  for p in results for v, rs in results[p].items()},
              "refit_epochs": {f"{p} {v}": [r.get("refit", {}).get("epochs") for r in rs]
                               for p in results for v, rs in results[p].items()}}
    if args.time_images:
        timing["image_epoch_s (249 train images, no cache)"] = epoch_times(ds, idx["train"], classes, labels, args,
                                                                          "stats")
    return {"rows": rows, "timing": timing, "n_test": len(ytest)}


def pacs(args, cache: Path, workdir: Path) -> dict:
    from artlens.train.splits import holdout_split

    csv_path = SHARED / "pacs_depiction" / "labels.csv"
    ds, avg, sec_a = _features(csv_path, cache / "pacs", 1, "avg", ("grid", "mirror", "centre"))
    _, stats, sec_s = _features(csv_path, cache / "pacs", 1, "stats")
    labels = ds.labels("label")
    classes = sorted(set(labels))
    y = np.array([classes.index(v) for v in labels])
    idx = holdout_split(labels, val_fraction=0.15, test_fraction=0.25, seed=0, by="class")
    ytest = [labels[i] for i in idx["test"]]
    rows = {}
    tv, te = np.concatenate([idx["train"], idx["val"]]), idx["test"]
    cc = avg["centre"].global_
    rows["LR, avg centre crop, train+val (baseline)"] = _metrics(ytest, logistic_baseline(cc[tv], y[tv], cc[te]),
                                                                 classes)
    results: dict[str, dict[str, list]] = {"stats": {}, "avg": {}}
    for pooling, feats in (("stats", stats), ("avg", avg)):
        for variant in ("two_branch", "global"):
            results[pooling][variant] = [train_heads(feats, idx, y, classes, variant, s, args, workdir / "pacs",
                                                     pooling, refit=args.refit) for s in range(args.seeds)]
        _variant_rows(rows, results[pooling], ytest, classes, pooling, args.refit)
    return {"rows": rows, "split": {k: int(len(v)) for k, v in idx.items()}, "n_test": len(ytest),
            "timing": {"feature_extraction_s": {**sec_a, **sec_s}}}


def kaggle(args, cache: Path, workdir: Path) -> dict:
    from artlens.train.classify import ClassifierTrainConfig, Stage, train_classifier

    cfg = ClassifierTrainConfig(data=str(SHARED / "kaggle_artimages_128px" / "labels.csv"), label_column="label",
                                model={"n_tiles": 1}, stages=[Stage(unfreeze=0, epochs=30, lr=1e-3)],
                                trainer={"accelerator": "cpu"}, feature_cache=str(cache / "kaggle"), seed=0)
    r = train_classifier(cfg, workdir / "kaggle-run", report="report.html")
    return {"rows": {"stats two_branch via train_classifier (smoke)": r["evaluation"]["test"]},
            "split": r["split_sizes"]}


def _table(title: str, rows: dict) -> str:
    lines = [f"\n{title}", f"| {'model':<72} | top-1 | top-3 | macro-F1 |", f"|{'-' * 74}|------:|------:|---------:|"]

    def pct(m: dict, k: str) -> str:
        v = m.get(k)
        return "  –  " if v is None else f"{100 * v:5.1f}"

    for name, m in rows.items():
        lines.append(f"| {name:<72} | {pct(m, 'top1')} | {pct(m, 'top3')} | {pct(m, 'macro_f1'):>8} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "artlens-bench-classify")
    ap.add_argument("--out", type=Path, default=None, help="Write all figures as JSON here.")
    ap.add_argument("--tiles", type=int, default=4)
    ap.add_argument("--tiles-per-step", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--weight-decay", type=float, default=1e-2)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--no-refit", dest="refit", action="store_false",
                    help="Skip the heads retrained on train + val (epochs from val).")
    ap.add_argument("--time-images", type=int, default=16, help="Images used to time image-level epochs (0: skip).")
    ap.add_argument("--skip-pacs", action="store_true")
    ap.add_argument("--skip-kaggle", action="store_true")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    from artlens.train.runs import quiet_lightning

    quiet_lightning()
    import tempfile

    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    report = {"args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        report["rasta"] = rasta(args, args.cache, work / "rasta")
        print(_table(f"rasta_wikipaintings_small, style, test split ({report['rasta']['n_test']} images)",
                     report["rasta"]["rows"]))
        print(json.dumps(report["rasta"]["timing"], indent=1))
        if not args.skip_pacs:
            report["pacs"] = pacs(args, args.cache, work)
            print(_table(f"pacs_depiction, seeded stratified split {report['pacs']['split']}", report["pacs"]["rows"]))
        if not args.skip_kaggle:
            report["kaggle"] = kaggle(args, args.cache, work)
            print(_table(f"kaggle_artimages_128px (smoke), split {report['kaggle']['split']}",
                         report["kaggle"]["rows"]))
        report["wall_s"] = time.perf_counter() - t0
    print(f"\ntotal {report['wall_s']:.0f} s")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
