"""Style, genre and medium classification of paintings at inference: the classifier, prediction, TTA,
Grad-CAM, blends, saving and loading.

A painting is seen twice (see :mod:`artlens.paintings.features`):

- the **global branch** looks at the whole image resized to the backbone's input (260 × 260 px for
  EfficientNet-Lite2, 224 for Lite0): composition, colour masses, subject;
- the **patch branch** looks at square tiles cut from the image at its own resolution (long side
  capped at ``max_side`` px): brushwork, line, craquelure, print texture. Tile features are pooled
  by gated attention (Ilse et al. 2018) or by their mean, so any number of tiles can be given.

The two branch vectors are concatenated (fused) before one linear classifier.
``variant="global"`` and ``variant="patch"`` keep one branch only, for comparisons. Each view
becomes one vector either as the backbone's pooled output (``"avg"``) or as the channel means and
standard deviations of its last block stages (``"stats"``,
:data:`~artlens.paintings.features.FEATURE_POOLINGS`). Views, tiles and pooling come from the one
feature API, :class:`~artlens.paintings.features.FeatureExtractor`; the head
(:class:`~artlens.models.heads.TwoBranchHead`) from the model registry.

The backbone is a timm model (:func:`artlens.models.backbones.create_backbone`; offline
ImageNet Lite2 by default, Lite0 offline too). This module is inference only (torch, never Lightning nor
:mod:`artlens.train`). Training lives in :mod:`artlens.train.classify` (and
:mod:`artlens.train.finetune`: staged unfreezing, the stacked blend's fit); evaluation in
:mod:`artlens.paintings.evaluate`.

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
from artlens.models.backbones import LITE2
from artlens.models.heads import VARIANTS, TwoBranchHead
from artlens.models.pooling import feature_levels
from artlens.paintings.features import FeatureExtractor, Features, grad_cam_maps

__all__ = ["VARIANTS", "BlendedClassifier", "Classifier", "ClassifierConfig", "GradCam", "load_classifier",
           "save_blend", "save_classifier", "softmax", "stack_probabilities", "top_predictions"]

HEAD_WEIGHTS = "head.safetensors"
BACKBONE_WEIGHTS = "backbone.safetensors"
BLEND_WEIGHTS = "blend.safetensors"
CONFIG = "config.json"
MODEL_NAME = "painting_classifier"
BLEND_NAME = "painting_classifier_blend"


# -- configuration ----------------------------------------------------------------------------------------


@dataclass
class ClassifierConfig:
    """What rebuilds a trained classifier (saved in ``config.json``)."""

    classes: list[str]
    label_column: str = "label"
    variant: str = "two_branch"
    backbone: str = LITE2
    pretrained_backbone: bool = True
    backbone_checkpoint: str | None = None
    feature_dim: int = 0
    feature_pooling: str = "avg"
    feature_levels: list[str] = field(default_factory=list)
    n_tiles: int = 4  # grid tiles per image at evaluation (and cached for training)
    # crops of the whole image (features.crop_boxes) that test-time augmentation averages with the global
    # and mirrored views; training drew its augmentation from the same crops. 0: models saved before
    crops: int = 0
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
        self.default_tta = False  # test-time augmentation when a call does not say (saved with the model)
        self.device = "cpu"
        self._extractors: dict[tuple[str, int], FeatureExtractor] = {}
        if not config.feature_dim:
            config.feature_dim = self.extractor("grid", 0).dim
        self.head = (head if head is not None else config.head()).eval()

    @property
    def classes(self) -> list[str]:
        return list(self.config.classes)

    @property
    def size(self) -> int:
        return int(self.preprocess.input_size)

    def to(self, device: str) -> Classifier:
        """Run the backbone on ``device`` (``"cpu"`` or ``"cuda:N"``, as :func:`artlens.devices.resolve_device`
        gives it), with a batch size for it; the small head stays on the CPU. Returns ``self``."""
        from artlens.devices import batch_size_for

        self.device = device
        self.backbone = self.backbone.to(device)
        for ex in self._extractors.values():
            ex.model, ex.device = self.backbone, device
            ex.batch_size = batch_size_for(device, ex.batch_size, max(ex.batch_size, 64))
        return self

    def extractor(self, view: str = "grid", n_tiles: int | None = None, *, workers: int = 2) -> FeatureExtractor:
        """A feature extractor sharing this classifier's backbone (one per view and tile count)."""
        n = self.config.n_tiles if n_tiles is None else int(n_tiles)
        n = n if self.config.uses_tiles or view == "crops" else 0
        key = (view, n)
        if key not in self._extractors:
            from artlens.models.backbones import OFFLINE_BACKBONES

            name = self.config.backbone
            ex = FeatureExtractor(name, view=view, n_patches=n, max_side=self.config.max_side, workers=workers,
                                  model=self.backbone, preprocess=self.preprocess, pooling=self.config.feature_pooling,
                                  levels=self.config.feature_levels, device=self.device)
            if self.device != "cpu":
                from artlens.devices import batch_size_for

                ex.batch_size = batch_size_for(self.device, ex.batch_size, max(ex.batch_size, 64))
            if name in OFFLINE_BACKBONES and (not self.config.pretrained_backbone or self.config.backbone_checkpoint):
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

    def probabilities(self, f: Features, alternates: Features | None = None) -> np.ndarray:
        """Class probabilities ``(n, K)`` of extracted features; with ``alternates`` (the same images'
        other global views, :meth:`alternate_views`: test-time augmentation) averaged over the views,
        tiles being shared (:meth:`augmented`)."""
        if alternates is None:
            return softmax(self.logits(f.global_, f.patches))
        if alternates.paths != f.paths:
            raise InvalidParameterError("alternate views must be of the same images, in the same order")
        return self.augmented(f.global_, f.patches, alternates.global_, alternates.patches)

    def augmented(self, global_: np.ndarray, tiles: np.ndarray | None, mirrored: np.ndarray,
                  crops: np.ndarray) -> np.ndarray:
        """Test-time augmentation: the probabilities of the global view and of its mirror image are
        averaged; with crops (``(n, C, D)``, ``C > 0``) that average and the crops' mean count half each.
        Tiles ``(n, T, D)`` are shared by every view."""
        p = 0.5 * (softmax(self.logits(global_, tiles)) + softmax(self.logits(mirrored, tiles)))
        if crops.shape[1] == 0:
            return p
        return 0.5 * (p + np.mean([softmax(self.logits(crops[:, k], tiles)) for k in range(crops.shape[1])], axis=0))

    def alternate_views(self, paths: Sequence[str]) -> Features:
        """The other global views test-time augmentation averages over, as one :class:`Features`:
        ``global_`` the mirrored global view, ``patches`` the model's ``crops`` of the whole image
        (``(n, crops, D)``; none for models trained without them)."""
        m = self.extractor("mirror", 0).extract(paths)
        if not self.config.crops:
            return m
        c = self.extractor("crops", self.config.crops).extract(m.paths)
        keep = set(c.paths)
        rows = [i for i, p in enumerate(m.paths) if p in keep]
        return Features(paths=c.paths, global_=m.global_[rows], patches=c.patches,
                        failures=m.failures + c.failures)

    def predict_proba(self, paths: Sequence[str | os.PathLike[str]], *, tta: bool | None = None,
                      tiles: int | str | None = None) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
        """Probabilities of every readable image: ``(paths, (n, K) probabilities, failures)``.

        Args:
            tta: average over the mirrored global view and the model's crops (``None``: the
                model's ``default_tta``, saved with it by training).
            tiles: tiles per image: a number (grid), ``"all"`` (tiles covering the whole image at
                tile resolution, one image at a time), or ``None`` for the trained count.
        """
        names = [str(p) for p in paths]
        tta = self.default_tta if tta is None else tta
        if tiles == "all" and self.config.uses_tiles:
            return self._predict_all_tiles(names, tta)
        n = None if tiles is None or not self.config.uses_tiles else _tile_count(tiles)
        f = self.extractor("grid", n).extract(names)
        alternates = self.alternate_views(f.paths) if tta and self.config.uses_global else None
        return f.paths, self.probabilities(f, alternates), f.failures

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
            if tta and self.config.uses_global:
                gm = self._pooled(torch.from_numpy(self.image_views(ImageOps.mirror(img), 0)[0]))
                crops = np.zeros((1, 0, g.shape[1]), np.float32)
                if self.config.crops:
                    crops = self._pooled(torch.from_numpy(self.extractor("crops", self.config.crops).views(img)))
                    crops = crops[None, 1:]
                prob = self.augmented(g, t, gm, crops)
            else:
                prob = softmax(self.logits(g, t))
            ok.append(p)
            rows.append(prob[0])
        probs = np.stack(rows) if rows else np.zeros((0, len(self.classes)), np.float32)
        return ok, probs, failures

    def _pooled(self, views: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            pooled, _ = self.extractor("grid", 0).pooled_with_maps(views.to(self.device))
            return np.asarray(pooled.float().cpu().numpy())

    def predict(self, paths: Sequence[str | os.PathLike[str]], *, top_k: int = 5, tta: bool | None = None,
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
    def image_views(self, img: Image.Image, n_tiles: int | None
                    ) -> tuple[np.ndarray, Image.Image, list[tuple[int, int, int, int]]]:
        """Normalised views ``(1 + T, 3, S, S)`` of an RGB image (global view first), the image the
        tiles were cut from, and the tile boxes in it. ``n_tiles``: grid count, ``None`` for all
        tiles, 0 for none (:meth:`FeatureExtractor.tile_views
        <artlens.paintings.features.FeatureExtractor.tile_views>`)."""
        return self.extractor("grid", 0).tile_views(img, n_tiles)

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
        x = torch.from_numpy(views).to(self.device)
        self.head.eval()
        s = self.size
        with torch.enable_grad():
            x.requires_grad_(True)  # builds the graph even when the backbone's weights are frozen
            pooled, maps = self.extractor("grid", 0).pooled_with_maps(x)
            pooled = pooled.cpu()  # the head stays on the CPU (a no-op there)
            tiles = pooled[None, 1:] if len(boxes) else None
            logits = self.head(pooled[:1] if self.config.uses_global else None, tiles)[0]
            c = int(torch.argmax(logits)) if target is None else self._class_index(target)
            grads = torch.autograd.grad(logits[c], maps)
        prob = float(torch.softmax(logits.detach(), 0)[c])
        cams = grad_cam_maps([m.cpu() for m in maps], [g.cpu() for g in grads], s)
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
        shown = grid if (gw, gh) == (out_w, out_h) else grid.resize((out_w, out_h), Image.Resampling.BILINEAR)
        image = np.asarray(shown)
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
    fitted on held-out (validation) predictions (:func:`artlens.train.finetune.fit_stacker`).

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
        self.default_tta = False  # test-time augmentation when a call does not say (saved with the blend)
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
        if self.stacker is None:  # the constructor refuses a stacked blend without one
            raise InvalidParameterError("a stacked blend needs fitted stacker weights")
        return stack_probabilities(self.stacker, member_probs)

    def predict_proba(self, paths: Sequence[str | os.PathLike[str]], *, tta: bool | None = None,
                      tiles: int | str | None = None) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
        """As :meth:`Classifier.predict_proba`, blended (``tta=None``: the blend's ``default_tta``)."""
        names = [str(p) for p in paths]
        tta = self.default_tta if tta is None else tta
        grids: dict[tuple, Features] = {}  # members sharing a backbone share extractions
        others: dict[tuple, Features] = {}
        results = []
        for m in self.members:
            if tiles == "all":
                results.append(m.predict_proba(names, tta=tta, tiles=tiles))
                continue
            n = None if tiles is None or not m.config.uses_tiles else _tile_count(tiles)
            same = (m.config.backbone, m.config.backbone_checkpoint, m.config.pretrained_backbone,
                    m.config.feature_pooling, tuple(m.config.feature_levels), m.config.max_side)
            key = (*same, (m.config.n_tiles if n is None else n) if m.config.uses_tiles else 0)
            if key not in grids:
                grids[key] = m.extractor("grid", n).extract(names)
            f = grids[key]
            alternates = None
            if tta and m.config.uses_global:
                akey = (*same, m.config.crops, tuple(f.paths))
                if akey not in others:
                    others[akey] = m.alternate_views(f.paths)
                alternates = others[akey]
            results.append((f.paths, m.probabilities(f, alternates), f.failures))
        ok = [p for p in names if all(p in set(r[0]) for r in results)]
        aligned = []
        for r_paths, probs, _ in results:
            row = {p: i for i, p in enumerate(r_paths)}
            aligned.append(probs[[row[p] for p in ok]] if ok else np.zeros((0, len(self.classes))))
        failures = list(dict.fromkeys(f for r in results for f in r[2]))
        return ok, self.combine(aligned), failures

    def predict(self, paths: Sequence[str | os.PathLike[str]], *, top_k: int = 5, tta: bool | None = None,
                tiles: int | str | None = None) -> list[dict[str, Any]]:
        """As :meth:`Classifier.predict`, blended."""
        return Classifier.predict(self, paths, top_k=top_k, tta=tta, tiles=tiles)  # type: ignore[arg-type]

    def to(self, device: str) -> BlendedClassifier:
        """Run every member's backbone on ``device`` (:meth:`Classifier.to`). Returns ``self``."""
        for m in self.members:
            m.to(device)
        return self

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


# -- saving and loading ----------------------------------------------------------------------------------------


def save_classifier(head: nn.Module, config: ClassifierConfig, folder: str | os.PathLike[str], *,
                    backbone: nn.Module | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``folder/head.safetensors`` and ``folder/config.json`` (never a pickle) with
    :func:`artlens.models.checkpoint.save_weights`: every file atomic, every file's SHA-256 in the
    config.

    With ``backbone`` (fine-tuned, or not pretrained) its weights go to ``backbone.safetensors``, the
    config points at them and records their SHA-256 (``backbone_sha256``, checked on loading);
    otherwise the config names the stock backbone (for Lite0 / Lite2: the weights of the installed package)."""
    from artlens import __version__
    from artlens.models.checkpoint import save_weights
    from artlens.paintings.features import backbone_file

    cfg = ClassifierConfig(**asdict(config))
    files: dict[str, Any] = {}
    doc: dict[str, Any] = {"model": MODEL_NAME, "config": {}, "sha256": "", "artlens_version": __version__,
                           **(extra or {})}
    if backbone is not None:
        files[BACKBONE_WEIGHTS], doc["backbone_sha256"] = backbone_file(backbone)
        cfg.backbone_checkpoint = BACKBONE_WEIGHTS
    doc["config"] = asdict(cfg)
    return save_weights(folder, head, doc, weights_name=HEAD_WEIGHTS, extra_files=files,
                        metadata={"artlens_model": MODEL_NAME})


def save_blend(folder: str | os.PathLike[str], members: Sequence[str | os.PathLike[str]], *, method: str = "average",
               weights: Sequence[float] | None = None, stacker: dict[str, np.ndarray] | None = None,
               extra: dict[str, Any] | None = None) -> Path:
    """Write a blend: ``config.json`` naming the member classifier folders (relative to the blend
    folder when possible) and, for a stacked blend, ``blend.safetensors`` (its SHA-256 under
    ``files``); each file written atomically."""
    from safetensors.numpy import save_file

    from artlens import __version__
    from artlens.models.checkpoint import write_atomic

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
        state = {k: np.ascontiguousarray(v, np.float32) for k, v in stacker.items()}
        doc["files"] = {BLEND_WEIGHTS: write_atomic(folder / BLEND_WEIGHTS, lambda p: save_file(state, p))}
    write_atomic(folder / CONFIG, json.dumps(doc, indent=2) + "\n")
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
    from artlens.models.checkpoint import load_weights
    from artlens.paintings.features import check_backbone_file

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
            from artlens.models.checkpoint import verify_files

            verify_files(folder, {"files": doc.get("files")}, weights_name=BLEND_WEIGHTS)
            stacker = load_np(str(folder / BLEND_WEIGHTS))
        try:
            blend = BlendedClassifier(flat, method=doc.get("method", "average"), weights=doc.get("weights"),
                                      stacker=stacker, source=str(folder))
        except InvalidParameterError as exc:
            raise UnreadableInputError(f"{folder}: {exc}") from None
        blend.default_tta = doc.get("tta") is True
        return blend
    if kind != MODEL_NAME or not (folder / HEAD_WEIGHTS).is_file():
        raise InputNotFoundError(f"{folder}: not a painting classifier (needs {HEAD_WEIGHTS} and {CONFIG})")
    try:
        config = ClassifierConfig(**doc["config"])
    except (KeyError, TypeError) as exc:
        raise UnreadableInputError(f"{folder / CONFIG}: malformed classifier config ({exc})") from None
    state, doc = load_weights(folder, weights_name=HEAD_WEIGHTS, what="classifier")  # checks every checksum
    check_backbone_file(folder, doc, config.backbone_checkpoint)
    if config.backbone_checkpoint and not os.path.isabs(config.backbone_checkpoint):
        config.backbone_checkpoint = str(folder / config.backbone_checkpoint)
    clf = Classifier(config, checksum=doc["sha256"], source=str(folder))
    try:
        clf.head.load_state_dict(state, strict=True)
    except Exception as exc:
        raise UnreadableInputError(f"{folder / HEAD_WEIGHTS}: weights do not fit this classifier ({exc})") from None
    clf.head.eval()
    clf.default_tta = doc.get("tta") is True
    return clf
