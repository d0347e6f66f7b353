"""Train the thread-density CNN shipped in artlens/canvas/threads/weights/threads_regvgg.

Synthetic plates only (the DL4ART data may not be redistributed), covering 7-32 threads/cm, +-3
degrees, and random nuisances from clean to hard. Reproducible: seed 0.

    python benchmarks/train_threads_regvgg.py RUN_DIR [--plates 1500] [--max-time 00:01:00:00]
    python benchmarks/train_threads_regvgg.py RUN2 --init-from RUN_DIR/model --lr 3e-4 --seed 1 ...
    # then copy RUN_DIR/model/* into src/artlens/canvas/threads/weights/threads_regvgg/
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from artlens.train.threads import TrainConfig, prepare_data, train_thread_counter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--plates", type=int, default=1500)
    ap.add_argument("--crops-per-plate", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--max-time", default="00:01:00:00")
    ap.add_argument("--devices", default="1")
    ap.add_argument("--init-from", default=None, help="continue from a model folder (second, lower-lr phase)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic data and of training")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg = TrainConfig(model="regvgg_small", model_kwargs={"filters": [6, 12, 24, 32], "blocks": [1, 2, 2, 2]},
                      yarn_texture=False,  # the shipped model predates the yarn-texture nuisances
                      input_px_per_cm=100.0, crop_cm=1.0, loss="nmae", lr=args.lr, batch_size=32,
                      seed=args.seed, synthetic=args.plates, init_from=args.init_from,
                      crops_per_plate=args.crops_per_plate, val_fraction=0.1,
                      trainer={"max_epochs": args.epochs, "patience": 5, "max_time": args.max_time,
                               "checkpoint_every_n_steps": 100,
                               "devices": int(args.devices) if args.devices.isdigit() else args.devices})
    t = time.perf_counter()
    data = prepare_data(cfg)
    print(f"data: {len(data['x'])} crops in {time.perf_counter() - t:.0f} s", flush=True)
    t = time.perf_counter()
    result = train_thread_counter(cfg, args.run, data=data)
    print(f"trained in {time.perf_counter() - t:.0f} s", flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
