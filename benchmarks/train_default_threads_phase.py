"""Train the weave-phase CNN shipped in artlens/canvas/threads/weights/threads_phase.

Synthetic plates only (the DL4ART data may not be redistributed): 1.5 x 1.5 cm plates at 200 px/cm
from the same random weave and nuisance distribution as the regression CNN (7-32 threads/cm, +-3
degrees, clean to hard), by default with the yarn-texture nuisances (two-ply grooves, twist, blotchy
cells, grain; ``--no-yarn-texture`` leaves them out; ``--thread-balance B`` makes one thread system up to
``B`` fainter on half the plates), with the generator's thread-phase maps as
targets. The network trains on random 128 x 128 px crops (0.64 cm), 2 per plate and epoch, flips
and 90-degree rotations.

Generating the plates takes about 0.1 s each on one core; ``--cache-dir DIR`` keeps them
(``x``: uint8 images, ``ph``: pooled phase maps) so that a second run skips it.

The shipped model was trained in four stages, each from the previous one's weights (see its
MODEL_CARD.md for the figures):

    python benchmarks/train_default_threads_phase.py runs/phase1 --plates 6000 --seeds 100 101 \
        --no-yarn-texture --cache-dir /tmp/phase --epochs 6 --max-time 00:01:00:00
    python benchmarks/train_default_threads_phase.py runs/phase2 --plates 4000 --seeds 102 103 \
        --cache-dir /tmp/phase --epochs 8 --lr 1e-3 --max-time 00:00:55:00 --init-from runs/phase1/model
    python benchmarks/train_default_threads_phase.py runs/phase3 --plates 8000 --seeds 102 103 104 105 \
        --cache-dir /tmp/phase --epochs 4 --lr 7e-4 --max-time 00:00:45:00 --init-from runs/phase2/model
    python benchmarks/train_default_threads_phase.py runs/phase4 --plates 8000 --seeds 106 107 108 109 \
        --thread-balance 0.6 --cache-dir /tmp/phase --epochs 4 --lr 7e-4 --max-time 00:00:50:00 \
        --init-from runs/phase3/model
    # then copy runs/phase4/model/* into src/artlens/canvas/threads/weights/threads_phase/ (+ MODEL_CARD.md)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from artlens.train.splits import holdout_split
from artlens.train.threads import TrainConfig, synthetic_phase_samples, train_thread_counter


def _plates(cfg: TrainConfig, n: int, seed: int, cache_dir: Path | None) -> tuple[list, list]:
    tag = ("" if cfg.yarn_texture else "_plain") + (f"_bal{cfg.thread_balance:g}" if cfg.thread_balance else "")
    tag += f"_wide{cfg.wider:g}" if cfg.wider else ""
    tag += f"_hard{cfg.harder:g}" if cfg.harder else ""
    tag += f"_broad{cfg.broad:g}" if cfg.broad else ""
    cache = cache_dir / f"phase_plates_{n}_seed{seed}{tag}.npz" if cache_dir else None
    if cache and cache.exists():
        d = np.load(cache)
        return list(d["x"]), list(d["ph"])
    xs, phs, _ = synthetic_phase_samples(n, cfg, seed)
    if cache:
        np.savez(cache, x=np.stack(xs), ph=np.stack(phs))
    return xs, phs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--plates", type=int, default=6000, help="plates in all, split evenly over --seeds")
    ap.add_argument("--seeds", type=int, nargs="+", default=[100, 101])
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--crops-per-plate", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--max-time", default="00:01:00:00")
    ap.add_argument("--init-from", default=None)
    ap.add_argument("--no-yarn-texture", action="store_true",
                    help="plates without ply grooves, twist, cell blotches and grain (the first shipped model)")
    ap.add_argument("--thread-balance", type=float, default=0.0,
                    help="make one thread system fainter on half the plates, |balance| up to this (0: never)")
    ap.add_argument("--wider", type=float, default=0.0,
                    help="fraction of plates with an interstice lattice (+ lining canvas, banding on half of them)")
    ap.add_argument("--harder", type=float, default=0.0,
                    help="fraction of plates under thick lumpy paint (impasto), heavy blur, noise and grain")
    ap.add_argument("--broad", type=float, default=0.0,
                    help="fraction of plates with broad, flat-topped threads whose gaps show as thin bright lines")
    args = ap.parse_args()
    cfg = TrainConfig(model="weavephase", input_px_per_cm=200.0, crop_cm=0.64, lr=args.lr, lr_schedule="cosine",
                      batch_size=16, seed=args.seeds[0],
                      synthetic=args.plates, crops_per_plate=args.crops_per_plate, val_fraction=0.05,
                      init_from=args.init_from,
                      trainer={"max_epochs": args.epochs, "patience": 3, "max_time": args.max_time,
                               "checkpoint_every_n_steps": 200},
                      yarn_texture=not args.no_yarn_texture, thread_balance=args.thread_balance,
                      wider=args.wider, harder=args.harder, broad=args.broad)
    t = time.perf_counter()
    xs: list = []
    phs: list = []
    for seed in args.seeds:
        x, p = _plates(cfg, args.plates // len(args.seeds), seed, args.cache_dir)
        xs += x
        phs += p
    groups = np.arange(len(xs))
    split = holdout_split(groups, val_fraction=cfg.val_fraction, seed=cfg.seed)
    train, val = split["train"], split["val"]
    data = {"x": xs, "phase": phs, "groups": groups, "train": train, "val": val, "sources": ["synthetic"]}
    print(f"data: {len(xs)} plates ({len(train)} train, {len(val)} val) in {time.perf_counter() - t:.0f} s",
          flush=True)
    t = time.perf_counter()
    result = train_thread_counter(cfg, args.run, data=data)
    print(f"trained in {time.perf_counter() - t:.0f} s", flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
