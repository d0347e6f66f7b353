"""Training a same-artist verifier (``artlens paintings train-verifier``).

Stage 1 (always): the backbone is frozen, so every image's features are computed once and cached
(``RUN/features.npz``); the head then trains on balanced same/different-artist pairs drawn anew each
epoch (:class:`~artlens.paintings.pairs.PairSampler`, half of the negatives hard: nearest
neighbours in frozen-feature space by another artist). Training runs through Lightning (CPU, GPU or
DDP by flags) with early stopping on the validation pairs' loss.

Stage 2 (optional, ``fine_tune_epochs > 0``, metric kind): the last ``fine_tune_blocks`` blocks of
the backbone are unfrozen and trained end to end on image pairs (global view) at a low learning
rate; the backbone weights are then saved beside the head.

Splits never leak: artists held out as *unseen* have no image in training or validation; *seen*
artists' test images are never trained on. After training, Platt scaling is fitted on validation
pairs (those of the validation artists when there are any), and AUC / accuracy are measured on test
pairs of seen and of unseen artists.

Further artist-labelled collections (``extra_data``, :class:`ExtraCollection`) are trained on beside
``data``; their artists that ``data`` already has are left out, and an artist can be kept only when
it has ``min_images``-``max_images`` images (so that, for instance, a collection's best-represented
artists stay out of training for measuring). The validation artists, which choose the blend weight
and calibrate, are then drawn from the further collections (``val_from``): artists of a collection
the head mostly did not train on, the case a verifier meets in use. Their pairs are scored as
``artlens verify --pairs`` scores by default, with features centred on their own images' mean
(``adapt_validation``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, replace
from typing import Any, ClassVar, Literal, cast

import lightning as L
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from artlens.devices import move_extractor
from artlens.errors import InvalidParameterError
from artlens.models.calibration import fit_platt, roc_auc, sigmoid
from artlens.models.losses import contrastive_loss, info_nce
from artlens.paintings.features import FEATURE_POOLINGS, FeatureExtractor, Features, cached_features
from artlens.paintings.verify import (
    MIN_BACKGROUND,
    VerifierConfig,
    make_head,
    metric_codes,
    save_verifier,
    verifier_extractor,
)
from artlens.train.finetune import set_trainable
from artlens.train.runs import TrainerConfig, TrainingConfig, feature_device, fit, open_run

LEGACY_MODEL_KEYS = (
    "kind",
    "backbone",
    "pretrained_backbone",
    "n_patches",
    "max_side",
    "hidden",
    "embed_dim",
    "dropout",
    "centre",
    "pooling",
    "signed_sqrt",
)
"""Verifier settings that older configs (and their run folders' ``config.json``) held at the top level."""


SELF_SUPERVISED = 0.3
# the nuisance projection (paintings.nuisance, --nuisance-dims, off by default: on the held-out collections it
# changed nothing, BENCHMARKS.md) is fitted on NUISANCE_VIEWS re-photographed copies of at most NUISANCE_IMAGES
# training images
NUISANCE_IMAGES = 160
NUISANCE_VIEWS = 3
"""Default weight of the self-supervised patch-level loss (metric kind, 2 or more patches): chosen among
0.1 / 0.3 / 1 on the development artists (peopleart's 5 validation artists and the 19 RASTA calibration
artists, mean AUC), BENCHMARKS.md."""


def _default_model() -> VerifierConfig:
    """The verifier a training run builds unless told otherwise: metric kind, features centred on the
    training images' mean, pooled stage statistics, signed square root (the inference defaults of
    :class:`~artlens.paintings.verify.VerifierConfig` are those of models saved before these existed)."""
    return VerifierConfig(centre=True, pooling="stats", signed_sqrt=True)


class ExtraCollection(BaseModel):
    """A further artist-labelled collection: one a verifier trains on beside ``data`` (``--extra-data``),
    or the one its probability is calibrated on (``--calibrate-on``, :attr:`VerifierTrainConfig.calibration_data`).

    Its artists that ``data`` (or an earlier further collection) already has are left out; of the
    others, only those with ``min_images`` to ``max_images`` images (counted in this collection) are
    kept. ``rasta_wikipaintings_small`` with 5-12 keeps its small artists for training and
    validation and its artists with 13 images or more out, for measuring.
    """

    model_config = ConfigDict(extra="forbid")

    data: str
    label_column: str = "artist"
    min_images: int = Field(1, ge=1)
    max_images: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _range(self) -> ExtraCollection:
        if self.max_images is not None and self.max_images < self.min_images:
            raise ValueError(
                f"extra collection {self.data}: max_images {self.max_images} is below min_images {self.min_images}"
            )
        return self


class VerifierTrainConfig(TrainingConfig):
    """Everything that defines a verifier training run (saved in ``RUN/config.json``).

    The verifier itself is described by ``model``, the :class:`~artlens.paintings.verify.VerifierConfig`
    that is saved with the trained head (``cfg.model.kind``, the backbone and multi-crop settings, the
    head's sizes, ``centre``, ``pooling``, ``signed_sqrt``); its default is :func:`_default_model`, and
    a ``model`` given as a dict changes only the fields it names (a ``VerifierConfig`` instance is
    taken whole, with its own defaults). The Lightning settings are in ``trainer``
    (:class:`~artlens.train.runs.TrainerConfig`).

    The fields of ``model`` that training decides are filled in when the verifier is built
    (:meth:`verifier_config`), not chosen here: the siamese kind reads the global view's maps only
    (no patches, average pooling, no centring or signed square root); ``blend`` is chosen on
    validation pairs, or fixed by this config's own ``blend``; ``calibration`` is fitted on
    validation pairs; ``backbone_checkpoint`` is written by
    :func:`~artlens.paintings.verify.save_verifier` when the backbone is saved with the head. A
    config that sets one of the last three in ``model`` is refused.

    Run folders written when these settings were copied to the top level of the config (``kind``,
    ``hidden``... beside ``data``) still load: the flat keys (:data:`LEGACY_MODEL_KEYS`) are moved
    under ``model`` when the config is read (:func:`~artlens.train.runs.nest_model_settings`).
    """

    data: str
    label_column: str = "artist"
    extra_data: list[ExtraCollection] = Field(default_factory=list)
    model: VerifierConfig = Field(default_factory=_default_model)
    legacy_model_keys: ClassVar[tuple[str, ...]] = LEGACY_MODEL_KEYS
    margin: float = 0.5
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    pairs_per_epoch: int = 16384
    val_pairs: int = 4000
    hard_negative_fraction: float = 0.5
    neighbours: int = 10
    unseen_artists: int = 0  # held out entirely for the final test of unseen artists
    unseen: list[str] | None = None
    val_artists: int = 5  # held out entirely to choose the blend weight (and calibrate) on unseen artists
    val_from: Literal["auto", "all", "extra"] = "auto"  # where val_artists come from (auto: extra when given)
    # validation pairs centred on their own images' mean to choose the blend and calibrate, as verify --pairs
    # scores by default; None: when the validation artists come from a further collection (from the training
    # collection they share its photography, and the training images' mean is their background already)
    adapt_validation: bool | None = None
    calibration_data: ExtraCollection | None = None  # Platt scaling refitted on this collection's artists
    calibration_pairs: int = 20000  # at most this many balanced pairs of calibration_data
    bank_per_artist: int = 12  # typicality bank: at most this many training images per artist (0: no bank)
    blend: float | None = None  # fixed blend weight; None: chosen on validation pairs
    # weight of a self-supervised patch-level loss (metric kind): two halves of a training painting's
    # patches are positives, other paintings negatives (InfoNCE, patch_views); 0: off; None: SELF_SUPERVISED
    # for the metric kind with 2 or more patches, else off (ssl_weight)
    self_supervised: float | None = Field(default=None, ge=0.0)
    self_supervised_temperature: float = Field(default=0.1, gt=0.0)
    # further collections (folders or CSVs, labels unused) whose paintings join the self-supervised loss's
    # pool beside the training images; images that are also among the run's labelled ones are left out
    unlabelled_data: list[str] = Field(default_factory=list)
    # photographic directions projected out while not adapted (metric kind with centring, paintings.nuisance):
    # how many (0: none), fitted on nuisance_views re-photographed copies of at most nuisance_images training
    # images. Off by default: 8 was best on development artists under simulated shifts, but on the held-out
    # collections it changed nothing (BENCHMARKS.md)
    nuisance_dims: int = Field(default=0, ge=0)
    nuisance_images: int = Field(default=NUISANCE_IMAGES, ge=2)
    nuisance_views: int = Field(default=NUISANCE_VIEWS, ge=1)
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    fine_tune_epochs: int = 0
    fine_tune_blocks: int = 2  # backbone layer groups trained in stage 2 (set_trainable), >= 1
    fine_tune_lr: float = 1e-5
    feature_cache: str | None = None  # .npz of frozen features (default RUN/features.npz), reused when it matches
    workers: int = 2  # image-decoding threads of the feature extraction
    trainer: TrainerConfig = Field(
        default_factory=lambda: TrainerConfig(max_epochs=8, patience=6, checkpoint_every_n_steps=200)
    )

    @model_validator(mode="after")
    def _no_trained_fields(self) -> VerifierTrainConfig:
        m = self.model
        if m.pooling not in FEATURE_POOLINGS:
            raise ValueError(f"model.pooling {m.pooling!r}: use one of {', '.join(FEATURE_POOLINGS)}")
        if (m.backbone_checkpoint is not None or m.calibration is not None or m.calibration_unadapted is not None
                or m.blend != 1.0 or m.nuisance_dims):
            raise ValueError(
                "model.blend, model.calibration, model.calibration_unadapted, model.nuisance_dims and "
                "model.backbone_checkpoint are set by training; "
                "leave them unset (fix the blend weight with blend, the nuisance directions with nuisance_dims)"
            )
        if self.nuisance_dims and not (m.kind == "metric" and m.centre):
            raise ValueError(f"nuisance_dims needs the metric kind with centred features, got kind {m.kind!r} "
                             f"with centre {m.centre}")
        if self.unlabelled_data and self.ssl_weight <= 0:
            raise ValueError("unlabelled_data is for the self-supervised loss: set self_supervised > 0")
        if self.self_supervised and (m.kind != "metric" or m.n_patches < 2):
            raise ValueError(
                f"self_supervised needs the metric kind with at least 2 patches per image (two halves to compare), "
                f"got kind {m.kind!r} with {m.n_patches}"
            )
        return self

    @property
    def ssl_weight(self) -> float:
        """The self-supervised loss's weight this run uses (``self_supervised``, or its default when unset)."""
        if self.self_supervised is not None:
            return self.self_supervised
        return SELF_SUPERVISED if self.model.kind == "metric" and self.model.n_patches >= 2 else 0.0

    def verifier_config(self) -> VerifierConfig:
        """``model`` as the chosen kind uses it (a fresh copy: training sets its blend and calibration)."""
        metric = self.model.kind == "metric"
        return replace(
            self.model,
            n_patches=self.model.n_patches if metric else 0,
            centre=self.model.centre and metric,
            pooling=self.model.pooling if metric else "avg",
            signed_sqrt=self.model.signed_sqrt and metric,
            nuisance_dims=self.nuisance_dims if metric and self.model.centre else 0,
        )


class _PairData(torch.utils.data.Dataset):
    """Row-aligned pairs over cached features: metric → (ga, pa, gb, pb, y); siamese → (ma, mb, y)."""

    def __init__(self, f: Features, pairs: np.ndarray, kind: str) -> None:
        self.f, self.pairs, self.kind = f, pairs, kind
        self.pm = f.patches.mean(axis=1) if f.patches.shape[1] else np.zeros_like(f.global_)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, k: int) -> tuple[Any, ...]:
        i, j, y = (int(v) for v in self.pairs[k])
        if self.kind == "siamese":
            maps = self.f.maps
            assert maps is not None  # siamese features always carry maps
            return maps[i], maps[j], np.float32(y)
        return self.f.global_[i], self.pm[i], self.f.global_[j], self.pm[j], np.float32(y)


def patch_views(
    head: torch.nn.Module, patches: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes of two views of each painting that share no pixels, from its cached full-resolution patches
    (self-supervised, patch level: crops of one painting are positives, other paintings negatives).

    ``patches`` is ``(B, P, D)`` with ``P >= 2``; each painting's patches are shuffled and halved, and
    each half is read as a whole image would be, its first patch in place of the global view and its
    mean as the patches' mean (as multi-crop self-supervision passes local crops through the network
    that sees global ones). A centring head centres the stand-in global view on the patches' mean.
    """
    b, n, _ = patches.shape
    order = torch.argsort(torch.rand(b, n, generator=generator), dim=1).to(patches.device)
    p = torch.gather(patches, 1, order[..., None].expand_as(patches))
    half = n // 2
    shift: torch.Tensor | float = 0.0
    if getattr(head, "centre", False):
        means = dict(head.named_buffers())
        shift = means["mean_global"] - means["mean_patch"]  # the head subtracts mean_global from the global input
    views = []
    for part in (p[:, :half], p[:, half : 2 * half]):
        views.append(head(part[:, 0] + shift, part.mean(1)))
    return views[0], views[1]


class HeadModule(L.LightningModule):
    """Lightning module of stage 1: the verifier head on cached features (metric kind: contrastive
    loss on codes, accuracy at a cosine of ``1 - margin / 2``; siamese kind: BCE on the pair logit).

    With ``cfg.ssl_weight`` > 0 and ``patches`` (the training images' cached patches, labels
    unused), each training step adds that weight times the InfoNCE loss of :func:`patch_views` over
    ``cfg.batch_size`` paintings drawn at random (seeded by ``cfg.seed`` and the step).
    """

    def __init__(self, head: torch.nn.Module, cfg: VerifierTrainConfig, patches: np.ndarray | None = None) -> None:
        super().__init__()
        self.head, self.cfg = head, cfg
        ssl = cfg.ssl_weight > 0 and patches is not None  # the config checked kind and patches
        self.patches = (
            torch.from_numpy(np.ascontiguousarray(patches, np.float32)) if ssl and patches is not None else None
        )

    def _loss(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.cfg.model.kind == "siamese":
            ma, mb, y = batch
            logit = self.head(ma, mb)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, y)
            return loss, logit, y
        ga, pa, gb, pb, y = batch
        use_p = self.cfg.model.n_patches > 0
        za, zb = self.head(ga, pa if use_p else None), self.head(gb, pb if use_p else None)
        return contrastive_loss(za, zb, y, margin=self.cfg.margin, distance="cosine"), (za * zb).sum(-1), y

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._loss(batch)
        self.log("train_loss", loss, on_epoch=True, sync_dist=True, on_step=False, prog_bar=False)
        if self.patches is not None:
            g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + self.global_step)
            idx = torch.randint(len(self.patches), (min(self.cfg.batch_size, len(self.patches)),), generator=g)
            za, zb = patch_views(self.head, self.patches[idx].to(loss.device), g)
            ssl = info_nce(za, zb, temperature=self.cfg.self_supervised_temperature)
            self.log("train_ssl_loss", ssl, on_epoch=True, sync_dist=True, on_step=False, prog_bar=False)
            loss = loss + self.cfg.ssl_weight * ssl
        return loss

    def validation_step(self, batch: Any, _: int) -> None:
        loss, score, y = self._loss(batch)
        thr = 0.0 if self.cfg.model.kind == "siamese" else 1.0 - self.cfg.margin / 2
        acc = ((score > thr).float() == y).float().mean()
        self.log("val_loss", loss, on_epoch=True, sync_dist=True, prog_bar=False)
        self.log("val_acc", acc, on_epoch=True, sync_dist=True, prog_bar=False)

    def configure_optimizers(self) -> Any:
        return torch.optim.AdamW(self.head.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)


class EpochPairs(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Training pairs over cached features, redrawn at the start of every epoch by
    :class:`RedrawPairs` (deterministic per epoch)."""

    def __init__(self, f: Features, sampler: Any, n_pairs: int, kind: str) -> None:
        self.f, self.sampler, self.n_pairs, self.kind = f, sampler, n_pairs, kind
        self.draw(0)

    def draw(self, epoch: int) -> None:
        self.data = _PairData(self.f, self.sampler.sample(self.n_pairs, epoch=epoch), self.kind)

    def __len__(self) -> int:
        return self.n_pairs

    def __getitem__(self, k: int) -> Any:
        return self.data[k]


class RedrawPairs(L.Callback):
    """Redraws the pairs of an :class:`EpochPairs` at the start of every training epoch."""

    def __init__(self, pairs: EpochPairs) -> None:
        self.pairs = pairs

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.pairs.draw(trainer.current_epoch)


def collection_images(collection: ExtraCollection, known: set[str]) -> tuple[list[str], list[str]]:
    """``(paths, artists)`` of the images of ``collection`` whose artist is not in ``known`` and has
    ``min_images``-``max_images`` images there, in file order.

    Raises:
        InvalidParameterError: no artist is kept.
    """
    from artlens.paintings.datasets import load_dataset

    e = load_dataset(collection.data)
    el = e.labels(collection.label_column)
    n = Counter(a for a in el if a and a not in known)
    top = collection.max_images if collection.max_images is not None else max(n.values(), default=0)
    keep = [i for i, a in enumerate(el) if a and a not in known and collection.min_images <= n[a] <= top]
    if not keep:
        raise InvalidParameterError(
            f"collection {collection.data}: no artist with {collection.min_images}-{top} "
            f"images that the training collections do not already have"
        )
    ep = e.paths()
    return [ep[i] for i in keep], [el[i] for i in keep]


def training_images(cfg: VerifierTrainConfig) -> tuple[list[str], list[str], list[str]]:
    """``(paths, artists, collection)`` of every image a run trains, validates and tests on: ``data``'s,
    then each further collection's kept images (:func:`collection_images`), in file order;
    ``collection`` names each image's source (``cfg.data`` or the further collection's ``data``).

    Raises:
        InvalidParameterError: a further collection keeps no artist.
    """
    from artlens.paintings.datasets import load_dataset

    ds = load_dataset(cfg.data)
    paths, labels = ds.paths(), ds.labels(cfg.label_column)
    source = [cfg.data] * len(paths)
    known = set(labels)
    for extra in cfg.extra_data:
        ep, el = collection_images(extra, known)
        paths += ep
        labels += el
        source += [extra.data] * len(ep)
        known |= set(el)
    return paths, labels, source


def split_indices(
    labels: list[str], cfg: VerifierTrainConfig, val_pool: list[str] | None = None
) -> dict[str, np.ndarray]:
    """Indices of ``train``, ``val`` (held-out images of training artists), ``val_unseen`` (every image
    of ``val_artists`` artists, drawn from ``val_pool`` when given, else from every artist),
    ``test_seen`` and ``test_unseen`` (every image of ``unseen_artists`` artists). Held-out artists never
    reach training; test images are never used to choose anything."""
    from artlens.paintings.datasets import seen_unseen_split

    artists = sorted(set(labels))
    rng = np.random.default_rng(cfg.seed)
    if cfg.unseen:
        unknown = set(cfg.unseen) - set(artists)
        if unknown:
            raise InvalidParameterError(f"unseen artists not in the data: {sorted(unknown)}")
        test_unseen = list(cfg.unseen)
    else:
        test_unseen = [str(a) for a in rng.choice(artists, size=cfg.unseen_artists, replace=False)]
    rest = [a for a in (sorted(set(val_pool)) if val_pool is not None else artists) if a not in set(test_unseen)]
    val_unseen = [str(a) for a in rng.choice(rest, size=min(cfg.val_artists, len(rest)), replace=False)]
    held = test_unseen + val_unseen
    if len(artists) - len(held) < 2:
        raise InvalidParameterError(f"only {len(artists) - len(held)} artists left for training")
    parts = seen_unseen_split(
        labels, unseen_groups=held, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, seed=cfg.seed
    )
    lab = np.asarray(labels)
    out = {k: np.asarray(v, int) for k, v in parts.items()}
    pooled = out.pop("test_unseen")
    out["val_unseen"] = pooled[np.isin(lab[pooled], val_unseen)]
    out["test_unseen"] = pooled[np.isin(lab[pooled], test_unseen)]
    return out


def _frozen_neighbours(f: Features, idx: np.ndarray, k: int) -> np.ndarray:
    """For each item of ``idx`` (positions within idx), its ``k`` nearest other items by cosine of
    frozen global features: candidates for hard negatives."""
    from artlens.paintings.embedding import l2_normalise

    g = l2_normalise(f.global_[idx])
    sim = g @ g.T
    np.fill_diagonal(sim, -np.inf)
    k = min(k, len(idx) - 1)
    return np.argsort(-sim, axis=1)[:, :k]


def pair_scores(
    head: torch.nn.Module, f: Features, pairs: np.ndarray, kind: str, blend: float = 1.0, adapt: bool = False
) -> np.ndarray:
    """Raw scores (cosine or logit) of index pairs over cached features; ``adapt``: a centring metric
    head centred on ``f``'s own mean features for these scores (as ``verify --pairs`` does by default),
    its means restored afterwards."""
    head.eval()
    if kind != "siamese":
        if adapt and getattr(head, "centre", False) and len(f.paths):
            saved = {k: v.clone() for k, v in head.named_buffers() if k in ("mean_global", "mean_patch")}
            project = getattr(head, "project", False)
            cast(Any, head).set_means(f.global_.mean(0), f.patches.mean(axis=(0, 1)) if f.patches.shape[1] else None)
            cast(Any, head).project = False  # as Verifier.centre_on: no nuisance projection when adapted
            try:
                z = metric_codes(head, f.global_, f.patches, blend).numpy()
            finally:
                cast(Any, head).set_means(saved["mean_global"], saved["mean_patch"])
                cast(Any, head).project = project
        else:
            z = metric_codes(head, f.global_, f.patches, blend).numpy()
        return (z[pairs[:, 0]] * z[pairs[:, 1]]).sum(-1).astype(float)
    maps = f.maps
    if maps is None:
        raise InvalidParameterError("siamese pair scores need the features' maps")
    out = []
    with torch.inference_mode():
        for s in range(0, len(pairs), 512):
            p = pairs[s : s + 512]
            out.append(head(torch.from_numpy(maps[p[:, 0]]), torch.from_numpy(maps[p[:, 1]])).numpy())
    return np.concatenate(out).astype(float) if out else np.zeros(0)


def choose_blend(
    head: torch.nn.Module, sets: list[tuple[Features, np.ndarray]], adapt: bool = False
) -> tuple[float, dict[str, float]]:
    """The blend weight in 0, 0.1, ..., 1 with the highest mean AUC over the given validation pair
    sets (ties: the larger weight), each set scored centred on its own mean when ``adapt``.
    :func:`train_verifier` passes the pairs of the validation artists held out of training when there
    are any, else the held-out images of training artists."""
    table = {}
    for w in np.round(np.linspace(0, 1, 11), 2):
        aucs = [roc_auc(pair_scores(head, f, p, "metric", float(w), adapt), p[:, 2]) for f, p in sets if len(p)]
        table[f"{w:.1f}"] = float(np.mean(aucs))
    best = max(table, key=lambda k: (table[k], float(k)))
    return float(best), table


def evaluate_pairs(raw: np.ndarray, y: np.ndarray, calibration: dict[str, float] | None) -> dict[str, float]:
    """AUC of raw scores and accuracy of the calibrated probability at 0.5."""
    if len(y) == 0:
        return {"pairs": 0}
    a, b = (calibration["a"], calibration["b"]) if calibration else (1.0, 0.0)
    p = np.asarray(sigmoid(a * raw + b))
    return {"pairs": int(len(y)), "auc": roc_auc(raw, y), "accuracy": float(((p > 0.5) == (y > 0)).mean())}


class _ImagePairs(torch.utils.data.Dataset):
    """Pairs of images as stacked views (global + patches), for end-to-end fine-tuning."""

    def __init__(self, extractor: FeatureExtractor, paths: list[str], pairs: np.ndarray) -> None:
        self.ex, self.paths, self.pairs = extractor, paths, pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, k: int) -> tuple[Any, Any, Any]:
        from artlens.paintings.images import load_rgb

        i, j, y = (int(v) for v in self.pairs[k])
        va = self.ex.views(load_rgb(self.paths[i], notify=False))
        vb = self.ex.views(load_rgb(self.paths[j], notify=False))
        return torch.from_numpy(va), torch.from_numpy(vb), torch.tensor(float(y))


class FineTuneModule(L.LightningModule):
    """Lightning module of stage 2: the backbone's trainable blocks and the head trained end to end on
    image pairs with the contrastive loss; BatchNorm statistics stay frozen (the backbone is kept in
    eval mode)."""

    def __init__(self, extractor: FeatureExtractor, head: torch.nn.Module, cfg: VerifierTrainConfig) -> None:
        super().__init__()
        self.backbone, self.head, self.cfg, self.extractor = extractor.model, head, cfg, extractor

    def codes(self, views: torch.Tensor) -> torch.Tensor:
        """``(B, V, 3, S, S)`` view stacks → ``(B, E)`` codes."""
        b, v = views.shape[:2]
        pooled = self.extractor.pooled_with_maps(views.flatten(0, 1))[0].view(b, v, -1)
        return self.head(pooled[:, 0], pooled[:, 1:].mean(1) if self.cfg.model.n_patches > 0 else None)  # type: ignore[no-any-return]

    def on_train_epoch_start(self) -> None:
        self.backbone.eval()  # keep BatchNorm statistics (small batches on CPU)

    def training_step(self, batch: Any, _: int) -> torch.Tensor:
        va, vb, y = batch
        loss = contrastive_loss(self.codes(va), self.codes(vb), y, margin=self.cfg.margin, distance="cosine")
        self.log("train_loss", loss, on_epoch=True, sync_dist=True, on_step=False)
        return loss

    def validation_step(self, batch: Any, _: int) -> None:
        va, vb, y = batch
        val = contrastive_loss(self.codes(va), self.codes(vb), y, margin=self.cfg.margin, distance="cosine")
        self.log("val_loss", val, on_epoch=True, sync_dist=True)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.cfg.fine_tune_lr, weight_decay=self.cfg.weight_decay)


def fine_tune(
    head: torch.nn.Module,
    extractor: FeatureExtractor,
    cfg: VerifierTrainConfig,
    run: Any,
    train_paths: list[str],
    train_pairs_fn: Any,
    val_paths: list[str],
    val_pairs: np.ndarray,
) -> None:
    """Stage 2: the last ``cfg.fine_tune_blocks`` backbone stages and the head trained end to end on
    image pairs (metric kind) at ``cfg.fine_tune_lr``; BatchNorm statistics stay frozen. Updates
    ``extractor.model`` and ``head`` in place."""
    backbone = extractor.model
    set_trainable(backbone, cfg.fine_tune_blocks)  # last stages; the last one with conv_head, bn2
    module = FineTuneModule(extractor, head, cfg)
    ft_cfg = cfg.trainer.model_copy(update={"max_epochs": cfg.fine_tune_epochs, "max_steps": -1})
    n = max(2, cfg.pairs_per_epoch // 16)
    train_dl = torch.utils.data.DataLoader(
        _ImagePairs(extractor, train_paths, train_pairs_fn(n)),
        batch_size=4,
        shuffle=True,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    val_dl = torch.utils.data.DataLoader(_ImagePairs(extractor, val_paths, val_pairs[: max(2, n // 4)]), batch_size=4)
    stage = run / "fine_tune"
    stage.mkdir(exist_ok=True)
    fit(module, train_dl, val_dl, ft_cfg, stage, resume=False)
    extractor.model = backbone = backbone.to(extractor.device)  # Lightning may leave it elsewhere after fit
    for p in backbone.parameters():
        p.requires_grad_(False)
    backbone.eval()
    head.eval()


def unlabelled_paths(cfg: VerifierTrainConfig, labelled: set[str]) -> list[list[str]]:
    """The images of each of ``cfg.unlabelled_data`` that are not among the run's ``labelled`` ones (so that
    no validation or test image is trained on), in the collection's order.

    Raises:
        InvalidParameterError: a collection has no image left.
    """
    from artlens.paintings.datasets import load_dataset

    known = {os.path.realpath(p) for p in labelled}  # the same file named through another folder or a link
    out = []
    for data in cfg.unlabelled_data:
        paths = [p for p in load_dataset(data).paths() if os.path.realpath(p) not in known]
        if not paths:
            raise InvalidParameterError(
                f"unlabelled collection {data}: no image that is not already a labelled one", param="unlabelled_data"
            )
        out.append(paths)
    return out


def self_supervised_pool(
    cfg: VerifierTrainConfig, extractor: FeatureExtractor, run: Any, train: Features, unlabelled: list[list[str]]
) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """The patches the self-supervised loss draws paintings from, ``(N, P, D)``, and its record: the
    training images' and the ``unlabelled`` images' (:func:`unlabelled_paths`; features cached in
    ``RUN/unlabelled_features_K.npz``, unreadable images left out). ``(None, None)`` when the loss is off.
    """
    if cfg.ssl_weight <= 0:
        return None, None
    parts, counts = [train.patches], {"training images": len(train.paths)}
    for k, (data, paths) in enumerate(zip(cfg.unlabelled_data, unlabelled, strict=True)):
        fu = cached_features(paths, extractor, run / f"unlabelled_features_{k}.npz")
        parts.append(fu.patches)
        counts[data] = len(fu.paths)
    return np.concatenate(parts), {
        "weight": cfg.ssl_weight,
        "temperature": cfg.self_supervised_temperature,
        "loss": "InfoNCE of two disjoint halves of each painting's patches (train.verifier.patch_views)",
        "paintings": counts,
    }


def train_verifier(
    cfg: VerifierTrainConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    extractor: FeatureExtractor | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Train, calibrate, evaluate and save a verifier into ``out/model``; returns the metrics.

    Args:
        cfg: the run's settings.
        out: run directory (``config.json``, ``features.npz``, ``metrics.csv``, checkpoints, ``model/``,
            ``evaluation.json``).
        resume: continue an interrupted run in ``out``.
        extractor: a ready :class:`FeatureExtractor` (tests pass a tiny one); by default the
            configured backbone.
    """
    from artlens.paintings.pairs import PairSampler, balanced_eval_pairs

    if cfg.fine_tune_epochs > 0 and cfg.fine_tune_blocks < 1:
        raise InvalidParameterError(f"fine_tune_blocks must be at least 1 to fine-tune, got {cfg.fine_tune_blocks}")
    if cfg.val_from == "extra" and not cfg.extra_data:
        raise InvalidParameterError(
            "validation artists from the further collections (val_from 'extra') need extra_data", param="val_from"
        )
    feature_device(cfg.trainer)  # a GPU asked for and missing: refused before the run folder is made
    paths_all, labels_all, source_all = training_images(cfg)
    # refused before the run folder is made: a calibration collection without new artists
    cal_images = collection_images(cfg.calibration_data, set(labels_all)) if cfg.calibration_data else None
    if cal_images is not None and len(set(cal_images[1])) < 2:
        raise InvalidParameterError(
            f"calibration collection {cfg.calibration_data.data if cfg.calibration_data else ''}: "
            f"{len(set(cal_images[1]))} new artist kept, need at least 2 for different-artist pairs",
            param="calibration_data",
        )
    unlabelled = unlabelled_paths(cfg, set(paths_all))  # refused before the run folder is made
    run, cfg = open_run(out, cfg, resume=resume)
    device = feature_device(cfg.trainer)
    vcfg = cfg.verifier_config()
    if extractor is None:
        given: dict[str, Any] = {}
        if not cfg.model.pretrained_backbone:
            from artlens.models.backbones import create_backbone

            given["model"], given["preprocess"] = create_backbone(cfg.model.backbone, pretrained=False)
        extractor = verifier_extractor(vcfg, workers=cfg.workers, **given)
    move_extractor(extractor, device)  # features on the device the trainer's accelerator asks for
    f = cached_features(paths_all, extractor, cfg.feature_cache or run / "features.npz")
    if f.failures:
        import warnings

        warnings.warn(
            f"{len(f.failures)} images could not be read and were left out (first: {f.failures[0][1]})", stacklevel=2
        )
    keep = {p: i for i, p in enumerate(paths_all)}
    labels = [labels_all[keep[p]] for p in f.paths]
    extra_sources = {e.data for e in cfg.extra_data}
    from_extra = cfg.val_from == "extra" or (cfg.val_from == "auto" and bool(cfg.extra_data))
    val_pool = (
        sorted({labels_all[keep[p]] for p in f.paths if source_all[keep[p]] in extra_sources}) if from_extra else None
    )
    split = split_indices(labels, cfg, val_pool)
    lab = np.asarray(labels)

    def sub(idx: np.ndarray) -> Features:
        return Features(
            paths=[f.paths[i] for i in idx],
            global_=f.global_[idx],
            patches=f.patches[idx],
            maps=None if f.maps is None else f.maps[idx],
        )

    ftr, fva = sub(split["train"]), sub(split["val"])
    neigh = _frozen_neighbours(f, split["train"], cfg.neighbours)
    sampler = PairSampler(
        list(lab[split["train"]]), seed=cfg.seed, hard_negative_fraction=cfg.hard_negative_fraction, neighbours=neigh
    )
    val_pairs = balanced_eval_pairs(list(lab[split["val"]]), max_pairs=cfg.val_pairs, seed=cfg.seed)

    train_set = EpochPairs(ftr, sampler, cfg.pairs_per_epoch, cfg.model.kind)
    head = make_head(vcfg, extractor.dim)
    if vcfg.centre:  # the training images' mean only: validation and test images stay unseen
        cast(Any, head).set_means(ftr.global_.mean(0), ftr.patches.mean(axis=(0, 1)) if ftr.patches.shape[1] else None)
    ssl_pool, ssl_record = self_supervised_pool(cfg, extractor, run, ftr, unlabelled)
    module = HeadModule(head, cfg, ssl_pool)
    g = torch.Generator().manual_seed(cfg.seed)
    train_dl = torch.utils.data.DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, generator=g)
    val_dl = torch.utils.data.DataLoader(_PairData(fva, val_pairs, cfg.model.kind), batch_size=cfg.batch_size)
    trainer, _ = fit(
        module,
        train_dl,
        val_dl,
        cfg.trainer,
        run,
        resume=resume,
        enable_progress_bar=progress,
        extra_callbacks=[RedrawPairs(train_set)],
    )
    head = module.head.eval()
    fine_tuned = False
    if cfg.fine_tune_epochs > 0 and cfg.model.kind == "metric":
        paths_tr = [f.paths[i] for i in split["train"]]
        paths_va = [f.paths[i] for i in split["val"]]
        fine_tune(head, extractor, cfg, run, paths_tr, lambda n: sampler.sample(n, epoch=10_000), paths_va, val_pairs)
        f = extractor.extract(f.paths)  # features of the tuned backbone (never cached: same settings, new weights)
        fva = sub(split["val"])
        fine_tuned = True
    if not trainer.is_global_zero:  # a further DDP process: rank 0 calibrates, evaluates and writes the model
        return {"run": str(run), "model": str(run / "model")}
    # before the blend is chosen and the scores calibrated: every unadapted score from here on is projected
    nuisance_record = fit_nuisance(head, cfg, extractor, run, ftr)

    def eval_pairs(idx: np.ndarray, max_pairs: int = 20000) -> np.ndarray:
        if len(idx) < 2 or len(set(lab[idx])) < 2:
            return np.zeros((0, 3), np.int64)
        return balanced_eval_pairs(list(lab[idx]), max_pairs=max_pairs, seed=cfg.seed)

    # blend weight and calibration on validation pairs (seen artists' held-out images + held-out artists)
    fvu, vu_pairs = sub(split["val_unseen"]), eval_pairs(split["val_unseen"], cfg.val_pairs)
    adapt_asked = from_extra if cfg.adapt_validation is None else cfg.adapt_validation
    adapt = adapt_asked and cfg.model.kind == "metric" and vcfg.centre
    blend_table = None
    if cfg.model.kind == "metric":
        if cfg.blend is not None:
            vcfg.blend = float(cfg.blend)
        else:
            # chosen for painters the head never saw, the case a verifier is for: on held-out images of
            # its own training artists the head always looks best (blend 0.4 instead of 0.2 when both
            # sets voted; shazam_7artists adapted 0.783 instead of 0.804, BENCHMARKS.md)
            vcfg.blend, blend_table = (
                choose_blend(head, [(fvu, vu_pairs)], adapt)
                if len(vu_pairs)
                else choose_blend(head, [(fva, val_pairs)])
            )
    raw_seen = pair_scores(head, fva, val_pairs, cfg.model.kind, vcfg.blend)
    raw_vu = pair_scores(head, fvu, vu_pairs, cfg.model.kind, vcfg.blend, adapt)
    # calibrated on artists the head never trained on when there are any (issue 21: never on seen artists)
    raw_cal, y_cal = (raw_vu, vu_pairs[:, 2]) if len(vu_pairs) else (raw_seen, val_pairs[:, 2])
    a, b = fit_platt(raw_cal, y_cal)
    vcfg.calibration = {"a": a, "b": b}
    evaluation: dict[str, Any] = {
        "val": evaluate_pairs(raw_seen, val_pairs[:, 2], vcfg.calibration),
        "val_unseen": evaluate_pairs(raw_vu, vu_pairs[:, 2], vcfg.calibration)
        | ({"adapted": adapt} if len(vu_pairs) else {}),
        "calibrated_on": "validation artists (held out of training)"
        if len(vu_pairs)
        else "held-out images of training artists",
    }
    recalibration = None
    if cfg.calibration_data is not None and cal_images is not None:
        recalibration = calibrate_on_collection(head, cfg, vcfg, extractor, run, *cal_images)
        vcfg.calibration = recalibration.pop("calibration")
        if recalibration["unadapted"] is not None:
            vcfg.calibration_unadapted = recalibration["unadapted"]["calibration"]
        evaluation["calibrated_on"] = (
            f"{cfg.calibration_data.data} ({len(recalibration['artists'])} artists never trained on)"
        )
        evaluation["calibration_collection"] = {k: recalibration[k] for k in ("images", "pairs", "auc")}
    for name in ("test_seen", "test_unseen"):
        pairs = eval_pairs(split[name])
        evaluation[name] = (
            evaluate_pairs(
                pair_scores(head, sub(split[name]), pairs, cfg.model.kind, vcfg.blend), pairs[:, 2], vcfg.calibration
            )
            if len(pairs)
            else {"pairs": 0}
        )
    if ssl_record is not None:
        evaluation["self_supervised"] = ssl_record
    if nuisance_record is not None:
        evaluation["nuisance_projection"] = nuisance_record
    if blend_table is not None:
        evaluation["blend_auc_on_validation"] = blend_table
        evaluation["blend_chosen_on"] = (
            "validation artists (held out of training)" if len(vu_pairs) else "held-out images of training artists"
        )
    split_record = {k: sorted(set(lab[v])) for k, v in split.items()}
    counts = {k: int(len(v)) for k, v in split.items()}
    save_verifier(
        head,
        vcfg,
        run / "model",
        extra={
            "trained_on": {
                "data": cfg.data,
                "label_column": cfg.label_column,
                "extra_data": [e.model_dump() for e in cfg.extra_data],
                "images": counts,
                "artists": {k: len(v) for k, v in split_record.items()},
                "val_artists": split_record["val_unseen"],
                "unseen_artists": split_record["test_unseen"],
            },
            "backbone_checksum": extractor.checksum,
            "evaluation": evaluation,
            "train_config": cfg.model_dump(),
        }
        | ({"recalibration": recalibration} if recalibration is not None else {}),
        backbone=None if cfg.model.pretrained_backbone and not fine_tuned else extractor.model,
    )
    bank = write_bank(f, labels, split, cfg, run / "model") if cfg.model.kind == "metric" else None
    evaluation["typicality_bank"] = bank or (
        "none (bank_per_artist 0)"
        if cfg.bank_per_artist <= 0
        else "none: no artists were held out of training to set its thresholds on"
    )
    (run / "evaluation.json").write_text(
        json.dumps(
            {"evaluation": evaluation, "split_sizes": counts, "artists": split_record, "verifier": asdict(vcfg)},
            indent=2,
        )
        + "\n"
    )
    return {"run": str(run), "model": str(run / "model"), "evaluation": evaluation, "split_sizes": counts}


def fit_nuisance(
    head: torch.nn.Module, cfg: VerifierTrainConfig, extractor: FeatureExtractor, run: Any, train: Features
) -> dict[str, Any] | None:
    """Fit the head's nuisance projection (:mod:`artlens.paintings.nuisance`): at most
    ``cfg.nuisance_images`` training images (a seeded choice), each reduced to the extractor's long
    side and photographed again ``cfg.nuisance_views`` times (:func:`~artlens.paintings.nuisance.photograph_again`,
    kept in ``RUN/nuisance/view-K/`` with their features in ``RUN/nuisance/view-K.npz``); the top
    ``cfg.nuisance_dims`` directions of the feature differences, global and patch apart. Returns the record
    kept in ``evaluation``; ``None`` when the run fits none."""
    k = cfg.nuisance_dims
    if k <= 0 or not getattr(head, "nuisance_dims", 0):
        return None
    from artlens.paintings.images import load_rgb
    from artlens.paintings.nuisance import nuisance_basis, photograph_again

    rng = np.random.default_rng(cfg.seed)
    n = min(cfg.nuisance_images, len(train.paths))
    pick = np.sort(rng.choice(len(train.paths), n, replace=False))
    folder = run / "nuisance"
    diff_g, diff_p = [], []
    for view in range(cfg.nuisance_views):
        out = folder / f"view-{view}"
        out.mkdir(parents=True, exist_ok=True)
        rendered = []
        for i in pick:
            target = out / f"{i:05d}.jpg"
            if not target.exists():
                im = load_rgb(train.paths[i], notify=False)
                im.thumbnail((extractor.max_side, extractor.max_side))
                photograph_again(im, np.random.default_rng([cfg.seed, view, int(i)])).save(target, quality=95)
            rendered.append(str(target))
        fv = cached_features(rendered, extractor, folder / f"view-{view}.npz")
        row = {p: j for j, p in enumerate(fv.paths)}
        ok = [(int(i), row[p]) for i, p in zip(pick, rendered, strict=True) if p in row]
        src, dst = np.array([a for a, _ in ok]), np.array([b for _, b in ok])
        diff_g.append(fv.global_[dst] - train.global_[src])
        if train.patches.shape[1]:
            diff_p.append(fv.patches[dst].mean(1) - train.patches[src].mean(1))
    dg = np.concatenate(diff_g)
    used = min(k, dg.shape[1] // 2)  # never more than half the feature dimensions (tiny test backbones)
    basis_g = nuisance_basis(dg, used)
    basis_p = nuisance_basis(np.concatenate(diff_p), used) if diff_p else np.zeros_like(basis_g)
    cast(Any, head).set_nuisance(_pad(basis_g, k), _pad(basis_p, k))
    return {
        "dims": int(basis_g.shape[1]),
        "images": n,
        "views": cfg.nuisance_views,
        "differences": int(len(dg)),
        "method": "top right singular vectors of the feature changes of training images photographed again "
        "(artlens.paintings.nuisance), projected out of the centred features while not adapted",
    }


def _pad(basis: np.ndarray, k: int) -> np.ndarray:
    """``basis`` with zero columns up to ``k`` (fewer differences than directions asked for)."""
    return np.pad(basis, ((0, 0), (0, k - basis.shape[1])))


def calibrate_on_collection(
    head: torch.nn.Module,
    cfg: VerifierTrainConfig,
    vcfg: VerifierConfig,
    extractor: FeatureExtractor,
    run: Any,
    paths: list[str],
    artists: list[str],
) -> dict[str, Any]:
    """Platt scaling refitted on ``cfg.calibration_data`` (issue 21: calibrate on held-out artists *and*
    a held-out collection): ``paths`` and ``artists`` are its images whose artist none of the run's
    collections has (:func:`collection_images`); every same-artist pair and as many different-artist ones (at
    most ``cfg.calibration_pairs``, seed ``cfg.seed``), scored as ``verify --pairs`` scores by default
    (metric kind with centring: centred on the collection's own images). Then the same pairs centred on the
    training images' mean are fitted too (``unadapted``: the scaling of :attr:`VerifierConfig.calibration_unadapted`,
    used when a verifier scores without a collection to adapt to). Returns the record kept in the
    model's ``config.json`` → ``recalibration``, with the fit under ``calibration``.

    Raises:
        InvalidParameterError: fewer than two of its artists have readable images.
    """
    from artlens.paintings.pairs import balanced_eval_pairs

    col = cfg.calibration_data
    assert col is not None
    fc = cached_features(paths, extractor, run / "calibration_features.npz")
    by_path = dict(zip(paths, artists, strict=True))
    lab = [by_path[p] for p in fc.paths]
    if len(set(lab)) < 2:
        raise InvalidParameterError(
            f"calibration collection {col.data}: {len(set(lab))} artist(s) kept, need at least 2",
            param="calibration_data",
        )
    pairs = balanced_eval_pairs(lab, max_pairs=cfg.calibration_pairs, seed=cfg.seed)
    adapt = cfg.model.kind == "metric" and vcfg.centre and len(fc.paths) >= MIN_BACKGROUND
    raw = pair_scores(head, fc, pairs, cfg.model.kind, vcfg.blend, adapt)
    previous = vcfg.calibration
    a, b = fit_platt(raw, pairs[:, 2])
    unadapted = None
    if adapt:  # the same pairs centred on the training images' mean: the fit for scores that are not adapted
        raw_u = pair_scores(head, fc, pairs, cfg.model.kind, vcfg.blend, adapt=False)
        au, bu = fit_platt(raw_u, pairs[:, 2])
        unadapted = {"calibration": {"a": au, "b": bu}, "auc": roc_auc(raw_u, pairs[:, 2])}
    return {
        "calibration": {"a": a, "b": b},
        "unadapted": unadapted,
        "method": "Platt scaling (artlens.models.calibration.fit_platt) of the raw pair scores"
        + (", features centred on the calibration images' own mean (the verify --pairs default)" if adapt else ""),
        "collection": col.data,
        "artists": sorted(set(lab)),
        "images": len(fc.paths),
        "pairs": int(len(pairs)),
        "auc": roc_auc(raw, pairs[:, 2]),
        "rule": f"artists with {col.min_images}-{col.max_images or 'any number of'} images in the collection, none "
        "of the training collections' artists",
        "previous": previous,
        "skipped_images": len(fc.failures),
    }


def write_bank(
    f: Features, labels: list[str], split: dict[str, np.ndarray], cfg: VerifierTrainConfig, folder: Any
) -> dict[str, Any] | None:
    """The typicality bank (:mod:`artlens.paintings.typicality`) beside the saved verifier in ``folder``:
    at most ``cfg.bank_per_artist`` training images per artist, chosen evenly in file order, and the
    thresholds set on the images of the artists held out of training (the validation artists, else the
    unseen test artists). ``None`` (no bank) when ``bank_per_artist`` is 0 or no artist was held out."""
    from artlens.paintings.typicality import build_bank
    from artlens.paintings.verify import BANK, load_verifier

    held = split["val_unseen"] if len(split["val_unseen"]) else split["test_unseen"]
    if cfg.bank_per_artist <= 0 or len(held) == 0:
        return None
    train = np.asarray(split["train"])
    lab = np.asarray(labels)
    chosen: list[int] = []
    for a in sorted(set(lab[train])):
        idx = train[lab[train] == a]
        chosen += [
            int(i) for i in idx[np.linspace(0, len(idx) - 1, min(cfg.bank_per_artist, len(idx))).round().astype(int)]
        ]
    name = os.path.basename(os.path.dirname(cfg.data)) if cfg.data.endswith(".csv") else os.path.basename(cfg.data)
    meta = build_bank(
        load_verifier(folder),
        f.global_,
        f.patches.mean(1),
        labels,
        np.asarray(sorted(set(chosen))),
        np.asarray(held),
        folder / BANK,
        source=f"{name} (training images of this verifier, <= {cfg.bank_per_artist} per artist)",
    )
    return {k: meta[k] for k in ("threshold", "limit", "held_out_images", "k")} | {"images": len(set(chosen))}
