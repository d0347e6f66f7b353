"""Training a feature autoencoder (``artlens paintings train-encoder``): DAE or SWAE.

The backbone is frozen, so every image's multi-crop features are computed once and cached
(``RUN/features.npz``, or ``feature_cache``); the autoencoder (:mod:`artlens.paintings.encoders`)
then trains on those vectors through Lightning (CPU, GPU or DDP by flags), with early stopping on the
validation loss and resume after an interruption (:mod:`artlens.train.runs`). Labels are never used
for training; when the collection has a label column (``label_column``, or ``label`` / ``artist``)
the run also reports the mAP@10 of same-label retrieval over the whole collection with the frozen
features and with the codes (``evaluation.json``), so a run says whether its codes help search.

The run directory holds ``config.json``, ``features.npz``, ``metrics.csv``, ``last.ckpt``,
``checkpoints/best.ckpt``, ``evaluation.json`` and the saved encoder in ``model/``
(:func:`~artlens.paintings.encoders.save_autoencoder`), which the embedders ``"dae"`` / ``"swae"``
load (``create_embedder("swae", model="RUN/model")``).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
from pydantic import Field, model_validator

from artlens.devices import move_extractor
from artlens.errors import InvalidParameterError
from artlens.paintings.encoders import (
    AutoencoderConfig,
    encode_vectors,
    feature_vectors,
    make_autoencoder,
    sample_prior,
    save_autoencoder,
    sliced_wasserstein,
)
from artlens.paintings.features import FeatureExtractor, cached_features
from artlens.train.runs import TrainerConfig, TrainingConfig, feature_device, fit, open_run
from artlens.train.splits import holdout_split

LEGACY_MODEL_KEYS = ("kind", "backbone", "pretrained_backbone", "n_patches", "max_side", "code_dim", "hidden",
                     "noise_std", "mask_prob", "prior", "swd_weight", "swd_projections")
"""Autoencoder settings that older configs (and their run folders' ``config.json``) held at the top level."""


class EncoderTrainConfig(TrainingConfig):
    """Everything that defines an autoencoder training run (saved in ``RUN/config.json``).

    The autoencoder itself is described by ``model``, the
    :class:`~artlens.paintings.encoders.AutoencoderConfig` that is saved with the trained encoder
    (``cfg.model.kind``, ``cfg.model.code_dim``, the backbone and multi-crop settings...); the
    Lightning settings are in ``trainer`` (:class:`~artlens.train.runs.TrainerConfig`). A ``model``
    given as a dict changes only the fields it names.

    Two fields of ``model`` are not the user's to choose, and are filled in when the autoencoder is
    built rather than left out of the config (so that ``model`` stays the one dataclass that is saved
    and loaded): ``in_dim``, the length of the feature vectors, is taken from the extracted features
    (whatever the config holds is ignored), and ``backbone_checkpoint`` is written by
    :func:`~artlens.paintings.encoders.save_autoencoder` when the backbone is saved with the encoder
    (training starts from the stock or a random backbone, so a config that sets it is refused).

    Run folders written when these settings were copied to the top level of the config (``kind``,
    ``code_dim``... beside ``data``) still load: the flat keys (:data:`LEGACY_MODEL_KEYS`) are moved
    under ``model`` when the config is read (:func:`~artlens.train.runs.nest_model_settings`).
    """

    data: str
    label_column: str | None = None  # evaluation only; default: "label" or "artist" when present
    model: AutoencoderConfig = Field(default_factory=lambda: AutoencoderConfig())
    legacy_model_keys: ClassVar[tuple[str, ...]] = LEGACY_MODEL_KEYS
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = Field(default=128, ge=2)
    val_fraction: float = Field(default=0.1, gt=0, lt=1)
    feature_cache: str | None = None  # .npz of frozen features (default RUN/features.npz), reused when it matches
    workers: int = 2  # image-decoding threads of the feature extraction
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(max_epochs=60, patience=8,
                                                                         checkpoint_every_n_steps=200))

    @model_validator(mode="after")
    def _no_backbone_checkpoint(self) -> EncoderTrainConfig:
        if self.model.backbone_checkpoint is not None:
            raise ValueError("model.backbone_checkpoint: training starts from the stock (or a random) backbone; "
                             "leave it unset")
        return self

    def autoencoder_config(self, in_dim: int) -> AutoencoderConfig:
        """``model`` with ``in_dim``, the length of the feature vectors, filled in."""
        return replace(self.model, in_dim=in_dim)


def autoencoder_loss(model: Any, x: torch.Tensor, *, train: bool,
                     generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The training objective of a batch of feature vectors ``(B, in_dim)``.

    DAE: ``MSE(decoder(encoder(corrupt(x̃))), x̃)`` with ``x̃`` the standardised input (no corruption when
    ``train`` is false). SWAE: ``MSE(decoder(encoder(x̃)), x̃) + λ · SW_2²(codes, prior samples)``
    (Kolouri et al. 2018). ``generator`` makes the prior samples and projections reproducible
    (validation).

    Returns:
        ``{"loss", "recon"}`` and, for SWAE, ``"swd"`` (scalar tensors).
    """
    cfg = model.config
    xs = model.standardise(x)
    inp = model.corrupt(xs) if (train and cfg.kind == "dae") else xs
    z = model.encoder(inp)
    recon = torch.nn.functional.mse_loss(model.decoder(z), xs)
    out = {"loss": recon, "recon": recon}
    if cfg.kind == "swae":
        prior = sample_prior(cfg.prior, z.shape[0], z.shape[1], generator=generator, device=z.device).to(z.dtype)
        swd = sliced_wasserstein(z, prior, cfg.swd_projections, generator=generator)
        out["swd"] = swd
        out["loss"] = recon + cfg.swd_weight * swd
    return out


class AutoencoderModule(L.LightningModule):
    """Lightning module of a feature autoencoder (:func:`autoencoder_loss`; seeded validation draws), AdamW."""

    def __init__(self, model: Any, cfg: EncoderTrainConfig) -> None:
        super().__init__()
        self.model, self.cfg = model, cfg

    def training_step(self, batch: Any, _: int) -> torch.Tensor:
        (x,) = batch
        parts = autoencoder_loss(self.model, x, train=True)
        for k, v in parts.items():
            self.log(f"train_{k}", v, on_epoch=True, sync_dist=True, on_step=False, batch_size=len(x))
        return parts["loss"]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        (x,) = batch
        g = torch.Generator().manual_seed(self.cfg.seed + 1000 + batch_idx)
        parts = autoencoder_loss(self.model, x, train=False, generator=g)
        for k, v in parts.items():
            self.log(f"val_{k}" if k != "loss" else "val_loss", v, on_epoch=True, sync_dist=True, batch_size=len(x))

    def configure_optimizers(self) -> Any:
        return torch.optim.AdamW(self.model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)


def _label_column(ds: Any, wanted: str | None) -> str | None:
    cols = ds.columns()
    if wanted:
        ds.labels(wanted)  # unknown column: fails naming the available ones
        return wanted
    return next((c for c in ("label", "artist") if c in cols), None)


def train_encoder(cfg: EncoderTrainConfig, out: str | os.PathLike[str], *, resume: bool = False,
                  extractor: FeatureExtractor | None = None, progress: bool = False) -> dict[str, Any]:
    """Train a DAE or SWAE on a collection's cached backbone features and save it into ``out/model``.

    Args:
        cfg: the run's settings.
        out: run directory (``config.json``, ``features.npz``, ``metrics.csv``, checkpoints, ``model/``,
            ``evaluation.json``).
        resume: continue an interrupted run in ``out``.
        extractor: a ready :class:`FeatureExtractor` (tests pass a tiny one); by default the
            configured backbone.
        progress: show Lightning's progress bar.

    Returns:
        ``{"run", "model", "kind", "code_dim", "images", "train", "val", "evaluation", "embedder"}``;
        ``evaluation`` holds the best epoch's validation losses (``val_loss``, ``val_recon``,
        ``val_swd``), ``epochs`` and, with labels, ``retrieval`` (mAP@10 of frozen features and of
        codes; ``None`` where no label has two images); ``embedder`` is the registry name and config
        that use the encoder (``create_embedder(**...)`` style: name ``"dae"``/``"swae"``, ``model``).

    Raises:
        InvalidParameterError: fewer than 4 readable images, an unknown label column, or a run
            folder that already holds a run (without ``resume``).
    """
    from artlens.paintings.datasets import load_dataset
    from artlens.paintings.search import mean_average_precision_at_k

    feature_device(cfg.trainer)  # a GPU asked for and missing: refused before the run folder is made
    run, cfg = open_run(out, cfg, resume=resume)
    device = feature_device(cfg.trainer)
    ds = load_dataset(cfg.data)
    label_col = _label_column(ds, cfg.label_column)
    if extractor is None:
        given: dict[str, Any] = {}
        if not cfg.model.pretrained_backbone:
            from artlens.models.backbones import create_backbone

            given["model"], given["preprocess"] = create_backbone(cfg.model.backbone, pretrained=False)
        extractor = FeatureExtractor(cfg.model.backbone, n_patches=cfg.model.n_patches, max_side=cfg.model.max_side,
                                     workers=cfg.workers, **given)
    move_extractor(extractor, device)  # features on the device the trainer's accelerator asks for
    f = cached_features(ds.paths(), extractor, cfg.feature_cache or run / "features.npz")
    if f.failures:
        import warnings

        warnings.warn(f"{len(f.failures)} images could not be read and were left out (first: {f.failures[0][1]})",
                      stacklevel=2)
    n = len(f.paths)
    if n < 4:
        raise InvalidParameterError(f"{cfg.data}: {n} readable images; an autoencoder needs at least 4")
    x = feature_vectors(f.global_, f.patches)
    split = holdout_split(np.arange(n), val_fraction=cfg.val_fraction, seed=cfg.seed, min_val=2, min_train=2)
    val_idx, train_idx = split["val"], split["train"]

    model = make_autoencoder(cfg.autoencoder_config(x.shape[1]))
    model.set_standardisation(torch.from_numpy(x[train_idx]))
    module = AutoencoderModule(model, cfg)
    g = torch.Generator().manual_seed(cfg.seed)
    bs = min(cfg.batch_size, len(train_idx))
    train_dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x[train_idx])),
                                           batch_size=bs, shuffle=True, generator=g, drop_last=len(train_idx) > bs)
    val_dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x[val_idx])),
                                         batch_size=max(2, min(cfg.batch_size, len(val_idx))))
    trainer, best = fit(module, train_dl, val_dl, cfg.trainer, run, resume=resume, enable_progress_bar=progress)
    model = module.model.eval()
    if not trainer.is_global_zero:  # a further DDP process: rank 0 evaluates and writes the model
        return {"run": str(run), "model": str((run / "model").resolve()), "kind": cfg.model.kind, "images": n}

    with torch.inference_mode():  # the best epoch's weights, on the whole validation set
        parts = autoencoder_loss(model, torch.from_numpy(x[val_idx]), train=False,
                                 generator=torch.Generator().manual_seed(cfg.seed + 1000))
    evaluation: dict[str, Any] = {f"val_{k}": float(v) for k, v in parts.items()}
    evaluation["epochs"] = int(trainer.current_epoch)
    if label_col:
        labels_all = ds.labels(label_col)
        keep = {p: i for i, p in enumerate(ds.paths())}
        ys = [labels_all[keep[p]] or None for p in f.paths]
        codes = encode_vectors(model, x)
        evaluation["retrieval"] = {
            "label_column": label_col, "k": 10, "images": n,
            "map_at_10_frozen": _finite(mean_average_precision_at_k(x, ys, k=10)),
            "map_at_10_codes": _finite(mean_average_precision_at_k(codes, ys, k=10)),
            "note": "every image is a query against the whole collection; labels are not used in training",
        }
    save_autoencoder(model, run / "model", extra={
        "trained_on": {"data": cfg.data, "images": {"train": int(len(train_idx)), "val": int(len(val_idx))},
                       "features": str(cfg.feature_cache or run / "features.npz")},
        "evaluation": evaluation, "train_config": cfg.model_dump(),
        "best_checkpoint": str(best.best_model_path or "")},
        backbone=None if cfg.model.pretrained_backbone else extractor.model, backbone_checksum=extractor.checksum)
    (run / "evaluation.json").write_text(json.dumps({"evaluation": evaluation, "kind": cfg.model.kind,
                                                     "images": {"train": int(len(train_idx)),
                                                                "val": int(len(val_idx))}}, indent=2) + "\n")
    model_dir = str((run / "model").resolve())
    return {"run": str(run), "model": model_dir, "kind": cfg.model.kind, "code_dim": cfg.model.code_dim, "images": n,
            "train": int(len(train_idx)), "val": int(len(val_idx)), "evaluation": evaluation,
            "embedder": {"name": cfg.model.kind, "config": {"model": model_dir}}}


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None
