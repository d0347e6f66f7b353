"""What every training run shares: a self-describing run directory, Lightning's Trainer with
best / last checkpoints, early stopping, a CSV log, and resume after an interruption.

A run directory holds ``config.json`` (the resolved config, artlens and torch versions),
``metrics.csv`` (one row per epoch; an interrupted attempt's log is kept as
``metrics.attempt-N.csv``), ``last.ckpt`` (full Lightning state, written every
``checkpoint_every_n_steps`` steps and at the end, read back with ``weights_only=True``) and
``checkpoints/best.ckpt`` (weights of the epoch with the lowest validation loss).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from artlens.errors import InvalidParameterError


def quiet_lightning() -> None:
    """Keep Lightning's banners and advice out of artlens' output; real warnings still show."""
    import logging
    import warnings

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode at the start of training.*")


def open_run(run_dir: str | os.PathLike[str], cfg: BaseModel, *, resume: bool) -> tuple[Path, Any]:
    """Create (or reopen, with ``resume``) a run directory; returns it and the config to use.

    A new run refuses a folder that already holds one; a resumed run reads its config back.
    """
    import lightning as L

    from artlens import __version__

    quiet_lightning()
    run = Path(run_dir)
    if resume:
        if not (run / "config.json").is_file():
            raise InvalidParameterError(f"{run}: no config.json to resume from")
        cfg = type(cfg)(**json.loads((run / "config.json").read_text())["config"])
    elif (run / "config.json").exists():
        raise InvalidParameterError(f"{run} already holds a run; use --resume or another --out")
    run.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if not resume:
        (run / "config.json").write_text(json.dumps(
            {"config": cfg.model_dump(), "artlens_version": __version__, "torch": torch.__version__}, indent=2) + "\n")
    if resume and (run / "metrics.csv").exists():  # keep the interrupted attempt's log beside the new one
        k = len(list(run.glob("metrics.attempt-*.csv"))) + 1
        (run / "metrics.csv").rename(run / f"metrics.attempt-{k}.csv")
    return run, cfg


def fit(module: Any, train_dl: Any, val_dl: Any, cfg: Any, run: Path, *, resume: bool,
        enable_progress_bar: bool = False, extra_callbacks: list[Any] | None = None) -> tuple[Any, Any]:
    """Fit ``module`` (resuming from ``run/last.ckpt`` when asked), save the final state and load the
    best epoch's weights back into ``module``. Returns ``(trainer, best_checkpoint_callback)``."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    ckpt = run / "last.ckpt"
    best = ModelCheckpoint(dirpath=run / "checkpoints", filename="best", monitor="val_loss", mode="min",
                           save_top_k=1, save_weights_only=True)
    last = ModelCheckpoint(dirpath=run, filename="last", every_n_train_steps=cfg.checkpoint_every_n_steps,
                           save_top_k=1, monitor=None, enable_version_counter=False)
    trainer = L.Trainer(
        default_root_dir=run, max_epochs=cfg.max_epochs, max_steps=cfg.max_steps, max_time=cfg.max_time,
        accelerator=cfg.accelerator, devices=cfg.devices, strategy=cfg.strategy, deterministic=True,
        callbacks=[best, last, EarlyStopping(monitor="val_loss", patience=cfg.patience, mode="min"),
                   *(extra_callbacks or [])],
        logger=CSVLogger(run, name="", version=""), enable_progress_bar=enable_progress_bar,
        enable_model_summary=False, log_every_n_steps=1,
    )
    trainer.fit(module, train_dl, val_dl, ckpt_path=str(ckpt) if resume and ckpt.exists() else None,
                weights_only=True)
    trainer.save_checkpoint(ckpt, weights_only=False)  # full state (optimizer, loops) for --resume
    if best.best_model_path:
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    return trainer, best
