"""How many photographic directions should a verifier project out while it has no collection to adapt to?

Development data only (issue 21: choose on development artists, measure once on held-out collections):

- **Fit**: 160 images of ``peopleart_artists``' training artists (its 5 validation artists left out),
  each photographed again 3 times by :func:`artlens.paintings.nuisance.photograph_again` (seeded); the
  directions are the top ``k`` right singular vectors of the feature changes
  (:func:`~artlens.paintings.nuisance.nuisance_basis`), global view and patch mean apart.
- **Measure**: the 19 RASTA calibration artists (5-12 images, none of peopleart's; the pairs the
  shipped calibration is fitted on) as they are, and as three simulated collections photographed
  otherwise, each one change applied to every image: ``varnish`` (a warm, darker curve), ``flat_jpeg``
  (less contrast and colour, half resolution, JPEG 55) and ``dark_blur`` (blur 1.2 px, gamma 1.35).
  Each ``k`` gets its unadapted Platt fit on the pairs as they are (as ``train-verifier
  --calibrate-on`` fits it), then AUC, different-artist pairs at ≥ 0.9 and ECE on every set, not
  adapted (the case the projection is for) and adapted to the set's own images (projection off).
  The rule: the ``k`` with the lowest mean ECE over the four sets, not adapted.
- ``--model DIR``: the head (and its training means) to score with; default the shipped verifier,
  whose own projection is switched off here so that each ``k`` is fitted the same way.

    python benchmarks/bench_verifier_nuisance.py --cache DIR [--k 0 4 8 16 32 64] [--json OUT]

Features are cached in ``--cache`` (about 1 200 extractions the first time: 10-20 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "paintings"


def varnish(im: Image.Image) -> Image.Image:
    a = np.asarray(im.convert("RGB"), float) / 255
    a = 0.85 * (a**1.2 * np.array([1.05, 0.97, 0.78])) + 0.05
    return Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8))


def flat_jpeg(im: Image.Image) -> Image.Image:
    im = ImageEnhance.Color(ImageEnhance.Contrast(im.convert("RGB")).enhance(0.8)).enhance(0.75)
    w, h = im.size
    bilinear = Image.Resampling.BILINEAR
    im = im.resize((max(1, w // 2), max(1, h // 2)), bilinear).resize((w, h), bilinear)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=55)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def dark_blur(im: Image.Image) -> Image.Image:
    a = np.asarray(im.convert("RGB").filter(ImageFilter.GaussianBlur(1.2)), float) / 255
    a = (a**1.35) * np.array([0.95, 0.95, 1.0])
    return Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8))


SHIFTS = {"varnish": varnish, "flat_jpeg": flat_jpeg, "dark_blur": dark_blur}


def rendered(paths: list[str], folder: Path, fn) -> list[str]:  # noqa: ANN001
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, p in enumerate(paths):
        q = folder / f"{i:04d}.png"
        if not q.exists():
            fn(Image.open(p), i).save(q)
        out.append(str(q))
    return out


def fit_images(model_config: dict, n: int = 160, seed: int = 0) -> list[str]:
    val = set(model_config["trained_on"]["val_artists"])
    rows = [r for r in csv.DictReader(open(SHARED / "peopleart_artists" / "labels.csv")) if r["label"] not in val]
    pick = np.random.default_rng(seed).choice(len(rows), n, replace=False)
    return [str(SHARED / "peopleart_artists" / rows[i]["file"]) for i in pick]


def dev_images() -> tuple[list[str], np.ndarray]:
    seen = {r["label"] for r in csv.DictReader(open(SHARED / "peopleart_artists" / "labels.csv"))}
    rows = [r for r in csv.DictReader(open(SHARED / "rasta_wikipaintings_small" / "labels.csv"))
            if r["artist"] not in seen]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["artist"]] = counts.get(r["artist"], 0) + 1
    rows = [r for r in rows if 5 <= counts[r["artist"]] <= 12]
    return [str(SHARED / "rasta_wikipaintings_small" / r["path"]) for r in rows], np.array([r["artist"] for r in rows])


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    idx = np.minimum((p * bins).astype(int), bins - 1)
    return float(sum((idx == b).mean() * abs(p[idx == b].mean() - y[idx == b].mean()) for b in range(bins)
                     if (idx == b).any()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--model", default=None)
    ap.add_argument("--k", type=int, nargs="+", default=[0, 4, 8, 16, 32, 64])
    ap.add_argument("--views", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from artlens.models.calibration import fit_platt, roc_auc, sigmoid
    from artlens.paintings.nuisance import nuisance_basis, photograph_again
    from artlens.paintings.pairs import balanced_eval_pairs
    from artlens.paintings.verify import load_verifier, metric_codes

    v = load_verifier(args.model)
    v.head.project = False  # each k below is fitted and applied here
    doc = json.loads((Path(v.source) / "config.json").read_text())
    mu_g, mu_p = v.head.mean_global.numpy().copy(), v.head.mean_patch.numpy().copy()
    cache = args.cache
    cache.mkdir(parents=True, exist_ok=True)

    def feats(name: str, paths) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001 (a list, or a function giving it)
        f = cache / f"{name}.npz"
        if not f.exists():
            got = v.extractor.extract(paths() if callable(paths) else paths)
            if got.failures:
                raise SystemExit(f"unreadable: {got.failures[:3]}")
            np.savez(f, g=got.global_, p=got.patches.mean(1))
        z = np.load(f)
        return z["g"], z["p"]

    originals = fit_images(doc)
    fit0 = feats("fit_orig", originals)
    fits = [feats(f"fit{j}", lambda j=j: rendered(originals, cache / f"fit{j}", lambda im, i: photograph_again(
        im, np.random.default_rng([0, j, i])))) for j in range(args.views)]
    paths, labels = dev_images()
    sets = {"orig": feats("dev_orig", paths)}
    for name, fn in SHIFTS.items():
        sets[name] = feats(f"dev_{name}", lambda fn=fn, name=name: rendered(paths, cache / name, lambda im, i: fn(im)))
    pairs = balanced_eval_pairs(list(labels), max_pairs=20000, seed=0)
    i, j, y = pairs[:, 0], pairs[:, 1], pairs[:, 2].astype(float)

    def scores(g, p, bg, bp, mg, mp):  # noqa: ANN001, ANN202
        g2 = mg + (g - mg) - ((g - mg) @ bg) @ bg.T
        p2 = mp + (p - mp) - ((p - mp) @ bp) @ bp.T
        v.head.set_means(mg, mp)
        c = metric_codes(v.head, g2, p2[:, None, :], v.config.blend).numpy()
        return (c[i] * c[j]).sum(1)

    results = {}
    print(f"{len(paths)} images, {len(set(labels))} artists, {len(pairs)} pairs; fit: {len(originals)} images x "
          f"{args.views} views")
    for k in args.k:
        bg = nuisance_basis(np.concatenate([f[0] - fit0[0] for f in fits]), k)
        bp = nuisance_basis(np.concatenate([f[1] - fit0[1] for f in fits]), k)
        row = {}
        # adapted, the projection is off (Verifier.centre_on): the same for every k, so measured once
        for mode in ("not adapted", "adapted") if k == args.k[0] else ("not adapted",):
            raws = {}
            for name, (g, p) in sets.items():
                if mode == "adapted":
                    raws[name] = scores(g, p, bg[:, :0], bp[:, :0], g.mean(0), p.mean(0))
                else:
                    raws[name] = scores(g, p, bg, bp, mu_g, mu_p)
            a, b = fit_platt(raws["orig"], y)
            for name, r in raws.items():
                pr = sigmoid(a * r + b)
                row[f"{mode}/{name}"] = {"auc": round(roc_auc(r, y), 3),
                                         "different_at_0.9": round(float((pr[y == 0] >= 0.9).mean()), 3),
                                         "ece": round(ece(pr, y), 3)}
        results[k] = row
        shifted = [row[f"not adapted/{s}"]["ece"] for s in SHIFTS]
        print(f"k={k:3d} not adapted: " + "; ".join(f"{n} AUC {m['auc']:.3f} >=0.9 {m['different_at_0.9']:.3f} "
                                                    f"ECE {m['ece']:.3f}" for n, m in row.items()
                                                    if n.startswith("not"))
              + f" | mean ECE shifted {np.mean(shifted):.3f}, "
              f"all four {np.mean([*shifted, row['not adapted/orig']['ece']]):.3f}")
    # the rule: the lowest mean ECE over the four sets, not adapted (calibration is what the projection is for)
    best = min(results, key=lambda k: np.mean([m["ece"] for n, m in results[k].items() if n.startswith("not")]))
    print(f"chosen: k = {best}")
    print("adapted (projection off): " + "; ".join(f"{n} AUC {m['auc']:.3f} ECE {m['ece']:.3f}"
                                                   for n, m in results[args.k[0]].items() if n.startswith("adapted")))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
