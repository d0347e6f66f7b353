"""Same-artist verification of two paintings: models, calibrated scores, reference sets, Grad-CAM.

Two verifier kinds share one backbone (frozen ImageNet EfficientNet-Lite2 by default; Lite0 before 2026-12-07):

- ``"siamese"`` — the seed project's recipe: the two images' feature maps, their absolute difference
  ``|a − b|``, global max pooling, dropout and one sigmoid unit, trained with binary cross-entropy.
  It sees the global view (the whole image at the backbone's input size) only.
- ``"metric"`` — artlens' default: a projection head maps each image's multi-crop features (global
  view + mean of full-resolution patches, :mod:`artlens.paintings.features`) to a 256-d unit
  vector, trained with a contrastive loss (Hadsell et al. 2006) on balanced same/different-artist
  pairs with hard negatives; two paintings are compared by the cosine of their vectors.

Either way, the raw score (logit or cosine) is turned into a probability by Platt scaling fitted on
held-out pairs (:func:`artlens.models.calibration.fit_platt`): ``same_artist_probability`` is for
even prior odds. The default verifier ships with the package (``paintings/weights/verifier_default``:
head weights only; the backbone weights come from the Lite2 dependency).

References:
    R. Hadsell, S. Chopra, Y. LeCun, "Dimensionality reduction by learning an invariant mapping",
    CVPR 2006 (contrastive loss).
    R. R. Selvaraju et al., "Grad-CAM: Visual explanations from deep networks via gradient-based
    localization", ICCV 2017.
    Kaggle "Painter by Numbers" (2016): same-artist verification of WikiArt pairs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import nn

from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError
from artlens.models.backbones import LITE2
from artlens.models.calibration import sigmoid
from artlens.models.heads import MetricHead, PairHead
from artlens.paintings.features import FeatureExtractor, Features, grad_cam_maps

Kind = Literal["metric", "siamese"]
DEFAULT_VERIFIER = "verifier_default"
"""Tag of the verifier shipped with artlens (``painting_verifier.verifier_default`` of
:mod:`artlens.models.pretrained`, in ``artlens/paintings/weights/``)."""
WEIGHTS = "head.safetensors"
MIN_BACKGROUND = 20
"""Fewest readable images :meth:`Verifier.adapt` accepts as a background collection."""
CONFIG = "config.json"
BANK = "bank.npz"
"""Optional file beside the weights: features of held-out-checked training images, for typicality and
default impostors (:mod:`artlens.paintings.typicality`)."""


# -- codes ----------------------------------------------------------------------------------------


def metric_codes(head: nn.Module, global_: np.ndarray, patches: np.ndarray, blend: float = 1.0) -> torch.Tensor:
    """Unit codes of images for the metric verifier, ``(n, E)`` or ``(n, E + 2D)`` with a blend.

    ``blend`` = 1 uses the trained head's code alone. Below 1 the code is
    ``[√blend · head(x), √(1 − blend) · frozen(x)]`` with ``frozen`` the L2-normalised multi-crop
    backbone features (:func:`~artlens.paintings.features.combine_views`), so the cosine of two codes
    is ``blend · cos_head + (1 − blend) · cos_frozen``: the frozen ImageNet similarity keeps the
    verifier honest on artists the head never saw, the head sharpens it on the ones it did. The
    weight is chosen at training time on validation artists held out of training. A centring head
    centres the frozen features on the same means as its own input.
    """
    from artlens.paintings.features import combine_views

    g = torch.from_numpy(np.ascontiguousarray(global_, dtype=np.float32))
    p = torch.from_numpy(patches.mean(axis=1).astype(np.float32)) if patches.shape[1] else None
    head.eval()
    with torch.inference_mode():
        z = head(g, p)
    if blend >= 1.0:
        return z
    if getattr(head, "centre", False):
        means: dict[str, torch.Tensor] = dict(head.named_buffers())
        global_ = global_ - means["mean_global"].numpy()
        patches = patches - means["mean_patch"].numpy()
        if getattr(head, "project", False):
            with torch.inference_mode():
                global_ = cast(MetricHead, head).remove_nuisance(torch.from_numpy(
                    np.ascontiguousarray(global_, np.float32)), "global").numpy()
                patches = cast(MetricHead, head).remove_nuisance(torch.from_numpy(
                    np.ascontiguousarray(patches, np.float32)), "patch").numpy()
    frozen = torch.from_numpy(combine_views(global_, patches))
    return torch.cat([math.sqrt(blend) * z, math.sqrt(1.0 - blend) * frozen], dim=1)


# -- features --------------------------------------------------------------------------------------


def verifier_extractor(config: Any, **kwargs: Any) -> FeatureExtractor:
    """The feature extractor a verifier (or its training config) asks for
    (:class:`~artlens.paintings.features.FeatureExtractor`).

    ``pooling="stats"`` summarises each of the last four backbone stages by its channel means and
    standard deviations (texture statistics: brushwork, craquelure, canvas), and ``signed_sqrt``
    power-normalises the pooled vector; both are for the metric verifier only (the Siamese recipe
    compares unpooled maps). ``kwargs`` go to the extractor (``model`` / ``preprocess`` for tests,
    ``workers``).

    Raises:
        InvalidParameterError: ``stats`` pooling or ``signed_sqrt`` asked of a Siamese verifier.
    """
    if config.kind != "metric" and (config.pooling != "avg" or config.signed_sqrt):
        raise InvalidParameterError("stats pooling and signed_sqrt are for the metric verifier only")
    return FeatureExtractor(config.backbone, checkpoint=getattr(config, "backbone_checkpoint", None),
                            n_patches=config.n_patches, max_side=config.max_side,
                            return_maps=config.kind == "siamese", pooling=config.pooling,
                            signed_sqrt=config.signed_sqrt, **kwargs)


# -- the verifier ----------------------------------------------------------------------------------


@dataclass
class VerifierConfig:
    """What rebuilds a verifier: kind, backbone, multi-crop settings, head sizes, calibration."""

    kind: Kind = "metric"
    backbone: str = LITE2
    backbone_checkpoint: str | None = None
    pretrained_backbone: bool = True
    n_patches: int = 4
    max_side: int = 1024
    hidden: int = 512
    embed_dim: int = 256
    dropout: float = 0.2
    blend: float = 1.0  # metric kind: weight of the trained head's code; 1 - blend for the frozen features
    calibration: dict[str, float] | None = None  # {"a": ..., "b": ...}
    # metric kind with centring: Platt scaling of scores centred on the training collection (not adapted),
    # fitted on a held-out collection scored that way; used while no background is set. None: `calibration`
    calibration_unadapted: dict[str, float] | None = None
    centre: bool = False  # metric kind: centre features on a collection's mean (MetricHead)
    pooling: str = "avg"  # metric kind: "avg" (the backbone's pooled output) or "stats" (stage statistics)
    signed_sqrt: bool = False  # metric kind: power-normalise pooled features, sign(x)·√|x|
    # metric kind with centring: photographic directions projected out while not adapted (paintings.nuisance)
    nuisance_dims: int = 0

    def head_kwargs(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "embed_dim": self.embed_dim, "dropout": self.dropout,
                "use_patches": self.n_patches > 0, "centre": self.centre, "nuisance_dims": self.nuisance_dims}


class Verifier:
    """A painting verifier at inference: features → per-image codes → pair logits → probabilities.

    Build it with :func:`load_verifier` (shipped default or a trained run) or from a config and a
    head for tests. Images are encoded once (:meth:`encode`) and compared from their codes.
    """

    def __init__(self, config: VerifierConfig, head: nn.Module | None = None, *, extractor: FeatureExtractor | None
                 = None, checksum: str | None = None, source: str = "") -> None:
        self.config = config
        if extractor is None:
            given: dict[str, Any] = {}
            if not config.pretrained_backbone:  # tests and tiny models: random weights, no download
                from artlens.models.backbones import create_backbone

                given["model"], given["preprocess"] = create_backbone(config.backbone, pretrained=False)
            extractor = verifier_extractor(config, **given)
        self.extractor = extractor
        dim = self.extractor.dim
        self.head = head if head is not None else make_head(config, dim)
        self.head.eval()
        self.checksum = checksum
        self.source = source
        self.background: dict[str, Any] | None = None  # set by adapt()
        # features of images already read: (global, mean of the patches as a (1, D) row); the metric head and
        # the frozen similarity only ever use the patches' mean, so this scores exactly as the full patches do
        self._memo: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.bank: Any = None  # artlens.paintings.typicality.Bank shipped with the model (load_verifier), or None

    def remember(self, f: Features) -> None:
        """Reuse these already extracted features (same extractor settings) instead of reading the
        images again: :meth:`adapt` and :meth:`encode` look here first (benchmarks with cached features)."""
        self._memo.update(_rows(f))

    def adapt(self, paths: Sequence[str | os.PathLike[str]], *, source: str = "") -> dict[str, Any]:
        """Centre features on these images' mean instead of the training collection's.

        Unsupervised domain adaptation: no labels are used, only the mean backbone features of the
        collection the paintings under study come from (a museum's holdings, a catalogue, the images
        of a pairs file). It removes what all of that collection's photographs share (lighting,
        scan, period) so that scores compare the paintings; give it many images by many hands, at
        least :data:`MIN_BACKGROUND`.

        Returns:
            ``{"images": n, "source": source, "skipped": m}``, also kept in :meth:`record`.

        Raises:
            InvalidParameterError: a verifier trained without centring, or too few readable images.
        """
        if not getattr(self.head, "centre", False):
            raise InvalidParameterError("this verifier was trained without feature centring, so it cannot adapt to "
                                        "a background collection; retrain it with `train_verifier` (it centres by "
                                        "default) or leave the features centred on the training collection",
                                        param="paths")
        paths = [str(p) for p in paths]
        known = [p for p in paths if p in self._memo]
        f = self.extractor.extract([p for p in paths if p not in self._memo])
        if known:
            order = {p: i for i, p in enumerate(paths)}
            rows = _rows(f) | {p: self._memo[p] for p in known}
            ok = sorted(rows, key=order.__getitem__)
            f = Features(paths=ok, global_=np.stack([rows[p][0] for p in ok]),
                         patches=np.stack([rows[p][1] for p in ok]), failures=f.failures)
        if len(f.paths) < MIN_BACKGROUND:
            raise InvalidParameterError(f"background collection: {len(f.paths)} readable images, need at least "
                                        f"{MIN_BACKGROUND} (ideally hundreds, by many artists)", param="paths")
        if f.failures:
            import warnings

            warnings.warn(f"background collection: {len(f.failures)} images could not be read and were left out "
                          f"(first: {f.failures[0][1]})", stacklevel=2)
        mean_patch = f.patches.mean(axis=(0, 1)) if f.patches.shape[1] else None
        self._memo.update(_rows(f))
        background = {"images": len(f.paths), "source": source, "skipped": len(f.failures)}
        self.centre_on(f.global_.mean(0), mean_patch, background)
        return background

    def centre_on(self, mean_global: np.ndarray | torch.Tensor, mean_patch: np.ndarray | torch.Tensor | None,
                  background: dict[str, Any] | None) -> None:
        """Centre features on these means (a centring metric head); ``background`` describes the collection
        they are the mean of, ``None`` for the training collection. The nuisance projection
        (:mod:`artlens.paintings.nuisance`) applies only without a background: a collection's own mean
        already removes what its photographs share."""
        head = cast(MetricHead, self.head)
        head.set_means(mean_global, mean_patch)
        head.project = background is None and head.nuisance_dims > 0
        self.background = background

    # codes: metric → (n, E) unit vectors; siamese → (n, D, h, w) maps
    def codes_from_features(self, f: Features) -> torch.Tensor:
        if self.config.kind == "siamese":
            if f.maps is None:
                raise ValueError("siamese verifier needs feature maps")
            return torch.from_numpy(np.ascontiguousarray(f.maps))
        return metric_codes(self.head, f.global_, f.patches, self.config.blend)

    def encode(self, paths: Sequence[str | os.PathLike[str]]) -> tuple[list[str], torch.Tensor, list[tuple[str, str]]]:
        """Codes of every readable image; returns ``(paths, codes, failures)``."""
        paths = [str(p) for p in paths]
        todo = [p for p in paths if p not in self._memo or self.config.kind != "metric"]
        f = self.extractor.extract(todo)
        got = _rows(f)
        if self.config.kind == "metric":  # typicality (features_of) reads them again
            self._memo.update(got)
        if len(todo) == len(paths):
            return f.paths, self.codes_from_features(f), f.failures
        ok = [p for p in paths if p in self._memo or p in got]
        rows = [self._memo[p] if p in self._memo else got[p] for p in ok]  # at least one memo row: never empty
        g, pt = np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])
        return ok, self.codes_from_features(Features(paths=ok, global_=g, patches=pt)), f.failures

    def features_of(self, paths: Sequence[str]) -> np.ndarray:
        """``(n, 2D)`` global and mean-patch backbone features of images already encoded (metric kind),
        uncentred, for :mod:`artlens.paintings.typicality`."""
        rows = [self._memo[str(p)] for p in paths]
        return np.stack([np.concatenate([g, pt.mean(0)]) for g, pt in rows])

    def pair_logits(self, ca: torch.Tensor, cb: torch.Tensor) -> np.ndarray:
        """Raw scores of row-aligned pairs (cosine for metric, logit for siamese), ``(n,)``."""
        with torch.inference_mode():
            if self.config.kind == "siamese":
                return self.head(ca, cb).numpy().astype(float)
            return (ca * cb).sum(-1).numpy().astype(float)

    def cross_logits(self, ca: torch.Tensor, cb: torch.Tensor) -> np.ndarray:
        """Raw scores of every code in ``ca`` against every code in ``cb``, ``(n_a, n_b)``."""
        if self.config.kind == "metric":
            with torch.inference_mode():
                return (ca @ cb.T).numpy().astype(float)
        return np.stack([self.pair_logits(ca[i : i + 1].expand(len(cb), *ca.shape[1:]), cb) for i in range(len(ca))])

    def scores_unadapted(self) -> bool:
        """Whether scores use ``calibration_unadapted``: the verifier has one and the features are centred on
        the training collection (no :meth:`adapt`).

        A collection photographed otherwise than the training one scores every pair higher when not
        adapted (the shared look of its photographs is not centred away), so a fit made on adapted scores
        is overconfident there; the unadapted fit was made on a held-out collection scored unadapted."""
        return self.background is None and self.config.calibration_unadapted is not None

    def active_calibration(self) -> dict[str, float] | None:
        """The Platt scaling that applies now (:meth:`scores_unadapted`)."""
        return self.config.calibration_unadapted if self.scores_unadapted() else self.config.calibration

    def probability(self, raw: np.ndarray | float) -> np.ndarray | float:
        """Calibrated same-artist probability of raw scores (Platt, :meth:`active_calibration`); the
        uncalibrated sigmoid when the verifier has no calibration."""
        cal = self.active_calibration()
        a, b = (cal["a"], cal["b"]) if cal else (1.0, 0.0)
        return sigmoid(a * np.asarray(raw, float) + b)

    def record(self) -> dict[str, Any]:
        """Provenance of the scores: kind, backbone, features, blend, checksums, calibration, centring."""
        centring = None
        if getattr(self.head, "centre", False):
            centring = {"background": self.background} if self.background else "training collection"
        return {"kind": self.config.kind, "backbone": self.config.backbone, "model_checksum": self.checksum,
                "backbone_checksum": self.extractor.checksum, "n_patches": self.config.n_patches,
                "pooling": self.config.pooling, "signed_sqrt": self.config.signed_sqrt, "blend": self.config.blend,
                "calibrated": self.config.calibration is not None, "calibration": self.active_calibration(),
                "calibration_for": "scores centred on the training collection (not adapted)"
                if self.scores_unadapted() else "the scores as centred",
                "centred_on": centring, "model": self.source,
                "nuisance_projection": {"dims": self.config.nuisance_dims,
                                        "applied": bool(getattr(self.head, "project", False))}
                if self.config.nuisance_dims else None,
                "background_bank": self.bank.record() if self.bank is not None else None}


def _rows(f: Features) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Memo rows of extracted features: ``path → (global, patches' mean as (1, D))`` (no patches: as is)."""
    return {p: (f.global_[i], f.patches[i].mean(0, keepdims=True) if f.patches.shape[1] else f.patches[i])
            for i, p in enumerate(f.paths)}


def make_head(config: VerifierConfig, dim: int) -> nn.Module:
    """The head for ``config.kind`` on ``dim``-d backbone features."""
    if config.kind == "metric":
        return MetricHead(dim, **config.head_kwargs())
    if config.kind == "siamese":
        return PairHead(dim, dropout=config.dropout)
    raise InvalidParameterError(f"unknown verifier kind {config.kind!r}; use 'metric' or 'siamese'")


# -- saving and loading ------------------------------------------------------------------------------


def save_verifier(head: nn.Module, config: VerifierConfig, folder: str | os.PathLike[str],
                  extra: dict[str, Any] | None = None, backbone: nn.Module | None = None) -> Path:
    """Write ``folder/head.safetensors`` and ``folder/config.json`` (no pickle) with
    :func:`artlens.models.checkpoint.save_weights`: every file atomic, every file's SHA-256 in the
    config.

    With ``backbone`` (fine-tuned, or not from pretrained weights) its weights are written too, as
    ``folder/backbone.safetensors``; the config points at them and records their SHA-256
    (``backbone_sha256``, checked on loading). Otherwise the backbone is the named one with its stock
    ImageNet weights (for Lite0: from the installed package)."""
    from dataclasses import asdict

    from artlens import __version__
    from artlens.models.checkpoint import save_weights
    from artlens.paintings.features import backbone_file

    files: dict[str, Any] = {}
    backbone_sha = None
    if backbone is not None:
        files["backbone.safetensors"], backbone_sha = backbone_file(backbone)
        config = VerifierConfig(**{**asdict(config), "backbone_checkpoint": "backbone.safetensors",
                                   "pretrained_backbone": True})
    doc: dict[str, Any] = {"model": "painting_verifier", "config": asdict(config), "sha256": "",
                           "artlens_version": __version__, **(extra or {})}
    if backbone_sha is not None:
        doc["backbone_sha256"] = backbone_sha
    return save_weights(folder, head, doc, weights_name=WEIGHTS, extra_files=files,
                        metadata={"artlens_model": f"painting_verifier:{config.kind}"})


def load_verifier(path: str | os.PathLike[str] | None = None) -> Verifier:
    """A verifier from a folder written by :func:`save_verifier` (a run's ``model/`` or the run
    itself); ``None`` loads the default shipped with artlens.

    Raises:
        InputNotFoundError: no such folder / no shipped default.
        UnreadableInputError: malformed config, changed or unreadable weights.
    """
    from artlens.models.checkpoint import load_weights
    from artlens.paintings.features import check_backbone_file

    if path is None:
        from artlens.models.pretrained import pretrained_path

        folder = pretrained_path(DEFAULT_VERIFIER)  # the shipped default; raises if not installed
    else:
        folder = Path(path).expanduser()
        if (folder / "model" / CONFIG).is_file():
            folder = folder / "model"
        if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
            raise InputNotFoundError(f"{path}: not a verifier (needs {WEIGHTS} and {CONFIG})")
    state, doc = load_weights(folder, weights_name=WEIGHTS, what="verifier")  # checks every checksum
    try:
        config = VerifierConfig(**doc["config"])
    except (KeyError, TypeError) as exc:
        raise UnreadableInputError(f"{folder / CONFIG}: malformed verifier config ({exc})") from None
    check_backbone_file(folder, doc, config.backbone_checkpoint)
    if config.backbone_checkpoint and not os.path.isabs(config.backbone_checkpoint):
        config.backbone_checkpoint = str(folder / config.backbone_checkpoint)
    verifier = Verifier(config, checksum=doc["sha256"], source=str(folder))
    try:
        verifier.head.load_state_dict(state, strict=True)
    except Exception as exc:
        raise UnreadableInputError(f"{folder / WEIGHTS}: weights do not fit this verifier ({exc})") from None
    verifier.head.eval()
    if (folder / BANK).is_file():
        from artlens.paintings.typicality import load_bank

        verifier.bank = load_bank(folder / BANK, verifier)
    return verifier


# -- user-facing operations ---------------------------------------------------------------------------


def verify_pairs(verifier: Verifier, pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Score many pairs; every image is encoded once. A pair with an unreadable image gets an
    ``error`` entry instead of a probability.

    With a bank (:mod:`artlens.paintings.typicality`, shipped with the default verifier) each pair also
    gets ``typicality`` (its less typical image's distance to the training works, the thresholds set on
    held-out works, ``status`` and ``reason``) and ``probability_as_calibrated``; an atypical pair's
    ``same_artist_probability`` is moved towards 0.5, and one outside the verifier's experience is 0.5
    with ``abstained`` true."""
    unique = list(dict.fromkeys(p for pair in pairs for p in pair))
    ok, codes, failures = verifier.encode(unique)
    row = {p: i for i, p in enumerate(ok)}
    why = dict(failures)
    bank = getattr(verifier, "bank", None)
    dist = None
    if bank is not None and len(ok):
        from artlens.paintings.typicality import assess, explain, temper

        dist = bank.distance(verifier.features_of(ok))
    out = []
    for a, b in pairs:
        if a in row and b in row:
            raw = float(verifier.pair_logits(codes[row[a]][None], codes[row[b]][None])[0])
            p = float(verifier.probability(raw))
            r: dict[str, Any] = {"a": a, "b": b, "same_artist_probability": p, "score": raw}
            if dist is not None and bank is not None:
                da, db = float(dist[row[a]]), float(dist[row[b]])
                t = assess(bank, max(da, db))
                which = "the pair is" if min(da, db) > bank.threshold else (
                    "image A is" if da >= db else "image B is")
                r |= {"same_artist_probability": temper(p, t["weight"]), "probability_as_calibrated": p,
                      "abstained": t["status"] == "outside",
                      "typicality": {**t, "distance_a": da, "distance_b": db, "reason": explain(t["status"], which)}}
            out.append(r)
        else:
            bad = a if a not in row else b
            out.append({"a": a, "b": b, "error": why.get(bad, f"{bad}: unreadable")})
    return out


def verify_against_reference(verifier: Verifier, query: str, references: Sequence[str], *, top: int = 5
                             ) -> dict[str, Any]:
    """One painting against an artist's reference set: the distribution of pair probabilities and
    the closest references.

    Returns:
        ``{"query", "references", "probabilities": {"min", "median", "mean", "max"},
        "fraction_above_0.5", "mean_logit_probability", "closest": [{"path", "probability"}...],
        "skipped": [...]}``. ``mean_logit_probability`` is the calibration applied to the mean raw
        score, a summary of the whole set, not a calibrated set-level probability.
    """
    ok, codes, failures = verifier.encode([query, *references])
    if not ok or ok[0] != query:
        reason = dict(failures).get(query, "unreadable")
        raise UnreadableInputError(reason)
    if len(ok) < 2:
        raise InvalidParameterError("no readable reference image")
    raw = verifier.cross_logits(codes[:1], codes[1:])[0]
    prob = np.asarray(verifier.probability(raw), float)
    order = np.argsort(-raw)[:top]
    return {
        "query": query,
        "references": len(ok) - 1,
        "probabilities": {"min": float(prob.min()), "median": float(np.median(prob)), "mean": float(prob.mean()),
                          "max": float(prob.max())},
        "fraction_above_0.5": float((prob > 0.5).mean()),
        "mean_logit_probability": float(verifier.probability(float(raw.mean()))),
        "closest": [{"path": ok[1 + i], "probability": float(prob[i]), "score": float(raw[i])} for i in order],
        "skipped": [{"path": p, "reason": r} for p, r in failures],
    }


# -- Grad-CAM --------------------------------------------------------------------------------------


def grad_cam_pair(verifier: Verifier, path_a: str, path_b: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Grad-CAM maps of the global views of A and B for the pair's raw score.

    The gradient of the pair score (cosine or logit) with respect to each image's last
    convolutional feature maps, averaged over space, weights those maps; the positive part of the
    weighted sum, upsampled to 224 × 224 and scaled to [0, 1], shows which regions raised the score.
    For the metric verifier the patches' features are held fixed (the map explains the global view).

    Returns:
        ``(cam_a, cam_b, raw_score)``; maps are ``(S, S)`` float32 in [0, 1] over the global view.
    """
    from artlens.paintings.images import load_rgb

    ex = verifier.extractor
    views = [torch.from_numpy(ex.views(load_rgb(p))) for p in (path_a, path_b)]
    model = ex.model
    with torch.enable_grad():
        if verifier.config.kind == "siamese":
            maps = [[model.forward_features(v[:1].contiguous()).detach().requires_grad_(True)] for v in views]
            score = verifier.head(maps[0][0], maps[1][0]).sum()
        else:
            maps, codes = [], []
            for v in views:
                x = v[:1].contiguous().requires_grad_(True)  # builds the graph through the frozen backbone
                g, m = ex.pooled_with_maps(x)
                p = None
                if v.shape[0] > 1:
                    with torch.inference_mode():
                        p = ex.pooled_with_maps(v[1:])[0].mean(0, keepdim=True)
                    p = p.clone()
                maps.append(m)
                codes.append(verifier.head(g, p))
            score = (codes[0] * codes[1]).sum()
        grads = torch.autograd.grad(score, [m for per_image in maps for m in per_image])
    cams, k = [], 0
    for per_image in maps:  # one map per summarised stage: each scaled to [0, 1], then averaged
        total = grad_cam_maps(per_image, grads[k:k + len(per_image)], ex.size)[0]
        k += len(per_image)
        cams.append(total / total.max() if total.max() > 0 else total)
    return cams[0], cams[1], float(score.detach())
