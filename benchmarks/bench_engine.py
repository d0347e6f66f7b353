"""Batch engine and canvas matching at scale (issue 20).

Part ``threads``: the same ``--plates`` (40) synthetic plates (5 x 5 cm at 100 px/cm, spectral) counted
through :func:`artlens.canvas.threads.batch.count_plates` (what ``artlens threads count FOLDER`` runs) with
``--engine local`` and ``--engine ray`` (a private local Ray cluster, ``num_cpus`` = workers), 1 and 2
workers, each into a fresh output folder, catalog off; wall time including worker start-up, plates/s.

Part ``match``: synthetic collections as in ``bench_fabric.py``'s timing (``synthetic_collection``, rolls in
families of 3 within 0.3 threads/cm, 4 canvases of 5 x 5 cm per roll, non-contiguous cuts) of N canvases for
each N of ``--sizes``, matched by :func:`artlens.canvas.collection.match_collection` (what ``artlens canvas
match`` runs, default comparer: fabric_default, 199 permutations) with

- ``all-pairs``: ``prefilter=None``, 1 worker in process: density alignment on every pair (today's path);
- ``scaled``: the density prefilter (1.0 threads/cm) and ``--workers`` (2) local workers;

wall time (counting, describing, pairs, clusters, figures and report), pairs density-aligned, ROC-AUC of the
same-roll probability, and the share of same-roll pairs the prefilter keeps. ``--all-pairs-sizes`` limits the
slow all-pairs path to some sizes.

Parts ``classify``, ``verify``, ``beneath`` and ``index``: the engine overhead of the other batch commands,
``--items`` (default 24) items each, catalog off, side by side in one run: the *plain* per-item loop of the
library calls the one-input command makes (model loaded once, then one call per item, nothing written but
what the call itself writes) against the resumable batch path (what the command with ``--out`` runs:
content keys, ledgers, ``--engine local`` with 1 and 2 workers, and ``--engine ray`` with 2 workers, a
private local cluster). Wall time includes loading the model (once per worker on the batch path); the runs
take turns ``--repeats`` (2) times and each keeps its best time. CPU time (this process and the local pool's
workers; Ray's actors are not counted) is reported beside the wall time.

- ``classify``: images of 640 x 480 px; a fresh two-branch classifier on ``tf_efficientnet_lite0`` (random
  weights: the same compute as the trained ones, nothing to download), its defaults (4 tiles, max side 1024),
  top 5; plain: ``Classifier.predict([path])`` per image; batch: ``predict_folder``.
- ``verify``: ``--items`` pairs of 2 x ``--items`` distinct images of 512 x 384 px, the shipped verifier,
  centred on the pairs' images (20 or more, as ``verify --pairs`` does); plain: ``Verifier.adapt`` then
  ``verify_pairs(verifier, [pair])`` per pair; batch: ``verify_pairs_batch``.
- ``beneath``: visible / IR pairs of synthetic hidden-layer scenes of 256 px, method ``pixel`` with its
  report; plain: ``compare_views`` per pair; batch: ``compare_pairs``.
- ``index``: images of 640 x 480 px, embedder ``lite0`` (the default), chunks of 8; plain: ``embed_paths``
  per chunk; batch: ``build_index`` (which also writes the Parquet parts, vectors and the FAISS index).

    python benchmarks/bench_engine.py --part threads [--plates 40]
    python benchmarks/bench_engine.py --part match --sizes 50,100,200 --all-pairs-sizes 50 [--json OUT]
    python benchmarks/bench_engine.py --part classify|verify|beneath|index [--items 24] [--configs plain,local1,...]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def bench_threads(args: argparse.Namespace) -> dict:
    from artlens.canvas.threads import SpectralParams
    from artlens.canvas.threads.batch import count_plates
    from artlens.engine import BatchOptions
    from artlens.synth import make_plate, write_plate_tiff

    rng = np.random.default_rng(20)
    out: dict = {"plates": args.plates, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "plates"
        folder.mkdir()
        for k in range(args.plates):
            p = make_plate(height_cm=5.0, width_cm=5.0, px_per_cm=100, horizontal_density=float(rng.uniform(9, 20)),
                           vertical_density=float(rng.uniform(9, 20)), seed=k)
            write_plate_tiff(folder / f"p{k:03d}.tif", p)
        configs = [("local", 1), ("local", 2), ("ray", 2), ("ray", 1)]
        for engine, workers in configs:
            dest = Path(tmp) / f"out-{engine}-{workers}"
            t = time.perf_counter()
            rep = count_plates(folder, dest, SpectralParams(), options=BatchOptions(engine=engine, workers=workers),
                               use_catalog=False)
            dt = time.perf_counter() - t
            assert rep.new == args.plates, rep
            row = {"engine": engine, "workers": workers, "seconds": round(dt, 2),
                   "plates_per_s": round(args.plates / dt, 3)}
            out["runs"].append(row)
            print(f"threads count {args.plates} plates, --engine {engine} --workers {workers}: {dt:6.1f} s, "
                  f"{args.plates / dt:.2f} plates/s", flush=True)
    by = {(r["engine"], r["workers"]): r["seconds"] for r in out["runs"]}
    out["ray_vs_local_2_workers"] = round(by[("ray", 2)] / by[("local", 2)] - 1, 4)
    print(f"ray vs local, 2 workers: {100 * out['ray_vs_local_2_workers']:+.1f} % time", flush=True)
    return out


def bench_match(args: argparse.Namespace) -> dict:
    from bench_fabric import write_plates

    from artlens.canvas.collection import CanvasComparer, match_collection
    from artlens.canvas.fabric import load_fabric_model
    from artlens.train.fabric import roc_auc, synthetic_collection

    model = load_fabric_model("fabric_default")
    out: dict = {"sizes": {}}
    all_pairs_sizes = {int(v) for v in args.all_pairs_sizes.split(",") if v}
    for n in [int(v) for v in args.sizes.split(",") if v]:
        t = time.perf_counter()
        canvases = synthetic_collection(max(1, math.ceil(n / 4)), 4, canvas_cm=5.0, seed=args.seed + n)[:n]
        print(f"\n== {n} canvases ({n * (n - 1) // 2} pairs, {len({c.roll for c in canvases})} rolls); generated in "
              f"{time.perf_counter() - t:.0f} s", flush=True)
        res: dict = {}
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "plates").mkdir()
            paths = write_plates([(c.roll, c.image, c.px_per_cm) for c in canvases], Path(tmp) / "plates")
            roll = {p.name: c.roll for p, c in zip(paths, canvases, strict=True)}
            runs = [("scaled", args.prefilter, args.workers)]
            if n in all_pairs_sizes:
                runs.insert(0, ("all-pairs", None, 1))
            for name, prefilter, workers in runs:
                cmp = CanvasComparer(model, n_permutations=args.permutations, seed=0)
                dest = Path(tmp) / name
                t = time.perf_counter()
                s = match_collection(paths, dest, cmp, prefilter=prefilter, workers=workers, use_catalog=False)
                dt = time.perf_counter() - t
                with (dest / "pairs.csv").open(newline="") as fh:
                    rows = list(csv.DictReader(fh))
                y = np.array([int(roll[r["a"]] == roll[r["b"]]) for r in rows])
                prob = np.array([float(r["same_roll_probability"]) for r in rows])
                aligned = np.array([r["density_prefilter"] != "skipped" for r in rows])
                res[name] = {"seconds": round(dt, 1), "pairs": len(rows), "density_aligned": int(aligned.sum()),
                             "same_roll_pairs": int(y.sum()),
                             "same_roll_kept": int((aligned & (y == 1)).sum()),
                             "auc": round(float(roc_auc(prob, y)), 4), "workers": workers, "prefilter": prefilter,
                             "clusters": len(s["clusters"])}
                print(f"  {name:9s} workers {workers}: {dt:7.1f} s; {len(rows)} pairs, {aligned.sum()} density-aligned;"
                      f" same-roll pairs kept by the prefilter {res[name]['same_roll_kept']}/{y.sum()}; "
                      f"AUC {res[name]['auc']:.4f}", flush=True)
        out["sizes"][n] = res
    return out


def _photos(folder: Path, n: int, size: tuple[int, int], seed: int) -> list[Path]:
    """``n`` synthetic paintings (smooth colour fields with noise) of ``size`` (width, height) px."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    paths = []
    for k in range(n):
        c = rng.uniform(30, 220, (3, 3))
        img = np.stack([c[i, 0] + c[i, 1] * xx / w * 0.3 + c[i, 2] * yy / h * 0.3 for i in range(3)], axis=-1)
        img = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
        paths.append(folder / f"img{k:03d}.png")
        Image.fromarray(img).save(paths[-1])
    return paths


CONFIGS = {"plain": ("plain", "local", 1), "local1": ("batch", "local", 1), "local2": ("batch", "local", 2),
           "ray2": ("batch", "ray", 2)}


def _side_by_side(part: str, n: int, configs: list[str], repeats: int, plain, batch,  # noqa: ANN001
                  warm=None) -> dict:  # noqa: ANN001
    """Time ``plain(dest, n)`` and ``batch(engine, workers, dest)`` for each config, the configs in turn
    ``repeats`` times (so a burst of other work on the shared cores hits them alike), after one untimed ``plain``
    item or ``warm()`` (imports and first-call caches, paid by whichever run came first otherwise); each config's
    best time, and its ratio to plain's."""
    import resource

    def cpu_s() -> float:  # this process and its reaped children (the local pool's workers; not Ray's)
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + c.ru_utime + c.ru_stime

    out: dict = {"part": part, "items": n, "repeats": repeats, "runs": []}
    times: dict[str, list[float]] = {name: [] for name in configs}
    cpus: dict[str, list[float]] = {name: [] for name in configs}
    with tempfile.TemporaryDirectory() as tmp:
        if warm is None:
            plain(Path(tmp) / "warm-up", 1)
        else:
            warm()
        for rep in range(repeats):
            for name in configs:
                kind, engine, workers = CONFIGS[name]
                dest = Path(tmp) / f"{name}-{rep}"
                t, c = time.perf_counter(), cpu_s()
                done = plain(dest, n) if kind == "plain" else batch(engine, workers, dest)
                dt, dc = time.perf_counter() - t, cpu_s() - c
                assert done == n, (name, done, n)
                times[name].append(round(dt, 2))
                cpus[name].append(round(dc, 2))
                print(f"{part} {n} items, {name:7s} (round {rep + 1}): {dt:6.1f} s, {n / dt:.2f} items/s, "
                      f"CPU {dc:6.1f} s", flush=True)
    for name in configs:
        kind, engine, workers = CONFIGS[name]
        best = min(times[name])
        out["runs"].append({"config": name, "engine": engine, "workers": workers, "seconds": best,
                            "all_seconds": times[name], "items_per_s": round(n / best, 3),
                            "cpu_seconds": min(cpus[name]), "all_cpu_seconds": cpus[name]})
        print(f"{part} {n} items, {name:7s}: best {best:6.1f} s of {times[name]}, {n / best:.2f} items/s; "
              f"CPU best {min(cpus[name]):6.1f} s of {cpus[name]}", flush=True)
    by = {r["config"]: r["seconds"] for r in out["runs"]}
    cpu = {r["config"]: r["cpu_seconds"] for r in out["runs"] if r["engine"] == "local"}
    if "plain" in cpu:
        for name in cpu:
            if name != "plain":
                out[f"{name}_vs_plain_cpu"] = round(cpu[name] / cpu["plain"] - 1, 4)
                print(f"  {name} vs plain, CPU time: {100 * out[f'{name}_vs_plain_cpu']:+.1f} %", flush=True)
    if "plain" in by:
        for name in by:
            if name != "plain":
                out[f"{name}_vs_plain"] = round(by[name] / by["plain"] - 1, 4)
                print(f"  {name} vs plain: {100 * out[f'{name}_vs_plain']:+.1f} % time", flush=True)
    if "ray2" in by and "local2" in by:
        out["ray2_vs_local2"] = round(by["ray2"] / by["local2"] - 1, 4)
        print(f"  ray2 vs local2: {100 * out['ray2_vs_local2']:+.1f} % time", flush=True)
    return out


def bench_classify(args: argparse.Namespace, configs: list[str]) -> dict:
    from artlens.engine import BatchOptions
    from artlens.paintings.batch import predict_folder
    from artlens.paintings.classify import Classifier, ClassifierConfig, load_classifier, save_classifier

    tmp = Path(tempfile.mkdtemp())
    photos = tmp / "photos"
    paths = _photos(photos, args.items, (640, 480), args.seed)
    clf = Classifier(ClassifierConfig(classes=["a", "b", "c", "d", "e", "f"], label_column="style",
                                      pretrained_backbone=False))
    model = tmp / "model"
    save_classifier(clf.head, clf.config, model, backbone=clf.backbone)
    del clf

    def plain(dest: Path, k: int) -> int:
        c = load_classifier(model)
        return sum("error" not in c.predict([str(p)], top_k=5)[0] for p in paths[:k])

    def batch(engine: str, workers: int, dest: Path) -> int:
        rep = predict_folder(photos, dest, model, top_k=5, use_catalog=False,
                             options=BatchOptions(engine=engine, workers=workers))
        return rep.new

    try:
        return _side_by_side("classify predict", args.items, configs, args.repeats, plain, batch)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def bench_verify(args: argparse.Namespace, configs: list[str]) -> dict:
    from artlens.engine import BatchOptions
    from artlens.paintings.verify import load_verifier, verify_pairs
    from artlens.paintings.verify_batch import verify_pairs_batch

    tmp = Path(tempfile.mkdtemp())
    paths = [str(p) for p in _photos(tmp / "photos", 2 * args.items, (512, 384), args.seed)]
    pairs = [(paths[2 * k], paths[2 * k + 1]) for k in range(args.items)]

    def plain(dest: Path, k: int) -> int:
        v = load_verifier(None)
        v.adapt(paths, source="the pairs")  # what `verify --pairs` does with 20 or more distinct images
        return sum("error" not in verify_pairs(v, [pair])[0] for pair in pairs[:k])

    def warm() -> None:
        load_verifier(None).extractor.extract(paths[:1])

    def batch(engine: str, workers: int, dest: Path) -> int:
        rep = verify_pairs_batch(pairs, dest, None, use_catalog=False,
                                 options=BatchOptions(engine=engine, workers=workers))
        assert isinstance(rep.centred_on, dict), rep.centred_on  # centred on the pairs' images, as plain
        return rep.new

    try:
        return _side_by_side("verify --pairs", args.items, configs, args.repeats, plain, batch, warm)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def bench_beneath(args: argparse.Namespace, configs: list[str]) -> dict:
    import warnings

    from PIL import Image

    from artlens.beneath.batch import compare_pairs
    from artlens.beneath.compare import compare_views
    from artlens.engine import BatchOptions
    from artlens.synth.hidden import builtin_pigments, make_hidden_scene

    tmp = Path(tempfile.mkdtemp())
    views = tmp / "views"
    views.mkdir()
    pigments = builtin_pigments()
    pairs = []
    for k in range(args.items):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = make_hidden_scene((256, 256), kind="mixed", seed=args.seed + k, pigments=pigments)
        Image.fromarray(s.visible_rgb).save(views / f"vis{k:03d}.png")
        Image.fromarray(s.ir).save(views / f"ir{k:03d}.png")
        pairs.append((views / f"vis{k:03d}.png", views / f"ir{k:03d}.png"))
    (views / "pairs.csv").write_text("visible,other\n" + "".join(f"{v.name},{o.name}\n" for v, o in pairs))

    def plain(dest: Path, k: int) -> int:
        for v, o in pairs[:k]:
            compare_views(v, o, dest / f"{v.stem}--{o.stem}", method="pixel", use_catalog=False)
        return len(pairs[:k])

    def batch(engine: str, workers: int, dest: Path) -> int:
        rep = compare_pairs(views / "pairs.csv", dest, method="pixel", use_catalog=False,
                            options=BatchOptions(engine=engine, workers=workers))
        return rep.new

    try:
        return _side_by_side("beneath compare --pairs", args.items, configs, args.repeats, plain, batch)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def bench_index(args: argparse.Namespace, configs: list[str]) -> dict:
    from artlens.paintings.embedders import create_embedder
    from artlens.paintings.search import build_index

    tmp = Path(tempfile.mkdtemp())
    photos = tmp / "photos"
    paths = [str(p) for p in _photos(photos, args.items, (640, 480), args.seed)]
    chunk = 8

    def plain(dest: Path, k: int) -> int:
        emb = create_embedder("lite0")
        return sum(len(emb.embed_paths(paths[i:min(i + chunk, k)]).paths) for i in range(0, k, chunk))

    def batch(engine: str, workers: int, dest: Path) -> int:
        summary = build_index(photos, dest, create_embedder("lite0"), batch_size=chunk, progress=False,
                              engine=engine, workers=workers)
        return summary.embedded

    try:
        return _side_by_side("index", args.items, configs, args.repeats, plain, batch)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("threads", "match", "classify", "verify", "beneath", "index"), required=True)
    ap.add_argument("--items", type=int, default=24, help="items of the classify / verify / beneath / index parts")
    ap.add_argument("--repeats", type=int, default=2, help="rounds of those parts' runs (best time kept)")
    ap.add_argument("--configs", default="plain,local1,local2,ray2",
                    help=f"runs of those parts, in order, from {','.join(CONFIGS)}")
    ap.add_argument("--plates", type=int, default=40)
    ap.add_argument("--sizes", default="50,100,200")
    ap.add_argument("--all-pairs-sizes", default="50")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--prefilter", type=float, default=1.0)
    ap.add_argument("--permutations", type=int, default=199)
    ap.add_argument("--seed", type=int, default=90210)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import os
    import warnings

    warnings.filterwarnings("ignore")
    os.environ["PYTHONWARNINGS"] = "ignore"  # and in the spawned workers
    configs = [c for c in args.configs.split(",") if c]
    if not set(configs) <= set(CONFIGS):
        ap.error(f"--configs: choose from {', '.join(CONFIGS)}")
    parts = {"classify": bench_classify, "verify": bench_verify, "beneath": bench_beneath, "index": bench_index}
    if args.part in parts:
        result = parts[args.part](args, configs)
    else:
        result = bench_threads(args) if args.part == "threads" else bench_match(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
