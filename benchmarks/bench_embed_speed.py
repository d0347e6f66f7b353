"""Embedding throughput from JPEG files, end to end (decode → views → model → vectors), on the CPU.

Two ways of computing the same multi-crop Lite0 vectors (global view at 224 px + 4 full-resolution
224-px patches of the image reduced to at most 1024 px, ``combine_views``) in the same process:

- **plain**: an eager fp32 loop as one would write it first: ``Image.open(...).convert("RGB")`` (full
  JPEG decode), torchvision-style transforms one image at a time (``resize``, ``crop``,
  ``to_tensor``, ``normalize``), ``model(x[None])`` for each view under ``torch.no_grad()``;
- **artlens**: :class:`artlens.paintings.features.BackboneEmbedder` (``"lite0"``): JPEG draft
  decoding (libjpeg DCT scaling), decoding in a thread pool while the model runs, batches of 16
  images (80 views), channels-last memory layout, ``torch.inference_mode``.

Both use the same views (same boxes); their vectors agree to cosine ≈ 1 (draft decoding and PIL's
reducing resize change pixels slightly; the minimum cosine is printed). Each way runs ``--rounds``
times, alternating, after a warm-up; the best round counts. Two clocks: wall time (images/s, what
a user waits) and the process's CPU time (images per CPU-second, all threads summed). On a shared,
oversubscribed machine the wall clock mostly measures the scheduler (under ``nice`` a process may get
a quarter of a core), while CPU time still measures the work each pipeline does; on an idle machine
with ``--threads 1`` the two agree. With ``--compile``, the artlens pipeline is also timed with
``torch.compile`` on the backbone. With ``--bf16`` (default when the CPU has bfloat16 units, see
:func:`artlens.paintings.features.bf16_is_fast`), also with ``precision="bf16"`` (``artlens index
--precision bf16``).

    nice -n 10 python benchmarks/bench_embed_speed.py [--collection shazam_7artists] [--images 64] [--threads 2]
        [--rounds 3] [--compile] [--unfolded] [--bf16 | --no-bf16]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "paintings"


def plain_vectors(paths: list[str], model, size: int, mean, std, n_patches: int = 4,
                  max_side: int = 1024) -> np.ndarray:
    """The eager baseline: one image, one view at a time."""
    import torch
    import torchvision.transforms.functional as TF
    from PIL import Image
    from torchvision.transforms import InterpolationMode

    from artlens.paintings.features import combine_views, patch_boxes

    glob, pats = [], []
    with torch.no_grad():
        for p in paths:
            img = Image.open(p).convert("RGB")
            views = [TF.resize(img, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)]
            w, h = img.size
            scale = max(min(1.0, max_side / max(w, h)), size / min(w, h))
            if abs(scale - 1.0) > 1e-3:
                nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
                img = TF.resize(img, [nh, nw], interpolation=InterpolationMode.BILINEAR, antialias=True)
            for left, top, _, _ in patch_boxes(img.size[0], img.size[1], size, n_patches):
                views.append(TF.crop(img, top, left, size, size))
            feats = []
            for v in views:
                x = TF.normalize(TF.to_tensor(v), mean, std)
                feats.append(model(x[None])[0].numpy())
            glob.append(feats[0])
            pats.append(np.stack(feats[1:]))
    return combine_views(np.stack(glob), np.stack(pats))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--collection", default="shazam_7artists", help="folder under ../shared/data/paintings")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (and decoding threads for artlens)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile on the artlens pipeline")
    ap.add_argument("--unfolded", action="store_true",
                    help="also time the artlens pipeline without folding batch norms into the convolutions")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                    help="also time precision='bf16' (default: when the CPU has bfloat16 units)")
    args = ap.parse_args()

    import torch

    from artlens.models.backbones import create_backbone
    from artlens.paintings.datasets import load_dataset
    from artlens.paintings.features import BackboneEmbedder, bf16_is_fast

    torch.set_num_threads(args.threads)
    ds = load_dataset(SHARED / args.collection / "labels.csv")
    paths = [p for p in ds.paths() if p.lower().endswith((".jpg", ".jpeg"))]
    step = max(1, len(paths) // args.images)
    paths = paths[::step][: args.images]
    from PIL import Image

    sizes = [Image.open(p).size for p in paths]
    mpix = np.mean([w * h for w, h in sizes]) / 1e6
    largest = max(sizes, key=lambda s: s[0] * s[1])
    print(f"{len(paths)} JPEGs from {args.collection}: mean {mpix:.2f} Mpixel, largest {largest[0]} x {largest[1]}; "
          f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} cores", flush=True)

    model, prep = create_backbone()  # the same Lite0 weights for both
    emb = BackboneEmbedder(batch_size=args.batch_size, workers=args.threads)

    def run_plain() -> np.ndarray:
        return plain_vectors(paths, model, prep.input_size, prep.mean, prep.std)

    def run_artlens() -> np.ndarray:
        return emb.embed_paths(paths).vectors

    ways = {"plain eager loop": run_plain, "artlens BackboneEmbedder": run_artlens}
    if args.unfolded:
        uemb = BackboneEmbedder(batch_size=args.batch_size, workers=args.threads)
        uemb.extractor._inference_model = lambda: uemb.extractor.model  # as before batch-norm folding
        ways["artlens, batch norm not folded"] = lambda: uemb.embed_paths(paths).vectors
    if args.bf16 or (args.bf16 is None and bf16_is_fast()):
        bemb = BackboneEmbedder(batch_size=args.batch_size, workers=args.threads, precision="bf16")
        ways["artlens, precision bf16"] = lambda: bemb.embed_paths(paths).vectors
    if args.compile:
        cemb = BackboneEmbedder(batch_size=args.batch_size, workers=args.threads)
        m = cemb.extractor.model
        m.forward_features = torch.compile(m.forward_features, dynamic=False)
        t0 = time.perf_counter()
        cemb.embed_paths(paths[: args.batch_size])  # compiles for the full batch shape
        print(f"torch.compile: first batch (compilation) {time.perf_counter() - t0:.0f} s", flush=True)
        ways["artlens + torch.compile"] = lambda: cemb.embed_paths(paths).vectors

    # warm-up (allocators, thread pools) and page cache: every file read once
    for p in paths:
        Path(p).read_bytes()
    plain_vectors(paths[:2], model, prep.input_size, prep.mean, prep.std)
    emb.embed_paths(paths[: args.batch_size])
    best = {k: float("inf") for k in ways}
    best_cpu = {k: float("inf") for k in ways}
    out = {}
    for r in range(args.rounds):
        for k, f in ways.items():
            t0, c0 = time.perf_counter(), time.process_time()
            out[k] = f()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            best[k], best_cpu[k] = min(best[k], dt), min(best_cpu[k], dc)
            print(f"  round {r + 1}: {k}: wall {dt:.1f} s ({len(paths) / dt:.2f} images/s), CPU {dc:.1f} s "
                  f"({len(paths) / dc:.2f} images per CPU-s)", flush=True)

    ref = out["plain eager loop"]
    plain = "plain eager loop"
    print(f"\n{len(paths)} images, {args.threads} torch threads, best of {args.rounds} rounds\n")
    print("| pipeline | wall s | images/s | speed-up (wall) | CPU s | images per CPU-s | speed-up (CPU) | "
          "min / mean cosine to plain |")
    print("|---|---|---|---|---|---|---|---|")
    for k in ways:
        cos = (out[k] * ref).sum(1)
        print(f"| {k} | {best[k]:.1f} | {len(paths) / best[k]:.2f} | {best[plain] / best[k]:.2f}x | "
              f"{best_cpu[k]:.1f} | {len(paths) / best_cpu[k]:.2f} | {best_cpu[plain] / best_cpu[k]:.2f}x | "
              f"{cos.min():.4f} / {cos.mean():.4f} |")
    print("\ncommand: python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]]))


if __name__ == "__main__":
    main()
