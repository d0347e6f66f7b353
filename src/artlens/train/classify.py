"""Training painting classifiers (``artlens classify train``).

Any label column of an imported dataset (:func:`artlens.paintings.datasets.load_dataset`: a CSV
with ``path``/``file`` and label columns, or a folder of ``<label>/<image>`` subfolders) can be
learned: style, genre, medium, depiction.

Training runs in **stages** (:class:`Stage`), each a Lightning fit with its own learning rate,
cosine schedule after a linear warm-up, early stopping on the validation loss and a resumable
checkpoint (``RUN/stage-N/``):

- a stage with ``unfreeze = 0`` keeps the backbone frozen: every image's features (global view,
  ``n_tiles`` grid tiles at full resolution, the mirrored global view and ``model.crops`` crops of the
  whole image; ``feature_pooling``
  ``"stats"`` by default, see :data:`~artlens.paintings.features.FEATURE_POOLINGS`) are computed
  **once** and cached (``RUN/features_*.npz``, :func:`~artlens.paintings.features.cached_features`); the head
  then trains in seconds per epoch. Each step sees a random subset of ``tiles_per_step`` of an
  image's cached tiles and one of its global views, drawn with equal chances: the view itself, its
  mirror image or one of ``model.crops`` crops of the whole image (augmentation; the crops are cached
  too, and test-time augmentation averages over the same views).
- a stage with ``unfreeze = n > 0`` trains the backbone's last ``n`` layer groups
  (:func:`~artlens.train.finetune.set_trainable`) and the head end to end on images: random
  resized crop (area ≥ ``crop_scale``) and mirroring of the whole image, ``tiles_per_step`` tiles at
  random places at full resolution; colour jitter only when asked (colour is evidence of style).
  A stage whose best validation loss is worse than the earlier stages' is undone (with a notice).

Class imbalance is handled by a class-weighted loss (``balance="loss"``, weights
:func:`~artlens.paintings.datasets.class_weights`) or by balanced sampling (``"sampler"``), with
label smoothing. Splits come from the CSV's split column (``train``/``val``/``test``); without one
a seeded stratified split is made (:func:`~artlens.train.splits.holdout_split`, ``by="class"``).
With ``refit_train_val`` (frozen backbone only) a fresh head is finally trained on train + val for
the number of epochs chosen on val. With ``heads = K > 1`` (frozen backbone only) K heads are trained
with seeds ``seed, seed + 1, ...`` (each refitted when asked), saved in ``RUN/heads/head-k/`` and
``RUN/model`` is their average blend (:func:`~artlens.paintings.classify.save_blend`); ``tta`` is saved
with the model as its default for prediction and evaluation. ``blend_variants`` (e.g. ``["global",
"patch"]`` beside the two-branch heads, the CLI's default) trains K heads of each further variant on
the same cached features and adds them to the blend: global heads see no tiles, patch heads no
mirrored views, as runs of their own would.

Evaluation (:func:`~artlens.paintings.evaluate.classification_metrics`,
:func:`~artlens.paintings.evaluate.evaluate_classifier`) lives in :mod:`artlens.paintings.evaluate`,
which never imports this module.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning as L
import numpy as np
import torch
from pydantic import BaseModel, Field, model_validator

from artlens.devices import batch_size_for, is_rank_zero
from artlens.errors import InvalidParameterError
from artlens.models.heads import POOLINGS, VARIANTS, ImageClassifier, TwoBranchHead
from artlens.paintings.classify import Classifier, ClassifierConfig, save_classifier, softmax
from artlens.paintings.evaluate import classification_metrics, evaluate_classifier
from artlens.paintings.features import (
    FEATURE_POOLINGS,
    FeatureExtractor,
    Features,
    cached_features,
    normalise_views,
    tile_boxes,
    tile_grid_size,
)
from artlens.train.finetune import set_trainable
from artlens.train.runs import (
    TrainerConfig,
    TrainingConfig,
    fit,
    make_trainer,
    quiet_lightning,
)
from artlens.train.splits import holdout_split

VAL_NAMES = ("val", "valid", "validation")


class Stage(BaseModel):
    """One training stage: how many backbone layer groups are trainable, for how many epochs, at
    which peak learning rate."""

    unfreeze: int = Field(default=0, ge=-1)
    epochs: int = Field(..., ge=1)
    lr: float = Field(default=1e-3, gt=0)


def parse_stages(text: str) -> list[Stage]:
    """Stages from ``"UNFREEZE:EPOCHS:LR,..."``, e.g. ``"0:60:1e-3,2:4:1e-4,4:4:3e-5"``.

    Example:
        >>> [s.unfreeze for s in parse_stages("0:30:1e-3,2:3:1e-4")]
        [0, 2]
    """
    stages = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        bits = part.split(":")
        try:
            if len(bits) != 3:
                raise ValueError
            stages.append(Stage(unfreeze=int(bits[0]), epochs=int(bits[1]), lr=float(bits[2])))
        except ValueError:
            raise InvalidParameterError(f"bad stage {part!r}: use UNFREEZE:EPOCHS:LR, e.g. 2:4:1e-4") from None
    if not stages:
        raise InvalidParameterError("no training stage given")
    return stages


LEGACY_MODEL_KEYS = ("variant", "backbone", "pretrained_backbone", "feature_pooling", "n_tiles", "max_side", "hidden",
                     "dropout", "pooling")
"""Classifier settings that older configs (and their run folders' ``config.json``) held at the top level."""

# set by training, never by the config: the label column follows the config's own (see ClassifierTrainConfig)
_TRAINED_FIELDS = ("classes", "feature_dim", "feature_levels", "backbone_checkpoint")


def _default_model() -> ClassifierConfig:
    """The classifier a training run builds unless told otherwise: two-branch, stage-statistics features
    (the inference default of :class:`~artlens.paintings.classify.ClassifierConfig`, ``"avg"``, is that
    of models saved before statistics pooling existed). ``classes`` is empty until training fills it."""
    return ClassifierConfig(classes=[], feature_pooling="stats")


class ClassifierTrainConfig(TrainingConfig):
    """Everything that defines a classifier training run (saved in ``RUN/config.json``).

    The classifier itself is described by ``model``, the
    :class:`~artlens.paintings.classify.ClassifierConfig` that is saved with the trained model
    (``cfg.model.variant``, the backbone and its feature pooling, ``n_tiles``, ``max_side``, the head's
    ``hidden``, ``dropout``, ``pooling`` and ``attention_dim``); its default is :func:`_default_model`,
    and a ``model`` given as a dict changes only the fields it names (a ``ClassifierConfig`` instance is
    taken whole, with its own defaults). The Lightning settings are in ``trainer``
    (:class:`~artlens.train.runs.TrainerConfig`; each stage sets its own ``max_epochs``).

    The fields of ``model`` that only training knows are filled in when the classifier is built
    (:meth:`classifier_config`), not chosen here: ``classes`` (from the data), ``feature_dim`` and
    ``feature_levels`` (from the feature extractor), ``n_tiles`` is 0 for the ``"global"`` variant,
    and ``backbone_checkpoint`` is written by :func:`~artlens.paintings.classify.save_classifier`
    when the backbone is saved; a config that sets one of these in ``model`` is refused.
    ``model.label_column`` always follows the config's ``label_column`` (the column read for training).

    Run folders written when these settings were copied to the top level of the config
    (``variant``, ``hidden``... beside ``data``) still load: the flat keys (:data:`LEGACY_MODEL_KEYS`)
    are moved under ``model`` when the config is read (:func:`~artlens.train.runs.nest_model_settings`).
    """

    data: str
    label_column: str = "label"
    split_column: str | None = "split"
    images_dir: str | None = None
    model: ClassifierConfig = Field(default_factory=_default_model)
    legacy_model_keys: ClassVar[tuple[str, ...]] = LEGACY_MODEL_KEYS
    tiles_per_step: int = Field(default=2, ge=1)  # random subset of model.n_tiles seen per image and step
    balance: Literal["loss", "sampler", "none"] = "loss"
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    mirror: bool = True  # mirrored global views (and model.crops crops): augmentation (frozen stage) and TTA
    tta: bool = False  # evaluate with test-time augmentation (mirrored view, crops); saved as the model's default
    stages: list[Stage] = Field(default_factory=lambda: [Stage(unfreeze=0, epochs=60, lr=1e-3)])
    weight_decay: float = 1e-2
    warmup_epochs: int = 2
    batch_size: int = 32
    image_batch_size: int = 8
    color_jitter: float = Field(default=0.0, ge=0, le=0.5)
    crop_scale: float = Field(default=0.8, gt=0, le=1)
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    drop_rare: bool = False
    min_per_class: int = 2
    refit_train_val: bool = False
    heads: int = Field(default=1, ge=1)  # frozen-backbone heads trained with seeds seed, seed + 1, ...; > 1: a blend
    # further variants (global, patch, two_branch) trained `heads` times each on the same cached features
    # and averaged with the main variant's heads (frozen backbone only)
    blend_variants: list[str] = Field(default_factory=list)
    feature_cache: str | None = None  # folder for feature caches (default: the run folder)
    workers: int = 2  # image-decoding threads and data-loader workers of end-to-end stages
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(patience=10, checkpoint_every_n_steps=200))

    @model_validator(mode="after")
    def _check_model(self) -> ClassifierTrainConfig:
        m = self.model
        choices = {"variant": VARIANTS, "feature_pooling": FEATURE_POOLINGS, "pooling": POOLINGS}
        for name, allowed in choices.items():
            if getattr(m, name) not in allowed:
                raise ValueError(f"model.{name} {getattr(m, name)!r}: use one of {', '.join(allowed)}")
        ranges = {"n_tiles": (m.n_tiles >= 0, ">= 0"), "crops": (m.crops >= 0, ">= 0"),
                  "max_side": (m.max_side >= 64, ">= 64"),
                  "hidden": (m.hidden >= 0, ">= 0"), "attention_dim": (m.attention_dim >= 1, ">= 1"),
                  "dropout": (0 <= m.dropout < 1, "in [0, 1)")}
        for name, (ok, need) in ranges.items():
            if not ok:
                raise ValueError(f"model.{name} must be {need}, got {getattr(m, name)}")
        for v in self.blend_variants:
            if v not in VARIANTS:
                raise ValueError(f"blend_variants: unknown variant {v!r}; use one of {', '.join(VARIANTS)}")
            if v == m.variant or self.blend_variants.count(v) > 1:
                raise ValueError(f"blend_variants: {v!r} is the main variant or given twice")
            if v != "global" and (m.variant == "global" or m.n_tiles < 1):
                raise ValueError(f"blend_variants: the {v} variant needs tiles, which a global model does not extract")
        trained = [f"model.{k}" for k in _TRAINED_FIELDS if getattr(m, k)]
        if trained:
            raise ValueError(f"{', '.join(trained)}: set by training; leave unset")
        m.label_column = self.label_column
        return self

    def classifier_config(self, classes: list[str], dim: int, levels: Sequence[str] = ()) -> ClassifierConfig:
        """``model`` with what training knows filled in: the classes, the feature length and levels
        (and no crops without mirrored views: the crops extend them)."""
        trained = replace(self.model, classes=list(classes), label_column=self.label_column, feature_dim=dim,
                          feature_levels=list(levels), crops=self.model.crops if self.mirror else 0)
        return _variant_config(trained, self.model.variant)


# -- splits ---------------------------------------------------------------------------------------------------


def dataset_splits(labels: Sequence[str], split_values: Sequence[str] | None, cfg: ClassifierTrainConfig
                   ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Train / val / test indices of labelled items and the classes to learn.

    Items with an empty label are left out (with a notice). Classes with fewer than
    ``min_per_class`` images raise an error, or are dropped with a notice when ``drop_rare``.
    ``split_values`` (the split column) is used when given: ``train``, ``val`` (or ``valid``,
    ``validation``), ``test``; a missing val split is cut from train (stratified).

    Raises:
        InvalidParameterError: too few images per class, fewer than two classes, no train split.
    """
    lab = np.asarray(labels, dtype=object)
    keep = np.array([bool(str(v).strip()) for v in lab])
    if not keep.all():
        warnings.warn(f"{int((~keep).sum())} images have no {cfg.label_column!r} label and were left out",
                      stacklevel=3)
    counts = Counter(lab[keep])
    rare = sorted(c for c, n in counts.items() if n < cfg.min_per_class)
    if rare:
        listing = ", ".join(f"{c!r} ({counts[c]})" for c in rare[:10])
        if not cfg.drop_rare:
            raise InvalidParameterError(
                f"{len(rare)} classes of {cfg.label_column!r} have fewer than {cfg.min_per_class} images: {listing}; "
                "one image is needed for training and one for validation (add images or pass `drop_rare=True`)",
                param="drop_rare")
        warnings.warn(f"left out {len(rare)} classes with fewer than {cfg.min_per_class} images: {listing}",
                      stacklevel=3)
        keep &= ~np.isin(lab, rare)
    items = np.flatnonzero(keep)
    if len(set(lab[items])) < 2:
        raise InvalidParameterError(f"column {cfg.label_column!r} has fewer than two classes to learn")
    if split_values is not None:
        sv = np.asarray([str(s).strip().lower() for s in split_values], dtype=object)[items]
        if not (sv == "train").any():
            raise InvalidParameterError(f"no image has {cfg.split_column} = 'train'; values are: "
                                        f"{', '.join(sorted(set(sv)))}")
        split = {"train": items[sv == "train"], "val": items[np.isin(sv, VAL_NAMES)], "test": items[sv == "test"]}
        if split["val"].size == 0:
            warnings.warn(f"no validation split in {cfg.split_column!r}: {cfg.val_fraction:.0%} of train is held out "
                          "(stratified)", stacklevel=3)
            inner = holdout_split(list(lab[split["train"]]), val_fraction=cfg.val_fraction, seed=cfg.seed,
                                  by="class")
            split = {"train": split["train"][inner["train"]], "val": split["train"][inner["val"]],
                     "test": split["test"]}
    else:
        inner = holdout_split(list(lab[items]), val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction,
                              seed=cfg.seed, by="class")
        split = {k: items[v] for k, v in inner.items()}
    classes = sorted(set(lab[split["train"]]))
    if len(classes) < 2:
        raise InvalidParameterError("the training split holds fewer than two classes")
    unseen = sorted(set(lab[np.concatenate([split["val"], split["test"]])]) - set(classes))
    if unseen:
        warnings.warn(f"{len(unseen)} classes appear in val/test but not in train and cannot be predicted: "
                      f"{', '.join(map(str, unseen[:10]))}", stacklevel=3)
        split["val"] = split["val"][np.isin(lab[split["val"]], classes)]
    if split["val"].size == 0:
        raise InvalidParameterError("no validation images: add a 'val' split or more images per class")
    return split, classes


# -- datasets ---------------------------------------------------------------------------------------------------


class FeatureSet(torch.utils.data.Dataset):
    """Cached features of labelled images: ``(global (D,), tiles (k, D), label)`` per item.

    ``alternates`` are other global views of the items, ``(n, D)`` or ``(n, V, D)``: the mirrored
    view, crops of the whole image. In training mode each item gets a random subset of
    ``tiles_per_step`` of its cached tiles and one of its ``1 + V`` global views with equal chances
    (with the mirrored view alone: it half of the time); the draw depends on (seed, epoch, item) only.
    In evaluation mode all tiles and the plain global view are returned.
    """

    def __init__(self, global_: np.ndarray, tiles: np.ndarray, y: np.ndarray, *, alternates: np.ndarray | None = None,
                 train: bool = False, tiles_per_step: int = 4, seed: int = 0) -> None:
        self.g, self.t, self.y = global_, tiles, np.asarray(y, np.int64)
        self.m = alternates[:, None] if alternates is not None and alternates.ndim == 2 else alternates
        self.train, self.k, self.seed, self.epoch = train, int(tiles_per_step), int(seed), 0

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, np.int64]:
        g, t = self.g[i], self.t[i]
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, int(i)])
            if self.m is not None:
                j = int(rng.random() * (self.m.shape[1] + 1))  # the last index: the view itself
                g = self.m[i, j] if j < self.m.shape[1] else g
            if t.shape[0] > self.k:
                t = t[np.sort(rng.choice(t.shape[0], self.k, replace=False))]
        return np.asarray(g, np.float32), np.asarray(t, np.float32), self.y[i]


class ImageSet(torch.utils.data.Dataset):
    """Labelled images as view stacks ``(1 + T, 3, S, S)`` for end-to-end stages.

    Training: random resized crop of the whole image (area fraction in [``crop_scale``, 1], aspect
    ratio in [3/4, 4/3]) for the global view, random mirroring of the image, ``tiles_per_step``
    tiles at random places at full resolution (long side capped at ``max_side``), colour jitter of
    brightness / contrast / saturation by ± ``color_jitter`` (0 by default). Evaluation: the global
    view and the ``n_tiles`` grid tiles, as at inference.
    """

    def __init__(self, paths: Sequence[str], y: Sequence[int] | np.ndarray, *, size: int, preprocess: Any,
                 max_side: int, n_tiles: int, tiles_per_step: int, train: bool, crop_scale: float = 0.8,
                 color_jitter: float = 0.0, seed: int = 0) -> None:
        self.paths, self.y = list(paths), np.asarray(y, np.int64)
        self.size, self.prep, self.max_side = size, preprocess, max_side
        self.n_tiles, self.k, self.train = n_tiles, tiles_per_step, train
        self.crop_scale, self.jitter, self.seed, self.epoch = crop_scale, color_jitter, seed, 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, np.int64]:
        from PIL import Image, ImageEnhance, ImageOps

        from artlens.paintings.images import load_rgb

        s = self.size
        img = load_rgb(self.paths[i], notify=False, min_side=s, min_long_side=self.max_side)
        w, h = tile_grid_size(img.size[0], img.size[1], self.max_side, s)
        grid = img if (w, h) == img.size else img.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=3.0)
        if not self.train:
            boxes = tile_boxes(w, h, s, self.n_tiles) if self.n_tiles else []
            crops = [img.resize((s, s), Image.Resampling.BILINEAR, reducing_gap=3.0), *(grid.crop(b) for b in boxes)]
            return torch.from_numpy(normalise_views(crops, self.prep.mean, self.prep.std)), self.y[i]
        info = torch.utils.data.get_worker_info()  # worker seeds change every epoch; in-process: the epoch
        rng = np.random.default_rng([self.seed, info.seed if info is not None else self.epoch, int(i)])
        if rng.random() < 0.5:
            img, grid = ImageOps.mirror(img), ImageOps.mirror(grid)
        iw, ih = img.size
        area = rng.uniform(self.crop_scale, 1.0) * iw * ih
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw = int(min(iw, round(math.sqrt(area * aspect))))
        ch = int(min(ih, round(math.sqrt(area / aspect))))
        x0, y0 = int(rng.integers(0, iw - cw + 1)), int(rng.integers(0, ih - ch + 1))
        crops = [img.crop((x0, y0, x0 + cw, y0 + ch)).resize((s, s), Image.Resampling.BILINEAR, reducing_gap=3.0)]
        if self.n_tiles:
            for _ in range(self.k):
                tx, ty = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
                crops.append(grid.crop((tx, ty, tx + s, ty + s)))
        if self.jitter > 0:
            enhancers = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)
            factors = [1 + rng.uniform(-self.jitter, self.jitter) for _ in enhancers]
            for k, c in enumerate(crops):
                for enh, f in zip(enhancers, factors, strict=True):
                    c = enh(c).enhance(f)
                crops[k] = c
        return torch.from_numpy(normalise_views(crops, self.prep.mean, self.prep.std)), self.y[i]


# -- Lightning ----------------------------------------------------------------------------------------------------


class ClassifierModule(L.LightningModule):
    """Lightning module training a classifier: ``kind="features"``: a :class:`TwoBranchHead` on
    ``(global, tiles, y)`` batches; ``"images"``: an :class:`ImageClassifier` on ``(views, y)``.

    The loss is cross-entropy with optional class weights and label smoothing; validation logs the
    plain cross-entropy (``val_loss``, used for early stopping and the best checkpoint) and
    accuracy. AdamW over the trainable parameters, linear warm-up then cosine decay per epoch.
    """

    class_weights: torch.Tensor | None

    def __init__(self, model: torch.nn.Module, *, kind: Literal["features", "images"], lr: float, epochs: int,
                 weight_decay: float = 1e-2, warmup_epochs: int = 2, class_weights: torch.Tensor | None = None,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.model, self.kind, self.lr, self.epochs = model, kind, lr, epochs
        self.weight_decay, self.warmup_epochs, self.label_smoothing = weight_decay, warmup_epochs, label_smoothing
        if class_weights is not None:
            self.register_buffer("class_weights", class_weights.float())
        else:
            self.class_weights = None

    def _logits(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "images":
            views, y = batch
            return self.model(views), y
        g, t, y = batch
        head = self.model
        return head(g if head.use_global else None, t if head.use_tiles else None), y

    def training_step(self, batch: Any, _: int) -> torch.Tensor:
        logits, y = self._logits(batch)
        loss = torch.nn.functional.cross_entropy(logits, y, weight=self.class_weights,
                                                 label_smoothing=self.label_smoothing)
        self.log("train_loss", loss, on_epoch=True, sync_dist=True, on_step=False, batch_size=len(y))
        return loss

    def validation_step(self, batch: Any, _: int) -> None:
        logits, y = self._logits(batch)
        loss = torch.nn.functional.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        self.log("val_loss", loss, on_epoch=True, sync_dist=True, batch_size=len(y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean(), on_epoch=True, sync_dist=True, batch_size=len(y))

    def configure_optimizers(self) -> Any:
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        warmup, epochs = self.warmup_epochs, self.epochs

        def factor(epoch: int) -> float:
            if epoch < warmup:
                return (epoch + 1) / (warmup + 1)
            span = max(1, epochs - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (epoch - warmup) / span)))

        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.LambdaLR(opt, factor)}


class EpochTimer(L.Callback):
    """Wall time of each training epoch (seconds), and the data sets' epoch counters."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._t = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ds = getattr(trainer.train_dataloader, "dataset", None)
        if ds is not None and hasattr(ds, "epoch"):
            ds.epoch = trainer.current_epoch
        self._t = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._t)


def _loader(ds: torch.utils.data.Dataset, y: np.ndarray, cfg: ClassifierTrainConfig, batch: int, *, train: bool,
            workers: int = 0) -> torch.utils.data.DataLoader:
    from artlens.paintings.datasets import sample_weights

    g = torch.Generator().manual_seed(cfg.seed)
    kw: dict[str, Any] = {"batch_size": batch, "num_workers": workers}
    if train and cfg.balance == "sampler":
        w = [float(v) for v in sample_weights(list(y))]  # float64 values, as the sampler keeps them
        sampler = torch.utils.data.WeightedRandomSampler(w, num_samples=len(y), replacement=True, generator=g)
        return torch.utils.data.DataLoader(ds, sampler=sampler, **kw)
    return torch.utils.data.DataLoader(ds, shuffle=train, generator=g if train else None, **kw)


def loss_class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """Per-class loss weights ``N / (K · n_c)`` (scikit-learn's ``compute_class_weight("balanced")``,
    ``K`` the classes present) in class-index order; a class absent from ``y`` gets weight 1."""
    from sklearn.utils.class_weight import compute_class_weight

    y = np.asarray(y, dtype=np.int64)
    present = np.unique(y)
    w = np.ones(n_classes, dtype=np.float64)
    if present.size:
        w[present] = compute_class_weight("balanced", classes=present, y=y)
    return torch.tensor(w, dtype=torch.float32)


def _stage_trainer(cfg: ClassifierTrainConfig, epochs: int, *, end_to_end: bool = False) -> TrainerConfig:
    """The trainer settings of one stage. An end-to-end stage on several devices runs DDP with
    ``find_unused_parameters``: the trainable backbone groups may hold layers that the chosen feature
    pooling does not use (``stats`` pools the stages before ``conv_head``), which plain DDP refuses."""
    update: dict[str, Any] = {"max_epochs": epochs}
    devices = cfg.trainer.devices
    several = (isinstance(devices, int) and devices > 1) or (isinstance(devices, list) and len(devices) > 1) or \
        (isinstance(devices, str) and "," in devices.strip(","))
    if end_to_end and several and cfg.trainer.strategy in ("ddp", "auto"):
        update["strategy"] = "ddp_find_unused_parameters_true"
    return cfg.trainer.model_copy(update=update)


def fit_head(head: TwoBranchHead, train: tuple[np.ndarray, np.ndarray, np.ndarray], val: tuple | None,
             cfg: ClassifierTrainConfig, run: str | os.PathLike[str], *, stage: Stage | None = None,
             alternates: np.ndarray | None = None, resume: bool = False) -> dict[str, Any]:
    """Train a head on cached features with Lightning (one frozen-backbone stage).

    Args:
        head: the head to train (its normalisation is set from ``train``'s features here).
        train: ``(global (n, D), tiles (n, T, D), y (n,))`` of the training images.
        val: the same for validation images; ``None`` trains for the stage's epochs without
            validation (refit on train + val).
        cfg: balance, label smoothing, batch size, tiles per step, seed, Lightning settings.
        run: folder of this stage (checkpoints, ``metrics.csv``).
        stage: epochs and learning rate (default: the config's first stage).
        alternates: other global views of the training images, ``(n, D)`` or ``(n, V, D)`` (the mirrored
            view, crops: augmentation, :class:`FeatureSet`).
        resume: continue from ``run/last.ckpt``.

    Returns:
        ``{"epochs", "best_epoch", "seconds_per_epoch", "best_val_loss"}``.
    """
    quiet_lightning()
    stage = stage or cfg.stages[0]
    g, t, y = train
    head.set_normalisation(g, t if t.shape[1] else None)
    k = len(head.classifier.bias)
    cw = loss_class_weights(y, k) if cfg.balance == "loss" else None
    module = ClassifierModule(head, kind="features", lr=stage.lr, epochs=stage.epochs, weight_decay=cfg.weight_decay,
                              warmup_epochs=cfg.warmup_epochs, class_weights=cw, label_smoothing=cfg.label_smoothing)
    train_ds = FeatureSet(g, t, y, alternates=alternates, train=True, tiles_per_step=cfg.tiles_per_step, seed=cfg.seed)
    train_dl = _loader(train_ds, y, cfg, cfg.batch_size, train=True)
    timer = EpochTimer()
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    if val is None:  # the stage's epochs, no validation, no checkpoints, no step or time cap
        tcfg = cfg.trainer.model_copy(update={"max_epochs": stage.epochs, "max_steps": -1, "max_time": None})
        trainer, _ = make_trainer(tcfg, run, validation=False, callbacks=[timer])
        trainer.fit(module, train_dl)
        head.eval()
        return {"epochs": trainer.current_epoch, "best_epoch": None, "seconds_per_epoch": _mean(timer.seconds),
                "best_val_loss": None}
    val_ds = FeatureSet(*val, train=False)
    val_dl = _loader(val_ds, val[2], cfg, 256, train=False)
    trainer, best = fit(module, train_dl, val_dl, _stage_trainer(cfg, stage.epochs), run, resume=resume,
                        extra_callbacks=[timer])
    head.eval()
    best_epoch = None
    if best.best_model_path:
        best_epoch = int(torch.load(best.best_model_path, map_location="cpu", weights_only=True).get("epoch", -1))
    score = best.best_model_score
    return {"epochs": trainer.current_epoch, "best_epoch": best_epoch, "seconds_per_epoch": _mean(timer.seconds),
            "best_val_loss": float(score) if score is not None else None}


def fit_images(model: ImageClassifier, stage: Stage, train: ImageSet, val: ImageSet, cfg: ClassifierTrainConfig,
               run: str | os.PathLike[str], *, resume: bool = False) -> dict[str, Any]:
    """One end-to-end stage: unfreeze the backbone's last ``stage.unfreeze`` groups and train on images."""
    quiet_lightning()
    trainable = set_trainable(model.backbone, stage.unfreeze)
    k = len(model.head.classifier.bias)
    cw = loss_class_weights(train.y, k) if cfg.balance == "loss" else None
    module = ClassifierModule(model, kind="images", lr=stage.lr, epochs=stage.epochs, weight_decay=cfg.weight_decay,
                              warmup_epochs=min(cfg.warmup_epochs, stage.epochs - 1), class_weights=cw,
                              label_smoothing=cfg.label_smoothing)
    timer = EpochTimer()
    model.train()  # frozen batch-norm layers stay in eval mode (ImageClassifier.train)
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
    train_dl = _loader(train, train.y, cfg, cfg.image_batch_size, train=True, workers=cfg.workers)
    val_dl = _loader(val, val.y, cfg, cfg.image_batch_size, train=False, workers=cfg.workers)
    trainer, best = fit(module, train_dl, val_dl, _stage_trainer(cfg, stage.epochs, end_to_end=True), Path(run),
                        resume=resume, extra_callbacks=[timer])
    model.eval()
    score = best.best_model_score
    return {"epochs": trainer.current_epoch, "trainable_parameters": len(trainable),
            "seconds_per_epoch": _mean(timer.seconds), "best_val_loss": float(score) if score is not None else None}


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


# -- the whole run ------------------------------------------------------------------------------------------------


def _backbone(cfg: ClassifierTrainConfig) -> tuple[Any, Any]:
    from artlens.models.backbones import create_backbone

    return create_backbone(cfg.model.backbone, pretrained=cfg.model.pretrained_backbone)


def cache_name(view: str, n_tiles: int, pooling: str) -> str:
    """File name of a feature cache: ``features_grid4.npz``, ``features_stats_mirror0.npz``..."""
    return f"features_{'' if pooling == 'avg' else pooling + '_'}{view}{n_tiles}.npz"


def extract_all(paths: list[str], cfg: ClassifierTrainConfig, backbone: Any, preprocess: Any, cache_dir: Path,
                device: str = "cpu") -> tuple[Features, Features | None, FeatureExtractor]:
    """Grid features (global + ``n_tiles`` tiles) and the other global views of ``paths``, cached in
    ``cache_dir`` (:func:`cache_name`), and the grid extractor.

    The other views come as one :class:`Features` (``None`` without ``mirror`` or for a patch-only
    model): ``global_`` the mirrored global view, ``patches`` the ``model.crops`` crops of the whole
    image (:func:`~artlens.paintings.features.crop_boxes`).

    ``device`` is where the backbone extracts them (:func:`~artlens.train.runs.feature_device`); the
    backbone is back on the CPU afterwards, where the training stages expect it."""
    n_tiles = cfg.model.n_tiles if cfg.model.variant != "global" else 0
    kw = dict(max_side=cfg.model.max_side, workers=cfg.workers, model=backbone, preprocess=preprocess,
              pooling=cfg.model.feature_pooling, device=device, batch_size=batch_size_for(device, 16, 64))
    ex = FeatureExtractor(cfg.model.backbone, view="grid", n_patches=n_tiles, **kw)
    folder = Path(cache_dir)
    f = cached_features(paths, ex, folder / cache_name("grid", n_tiles, cfg.model.feature_pooling))
    m = None
    if cfg.mirror and cfg.model.variant != "patch":
        exm = FeatureExtractor(cfg.model.backbone, view="mirror", n_patches=0, **kw)
        m = cached_features(f.paths, exm, folder / cache_name("mirror", 0, cfg.model.feature_pooling))
        if cfg.model.crops:
            exc = FeatureExtractor(cfg.model.backbone, view="crops", n_patches=cfg.model.crops, **kw)
            c = cached_features(m.paths, exc, folder / cache_name("crops", cfg.model.crops, cfg.model.feature_pooling))
            row = {p: i for i, p in enumerate(m.paths)}
            m = Features(paths=c.paths, global_=m.global_[[row[p] for p in c.paths]], patches=c.patches)
        if m.paths != f.paths:  # an image readable once and not twice: keep the common ones
            common = set(m.paths)
            f = _subset_features(f, [i for i, p in enumerate(f.paths) if p in common])
            row = {p: i for i, p in enumerate(m.paths)}
            m = _subset_features(m, [row[p] for p in f.paths])
    if device != "cpu":
        ex.model, ex.device = backbone.to("cpu"), "cpu"
    return f, m, ex


def _alternates(m: Features | None, rows: np.ndarray) -> np.ndarray | None:
    """The other global views of some images for :class:`FeatureSet`: ``(n, 1 + crops, D)``, the
    mirrored view first."""
    return None if m is None else np.concatenate([m.global_[rows, None], m.patches[rows]], axis=1)


def _subset_features(f: Features, idx: Sequence[int] | np.ndarray) -> Features:
    rows = np.asarray(idx, dtype=np.int64)
    return Features(paths=[f.paths[i] for i in rows], global_=f.global_[rows], patches=f.patches[rows],
                    failures=f.failures)


def train_classifier(cfg: ClassifierTrainConfig, out: str | os.PathLike[str], *, resume: bool = False,
                     report: str | os.PathLike[str] | None = "report.html", progress: bool = False) -> dict[str, Any]:
    """Train, evaluate and save a classifier into ``out/model``; returns a summary.

    The run folder holds ``config.json`` (this config), ``features_*.npz`` (cached frozen-backbone
    features), ``stage-N/`` (Lightning checkpoints and ``metrics.csv`` of each stage), ``model/``
    (the classifier: ``head.safetensors`` [+ ``backbone.safetensors``] + ``config.json``),
    ``evaluation.json`` and the HTML report (``report``, relative to the run; ``None``: none).

    Raises:
        InvalidParameterError: unknown label column (the message lists the columns), too few images
            per class, no train or val images, a tile count of 0 for a model with a patch branch.
    """
    from artlens.paintings.datasets import load_dataset
    from artlens.train.runs import feature_device, open_run

    if resume and (Path(out) / "config.json").is_file():  # a resumed run keeps its own settings
        cfg = type(cfg)(**json.loads((Path(out) / "config.json").read_text())["config"])
    if cfg.model.variant != "global" and cfg.model.n_tiles < 1:
        raise InvalidParameterError(f"the {cfg.model.variant} model needs tiles: n_tiles >= 1")
    ds = load_dataset(cfg.data, label_column=cfg.label_column, images_dir=cfg.images_dir)
    labels_all = ds.labels(cfg.label_column)  # raises for an unknown column, listing the columns
    split_values = ds.labels(cfg.split_column) if cfg.split_column and cfg.split_column in ds.columns() else None
    split, classes = dataset_splits(labels_all, split_values, cfg)  # bad input fails before RUN is created
    device = feature_device(cfg.trainer)  # likewise a GPU asked for and missing
    run, cfg = open_run(out, cfg, resume=resume)
    index = {c: i for i, c in enumerate(classes)}
    backbone, preprocess = _backbone(cfg)
    cache_dir = Path(cfg.feature_cache) if cfg.feature_cache and cfg.model.pretrained_backbone else run
    t0 = time.perf_counter()
    f, m, extractor = extract_all(ds.paths(), cfg, backbone, preprocess, cache_dir, device=device)
    extract_seconds = time.perf_counter() - t0
    if f.failures:
        warnings.warn(f"{len(f.failures)} images could not be read and were left out (first: {f.failures[0][1]})",
                      stacklevel=2)
    row = {p: i for i, p in enumerate(f.paths)}
    paths = ds.paths()

    def rows(idx: np.ndarray) -> np.ndarray:
        return np.array([row[paths[i]] for i in idx if paths[i] in row], dtype=np.int64)

    def labels_of(idx: np.ndarray) -> np.ndarray:
        return np.array([index[labels_all[i]] for i in idx if paths[i] in row], dtype=np.int64)

    def data(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r = rows(idx)
        return f.global_[r], f.patches[r], labels_of(idx)

    tr, va = data(split["train"]), data(split["val"])
    if len(tr[2]) == 0 or len(va[2]) == 0:
        raise InvalidParameterError("no readable training or validation image")
    ccfg = cfg.classifier_config(classes, int(f.global_.shape[1]), extractor.levels)
    head = ccfg.head()
    history: list[dict[str, Any]] = []
    model = ImageClassifier(backbone, head, pooling=ccfg.feature_pooling, levels=ccfg.feature_levels)
    fine_tuned = False
    best_loss = float("inf")  # best validation loss of the stages kept so far
    for k, stage in enumerate(cfg.stages):
        stage_dir = run / f"stage-{k + 1}"
        done = stage_dir / "done.json"
        weights = stage_dir / "weights.safetensors"
        if resume and done.is_file() and weights.is_file():
            from safetensors.torch import load_file

            model.load_state_dict(load_file(str(weights)), strict=True)
            history.append(json.loads(done.read_text()))
            fine_tuned |= stage.unfreeze != 0 and history[-1].get("kept", True)
            if history[-1].get("kept", True) and history[-1].get("best_val_loss") is not None:
                best_loss = min(best_loss, history[-1]["best_val_loss"])
            continue
        stage_resume = resume and (stage_dir / "last.ckpt").is_file()
        if stage.unfreeze == 0:
            if fine_tuned:
                raise InvalidParameterError("a frozen stage (unfreeze 0) must come before end-to-end stages")
            set_trainable(backbone, 0)
            info = fit_head(head, tr, va, cfg, stage_dir, stage=stage, resume=stage_resume,
                            alternates=_alternates(m, rows(split["train"])))
            info["kind"] = "frozen backbone, cached features"
        else:
            if k == 0:  # no frozen stage first: set the head's input statistics from the frozen features
                head.set_normalisation(tr[0], tr[1] if tr[1].shape[1] else None)
            sets = [ImageSet([f.paths[i] for i in rows(split[name])], labels_of(split[name]),
                             size=int(preprocess.input_size), preprocess=preprocess, max_side=cfg.model.max_side,
                             n_tiles=ccfg.n_tiles, tiles_per_step=cfg.tiles_per_step, train=name == "train",
                             crop_scale=cfg.crop_scale, color_jitter=cfg.color_jitter, seed=cfg.seed)
                    for name in ("train", "val")]
            before = {n: v.detach().clone() for n, v in model.state_dict().items()}
            info = fit_images(model, stage, sets[0], sets[1], cfg, stage_dir, resume=stage_resume)
            info["kind"] = f"end to end, last {stage.unfreeze} backbone groups trainable"
            if info["best_val_loss"] is not None and info["best_val_loss"] > best_loss:
                # the stage made the validation loss worse than the previous stages did: undo it
                model.load_state_dict(before)
                info["kept"] = False
                info["kind"] += " (undone: validation loss did not improve)"
                warnings.warn(f"stage {k + 1} did not improve the validation loss ({info['best_val_loss']:.4f} > "
                              f"{best_loss:.4f}); its weights were discarded", stacklevel=2)
            else:
                fine_tuned = True
        if info.get("kept", True) and info.get("best_val_loss") is not None:
            best_loss = min(best_loss, info["best_val_loss"])
        info.update({"stage": k + 1, "unfreeze": stage.unfreeze, "lr": stage.lr, "max_epochs": stage.epochs})
        from safetensors.torch import save_file

        if is_rank_zero():  # under DDP every process trains the stage; the first one records it
            save_file({n: v.detach().cpu().contiguous() for n, v in model.state_dict().items()}, str(weights))
            done.write_text(json.dumps(info, indent=2) + "\n")
        history.append(info)
    set_trainable(backbone, 0)
    backbone.eval()
    refit = None
    if cfg.refit_train_val:
        if fine_tuned:
            warnings.warn("refit on train + val applies to frozen-backbone models only; skipped", stacklevel=2)
        else:
            best_epoch = history[0].get("best_epoch")
            epochs = (best_epoch + 1) if best_epoch is not None and best_epoch >= 0 else cfg.stages[0].epochs
            both = np.concatenate([split["train"], split["val"]])
            head = ccfg.head()
            both_rows = rows(both)
            refit = fit_head(head, data(both), None, cfg, run / "refit",
                             stage=Stage(unfreeze=0, epochs=epochs, lr=cfg.stages[0].lr),
                             alternates=_alternates(m, both_rows))
            refit["epochs_from_validation"] = epochs
            model.head = head
    heads = [head]
    head_configs = [ccfg]
    extra_heads: list[dict[str, Any]] = []
    if cfg.heads > 1 or cfg.blend_variants:
        if fine_tuned or len(cfg.stages) > 1:
            warnings.warn("several heads (a blend) apply to one frozen-backbone stage only; one head trained",
                          stacklevel=2)
        else:
            both = np.concatenate([split["train"], split["val"]])
            # each variant sees what a run of its own would: no tiles for global heads, no mirrored
            # views for patch heads
            def view(d: tuple, c: ClassifierConfig) -> tuple:
                return d if c.uses_tiles else (d[0], d[1][:, :0], d[2])

            def other_views(idx: np.ndarray, c: ClassifierConfig) -> np.ndarray | None:
                return _alternates(m, rows(idx)) if c.uses_global else None

            jobs = [(ccfg, j) for j in range(1, cfg.heads)]
            jobs += [(_variant_config(ccfg, v), j) for v in cfg.blend_variants for j in range(cfg.heads)]
            for vcfg, j in jobs:
                h, info = _train_extra_head(vcfg, cfg.model_copy(update={"seed": cfg.seed + j}), view(tr, vcfg),
                                            view(va, vcfg), view(data(both), vcfg) if cfg.refit_train_val else None,
                                            run / f"head-{len(heads) + 1}", other_views(split["train"], vcfg),
                                            other_views(both, vcfg))
                info["variant"] = vcfg.variant
                heads.append(h)
                head_configs.append(vcfg)
                extra_heads.append(info)
    if not is_rank_zero():  # a further DDP process: rank 0 evaluates and writes the model
        return {"run": str(run), "model": str(run / "model"), "classes": classes, "stages": history}
    clfs = [Classifier(c, h, backbone=backbone, preprocess=preprocess)
            for c, h in zip(head_configs, heads, strict=True)]
    clf = clfs[0]
    # evaluation: cached features when the backbone stayed frozen, fresh ones otherwise
    evaluation: dict[str, Any] = {}
    items: dict[str, dict[str, Any]] = {}
    for name in ("val", "test"):
        idx = split[name]
        if idx.size == 0:
            continue
        r = rows(idx)
        if fine_tuned:
            ok, probs, _ = clf.predict_proba([f.paths[i] for i in r], tta=cfg.tta)
        else:
            fsub = _subset_features(f, r)
            msub = _subset_features(m, r) if (cfg.tta and m is not None) else None
            ok, probs = fsub.paths, np.mean([c.probabilities(fsub, msub if c.config.uses_global else None)
                                             for c in clfs], axis=0)
        truth = [labels_all[i] for i in idx if paths[i] in row]
        evaluation[name] = classification_metrics(truth, probs, classes)
        items[name] = {"paths": ok, "true": truth, "probs": probs}
    counts = {k: int(v.size) for k, v in split.items()}
    class_counts = Counter(labels_all[i] for i in split["train"])
    extra = {"trained_on": {"data": cfg.data, "label_column": cfg.label_column, "images": counts,
                            "class_counts": {c: int(class_counts[c]) for c in classes}},
             "stages": history, "refit_train_val": refit, "train_config": cfg.model_dump(),
             "evaluation": {k: _summary(v) for k, v in evaluation.items()}, "tta": cfg.tta}
    keep_backbone = backbone if (fine_tuned or not cfg.model.pretrained_backbone) else None
    record = clf.record()
    if len(heads) == 1:
        save_classifier(head, ccfg, run / "model", extra=extra, backbone=keep_backbone)
    else:  # each head a classifier of its own under RUN/heads/, RUN/model the average blend of them
        from artlens.paintings.classify import BlendedClassifier, load_classifier, save_blend

        folders = []
        for j, (c, h) in enumerate(zip(head_configs, heads, strict=True)):
            seed = extra_heads[j - 1]["seed"] if j else cfg.seed
            member_extra = {**extra, "seed": seed, **({"head": extra_heads[j - 1]} if j else {})}
            folders.append(save_classifier(h, c, run / "heads" / f"head-{j + 1}", extra=member_extra,
                                           backbone=keep_backbone))
        save_blend(run / "model", folders, method="average", extra={**extra, "heads": len(heads)})
        blended = load_classifier(run / "model")
        record = blended.record() if isinstance(blended, BlendedClassifier) else record
    result = {"run": str(run), "model": str(run / "model"), "classes": classes, "split_sizes": counts,
              "stages": history, "refit_train_val": refit, "feature_seconds": round(extract_seconds, 2),
              "heads": len(heads),
              "evaluation": {k: _summary(v) for k, v in evaluation.items()}}
    (run / "evaluation.json").write_text(json.dumps({**result, "metrics": evaluation}, indent=2, default=float) + "\n")
    if report is not None:
        from artlens.report.classify import write_classification_report

        name = "test" if "test" in items else "val"
        rep = Path(report) if Path(report).is_absolute() else run / report
        write_classification_report(rep, evaluation[name], items[name]["paths"], items[name]["true"],
                                    items[name]["probs"], record,
                                    title=f"Classifier training: {cfg.label_column}",
                                    split=name, training={"stages": history, "split_sizes": counts,
                                                          "refit_train_val": refit})
        result["report"] = str(rep)
    return result


def _variant_config(ccfg: ClassifierConfig, variant: str) -> ClassifierConfig:
    """The trained classifier config of another head variant on the same features."""
    return replace(ccfg, variant=variant, n_tiles=ccfg.n_tiles if variant != "global" else 0,
                   crops=ccfg.crops if variant != "patch" else 0)


def _train_extra_head(ccfg: ClassifierConfig, cfg: ClassifierTrainConfig, tr: tuple, va: tuple, both: tuple | None,
                      folder: Path, alternates_train: np.ndarray | None, alternates_both: np.ndarray | None
                      ) -> tuple[TwoBranchHead, dict[str, Any]]:
    """One more head of a blend (its own seed, ``cfg.seed``): trained on train with early stopping on val
    and, when ``both`` (train + val) is given, refitted on it for the epoch count chosen on val."""
    torch.manual_seed(cfg.seed)
    head = ccfg.head()
    info = fit_head(head, tr, va, cfg, folder / "stage-1", alternates=alternates_train)
    info["seed"] = cfg.seed
    if both is not None:
        best = info.get("best_epoch")
        epochs = best + 1 if best is not None and best >= 0 else cfg.stages[0].epochs
        torch.manual_seed(cfg.seed)
        head = ccfg.head()
        refit = fit_head(head, both, None, cfg, folder / "refit",
                         stage=Stage(unfreeze=0, epochs=epochs, lr=cfg.stages[0].lr), alternates=alternates_both)
        info["refit_train_val"] = {**refit, "epochs_from_validation": epochs}
    return head, info


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "top1", "top3", "top5", "macro_f1", "unknown_labels")
    return {k: metrics[k] for k in keys if k in metrics}


def blend_classifiers(models: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                      method: str = "average", weights: Sequence[float] | None = None,
                      data: str | None = None, label_column: str | None = None, split: str | None = "val",
                      split_column: str = "split", tta: bool = False) -> dict[str, Any]:
    """Save a blend of trained classifiers into ``out``; a stacked blend is fitted on ``data``'s
    ``split`` (held-out images: never those the members were trained on).

    Returns:
        ``{"model": out, "method", "members", "fitted_on"}``.
    """
    from artlens.paintings.classify import BlendedClassifier, load_classifier, save_blend
    from artlens.train.finetune import fit_stacker

    loaded = [load_classifier(m) for m in models]
    members = [m for m in loaded if isinstance(m, Classifier)]
    if len(members) != len(loaded):
        raise InvalidParameterError("blend members must be single classifiers, not blends")
    BlendedClassifier(members, method="average", weights=weights)  # checks classes and weights
    stacker = None
    fitted_on = None
    if method == "stacked":
        if data is None:
            raise InvalidParameterError("a stacked blend is fitted on held-out images: give `data` (and `split`)",
                                        param="data")
        probs: list[np.ndarray] = []
        truth: tuple[list[str], list[str]] = ([], [])
        for k, mdl in enumerate(members):
            _, items = evaluate_classifier(mdl, data, label_column=label_column, split=split,
                                           split_column=split_column, tta=tta)
            if k > 0 and items["paths"] != truth[0]:
                raise InvalidParameterError("members read different images; cannot stack")
            truth = (items["paths"], items["true"])
            probs.append(items["probs"])
        classes = members[0].classes
        known = [i for i, t in enumerate(truth[1]) if t in classes]
        y = np.array([classes.index(truth[1][i]) for i in known])
        stacker = fit_stacker([p[known] for p in probs], y)
        fitted_on = {"data": str(data), "split": split, "images": len(known)}
    elif method != "average":
        raise InvalidParameterError(f"unknown blend method {method!r}; use average or stacked")
    save_blend(out, list(models), method=method, weights=weights, stacker=stacker,
               extra={"fitted_on": fitted_on})
    return {"model": str(out), "method": method, "members": [str(m) for m in models], "fitted_on": fitted_on}


def probabilities_from_logits(logits: np.ndarray) -> np.ndarray:
    """Softmax of ``(n, K)`` logits (re-exported for scripts)."""
    return softmax(logits)
