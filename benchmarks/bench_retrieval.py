"""Retrieval quality (issue 5): mAP@10 of same-artist and same-style search, per embedder, and the
effect of influence-graph re-ranking.

Collections (``../shared/data/paintings``):

- ``peopleart_artists``: 1 328 images of 29 artists; relevance = same artist (column ``label``), and
  same style (column ``style``) for the re-ranking table;
- ``rasta_wikipaintings_small``: 748 images of 25 styles; relevance = same style (column ``style``).

Every image is a query once against the rest of its collection (exact cosine search, the query left
out; :func:`artlens.paintings.search.mean_average_precision_at_k`). Embedders:

- frozen EfficientNet-Lite0, global view only (``lite0-global``: the whole image at 224 px);
- frozen Lite0 multi-crop (``lite0``: global view + mean of 4 full-resolution patches);
- DAE and SWAE codes (:mod:`artlens.paintings.encoders`, 128-d by default) on the multi-crop features,
  trained (``artlens.train.encoders.train_encoder``, the code ``artlens paintings train-encoder`` runs)
  without labels on the same collection (unsupervised, transductive, as the seed project did), and
  trained on the *other* collection (does the code transfer?);
- the training-free colour + gradient-orientation histogram (``colour-histogram``).

Influence re-ranking (peopleart only; :func:`artlens.paintings.influence.rerank`, the seed
project's rule ``s · (1 + w / d)`` on the top 100 by cosine, same artist counted as d = 0.5, repeats
of an artist damped × 0.8): with the hand-made graph ``benchmarks/data/peopleart_influence.csv``
(an approximation for benchmarking only: 14 links among 17 of the 29 artists), at w = 1.0 and 0.5, and
two controls: the same graph with its links removed (only the same-artist factor acts) and w = 1.0
without repeat damping. The query's artist is taken from its label, as ``artlens search`` does for an
indexed image; the same-artist factor therefore uses the label that same-artist relevance is judged
by, so "re-ranked" same-artist numbers are not a fair comparison with plain search: the control
separates what the links do from what the label does.

Frozen features are cached (``--cache-dir``, default ``$TMPDIR/artlens-bench-features``, shared with
``bench_verification.py``: ``peopleart_mc.npz``, ``rasta_mc.npz``), so a rerun takes minutes.

    nice -n 10 python benchmarks/bench_retrieval.py [--epochs 60] [--code-dim 128] [--cache-dir DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "paintings"
INFLUENCE_CSV = Path(__file__).resolve().parent / "data" / "peopleart_influence.csv"
COLLECTIONS = {
    "peopleart": (SHARED / "peopleart_artists" / "labels.csv", "label"),
    "rasta": (SHARED / "rasta_wikipaintings_small" / "labels.csv", "style"),
}


def load(name: str, cache_dir: Path):
    """``(dataset, multi-crop Features)`` of a collection, features cached in ``cache_dir/<name>_mc.npz``."""
    from artlens.paintings.datasets import load_dataset
    from artlens.paintings.features import FeatureExtractor, cached_features

    ds = load_dataset(COLLECTIONS[name][0])
    f = cached_features(ds.paths(), FeatureExtractor(n_patches=4), cache_dir / f"{name}_mc.npz")
    if f.failures:
        warnings.warn(f"{name}: {len(f.failures)} unreadable images left out", stacklevel=1)
    return ds, f


def labels_of(ds, f, column: str) -> list[str | None]:
    """Labels of the images that have features, in feature order."""
    by_path = dict(zip(ds.paths(), ds.labels(column), strict=True))
    return [by_path[p] or None for p in f.paths]


def colour_histograms(paths: list[str], cache: Path) -> np.ndarray:
    """Colour-histogram vectors, cached in an ``.npz`` keyed by the paths, their sizes and mtimes and the config."""
    from artlens.paintings.embedders import ColourHistogramEmbedder

    emb = ColourHistogramEmbedder()
    key = json.dumps({"config": emb.config, "files": [(p, os.path.getsize(p), os.path.getmtime(p)) for p in paths]})
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["key"]) == key:
                return z["vectors"]
    batch = emb.embed_paths(paths)
    if batch.failures:
        raise SystemExit(f"colour histogram: {len(batch.failures)} unreadable images (first: {batch.failures[0]})")
    np.savez(cache, key=np.array(key), vectors=batch.vectors)
    return batch.vectors


def train(kind: str, name: str, cache_dir: Path, out: Path, args: argparse.Namespace):
    """Train a DAE / SWAE on a collection's cached features (no labels used); returns the model and seconds."""
    from artlens.paintings.encoders import load_autoencoder
    from artlens.train.encoders import EncoderTrainConfig, train_encoder

    cfg = EncoderTrainConfig(data=str(COLLECTIONS[name][0]), model={"kind": kind, "code_dim": args.code_dim},
                             seed=args.seed, trainer={"max_epochs": args.epochs, "accelerator": "cpu"},
                             label_column=COLLECTIONS[name][1],
                             feature_cache=str(cache_dir / f"{name}_mc.npz"))
    t0 = time.perf_counter()
    result = train_encoder(cfg, out / f"{kind}-{name}")
    model, _ = load_autoencoder(result["model"])
    return model, time.perf_counter() - t0, result["evaluation"]["epochs"] + 1


def reranked_map(vectors: np.ndarray, artists: list[str], relevance: list[list[str | None]], graph, weight: float,
                 damping: float, k: int = 10, top: int = 100) -> list[float]:
    """mAP@k of each relevance labelling after re-ranking every query's top ``top`` by the influence graph
    (``graph=None``: plain cosine order)."""
    import faiss

    from artlens.paintings.embedding import l2_normalise
    from artlens.paintings.influence import rerank
    from artlens.paintings.search import Hit, average_precision_at_k

    x = np.ascontiguousarray(l2_normalise(vectors))
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    scores, ids = index.search(x, top + 1)
    counts = [{} for _ in relevance]
    for c, labels in zip(counts, relevance, strict=True):
        for y in labels:
            if y is not None:
                c[y] = c.get(y, 0) + 1
    aps: list[list[float]] = [[] for _ in relevance]
    for q in range(len(x)):
        hits = [Hit(str(j), float(s), 0, {"artist": artists[j]}) for s, j in zip(scores[q], ids[q], strict=True)
                if j >= 0 and j != q][:top]
        for r, h in enumerate(hits):
            h.rank = r + 1
        if graph is not None:
            hits = rerank(hits, artists[q], graph, weight=weight, top=top, k=k, repeat_damping=damping)
        got = [int(h.path) for h in hits[:k]]
        for a, labels, c in zip(aps, relevance, counts, strict=True):
            y = labels[q]
            if y is None or c[y] < 2:
                continue
            a.append(average_precision_at_k([labels[j] == y for j in got], k, c[y] - 1))
    return [float(np.mean(a)) for a in aps]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=60, help="most autoencoder epochs (early stopping)")
    ap.add_argument("--code-dim", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "artlens-bench-features")
    ap.add_argument("--out", type=Path, default=None, help="folder for the autoencoder runs (default: a temp dir)")
    ap.add_argument("--json-out", type=Path, default=None, help="also write the numbers as JSON")
    args = ap.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"shared data not found at {SHARED}")
    warnings.filterwarnings("ignore", category=UserWarning)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    out = args.out or Path(tempfile.mkdtemp(prefix="artlens-retrieval-"))
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty; pass another --out")

    from artlens.paintings.embedding import l2_normalise
    from artlens.paintings.encoders import encode_vectors, feature_vectors
    from artlens.paintings.features import combine_views
    from artlens.paintings.influence import InfluenceGraph
    from artlens.paintings.search import mean_average_precision_at_k

    t_all = time.perf_counter()
    data = {}
    for name in COLLECTIONS:
        t0 = time.perf_counter()
        ds, f = load(name, args.cache_dir)
        hist = colour_histograms(f.paths, args.cache_dir / f"{name}_colourhist.npz")
        data[name] = (ds, f, hist)
        print(f"{name}: {len(f.paths)} images, features and histograms in {time.perf_counter() - t0:.0f} s", flush=True)

    models, notes = {}, {}
    for kind in ("dae", "swae"):
        for name in COLLECTIONS:
            models[kind, name], secs, epochs = train(kind, name, args.cache_dir, out, args)
            notes[kind, name] = f"{epochs} epochs, {secs:.0f} s"
            print(f"{kind} on {name}: {notes[kind, name]}", flush=True)

    other = {"peopleart": "rasta", "rasta": "peopleart"}
    rows: dict[str, dict[str, float]] = {}
    vectors: dict[str, dict[str, np.ndarray]] = {}
    for name, (ds, f, hist) in data.items():
        x = feature_vectors(f.global_, f.patches)
        methods = {
            "frozen Lite0, global view (lite0-global)": l2_normalise(f.global_),
            "frozen Lite0, multi-crop (lite0)": combine_views(f.global_, f.patches),
            f"DAE codes, {args.code_dim}-d, trained on this collection": encode_vectors(models["dae", name], x),
            f"SWAE codes, {args.code_dim}-d, trained on this collection": encode_vectors(models["swae", name], x),
            f"DAE codes, {args.code_dim}-d, trained on the other collection": encode_vectors(models["dae", other[name]],
                                                                                           x),
            f"SWAE codes, {args.code_dim}-d, trained on the other collection":
                encode_vectors(models["swae", other[name]], x),
            "colour histogram (colour-histogram)": hist,
        }
        vectors[name] = methods
        ys = labels_of(ds, f, COLLECTIONS[name][1])
        for m, v in methods.items():
            rows.setdefault(m, {})[name] = mean_average_precision_at_k(v, ys, k=10)

    print("\n## mAP@10, every image a query against the rest of its collection (exact cosine search)\n")
    print("| embedder | peopleart: same artist (1 328 images, 29 artists) | rasta small: same style "
          "(748 images, 25 styles) |")
    print("|---|---|---|")
    for m, r in rows.items():
        print(f"| {m} | {r['peopleart']:.3f} | {r['rasta']:.3f} |")
    print("\nautoencoder training (CPU, early stopping on validation loss): "
          + "; ".join(f"{k} on {n}: {v}" for (k, n), v in notes.items()))

    graph = InfluenceGraph.load(INFLUENCE_CSV)
    nolinks = InfluenceGraph()
    for a in graph.artists:
        nolinks.add_edge(a, a)
    ds, f, _ = data["peopleart"]
    artists = labels_of(ds, f, "label")
    styles = labels_of(ds, f, "style")
    settings = [("off (cosine order)", None, 0.0, 1.0), ("w = 1.0", graph, 1.0, 0.8), ("w = 0.5", graph, 0.5, 0.8),
                ("control: w = 1.0, links removed", nolinks, 1.0, 0.8),
                ("control: w = 1.0, no repeat damping", graph, 1.0, 1.0)]
    rr: dict[str, dict[str, tuple[float, float]]] = {}
    for m, v in vectors["peopleart"].items():
        for label, g, w, d in settings:
            rr.setdefault(m, {})[label] = tuple(reranked_map(v, artists, [artists, styles], g, w, d))
        assert abs(rr[m][settings[0][0]][0] - rows[m]["peopleart"]) < 1e-6  # same search, same metric
    print(f"\n## peopleart: influence re-ranking (top 100 by cosine re-ranked, 10 kept; graph {INFLUENCE_CSV.name}, "
          f"{len(graph)} artists, {graph.graph.number_of_edges()} links)\n")
    for j, what in enumerate(("same artist", "same style (peopleart's style column)")):
        print(f"mAP@10, relevance = {what}\n")
        print("| embedder | " + " | ".join(s[0] for s in settings) + " |")
        print("|---" * (len(settings) + 1) + "|")
        for m, cols in rr.items():
            print(f"| {m} | " + " | ".join(f"{cols[s[0]][j]:.3f}" for s in settings) + " |")
        print()

    if args.json_out:
        args.json_out.write_text(json.dumps({"map_at_10": rows, "rerank_peopleart": {
            m: {k: {"artist": v[0], "style": v[1]} for k, v in c.items()} for m, c in rr.items()},
            "training": {f"{k}/{n}": v for (k, n), v in notes.items()}}, indent=2))
    print(f"total {time.perf_counter() - t_all:.0f} s; runs in {out}")
    print("command: python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]]))


if __name__ == "__main__":
    main()
