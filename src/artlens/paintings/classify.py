"""Style, genre and medium classification of paintings: the two-branch model, prediction, TTA,
Grad-CAM and blends.

A painting is seen twice (see :mod:`artlens.paintings.features`):

- the **global branch** looks at the whole image resized to the backbone's input (224 × 224 px for
  EfficientNet-Lite0): composition, colour masses, subject;
- the **patch branch** looks at square tiles cut from the image at its own resolution (long side
  capped at ``max_side`` px): brushwork, line, craquelure, print texture. Tile features are pooled
  by gated attention (Ilse et al. 2018) or by their mean, so any number of tiles can be given.

The two branch vectors are concatenated (fused) before one linear classifier.
``variant="global"`` and ``variant="patch"`` keep one branch only, for comparisons. Each view
becomes one vector either as the backbone's pooled output (``"avg"``) or as the channel means and
standard deviations of its last block stages (``"stats"``, :data:`FEATURE_POOLINGS`).

The backbone is a timm model (:func:`artlens.models.backbones.create_backbone`; offline
ImageNet Lite0 by default). With a frozen backbone only the head is trained, on cached features;
:func:`set_trainable` unfreezes the backbone's last parameter groups for end-to-end stages
(:class:`ImageClassifier`). Training lives in :mod:`artlens.train.classify`; this module needs
torch but not Lightning.

A trained classifier is a folder with ``head.safetensors`` (plus ``backbone.safetensors`` when the
backbone was fine-tuned or not pretrained) and ``config.json``; no pickle is ever written or read.
A blend (:func:`save_blend`) is a folder naming member classifiers, averaged or stacked.

References:
    M. Ilse, J. M. Tomczak, M. Welling, "Attention-based deep multiple instance learning", ICML 2018.
    R. R. Selvaraju et al., "Grad-CAM: Visual explanations from deep networks via gradient-based
    localization", ICCV 2017.
    X. Huang, S. Belongie, "Arbitrary style transfer in real-time with adaptive instance
    normalization", ICCV 2017 (channel mean and standard deviation as style statistics).
    A. Lecoutre, B. Negrevergne, F. Yger, "Recognizing art style automatically in painting with deep
    learning", ACML 2017 (RASTA; the Wikipaintings style labels).

Example:
    >>> clf = load_classifier("runs/style")  # doctest: +SKIP
    >>> clf.predict(["monet.jpg"], top_k=3)[0]["predictions"][0]  # doctest: +SKIP
    {'label': 'Impressionism', 'probability': 0.71}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from artlens.errors import ArtlensError, InputNotFoundError, InvalidParameterError, UnreadableInputError
from artlens.paintings.features import FeatureExtractor, Features, patch_boxes

VARIANTS = ("two_branch", "global", "patch")
"""Model variants: both branches fused, the global view only, the full-resolution tiles only."""

POOLINGS = ("attention", "mean")
HEAD_WEIGHTS = "head.safetensors"
BACKBONE_WEIGHTS = "backbone.safetensors"
BLEND_WEIGHTS = "blend.safetensors"
CONFIG = "config.json"
MODEL_NAME = "painting_classifier"
BLEND_NAME = "painting_classifier_blend"


# -- views and tiles ---------------------------------------------------------------------------------


def tile_grid_size(width: int, height: int, max_side: int, size: int) -> tuple[int, int]:
    """Size ``(w, h)`` of the image that tiles are cut from: the image itself, reduced so that its long
    side is at most ``max_side`` px, and enlarged when a side is shorter than one tile (``size``).
    The same rule as :meth:`FeatureExtractor.views`."""
    scale = min(1.0, max_side / max(width, height))
    scale = max(scale, size / min(width, height))
    if abs(scale - 1.0) <= 1e-3:
        return width, height
    return max(size, round(width * scale)), max(size, round(height * scale))


def tile_boxes(width: int, height: int, size: int, n: int | None = None) -> list[tuple[int, int, int, int]]:
    """Square ``size``-px tiles over a ``width`` × ``height`` image.

    Args:
        width, height: image size, px (at least ``size`` each).
        size: tile side, px.
        n: number of tiles on an even grid (:func:`~artlens.paintings.features.patch_boxes`, the
            tiles the training features are cached with); ``None`` gives **all** tiles: the smallest
            regular grid whose tiles cover every pixel (neighbours overlap when the image is not a
            multiple of ``size``).

    Returns:
        ``(left, top, right, bottom)`` boxes, row by row.

    Example:
        >>> len(tile_boxes(500, 300, 224))  # 3 columns x 2 rows cover 500 x 300 px
        6
    """
    if width < size or height < size:
        raise InvalidParameterError(f"image {width}x{height} is smaller than a {size}-px tile")
    if n is not None:
        return patch_boxes(width, height, size, n)
    cols, rows = math.ceil(width / size), math.ceil(height / size)
    xs = np.linspace(0, width - size, cols).round().astype(int) if cols > 1 else [0]
    ys = np.linspace(0, height - size, rows).round().astype(int) if rows > 1 else [0]
    return [(int(x), int(y), int(x) + size, int(y) + size) for y in ys for x in xs]


def normalise_views(crops: Sequence[Image.Image], mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """RGB crops → ``(N, 3, S, S)`` float32 normalised with the backbone's mean and std."""
    arr = np.stack([np.asarray(c, dtype=np.float32) for c in crops]) / 255.0
    m, s = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return ((arr - m) / s).transpose(0, 3, 1, 2).copy()


FEATURE_POOLINGS = ("avg", "stats")
"""How backbone feature maps become one vector per view: ``"avg"`` — the backbone's own pooled
features (global average of the last feature maps, 1280-d for Lite0); ``"stats"`` — the mean and
standard deviation over space of every channel of several intermediate stages (for Lite0 the last
four block stages, 80 + 112 + 192 + 320 channels → 1408-d). Channel statistics of mid-level maps
describe texture and colour handling rather than objects, which is what style is about (the Gram
and moment statistics of Gatys et al. 2016 and Huang & Belongie 2017)."""


def feature_levels(backbone: nn.Module, pooling: str = "stats", n: int = 4) -> list[str]:
    """Names of the backbone modules whose outputs ``"stats"`` pooling summarises: the last ``n``
    stages of ``backbone.blocks`` (EfficientNet, MobileNet... in timm), otherwise the last ``n``
    modules of timm's ``feature_info``; ``[]`` for ``"avg"`` pooling."""
    if pooling not in FEATURE_POOLINGS:
        raise InvalidParameterError(f"unknown feature pooling {pooling!r}; use avg or stats")
    if pooling == "avg":
        return []
    blocks = getattr(backbone, "blocks", None)
    if isinstance(blocks, nn.Sequential) and len(blocks) >= 2:
        return [f"blocks.{i}" for i in range(max(0, len(blocks) - n), len(blocks))]
    info = getattr(backbone, "feature_info", None)
    names: list[str] = []
    if info is not None:
        names = list(info.module_name()) if hasattr(info, "module_name") else [f["module"] for f in info]
    modules = dict(backbone.named_modules())
    names = [name for name in names if name in modules]
    if not names:
        raise InvalidParameterError("this backbone exposes no stages for 'stats' pooling; use avg")
    return names[-n:]


def forward_pooled(backbone: nn.Module, x: torch.Tensor, pooling: str = "avg", levels: Sequence[str] = ()
                   ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One feature vector per view and the feature maps it was pooled from.

    Shape:
        x: ``(B, 3, S, S)`` normalised views → ``(B, D)`` and a list of ``(B, C_l, h_l, w_l)`` maps
        (the last feature maps for ``"avg"``; the outputs of ``levels`` for ``"stats"``, whose
        per-channel mean and standard deviation are concatenated level by level).
    """
    if pooling == "avg":
        maps = backbone.forward_features(x)
        return backbone.forward_head(maps, pre_logits=True), [maps]
    if pooling != "stats":
        raise InvalidParameterError(f"unknown feature pooling {pooling!r}; use avg or stats")
    modules = dict(backbone.named_modules())
    missing = [n for n in levels if n not in modules]
    if missing or not levels:
        raise InvalidParameterError(f"backbone has no module(s) {missing or 'given'} for 'stats' pooling")
    outs: list[torch.Tensor] = []
    handles = [modules[n].register_forward_hook(lambda _m, _i, o: outs.append(o)) for n in levels]
    try:
        backbone.forward_features(x)
    finally:
        for h in handles:
            h.remove()
    stats = [torch.cat([o.mean(dim=(2, 3)), o.flatten(2).std(dim=2, correction=0)], dim=1) for o in outs]
    return torch.cat(stats, dim=1), outs


def signed_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sign(x)·√|x|`` elementwise (power normalisation), with a finite gradient at 0."""
    return x.sign() * (x.abs() + 1e-12).sqrt()


class ViewExtractor(FeatureExtractor):
    """:class:`~artlens.paintings.features.FeatureExtractor` with other views of the same image.

    ``view``:

    - ``"grid"`` — the extractor's own views (global + ``n_patches`` grid tiles); its cache key is
      the plain extractor's, so caches are shared;
    - ``"mirror"`` — the same views of the image mirrored left-right (augmentation and TTA);
    - ``"centre"`` — one view: shorter side resized to the input size, centre crop (the usual
      ImageNet evaluation view; used by the logistic-regression baseline).

    ``pooling`` (:data:`FEATURE_POOLINGS`): ``"avg"`` keeps the extractor's features (and cache
    key); ``"stats"`` returns channel statistics of intermediate stages (:func:`forward_pooled`).
    ``signed_sqrt`` maps every pooled feature ``x`` to ``sign(x)·√|x|`` (power normalisation,
    Perronnin et al. 2010): it damps the few large activations that otherwise dominate a cosine.
    """

    def __init__(self, backbone: str | None = None, *, view: str = "grid", pooling: str = "avg",
                 signed_sqrt: bool = False, **kwargs: Any) -> None:
        if view not in ("grid", "mirror", "centre"):
            raise InvalidParameterError(f"unknown view {view!r}; use grid, mirror or centre")
        if view == "centre":
            kwargs["n_patches"] = 0
        self.pooling, self.levels, self.signed_sqrt = "avg", [], False
        super().__init__(backbone, **kwargs)
        self.view = view
        self.levels = feature_levels(self.model, pooling)
        self.pooling = pooling
        self.signed_sqrt = bool(signed_sqrt)
        if pooling != "avg":
            self.dim = self._probe_dim()

    def forward_views(self, x: Any) -> tuple[Any, Any]:
        if self.pooling == "avg":
            pooled, maps = super().forward_views(x)
        else:
            with torch.inference_mode(), self._autocast():
                x = x.to(self.device).contiguous(memory_format=torch.channels_last)
                pooled, outs = forward_pooled(self.model, x, self.pooling, self.levels)
            pooled, maps = pooled.float(), outs[-1].float()
        return (signed_sqrt(pooled) if self.signed_sqrt else pooled), maps

    def views(self, img: Image.Image) -> np.ndarray:
        if self.view == "mirror":
            img = ImageOps.mirror(img)
        if self.view == "centre":
            s = self.size
            w, h = img.size
            sc = s / min(w, h)
            img = img.resize((max(s, round(w * sc)), max(s, round(h * sc))), Image.BILINEAR, reducing_gap=3.0)
            w, h = img.size
            left, top = (w - s) // 2, (h - s) // 2
            return normalise_views([img.crop((left, top, left + s, top + s))], self.preprocess.mean,
                                   self.preprocess.std)
        return super().views(img)

    def config(self) -> dict[str, Any]:
        c = super().config()
        if self.view != "grid":
            c["view"] = self.view
        if self.pooling != "avg":
            c["pooling"], c["levels"] = self.pooling, list(self.levels)
        if self.signed_sqrt:
            c["signed_sqrt"] = True
        return c


# -- heads ---------------------------------------------------------------------------------------------


class TwoBranchHead(nn.Module):
    """Classifier head over pooled backbone features of the global view and of tiles.

    Each input is standardised with statistics of the training set (buffers, set by
    :meth:`set_normalisation`). The global branch is ``dropout → linear → GELU`` (identity with
    ``hidden = 0``); the patch branch projects every tile the same way and pools them by gated
    attention (Ilse et al. 2018) or by their mean. The branch vectors are concatenated and a linear
    layer gives the class logits.

    Args:
        in_dim: backbone feature size ``D``.
        n_classes: ``K``.
        variant: ``"two_branch"``, ``"global"`` or ``"patch"``.
        hidden: branch width (0: no hidden layer, the standardised features themselves).
        dropout: dropout on the inputs and on the fused vector.
        pooling: ``"attention"`` or ``"mean"`` over tiles.
        attention_dim: width of the attention scorer.

    Shape:
        global_: ``(B, D)``; tiles: ``(B, T, D)`` (``T ≥ 1``); mask: ``(B, T)`` bool, True for real
        tiles (optional) → logits ``(B, K)``.
    """

    def __init__(self, in_dim: int, n_classes: int, *, variant: str = "two_branch", hidden: int = 512,
                 dropout: float = 0.3, pooling: str = "attention", attention_dim: int = 128) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise InvalidParameterError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
        if pooling not in POOLINGS:
            raise InvalidParameterError(f"unknown pooling {pooling!r}; use attention or mean")
        if n_classes < 2:
            raise InvalidParameterError(f"a classifier needs at least 2 classes, got {n_classes}")
        self.variant, self.pooling = variant, pooling
        self.use_global = variant in ("two_branch", "global")
        self.use_tiles = variant in ("two_branch", "patch")
        width = hidden if hidden > 0 else in_dim
        for name in ("g", "t"):
            self.register_buffer(f"{name}_mean", torch.zeros(in_dim))
            self.register_buffer(f"{name}_std", torch.ones(in_dim))
        self.drop_in = nn.Dropout(dropout)
        if self.use_global:
            self.global_branch = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU()) if hidden > 0 else nn.Identity()
        if self.use_tiles:
            self.tile_branch = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU()) if hidden > 0 else nn.Identity()
            if pooling == "attention":
                self.attn_v = nn.Linear(width, attention_dim)
                self.attn_u = nn.Linear(width, attention_dim)
                self.attn_w = nn.Linear(attention_dim, 1)
        self.drop_fused = nn.Dropout(dropout)
        self.classifier = nn.Linear(width * (self.use_global + self.use_tiles), n_classes)

    @torch.no_grad()
    def set_normalisation(self, global_: np.ndarray | torch.Tensor, tiles: np.ndarray | torch.Tensor | None) -> None:
        """Standardise inputs with the mean and std of training features ``(n, D)`` and ``(n, T, D)``."""
        g = torch.as_tensor(np.asarray(global_), dtype=torch.float32)
        self.g_mean.copy_(g.mean(0))
        self.g_std.copy_(g.std(0).clamp_min(1e-3))
        if tiles is not None and np.asarray(tiles).size:
            t = torch.as_tensor(np.asarray(tiles), dtype=torch.float32).reshape(-1, g.shape[1])
            self.t_mean.copy_(t.mean(0))
            self.t_std.copy_(t.std(0).clamp_min(1e-3))

    def tile_weights(self, tiles: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pooling weight of each tile, ``(B, T)``, summing to 1 over the real tiles."""
        h = self._tile_codes(tiles)
        return self._weights(h, mask)

    def _tile_codes(self, tiles: torch.Tensor) -> torch.Tensor:
        return self.tile_branch(self.drop_in((tiles - self.t_mean) / self.t_std))

    def _weights(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.pooling == "attention":
            score = self.attn_w(torch.tanh(self.attn_v(h)) * torch.sigmoid(self.attn_u(h))).squeeze(-1)
        else:
            score = torch.zeros(h.shape[:2], dtype=h.dtype, device=h.device)
        if mask is not None:
            score = score.masked_fill(~mask, float("-inf"))
        return torch.softmax(score, dim=1)

    def forward(self, global_: torch.Tensor | None = None, tiles: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        parts = []
        if self.use_global:
            if global_ is None:
                raise InvalidParameterError("this classifier needs the global view's features")
            parts.append(self.global_branch(self.drop_in((global_ - self.g_mean) / self.g_std)))
        if self.use_tiles:
            if tiles is None or tiles.shape[1] == 0:
                raise InvalidParameterError("this classifier needs tile features (n_tiles >= 1)")
            h = self._tile_codes(tiles)
            parts.append((self._weights(h, mask).unsqueeze(-1) * h).sum(1))
        return self.classifier(self.drop_fused(torch.cat(parts, dim=1)))


# -- backbone stages -----------------------------------------------------------------------------------


def backbone_groups(backbone: nn.Module) -> list[list[str]]:
    """Parameter names of the backbone's layer groups, from the input (stem) to the output.

    Uses timm's coarse group matcher (for EfficientNet: the stem, each block stage, the last
    convolution); a model without one gives one group per top-level child module.
    """
    matcher = getattr(backbone, "group_matcher", None)
    if matcher is not None:
        from timm.models import group_parameters

        groups = group_parameters(backbone, matcher(coarse=True))
        return [list(groups[k]) for k in sorted(groups)]
    out = []
    for name, child in backbone.named_children():
        names = [f"{name}.{n}" for n, _ in child.named_parameters()]
        if names:
            out.append(names)
    return out


def set_trainable(backbone: nn.Module, n_groups: int) -> list[str]:
    """Freeze the backbone except its last ``n_groups`` layer groups (:func:`backbone_groups`).

    ``0`` freezes everything; ``-1`` or more than the number of groups unfreezes everything. The
    batch-norm layers of frozen groups keep their ImageNet statistics (see
    :meth:`ImageClassifier.train`).

    Returns:
        Names of the trainable parameters.
    """
    groups = backbone_groups(backbone)
    n = len(groups) if n_groups < 0 else min(int(n_groups), len(groups))
    train = {name for g in groups[len(groups) - n:] for name in g} if n else set()
    for name, p in backbone.named_parameters():
        p.requires_grad_(name in train)
    return [name for name, p in backbone.named_parameters() if p.requires_grad]


class ImageClassifier(nn.Module):
    """Backbone + :class:`TwoBranchHead` end to end on image views.

    Shape:
        views: ``(B, 1 + T, 3, S, S)`` — the global view first, then ``T`` tiles → logits ``(B, K)``.
    """

    def __init__(self, backbone: nn.Module, head: TwoBranchHead, *, pooling: str = "avg",
                 levels: Sequence[str] = ()) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.pooling, self.levels = pooling, list(levels)

    def pooled(self, views: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features ``(B, 1 + T, D)`` of ``(B, 1 + T, 3, S, S)`` views."""
        b, v = views.shape[:2]
        feats, _ = forward_pooled(self.backbone, views.flatten(0, 1), self.pooling, self.levels)
        return feats.reshape(b, v, -1)

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        f = self.pooled(views)
        return self.head(f[:, 0], f[:, 1:] if f.shape[1] > 1 else None)

    def train(self, mode: bool = True) -> ImageClassifier:
        """Train mode, except batch-norm layers whose parameters are all frozen stay in eval mode
        (their running statistics are not updated)."""
        super().train(mode)
        if mode:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    params = list(m.parameters(recurse=False))
                    if params and not any(p.requires_grad for p in params):
                        m.eval()
        return self


# -- configuration ----------------------------------------------------------------------------------------


@dataclass
class ClassifierConfig:
    """What rebuilds a trained classifier (saved in ``config.json``)."""

    classes: list[str]
    label_column: str = "label"
    variant: str = "two_branch"
    backbone: str = "tf_efficientnet_lite0"
    pretrained_backbone: bool = True
    backbone_checkpoint: str | None = None
    feature_dim: int = 0
    feature_pooling: str = "avg"
    feature_levels: list[str] = field(default_factory=list)
    n_tiles: int = 4  # grid tiles per image at evaluation (and cached for training)
    max_side: int = 1024
    hidden: int = 512
    dropout: float = 0.3
    pooling: str = "attention"
    attention_dim: int = 128

    def head(self) -> TwoBranchHead:
        return TwoBranchHead(self.feature_dim, len(self.classes), variant=self.variant, hidden=self.hidden,
                             dropout=self.dropout, pooling=self.pooling, attention_dim=self.attention_dim)

    @property
    def uses_tiles(self) -> bool:
        return self.variant in ("two_branch", "patch")

    @property
    def uses_global(self) -> bool:
        return self.variant in ("two_branch", "global")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(n, K)`` logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def top_predictions(probs: np.ndarray, classes: Sequence[str], top_k: int) -> list[dict[str, Any]]:
    """``[{"label", "probability"}]`` of the ``top_k`` most probable classes of one ``(K,)`` row."""
    order = np.argsort(-probs, kind="stable")[: max(1, int(top_k))]
    return [{"label": classes[i], "probability": float(probs[i])} for i in order]


# -- the classifier at inference ----------------------------------------------------------------------------


@dataclass
class GradCam:
    """Grad-CAM of one prediction.

    Attributes:
        path: the image.
        label, class_index, probability: the explained class and its predicted probability.
        image: ``(H, W, 3)`` uint8 — the painting at tile resolution (its own size, the long side
            capped at ``max_side`` px); every map below is on this grid.
        global_map: ``(H, W)`` float32 in [0, 1]: Grad-CAM of the global view, resized to the image
            (``None`` for a patch-only model).
        tile_map: ``(H, W)`` float32 in [0, 1]: the tiles' Grad-CAM maps pasted at their places
            (maximum where tiles overlap; 0 where no tile lies); ``None`` for a global-only model.
        tiles: per tile ``{"box": (l, t, r, b), "weight": pooling weight, "map": (S, S) float32}``,
            maps scaled by one common maximum so tiles compare with each other.
    """

    path: str
    label: str
    class_index: int
    probability: float
    image: np.ndarray
    global_map: np.ndarray | None
    tile_map: np.ndarray | None
    tiles: list[dict[str, Any]] = field(default_factory=list)


class Classifier:
    """A trained painting classifier at inference: images → views → backbone features → head.

    Build it with :func:`load_classifier`, or from a config and a head (tests, training).

    Args:
        config: the :class:`ClassifierConfig`.
        head: trained :class:`TwoBranchHead` (default: a fresh one from the config).
        backbone, preprocess: a ready backbone (default: ``create_backbone`` from the config).
        checksum: SHA-256 of the head weights (provenance).
        source: folder it was loaded from.
    """

    def __init__(self, config: ClassifierConfig, head: TwoBranchHead | None = None, *, backbone: Any = None,
                 preprocess: Any = None, checksum: str | None = None, source: str = "") -> None:
        from artlens.models.backbones import create_backbone

        self.config = config
        if backbone is None:
            backbone, preprocess = create_backbone(config.backbone, pretrained=config.pretrained_backbone
                                                   and config.backbone_checkpoint is None,
                                                   checkpoint=config.backbone_checkpoint)
        self.backbone, self.preprocess = backbone.eval(), preprocess
        if config.feature_pooling != "avg" and not config.feature_levels:
            config.feature_levels = feature_levels(backbone, config.feature_pooling)
        self.checksum, self.source = checksum, source
        self._extractors: dict[tuple[str, int], ViewExtractor] = {}
        if not config.feature_dim:
            config.feature_dim = self.extractor("grid", 0).dim
        self.head = (head if head is not None else config.head()).eval()

    @property
    def classes(self) -> list[str]:
        return list(self.config.classes)

    @property
    def size(self) -> int:
        return int(self.preprocess.input_size)

    def extractor(self, view: str = "grid", n_tiles: int | None = None, *, workers: int = 2) -> ViewExtractor:
        """A feature extractor sharing this classifier's backbone (one per view and tile count)."""
        n = self.config.n_tiles if n_tiles is None else int(n_tiles)
        n = n if self.config.uses_tiles else 0
        key = (view, n)
        if key not in self._extractors:
            from artlens.models.backbones import LITE0

            name = self.config.backbone
            ex = ViewExtractor(name, view=view, n_patches=n, max_side=self.config.max_side, workers=workers,
                               model=self.backbone, preprocess=self.preprocess, pooling=self.config.feature_pooling)
            if name == LITE0 and (not self.config.pretrained_backbone or self.config.backbone_checkpoint):
                ex.checksum = None  # not the stock weights
            self._extractors[key] = ex
        return self._extractors[key]

    # -- features → probabilities
    def logits(self, global_: np.ndarray, tiles: np.ndarray | None) -> np.ndarray:
        """Head logits ``(n, K)`` of pooled features ``(n, D)`` and ``(n, T, D)``."""
        g = torch.from_numpy(np.ascontiguousarray(global_, dtype=np.float32))
        t = None
        if self.config.uses_tiles:
            if tiles is None or tiles.shape[1] == 0:
                raise InvalidParameterError("this classifier needs tile features (n_tiles >= 1)")
            t = torch.from_numpy(np.ascontiguousarray(tiles, dtype=np.float32))
        self.head.eval()
        with torch.inference_mode():
            out = [self.head(g[s:s + 1024], None if t is None else t[s:s + 1024]) for s in range(0, len(g), 1024)]
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.classes)), np.float32)

    def probabilities(self, f: Features, mirrored: Features | None = None) -> np.ndarray:
        """Class probabilities ``(n, K)`` of extracted features; with ``mirrored`` (the same images'
        mirrored global views, test-time augmentation) the two views' probabilities are averaged,
        tiles being shared."""
        p = softmax(self.logits(f.global_, f.patches))
        if mirrored is not None:
            if mirrored.paths != f.paths:
                raise InvalidParameterError("mirrored features must be of the same images, in the same order")
            p = 0.5 * (p + softmax(self.logits(mirrored.global_, f.patches)))
        return p

    def predict_proba(self, paths: Sequence[str | os.PathLike[str]], *, tta: bool = False,
                      tiles: int | str | None = None) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
        """Probabilities of every readable image: ``(paths, (n, K) probabilities, failures)``.

        Args:
            tta: average with the mirrored global view.
            tiles: tiles per image: a number (grid), ``"all"`` (tiles covering the whole image at
                tile resolution, one image at a time), or ``None`` for the trained count.
        """
        paths = [str(p) for p in paths]
        if tiles == "all" and self.config.uses_tiles:
            return self._predict_all_tiles(paths, tta)
        n = None if tiles is None or not self.config.uses_tiles else _tile_count(tiles)
        f = self.extractor("grid", n).extract(paths)
        mirrored = self.extractor("mirror", 0).extract(f.paths) if tta and self.config.uses_global else None
        return f.paths, self.probabilities(f, mirrored), f.failures

    def _predict_all_tiles(self, paths: list[str], tta: bool) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
        from artlens.paintings.images import load_rgb

        ok, rows, failures = [], [], []
        for p in paths:
            try:
                img = load_rgb(p, min_side=self.size, min_long_side=self.config.max_side)
            except ArtlensError as exc:
                failures.append((p, str(exc)))
                continue
            views, _, _ = self.image_views(img, None)
            feats = self._pooled(torch.from_numpy(views))
            g, t = feats[:1], feats[None, 1:]
            prob = softmax(self.logits(g, t))
            if tta and self.config.uses_global:
                gm = self._pooled(torch.from_numpy(self.image_views(ImageOps.mirror(img), 0)[0]))
                prob = 0.5 * (prob + softmax(self.logits(gm, t)))
            ok.append(p)
            rows.append(prob[0])
        probs = np.stack(rows) if rows else np.zeros((0, len(self.classes)), np.float32)
        return ok, probs, failures

    def _pooled(self, views: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            pooled, _ = forward_pooled(self.backbone, views, self.config.feature_pooling, self.config.feature_levels)
            return pooled.float().numpy()

    def predict(self, paths: Sequence[str | os.PathLike[str]], *, top_k: int = 5, tta: bool = False,
                tiles: int | str | None = None) -> list[dict[str, Any]]:
        """Top-k predictions per image: ``[{"path", "predictions": [{"label", "probability"}]}]``;
        an unreadable image gets ``{"path", "error"}`` instead, in input order."""
        ok, probs, failures = self.predict_proba(paths, tta=tta, tiles=tiles)
        row = {p: i for i, p in enumerate(ok)}
        why = dict(failures)
        out = []
        for p in (str(q) for q in paths):
            if p in row:
                out.append({"path": p, "predictions": top_predictions(probs[row[p]], self.classes, top_k)})
            else:
                out.append({"path": p, "error": why.get(p, f"{p}: unreadable")})
        return out

    # -- views of one image, for Grad-CAM and "all" tiles
    def image_views(self, img: Image.Image, n_tiles: int | None) -> tuple[np.ndarray, Image.Image, list[tuple]]:
        """Normalised views ``(1 + T, 3, S, S)`` of an RGB image (global view first), the image the
        tiles were cut from, and the tile boxes in it. ``n_tiles``: grid count, ``None`` for all
        tiles, 0 for none."""
        s = self.size
        crops = [img.resize((s, s), Image.BILINEAR, reducing_gap=3.0)]
        w, h = tile_grid_size(img.size[0], img.size[1], self.config.max_side, s)
        grid = img if (w, h) == img.size else img.resize((w, h), Image.BILINEAR, reducing_gap=3.0)
        boxes = [] if n_tiles == 0 else tile_boxes(w, h, s, n_tiles)
        crops += [grid.crop(b) for b in boxes]
        return normalise_views(crops, self.preprocess.mean, self.preprocess.std), grid, boxes

    # -- explanations
    def grad_cam(self, path: str | os.PathLike[str], target: str | None = None, *,
                 n_tiles: int | str | None = None) -> GradCam:
        """Grad-CAM of the prediction for ``path`` over the global view and over every tile.

        The gradient of the class logit with respect to the feature maps that the features are
        pooled from (the last feature maps for ``"avg"`` pooling; each summarised stage for
        ``"stats"``), averaged over space, weights those maps; the positive part of the weighted
        sum, upsampled to the view, shows which regions raised the class's score. With several
        stages, each stage's maps are scaled by their maximum over all views and averaged. The
        global view's map is stretched back onto the image; the tiles' maps are pasted at their
        places (their common maximum keeps them comparable, so a tile that mattered little stays
        dark).

        Args:
            path: the image.
            target: class to explain (default: the predicted one).
            n_tiles: tiles (grid count, ``"all"``, or ``None`` for the trained count).

        Raises:
            InvalidParameterError: unknown ``target`` class.
        """
        from artlens.paintings.images import load_rgb

        img = load_rgb(path, min_side=self.size, min_long_side=self.config.max_side)
        n = 0 if not self.config.uses_tiles else (
            self.config.n_tiles if n_tiles is None else (None if n_tiles == "all" else _tile_count(n_tiles)))
        views, grid, boxes = self.image_views(img, n)
        x = torch.from_numpy(views)
        self.head.eval()
        s = self.size
        with torch.enable_grad():
            x.requires_grad_(True)  # builds the graph even when the backbone's weights are frozen
            pooled, maps = forward_pooled(self.backbone, x, self.config.feature_pooling, self.config.feature_levels)
            tiles = pooled[None, 1:] if len(boxes) else None
            logits = self.head(pooled[:1] if self.config.uses_global else None, tiles)[0]
            c = int(torch.argmax(logits)) if target is None else self._class_index(target)
            grads = torch.autograd.grad(logits[c], maps)
        prob = float(torch.softmax(logits.detach(), 0)[c])
        cams = np.zeros((len(views), s, s), np.float32)
        for m, g in zip(maps, grads, strict=True):
            cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * m.detach()).sum(1, keepdim=True)).float()
            cam = nn.functional.interpolate(cam, size=(s, s), mode="bilinear", align_corners=False)[:, 0].numpy()
            cams += cam / cam.max() if cam.max() > 0 else cam
        cams /= len(maps)
        gw, gh = grid.size
        out_w, out_h = _map_size(img.size, self.config.max_side)
        global_map = tile_map = None
        if self.config.uses_global:
            g = cams[0] / cams[0].max() if cams[0].max() > 0 else cams[0]
            global_map = _resize_map(g, out_w, out_h)
        tile_info = []
        if boxes:
            tc = cams[1:]
            top = float(tc.max()) if tc.size and tc.max() > 0 else 1.0
            with torch.inference_mode():
                wts = self.head.tile_weights(pooled[None, 1:].detach().float())[0].numpy()
            canvas = np.zeros((gh, gw), np.float32)
            for b, m, wt in zip(boxes, tc, wts, strict=True):
                m = (m / top).astype(np.float32)
                canvas[b[1]:b[3], b[0]:b[2]] = np.maximum(canvas[b[1]:b[3], b[0]:b[2]], m)
                tile_info.append({"box": tuple(int(v) for v in b), "weight": float(wt), "map": m})
            tile_map = canvas if (gw, gh) == (out_w, out_h) else _resize_map(canvas, out_w, out_h)
        image = np.asarray(grid if (gw, gh) == (out_w, out_h) else grid.resize((out_w, out_h), Image.BILINEAR))
        return GradCam(path=str(path), label=self.classes[c], class_index=c, probability=prob, image=image,
                       global_map=global_map, tile_map=tile_map, tiles=tile_info)

    def _class_index(self, label: str) -> int:
        if label not in self.config.classes:
            raise InvalidParameterError(f"unknown class {label!r}; classes are: {', '.join(self.classes)}")
        return self.config.classes.index(label)

    def record(self) -> dict[str, Any]:
        """Provenance: variant, backbone, classes, checksums."""
        return {"model": "classifier", "variant": self.config.variant, "backbone": self.config.backbone,
                "label_column": self.config.label_column, "classes": self.classes, "n_tiles": self.config.n_tiles,
                "max_side": self.config.max_side, "model_checksum": self.checksum, "source": self.source,
                "backbone_checksum": self.extractor("grid").checksum}


def _tile_count(tiles: int | str) -> int:
    try:
        n = int(tiles)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"tiles must be a number or 'all', got {tiles!r}") from None
    if n < 1:
        raise InvalidParameterError(f"tiles must be at least 1, got {n}")
    return n


def _map_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    w, h = size
    scale = min(1.0, max_side / max(w, h))
    return (max(1, round(w * scale)), max(1, round(h * scale))) if scale < 1 else (w, h)


def _resize_map(m: np.ndarray, w: int, h: int) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))[None, None]
    return nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()


# -- blends --------------------------------------------------------------------------------------------------


class BlendedClassifier:
    """Several trained classifiers of the same classes, combined.

    ``method="average"``: weighted mean of the members' probabilities (weights sum to 1).
    ``method="stacked"``: a multinomial logistic regression on the members' log-probabilities,
    fitted on held-out (validation) predictions (:func:`fit_stacker`).

    Members sharing a backbone and tile settings share one feature extraction.
    """

    def __init__(self, members: Sequence[Classifier], *, method: str = "average", weights: Sequence[float] | None
                 = None, stacker: dict[str, np.ndarray] | None = None, source: str = "") -> None:
        if not members:
            raise InvalidParameterError("a blend needs at least one member")
        classes = members[0].classes
        for m in members[1:]:
            if m.classes != classes:
                raise InvalidParameterError("blend members must have the same classes in the same order")
        if method not in ("average", "stacked"):
            raise InvalidParameterError(f"unknown blend method {method!r}; use average or stacked")
        if method == "stacked" and stacker is None:
            raise InvalidParameterError("a stacked blend needs fitted stacker weights")
        self.members, self.method, self.source = list(members), method, source
        w = np.ones(len(members)) if weights is None else np.asarray(weights, float)
        if w.shape != (len(members),) or (w < 0).any() or w.sum() <= 0:
            raise InvalidParameterError("blend weights must be one non-negative number per member, not all 0")
        self.weights = w / w.sum()
        self.stacker = stacker

    @property
    def classes(self) -> list[str]:
        return self.members[0].classes

    def combine(self, member_probs: Sequence[np.ndarray]) -> np.ndarray:
        """Blend members' ``(n, K)`` probabilities into ``(n, K)``."""
        if self.method == "average":
            return sum(w * p for w, p in zip(self.weights, member_probs, strict=True))
        return stack_probabilities(self.stacker, member_probs)

    def predict_proba(self, paths: Sequence[str | os.PathLike[str]], *, tta: bool = False,
                      tiles: int | str | None = None) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
        """As :meth:`Classifier.predict_proba`, blended."""
        paths = [str(p) for p in paths]
        cache: dict[tuple, tuple[Features, Features | None]] = {}
        results = []
        for m in self.members:
            if tiles == "all":
                results.append(m.predict_proba(paths, tta=tta, tiles=tiles))
                continue
            n = None if tiles is None or not m.config.uses_tiles else _tile_count(tiles)
            key = (m.config.backbone, m.config.backbone_checkpoint, m.config.pretrained_backbone,
                   m.config.feature_pooling, tuple(m.config.feature_levels),
                   (m.config.n_tiles if n is None else n) if m.config.uses_tiles else 0, m.config.max_side)
            if key not in cache:
                f = m.extractor("grid", n).extract(paths)
                mir = m.extractor("mirror", 0).extract(f.paths) if tta else None
                cache[key] = (f, mir)
            f, mir = cache[key]
            results.append((f.paths, m.probabilities(f, mir if m.config.uses_global else None), f.failures))
        ok = [p for p in paths if all(p in set(r[0]) for r in results)]
        aligned = []
        for r_paths, probs, _ in results:
            row = {p: i for i, p in enumerate(r_paths)}
            aligned.append(probs[[row[p] for p in ok]] if ok else np.zeros((0, len(self.classes))))
        failures = list(dict.fromkeys(f for r in results for f in r[2]))
        return ok, self.combine(aligned), failures

    def predict(self, paths: Sequence[str | os.PathLike[str]], *, top_k: int = 5, tta: bool = False,
                tiles: int | str | None = None) -> list[dict[str, Any]]:
        """As :meth:`Classifier.predict`, blended."""
        return Classifier.predict(self, paths, top_k=top_k, tta=tta, tiles=tiles)  # type: ignore[arg-type]

    def grad_cam(self, path: str | os.PathLike[str], target: str | None = None, **kw: Any) -> GradCam:
        """Grad-CAM of the blend's predicted class, explained by the first member."""
        if target is None:
            _, probs, failures = self.predict_proba([path])
            if not len(probs):
                raise UnreadableInputError(failures[0][1] if failures else f"{path}: unreadable")
            target = self.classes[int(np.argmax(probs[0]))]
        return self.members[0].grad_cam(path, target, **kw)

    def record(self) -> dict[str, Any]:
        return {"model": "blend", "method": self.method, "weights": [float(w) for w in self.weights],
                "classes": self.classes, "members": [m.record() for m in self.members], "source": self.source,
                "label_column": self.members[0].config.label_column, "variant": "blend",
                "backbone": self.members[0].config.backbone}


def stack_probabilities(stacker: dict[str, np.ndarray], member_probs: Sequence[np.ndarray]) -> np.ndarray:
    """Probabilities of a fitted stacker (``{"weight": (K, M·K), "bias": (K,)}``) on members' probabilities."""
    x = np.concatenate([np.log(np.clip(p, 1e-7, 1.0)) for p in member_probs], axis=1)
    return softmax(x @ stacker["weight"].T + stacker["bias"])


def fit_stacker(member_probs: Sequence[np.ndarray], y: np.ndarray, *, l2: float = 1.0, steps: int = 300
                ) -> dict[str, np.ndarray]:
    """Fit a stacked blend: multinomial logistic regression on the members' log-probabilities.

    Args:
        member_probs: each member's ``(n, K)`` probabilities on held-out images (never the images
            the members were trained on).
        y: ``(n,)`` true class indices.
        l2: weight decay of the regression (strong by default: held-out sets are small).
        steps: L-BFGS iterations.

    Returns:
        ``{"weight": (K, M·K), "bias": (K,)}`` float32, for :func:`stack_probabilities`.
    """
    x = torch.from_numpy(np.concatenate([np.log(np.clip(p, 1e-7, 1.0)) for p in member_probs], axis=1)).float()
    k = member_probs[0].shape[1]
    target = torch.as_tensor(np.asarray(y), dtype=torch.long)
    lin = nn.Linear(x.shape[1], k)
    with torch.no_grad():  # start from the plain average of log-probabilities
        lin.weight.zero_()
        m = len(member_probs)
        for j in range(m):
            lin.weight[:, j * k:(j + 1) * k] += torch.eye(k) / m
        lin.bias.zero_()
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(lin(x), target) + l2 / len(x) * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return {"weight": lin.weight.detach().numpy().astype(np.float32),
            "bias": lin.bias.detach().numpy().astype(np.float32)}


# -- saving and loading ----------------------------------------------------------------------------------------


def save_classifier(head: nn.Module, config: ClassifierConfig, folder: str | os.PathLike[str], *,
                    backbone: nn.Module | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``folder/head.safetensors`` and ``folder/config.json`` (never a pickle).

    With ``backbone`` (fine-tuned, or not pretrained) its weights go to ``backbone.safetensors`` and
    the config points at them; otherwise the config names the stock backbone (for Lite0: the
    weights of the installed package)."""
    from safetensors.torch import save_file

    from artlens import __version__
    from artlens.provenance import sha256_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = ClassifierConfig(**asdict(config))
    if backbone is not None:
        state = {k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}
        save_file(state, str(folder / BACKBONE_WEIGHTS), metadata={"artlens_model": f"{MODEL_NAME}:backbone"})
        cfg.backbone_checkpoint = BACKBONE_WEIGHTS
    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    tmp = folder / (HEAD_WEIGHTS + ".tmp")
    save_file(state, str(tmp), metadata={"artlens_model": MODEL_NAME})
    os.replace(tmp, folder / HEAD_WEIGHTS)
    doc = {"model": MODEL_NAME, "config": asdict(cfg), "sha256": sha256_file(folder / HEAD_WEIGHTS),
           "artlens_version": __version__, **(extra or {})}
    if backbone is not None:
        doc["backbone_sha256"] = sha256_file(folder / BACKBONE_WEIGHTS)
    (folder / CONFIG).write_text(json.dumps(doc, indent=2) + "\n")
    return folder


def save_blend(folder: str | os.PathLike[str], members: Sequence[str | os.PathLike[str]], *, method: str = "average",
               weights: Sequence[float] | None = None, stacker: dict[str, np.ndarray] | None = None,
               extra: dict[str, Any] | None = None) -> Path:
    """Write a blend: ``config.json`` naming the member classifier folders (relative to the blend
    folder when possible) and, for a stacked blend, ``blend.safetensors``."""
    from safetensors.numpy import save_file

    from artlens import __version__

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for m in members:
        p = Path(os.path.abspath(m))
        try:
            names.append(os.path.relpath(p, folder.resolve()))
        except ValueError:
            names.append(str(p))
    doc: dict[str, Any] = {"model": BLEND_NAME, "method": method, "members": names,
                           "weights": None if weights is None else [float(w) for w in weights],
                           "artlens_version": __version__, **(extra or {})}
    if stacker is not None:
        save_file({k: np.ascontiguousarray(v, np.float32) for k, v in stacker.items()}, str(folder / BLEND_WEIGHTS))
    (folder / CONFIG).write_text(json.dumps(doc, indent=2) + "\n")
    return folder


def _model_folder(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise InputNotFoundError(f"{p}: no such model folder")
    if p.is_file() and p.name == CONFIG:
        p = p.parent
    if (p / "model" / CONFIG).is_file():
        p = p / "model"
    if not (p / CONFIG).is_file():
        raise InputNotFoundError(f"{p}: not a classifier (no {CONFIG}; give a training run or its model/ folder)")
    return p


def load_classifier(path: str | os.PathLike[str], *, _depth: int = 0) -> Classifier | BlendedClassifier:
    """A classifier (or blend) from a folder written by :func:`save_classifier` / :func:`save_blend`,
    a training run (its ``model/``) or the ``config.json`` inside.

    Raises:
        InputNotFoundError: no such folder or not a classifier.
        UnreadableInputError: malformed config, changed or unfitting weights.
    """
    from safetensors.torch import load_file

    from artlens.provenance import sha256_file

    folder = _model_folder(path)
    try:
        doc = json.loads((folder / CONFIG).read_text())
        kind = doc["model"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UnreadableInputError(f"{folder / CONFIG}: malformed classifier config ({exc})") from None
    if kind == BLEND_NAME:
        if _depth > 2:
            raise UnreadableInputError(f"{folder}: blends nested too deeply")
        members = [load_classifier(m if os.path.isabs(m) else folder / m, _depth=_depth + 1)
                   for m in doc.get("members", [])]
        flat = [m for m in members if isinstance(m, Classifier)]
        if len(flat) != len(members):
            raise UnreadableInputError(f"{folder}: a blend's members must be classifiers, not blends")
        stacker = None
        if doc.get("method") == "stacked":
            from safetensors.numpy import load_file as load_np

            if not (folder / BLEND_WEIGHTS).is_file():
                raise UnreadableInputError(f"{folder}: stacked blend without {BLEND_WEIGHTS}")
            stacker = load_np(str(folder / BLEND_WEIGHTS))
        try:
            return BlendedClassifier(flat, method=doc.get("method", "average"), weights=doc.get("weights"),
                                     stacker=stacker, source=str(folder))
        except InvalidParameterError as exc:
            raise UnreadableInputError(f"{folder}: {exc}") from None
    if kind != MODEL_NAME or not (folder / HEAD_WEIGHTS).is_file():
        raise InputNotFoundError(f"{folder}: not a painting classifier (needs {HEAD_WEIGHTS} and {CONFIG})")
    try:
        config = ClassifierConfig(**doc["config"])
    except (KeyError, TypeError) as exc:
        raise UnreadableInputError(f"{folder / CONFIG}: malformed classifier config ({exc})") from None
    if config.backbone_checkpoint and not os.path.isabs(config.backbone_checkpoint):
        config.backbone_checkpoint = str(folder / config.backbone_checkpoint)
    digest = sha256_file(folder / HEAD_WEIGHTS)
    if doc.get("sha256") and doc["sha256"] != digest:
        raise UnreadableInputError(f"{folder / HEAD_WEIGHTS}: checksum does not match config.json (file changed?)")
    clf = Classifier(config, checksum=digest, source=str(folder))
    try:
        clf.head.load_state_dict(load_file(str(folder / HEAD_WEIGHTS)), strict=True)
    except Exception as exc:
        raise UnreadableInputError(f"{folder / HEAD_WEIGHTS}: weights do not fit this classifier ({exc})") from None
    clf.head.eval()
    return clf
