"""Train the ``beneath`` models shipped with artlens (GAT default and GCN) on CPU, and install them.

Both models are trained on the same prepared graphs: synthetic scenes rendered with randomised
variants of the *built-in* pigment set (no measured tables, no real images), so the weights carry no
third-party data. The graphs are rendered once into ``OUT/data`` and reused by both runs.

Usage (about 23 minutes on 2 busy CPU cores: 6 to render the graphs, 8 per model)::

    nice -n 10 python benchmarks/train_default_beneath.py /tmp/runs/beneath-default --install

``--install`` copies ``OUT/gat/model`` to ``src/artlens/beneath/weights/beneath_default`` and
``OUT/gcn/model`` to ``src/artlens/beneath/weights/beneath_gcn_default`` (model.safetensors +
config.json) and prints the figures for the model card.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "src" / "artlens" / "beneath" / "weights"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder for the prepared graphs and the two run directories")
    ap.add_argument("--synthetic", type=int, default=200, help="training scenes")
    ap.add_argument("--val", type=int, default=40, help="validation scenes")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--max-time", default="00:00:08:00", help="per model, DD:HH:MM:SS")
    ap.add_argument("--prep-workers", type=int, default=2)
    ap.add_argument("--models", default="beneath_gat,beneath_gcn")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--install", action="store_true", help="copy the models into src/artlens/beneath/weights")
    args = ap.parse_args()

    import torch

    from artlens.train.beneath import (
        BeneathTrainConfig,
        _load_records,
        _save_records,
        prepare_scenes,
        train_beneath_model,
    )

    torch.set_num_threads(1)  # on 2 shared cores, 2 threads ran 2-3x slower per step than 1
    warnings.filterwarnings("ignore")
    base = BeneathTrainConfig(synthetic=args.synthetic, val_synthetic=args.val, prep_workers=args.prep_workers,
                              seed=args.seed,
                              trainer={"max_epochs": args.epochs, "max_time": args.max_time, "accelerator": "cpu"})
    data_dir = args.out / "data"
    t0 = time.perf_counter()
    if (data_dir / "train.npz").is_file() and (data_dir / "val.npz").is_file():
        train, val = _load_records(data_dir / "train.npz"), _load_records(data_dir / "val.npz")
    else:
        train = prepare_scenes(base, base.synthetic, base.seed * 1_000_003)
        val = prepare_scenes(base, base.val_synthetic, base.seed * 1_000_003 + 500_000)
        _save_records(data_dir / "train.npz", train)
        _save_records(data_dir / "val.npz", val)
    prep_s = time.perf_counter() - t0
    print(f"graphs: {len(train)} training + {len(val)} validation scenes in {prep_s:.0f} s", flush=True)

    report = {"prep_s": round(prep_s, 1), "train_scenes": len(train), "val_scenes": len(val), "models": {}}
    for name in args.models.split(","):
        cfg = base.model_copy(update={"model": name})
        t = time.perf_counter()
        result = train_beneath_model(cfg, args.out / name.removeprefix("beneath_"), data=(train, val))
        m = result["metrics"]
        report["models"][name] = {"train_s": round(time.perf_counter() - t, 1), "epochs": m["epochs"],
                                  "steps": m["global_step"], "best_val_loss": m["best_val_loss"],
                                  "val_pixel_ap": m["val_pixel_ap"], "model": result["model"]}
        print(f"{name}: {m['epochs']} epochs, {time.perf_counter() - t:.0f} s, best val loss {m['best_val_loss']:.4f}, "
              f"val pixel AP {m['val_pixel_ap']:.3f}", flush=True)
        if args.install:
            dest = WEIGHTS / ("beneath_default" if name == "beneath_gat" else f"{name}_default")
            dest.mkdir(parents=True, exist_ok=True)
            for f in ("model.safetensors", "config.json"):
                shutil.copy2(Path(result["model"]) / f, dest / f)
            print(f"installed {dest}", flush=True)
    report["total_s"] = round(time.perf_counter() - t0, 1)
    (args.out / "train_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
