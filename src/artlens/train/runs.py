"""What every training run shares: the trainer settings (:class:`TrainerConfig`), a self-describing
run directory, Lightning's ``Trainer`` built in one place (:func:`make_trainer`) with best / last
checkpoints, early stopping and a CSV log, and resume after an interruption (:func:`fit`).

A run directory holds ``config.json`` (the resolved config, artlens and torch versions),
``metrics.csv`` (one row per epoch; an interrupted attempt's log is kept as
``metrics.attempt-N.csv``), ``last.ckpt`` (full Lightning state, written every
``checkpoint_every_n_steps`` steps and at the end, read back with ``weights_only=True``) and
``checkpoints/best.ckpt`` (weights of the epoch with the best ``monitor`` value, by default the
lowest validation loss).

Every Lightning training config derives from :class:`TrainingConfig`: its Lightning settings are
nested under ``trainer`` (``cfg.trainer.devices``, ``cfg.trainer.max_epochs``...). Run folders
written before that (the settings at the top level of ``config.json``) still load: the flat keys
are moved under ``trainer`` when the config is read (:func:`nest_trainer_settings`).

Training configs of a model with its own config dataclass (the feature autoencoder, the verifier,
the classifier) nest that dataclass under ``model`` in the same way (``cfg.model.code_dim``...);
:func:`nest_model_settings` moves the fields that earlier versions copied to the top level back
under ``model`` when such a config is read.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from pydantic import BaseModel, ConfigDict, Field, model_validator

from artlens.devices import is_rank_zero, resolve_device
from artlens.errors import InvalidParameterError

__all__ = [
    "LEGACY_TRAINER_KEYS",
    "TrainerConfig",
    "TrainingConfig",
    "feature_device",
    "fit",
    "is_rank_zero",
    "make_trainer",
    "nest_model_settings",
    "nest_trainer_settings",
    "open_run",
    "quiet_lightning",
]


class TrainerConfig(BaseModel):
    """The Lightning settings of a training run (one block, nested as ``trainer`` in every training config).

    Attributes:
        max_epochs: epochs at most (early stopping may end sooner).
        max_steps: optimiser steps at most (-1: no limit).
        max_time: wall-clock cap ``"DD:HH:MM:SS"`` (None: none).
        patience: epochs without improvement of ``monitor`` before early stopping.
        monitor: logged metric that chooses the best epoch and stops early.
        mode: ``"min"`` or ``"max"`` of ``monitor``.
        accelerator: ``"auto"``, ``"cpu"``, ``"gpu"``... (Lightning's names).
        devices: number of devices, ``"auto"`` or a list of device indices; more than one uses ``strategy``.
        strategy: Lightning strategy (``"auto"``, ``"ddp"``...).
        precision: Lightning precision (``"32-true"``, ``"16-mixed"``, ``"bf16-mixed"``).
        checkpoint_every_n_steps: how often ``last.ckpt`` (the resumable state) is written.
        log_every_n_steps: how often training metrics are logged.
        deterministic: use deterministic algorithms (same seed, same numbers).
    """

    model_config = ConfigDict(extra="forbid")

    max_epochs: int = 20
    max_steps: int = -1
    max_time: str | None = None
    patience: int = Field(default=4, ge=0)
    monitor: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    accelerator: str = "auto"
    devices: int | str | list[int] = 1
    strategy: str = "auto"
    precision: str = "32-true"
    checkpoint_every_n_steps: int = Field(default=50, ge=1)
    log_every_n_steps: int = Field(default=1, ge=1)
    deterministic: bool = True


LEGACY_TRAINER_KEYS = ("max_epochs", "max_steps", "max_time", "patience", "accelerator", "devices", "strategy",
                       "checkpoint_every_n_steps")
"""Trainer settings that older configs (and their run folders' ``config.json``) held at the top level."""


def nest_trainer_settings(default: TrainerConfig, data: Any) -> Any:
    """A training config's raw fields with the trainer settings nested under ``"trainer"``.

    The result's ``trainer`` starts from ``default`` (the config class's own defaults), then takes
    the old flat keys (:data:`LEGACY_TRAINER_KEYS`, as written by run folders of earlier versions),
    then the fields given in ``data["trainer"]`` (a dict, or a :class:`TrainerConfig` whose explicitly
    set fields count). Anything that is not a dict is returned unchanged (pydantic reports it).

    Example:
        >>> old = {"seed": 1, "max_epochs": 3, "devices": 2, "lr": 0.1}
        >>> new = nest_trainer_settings(TrainerConfig(patience=8), old)
        >>> new["trainer"]["max_epochs"], new["trainer"]["devices"], new["trainer"]["patience"], new["lr"]
        (3, 2, 8, 0.1)
    """
    if not isinstance(data, dict):
        return data
    data = dict(data)
    merged = default.model_dump()
    merged.update({k: data.pop(k) for k in LEGACY_TRAINER_KEYS if k in data})
    given = data.get("trainer")
    if isinstance(given, TrainerConfig):
        merged.update(given.model_dump(exclude_unset=True))
    elif isinstance(given, dict):
        merged.update(given)
    elif given is not None:
        return data  # not a mapping: let pydantic say what is wrong with it
    data["trainer"] = merged
    return data


def nest_model_settings(default: Any, data: Any, legacy_keys: Sequence[str]) -> Any:
    """A training config's raw fields with its model config nested under ``"model"``.

    The model config is a dataclass (e.g. :class:`~artlens.paintings.encoders.AutoencoderConfig`).
    The result's ``model`` is a dict that starts from ``data["model"]`` when that is an instance of
    the dataclass (taken whole, with the dataclass's own defaults), else from ``default`` (the
    training config's defaults for the model); then the old flat keys ``legacy_keys`` (fields that
    run folders of earlier versions held at the top level of ``config.json``) are moved under it;
    then the keys of ``data["model"]`` when that is a dict (it changes only the fields it names).
    Anything else is returned unchanged (pydantic reports it).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Head:
        ...     hidden: int = 8
        ...     dropout: float = 0.1
        >>> old = {"seed": 1, "hidden": 32, "lr": 0.1}
        >>> new = nest_model_settings(Head(dropout=0.3), old, ("hidden", "dropout"))
        >>> new["model"], new["lr"]
        ({'hidden': 32, 'dropout': 0.3}, 0.1)
        >>> nest_model_settings(Head(dropout=0.3), {"model": {"hidden": 4}}, ("hidden",))["model"]
        {'hidden': 4, 'dropout': 0.3}
    """
    if not isinstance(data, dict):
        return data
    given = data.get("model")
    whole = dataclasses.is_dataclass(given) and not isinstance(given, type)
    if given is not None and not whole and not isinstance(given, dict):
        return data  # not a mapping: let pydantic say what is wrong with it
    data = dict(data)
    merged = dataclasses.asdict(given if whole else default)  # type: ignore[arg-type]
    merged.update({k: data.pop(k) for k in legacy_keys if k in data})
    if isinstance(given, dict):
        merged.update(given)
    data["model"] = merged
    return data


class TrainingConfig(BaseModel):
    """Base of every Lightning training config: a seed and the nested :class:`TrainerConfig`.

    A subclass sets its own trainer defaults by redefining the field, e.g.
    ``trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(max_epochs=40, patience=8))``;
    a ``trainer`` given by the caller changes only the fields it sets.
    """

    seed: int = 0
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig())

    legacy_model_keys: ClassVar[tuple[str, ...]] = ()
    """A subclass with a ``model`` field: the model's fields that earlier run folders held at the top
    level of ``config.json`` (moved under ``model`` on loading, :func:`nest_model_settings`)."""

    @model_validator(mode="before")
    @classmethod
    def _nest_settings(cls, data: Any) -> Any:
        default = cls.model_fields["trainer"].get_default(call_default_factory=True)
        data = nest_trainer_settings(default, data)
        if cls.legacy_model_keys:
            default_model = cls.model_fields["model"].get_default(call_default_factory=True)
            data = nest_model_settings(default_model, data, cls.legacy_model_keys)
        return data


def feature_device(cfg: TrainerConfig) -> str:
    """Where a trainer extracts (and caches) frozen backbone features, from its Lightning accelerator:
    ``"gpu"`` / ``"cuda"`` → a CUDA device (refused in one line when there is none), ``"auto"`` → a
    CUDA device when torch sees one, else the CPU; ``"cpu"`` and any other accelerator → the CPU.

    Under DDP each process takes its own GPU: the ``LOCAL_RANK``-th of ``devices`` when that lists
    GPU indices, else ``cuda:LOCAL_RANK``.

    Example:
        >>> feature_device(TrainerConfig(accelerator="cpu"))
        'cpu'
    """
    acc = str(cfg.accelerator).strip().lower()
    if acc not in ("gpu", "cuda", "auto"):
        return "cpu"
    try:
        device = resolve_device("auto" if acc == "auto" else "cuda")
    except InvalidParameterError:
        raise InvalidParameterError(f"accelerator {cfg.accelerator}: no CUDA GPU is available on this machine "
                                    "(torch.cuda.is_available() is False); use cpu or auto",
                                    param="accelerator") from None
    if device == "cpu":
        return device
    local = int(os.environ.get("LOCAL_RANK") or 0)
    given = cfg.devices
    if isinstance(given, str) and "," in given:
        given = [int(d) for d in given.split(",") if d.strip()]
    index = given[local] if isinstance(given, list) and local < len(given) else local
    try:
        return resolve_device(f"cuda:{index}")
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"accelerator {cfg.accelerator}, devices {cfg.devices}: {exc}",
                                    param="accelerator") from None


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


C = TypeVar("C", bound=BaseModel)


def open_run(run_dir: str | os.PathLike[str], cfg: C, *, resume: bool) -> tuple[Path, C]:
    """Create (or reopen, with ``resume``) a run directory; returns it and the config to use.

    A new run refuses a folder that already holds one; a resumed run reads its config back (old
    flat layouts included). The config's ``seed`` seeds Python, numpy and torch. In a further DDP
    process (:func:`~artlens.devices.is_rank_zero` false) nothing is checked or written: rank 0 made
    the folder before Lightning started that process.
    """
    from artlens import __version__

    quiet_lightning()
    run = Path(run_dir)
    if not is_rank_zero():  # a further DDP process: rank 0 made (or reopened) the folder before starting it
        if resume:
            cfg = type(cfg).model_validate(json.loads((run / "config.json").read_text())["config"])
        L.seed_everything(int(getattr(cfg, "seed", 0)), workers=True, verbose=False)
        return run, cfg
    if resume:
        if not (run / "config.json").is_file():
            raise InvalidParameterError(f"{run}: no config.json to resume from")
        cfg = type(cfg).model_validate(json.loads((run / "config.json").read_text())["config"])
    elif (run / "config.json").exists():
        raise InvalidParameterError(f"{run} already holds a run; use `resume=True` or another folder", param="resume")
    run.mkdir(parents=True, exist_ok=True)
    L.seed_everything(int(getattr(cfg, "seed", 0)), workers=True, verbose=False)
    if not resume:
        (run / "config.json").write_text(json.dumps(
            {"config": cfg.model_dump(), "artlens_version": __version__, "torch": torch.__version__}, indent=2) + "\n")
    if resume and (run / "metrics.csv").exists():  # keep the interrupted attempt's log beside the new one
        k = len(list(run.glob("metrics.attempt-*.csv"))) + 1
        (run / "metrics.csv").rename(run / f"metrics.attempt-{k}.csv")
    return run, cfg


def make_trainer(cfg: TrainerConfig, run: str | os.PathLike[str], *, validation: bool = True,
                 callbacks: Sequence[Callback] = (), enable_progress_bar: bool = False
                 ) -> tuple[L.Trainer, ModelCheckpoint | None]:
    """The one place a Lightning ``Trainer`` is built from a :class:`TrainerConfig`.

    Args:
        cfg: the trainer settings.
        run: folder of the run (``metrics.csv``, ``last.ckpt``, ``checkpoints/best.ckpt``).
        validation: with a validation set: best checkpoint and early stopping on ``cfg.monitor`` and
            a resumable ``last.ckpt``; without: no checkpoints, training for the epochs asked.
        callbacks: further Lightning callbacks.
        enable_progress_bar: show Lightning's progress bar.

    Returns:
        ``(trainer, best-checkpoint callback or None without validation)``.
    """
    run = Path(run)
    quiet_lightning()
    extra: list[Callback] = list(callbacks)
    best = None
    if validation:
        best = ModelCheckpoint(dirpath=run / "checkpoints", filename="best", monitor=cfg.monitor, mode=cfg.mode,
                               save_top_k=1, save_weights_only=True)
        last = ModelCheckpoint(dirpath=run, filename="last", every_n_train_steps=cfg.checkpoint_every_n_steps,
                               save_top_k=1, monitor=None, enable_version_counter=False)
        extra = [best, last, EarlyStopping(monitor=cfg.monitor, patience=cfg.patience, mode=cfg.mode), *extra]
    else:
        import warnings

        warnings.filterwarnings("ignore", message=".*have no `val_dataloader`.*")
    trainer = L.Trainer(
        default_root_dir=run, max_epochs=cfg.max_epochs, max_steps=cfg.max_steps, max_time=cfg.max_time,
        accelerator=cfg.accelerator, devices=cfg.devices, strategy=cfg.strategy, precision=cfg.precision,  # type: ignore[arg-type]
        deterministic=cfg.deterministic, callbacks=extra, logger=CSVLogger(run, name="", version=""),
        enable_progress_bar=enable_progress_bar, enable_model_summary=False, enable_checkpointing=validation,
        log_every_n_steps=cfg.log_every_n_steps,
    )
    return trainer, best


def fit(module: L.LightningModule, train_dl: torch.utils.data.DataLoader[Any],
        val_dl: torch.utils.data.DataLoader[Any], cfg: TrainerConfig, run: Path, *, resume: bool,
        enable_progress_bar: bool = False, extra_callbacks: Sequence[Callback] = ()
        ) -> tuple[L.Trainer, ModelCheckpoint]:
    """Fit ``module`` (resuming from ``run/last.ckpt`` when asked), save the final state and load the
    best epoch's weights back into ``module``. Returns ``(trainer, best_checkpoint_callback)``."""
    trainer, best = make_trainer(cfg, run, callbacks=extra_callbacks, enable_progress_bar=enable_progress_bar)
    assert best is not None  # with validation there is always a best-checkpoint callback
    ckpt = run / "last.ckpt"
    trainer.fit(module, train_dl, val_dl, ckpt_path=str(ckpt) if resume and ckpt.exists() else None,
                weights_only=True)
    trainer.save_checkpoint(ckpt, weights_only=False)  # full state (optimizer, loops) for --resume
    if best.best_model_path:
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    return trainer, best
