"""Feature extraction time of the two offline backbones, side by side: Lite0 and Lite2 with the shipped
verifier's settings (stage statistics, signed square root, global view + 4 full-resolution patches), the
first 32 images of shazam_7artists, 2 torch threads, 3 alternated rounds, best of each.

    python benchmarks/bench_backbone_speed.py
"""
import glob
import time
from pathlib import Path

import torch

from artlens.paintings.features import FeatureExtractor

torch.set_num_threads(2)
SHAZAM = Path(__file__).resolve().parents[2] / "shared" / "data" / "paintings" / "shazam_7artists"
paths = sorted(glob.glob(str(SHAZAM / "**" / "*.jpg"), recursive=True))[:32]
if not paths:
    raise SystemExit(f"no images under {SHAZAM}")
ex = {b: FeatureExtractor(b, n_patches=4, max_side=1024, pooling="stats", signed_sqrt=True)
      for b in ("tf_efficientnet_lite0", "tf_efficientnet_lite2")}
for b in ex:
    ex[b].extract(paths[:4])  # warm up
t = {b: [] for b in ex}
for _round in range(3):
    for b in ex:
        s = time.perf_counter()
        ex[b].extract(paths)
        t[b].append(time.perf_counter() - s)
m = {b: min(v) for b, v in t.items()}
ratio = m["tf_efficientnet_lite2"] / m["tf_efficientnet_lite0"]
print({b: round(v, 2) for b, v in m.items()}, "ratio", round(ratio, 2))
