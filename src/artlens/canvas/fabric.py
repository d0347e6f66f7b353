"""Fabric models at inference: the comparison of two canvases' fabric, for pieces that share no threads.

Two kinds of model, loaded by :func:`load_fabric_model` from a checkpoint folder (or a shipped model's
name) and used alike by :class:`artlens.canvas.collection.CanvasComparer` (``describe`` each plate
once, ``compare`` two descriptions, ``calibrate``; ``kind`` and ``method`` name them in the output):

- :class:`YarnModel` (``method = "yarn-statistics"``, the default ``fabric_default`` since issue 18):
  the yarn descriptor of :mod:`artlens.canvas.yarn` per plate, and a fitted, calibrated logistic
  comparison of two descriptors (:mod:`artlens.train.yarn`);
- :class:`FabricModel` (``method = "siamese"``, shipped as ``siamese_v1``): the Siamese network below.

Siamese model: canvas embeddings, patch-pair logits, aggregation into one calibrated canvas score.

Imports torch, never Lightning (training lives in :mod:`artlens.train.fabric`). A canvas is encoded
once (:func:`canvas_embeddings`: ``n_patches`` random ``patch_cm`` patches of the plate, resampled to
the model's px/cm, min-max scaled, embedded); two canvases are compared from their cached embeddings
(:func:`compare_canvases`): every patch of A against every patch of B through the model's head gives
a ``(n_a, n_b)`` matrix of logits, :func:`aggregate` pools it into one canvas logit, a bootstrap over
the patches gives its 95 % interval, and the Platt scaling fitted at training time on held-out canvas
pairs (``config.json`` → ``calibration``) turns it into a probability.

References:
    J. J. Murillo-Fuentes, P. M. Olmos, L. Alba-Carcelén, "Canvas comparison with Siamese networks on
    X-ray patches" (arXiv:2506.20272), 2025.

    J. Platt, "Probabilistic outputs for support vector machines and comparisons to regularized
    likelihood methods", in *Advances in Large Margin Classifiers*, MIT Press, 1999.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from artlens.canvas.threads.preprocess import normalise_crops, resample_crop
from artlens.errors import InvalidImageError, InvalidParameterError
from artlens.io.image import Plate

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_FABRIC_MODEL",
    "CanvasEmbedding",
    "FabricModel",
    "YarnModel",
    "aggregate",
    "aggregate_with_ci",
    "canvas_embeddings",
    "compare_canvases",
    "load_fabric_model",
    "pair_logits",
    "sample_patches",
]

Aggregation = Literal["mean", "trimmed", "median"]
AGGREGATIONS = ("mean", "trimmed", "median")
DEFAULT_FABRIC_MODEL = "fabric_default"
"""Folder name of the fabric model that ``canvas compare`` and ``canvas match`` use by default, inside
the package (``artlens/canvas/fabric_weights/``): the tag ``yarn_logistic.fabric_default``; see
:func:`artlens.models.list_pretrained` (``family="fabric"``) for the others."""


def load_fabric_model(path: str | os.PathLike[str] | None = None, device: str = "cpu") -> FabricModel | YarnModel:
    """Load any fabric model: a Siamese network (:class:`FabricModel`) or a yarn-statistics comparison
    (:class:`YarnModel`), chosen by ``config.json``'s ``model``.

    Args:
        path: a model folder, or shipped weights by tag (``"siamese_v1"`` or
            ``"siamese_fabric.siamese_v1"``; :func:`artlens.models.list_pretrained`, ``family="fabric"``);
            default: :data:`DEFAULT_FABRIC_MODEL`.

    Raises:
        InputNotFoundError: neither a folder nor a shipped model (the shipped ones are listed).
    """
    from artlens.models.checkpoint import read_config
    from artlens.models.pretrained import resolve_model_folder

    folder = resolve_model_folder(DEFAULT_FABRIC_MODEL if path is None else path, what="fabric model",
                                  family="fabric")
    _, config = read_config(folder)
    if str(config.get("model", "")).startswith("yarn"):
        return YarnModel.load(folder)
    return FabricModel.load(folder, device=device)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@dataclass
class FabricModel:
    """A loaded Siamese fabric model and how it wants its input.

    Attributes:
        model: torch module in eval mode with ``embed`` and ``score_embeddings``.
        config: the checkpoint's ``config.json`` (``sha256``, ``input_px_per_cm``, ``patch_cm``,
            ``calibration`` = ``{"a", "b"}`` of ``p = sigmoid(a · logit + b)``, ``aggregation``).
        path: the checkpoint folder.
    """

    model: Any
    config: dict[str, Any]
    path: Path
    kind = "siamese"
    method = "siamese"

    @property
    def px_per_cm(self) -> float:
        return float(self.config["input_px_per_cm"])

    @property
    def patch_cm(self) -> float:
        return float(self.config["patch_cm"])

    @property
    def size(self) -> int:
        return int(round(self.patch_cm * self.px_per_cm))

    @property
    def calibration(self) -> dict[str, Any]:
        """``{"a": ..., "b": ..., "fitted": bool}``; identity (a=1, b=0, not fitted) when absent."""
        c = self.config.get("calibration") or {}
        return {"a": float(c.get("a", 1.0)), "b": float(c.get("b", 0.0)), "fitted": bool(c.get("fitted", False)),
                **{k: v for k, v in c.items() if k not in ("a", "b", "fitted")}}

    @property
    def aggregation(self) -> dict[str, Any]:
        """Aggregation the calibration was fitted for: ``{"method", "trim", "n_patches"}``."""
        a = self.config.get("aggregation") or {}
        return {"method": a.get("method", "mean"), "trim": float(a.get("trim", 0.1)),
                "n_patches": int(a.get("n_patches", 64))}

    def calibrate(self, logit: float) -> float:
        """Probability ``sigmoid(a · logit + b)`` of an aggregated canvas logit."""
        c = self.calibration
        return _sigmoid(c["a"] * logit + c["b"])

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, device: str = "cpu") -> FabricModel:
        """Load a checkpoint folder (default: :data:`DEFAULT_FABRIC_MODEL`, shipped with artlens)."""
        from artlens.models.checkpoint import load_checkpoint
        from artlens.models.pretrained import pretrained_path

        if path is None:
            path = pretrained_path(DEFAULT_FABRIC_MODEL)
        folder = Path(path)
        model, config = load_checkpoint(folder, map_location=device)
        for key in ("input_px_per_cm", "patch_cm"):
            if key not in config:
                raise InvalidParameterError(f"{folder}: config.json lacks {key!r}; not a fabric model")
        if not hasattr(model, "embed") or not hasattr(model, "score_embeddings"):
            raise InvalidParameterError(f"{folder}: {config['model']!r} is not a Siamese fabric model")
        return cls(model.to(device), config, folder)

    def embed(self, patches: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Embeddings ``(N, D)`` float32 of normalised patches ``(N, S, S)``."""
        import torch

        if patches.ndim != 3 or patches.shape[1:] != (self.size, self.size):
            raise InvalidParameterError(f"patches must be (N, {self.size}, {self.size}), got {patches.shape}")
        device = next(self.model.parameters()).device
        out = []
        with torch.inference_mode():
            for i in range(0, len(patches), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(patches[i: i + batch_size])).unsqueeze(1).to(device)
                out.append(self.model.embed(x).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def describe(self, plate: Plate | np.ndarray, *, px_per_cm: float | None = None, n_patches: int | None = None,
                 seed: int = 0, name: str = "") -> CanvasEmbedding:
        """What the comparer caches per plate: its patch embeddings (:func:`canvas_embeddings`)."""
        return canvas_embeddings(plate, self, n_patches, seed=seed, px_per_cm=px_per_cm, name=name)

    def compare(self, a: CanvasEmbedding, b: CanvasEmbedding, *, aggregation: str | None = None, n_boot: int = 1000,
                seed: int = 0) -> dict[str, Any]:
        """Calibrated same-roll score of two cached canvases (:func:`compare_canvases`), with ``"method"``."""
        if aggregation and aggregation not in AGGREGATIONS:
            raise InvalidParameterError(f"unknown aggregation {aggregation!r}; valid: {', '.join(AGGREGATIONS)}")
        method = cast("Aggregation | None", aggregation or None)  # checked just above
        return {"method": self.method, **compare_canvases(a, b, self, method=method, n_boot=n_boot, seed=seed)}

    def score(self, ea: np.ndarray, eb: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        """Logits ``(P,)`` of embedding pairs ``(P, D)``, ``(P, D)`` (the head only; no encoder)."""
        import torch

        device = next(self.model.parameters()).device
        out = np.empty(len(ea), np.float64)
        with torch.inference_mode():
            for i in range(0, len(ea), batch_size):
                a = torch.from_numpy(np.ascontiguousarray(ea[i: i + batch_size])).to(device)
                b = torch.from_numpy(np.ascontiguousarray(eb[i: i + batch_size])).to(device)
                out[i: i + len(a)] = self.model.score_embeddings(a, b).float().cpu().numpy()
        return out


# --------------------------------------------------------------------------------------------------
# Patches and embeddings
# --------------------------------------------------------------------------------------------------


def sample_patches(plate: Plate | np.ndarray, n_patches: int, patch_cm: float, out_px_per_cm: float, *,
                   px_per_cm: float | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n_patches`` random square patches of ``patch_cm``, resampled to ``out_px_per_cm`` and min-max
    scaled (:func:`~artlens.canvas.threads.preprocess.normalise_crops`).

    Returns:
        ``(patches (N, S, S) float32, centres (N, 2) in cm as (y, x))``.
    """
    if isinstance(plate, np.ndarray):
        if px_per_cm is None:
            raise InvalidParameterError("px_per_cm is required for an array")
        ppc = float(px_per_cm)
        h, w = plate.shape

        def read(y0: int, x0: int, n: int) -> np.ndarray:
            return plate[y0: y0 + n, x0: x0 + n]
    else:
        ppc = float(px_per_cm) if px_per_cm is not None else plate.require_px_per_cm()
        h, w = plate.shape

        def read(y0: int, x0: int, n: int) -> np.ndarray:
            return plate.read(y0, x0, n, n)
    if n_patches < 1:
        raise InvalidParameterError("the number of patches must be at least 1")
    n = int(round(patch_cm * ppc))
    size = int(round(patch_cm * out_px_per_cm))
    if n > h or n > w:
        raise InvalidImageError(f"the plate ({h / ppc:.2f} x {w / ppc:.2f} cm) is smaller than a "
                                f"{patch_cm:g} cm patch")
    rng = np.random.default_rng(seed)
    ys = rng.integers(0, h - n + 1, n_patches)
    xs = rng.integers(0, w - n + 1, n_patches)
    crops = np.stack([resample_crop(np.asarray(read(int(y), int(x), n), np.float32), ppc, out_px_per_cm, size)
                      for y, x in zip(ys, xs, strict=True)])
    centres = np.stack([(ys + n / 2) / ppc, (xs + n / 2) / ppc], axis=1)
    return normalise_crops(crops), centres


@dataclass
class CanvasEmbedding:
    """The patch embeddings of one canvas, computed once and reused for every pair it is in.

    Attributes:
        embeddings: ``(n_patches, D)`` float32.
        centres_cm: ``(n_patches, 2)`` patch centres ``(y, x)`` in cm on the plate.
        px_per_cm: the plate's resolution.
        model_checksum: sha256 of the weights that produced them.
    """

    embeddings: np.ndarray
    centres_cm: np.ndarray
    px_per_cm: float
    model_checksum: str | None = None
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def canvas_embeddings(plate: Plate | np.ndarray, model: FabricModel, n_patches: int | None = None, seed: int = 0,
                      *, px_per_cm: float | None = None, name: str = "") -> CanvasEmbedding:
    """Embed ``n_patches`` random patches of one plate (default: the number the model was calibrated with).

    Example:
        >>> emb = canvas_embeddings(plate, FabricModel.load("RUN/model"), 64)  # doctest: +SKIP
        >>> emb.embeddings.shape  # doctest: +SKIP
        (64, 128)
    """
    n_patches = n_patches or model.aggregation["n_patches"]
    if px_per_cm is not None:
        ppc = float(px_per_cm)
    elif isinstance(plate, Plate):
        ppc = plate.require_px_per_cm()
    else:
        raise InvalidParameterError("px_per_cm is required for an array")
    patches, centres = sample_patches(plate, n_patches, model.patch_cm, model.px_per_cm, px_per_cm=ppc, seed=seed)
    return CanvasEmbedding(model.embed(patches), centres, float(ppc), model.config.get("sha256"), name)


def pair_logits(a: CanvasEmbedding, b: CanvasEmbedding, model: FabricModel) -> np.ndarray:
    """The ``(n_a, n_b)`` matrix of logits of every patch of A against every patch of B."""
    na, nb = len(a.embeddings), len(b.embeddings)
    ea = np.repeat(a.embeddings, nb, axis=0)
    eb = np.tile(b.embeddings, (na, 1))
    return model.score(ea, eb).reshape(na, nb)


# --------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------


def _pool(x: np.ndarray, method: str, trim: float, axis: int = -1) -> np.ndarray:
    if method == "mean":
        return x.mean(axis=axis)
    if method == "median":
        return np.median(x, axis=axis)
    if method == "trimmed":
        from scipy.stats import trim_mean

        return trim_mean(x, trim, axis=axis)
    raise InvalidParameterError(f"unknown aggregation {method!r}; valid: {', '.join(AGGREGATIONS)}")


def aggregate(logits: np.ndarray, method: Aggregation = "mean", trim: float = 0.1) -> float:
    """Pool patch-pair logits into one canvas logit.

    Args:
        logits: any shape (a ``(n_a, n_b)`` matrix or a flat list); NaNs are an error.
        method: ``"mean"`` of the logits, ``"trimmed"`` mean (``trim`` of the values cut at each end),
            or ``"median"``.
        trim: fraction cut at each end by ``"trimmed"`` (0 ≤ trim < 0.5).

    Example:
        >>> aggregate([1.0, 2.0, 3.0])
        2.0
        >>> aggregate([-50.0, 1.0, 2.0, 3.0, 50.0], "trimmed", trim=0.2)
        2.0
    """
    x = np.asarray(logits, dtype=np.float64).ravel()
    if x.size == 0:
        raise InvalidParameterError("no patch pairs to aggregate")
    if not np.all(np.isfinite(x)):
        raise InvalidParameterError("patch-pair logits contain NaN or infinite values")
    if not 0 <= trim < 0.5:
        raise InvalidParameterError(f"trim must be in [0, 0.5), got {trim}")
    return float(_pool(x, method, trim))


def aggregate_with_ci(logits: np.ndarray, method: Aggregation = "mean", trim: float = 0.1, *, n_boot: int = 1000,
                      level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """The aggregated logit, its bootstrap confidence interval and the number of pairs used.

    A flat array of logits is resampled pair by pair (i.i.d. pairs). A ``(n_a, n_b)`` matrix -- all
    patches of A against all patches of B -- is resampled *by patches*: each replicate draws ``n_a``
    rows and ``n_b`` columns with replacement and pools the sub-matrix, so the interval accounts for
    the pairs that share a patch (a pair-level bootstrap of the matrix would be too narrow).
    Percentile interval; seeded.

    Returns:
        ``{"logit": float, "ci95": [lo, hi], "pairs": n, "aggregation": method, "bootstrap": n_boot}``
        (``ci95`` holds the interval at ``level``; ``[logit, logit]`` when ``n_boot`` is 0).

    Example:
        >>> r = aggregate_with_ci([1.0, 2.0, 3.0, 2.5, 1.5], n_boot=500)
        >>> r["logit"], r["pairs"], r["ci95"][0] < 2.0 < r["ci95"][1]
        (2.0, 5, True)
    """
    x = np.asarray(logits, dtype=np.float64)
    value = aggregate(x, method, trim)
    n_pairs = int(x.size)
    lo = hi = value
    if n_boot > 0 and n_pairs > 1:
        rng = np.random.default_rng(seed)
        if x.ndim == 2 and min(x.shape) > 1:
            na, nb = x.shape
            chunk = max(1, 4_000_000 // (na * nb))
            reps = []
            for start in range(0, n_boot, chunk):
                k = min(chunk, n_boot - start)
                ri = rng.integers(0, na, (k, na))
                ci = rng.integers(0, nb, (k, nb))
                sub = x[ri[:, :, None], ci[:, None, :]].reshape(k, -1)
                reps.append(_pool(sub, method, trim, axis=1))
            boot = np.concatenate(reps)
        else:
            flat = x.ravel()
            chunk = max(1, 4_000_000 // flat.size)
            boot = np.concatenate([
                _pool(flat[rng.integers(0, flat.size, (min(chunk, n_boot - s), flat.size))], method, trim, axis=1)
                for s in range(0, n_boot, chunk)])
        alpha = (1 - level) / 2
        lo, hi = (float(v) for v in np.quantile(boot, [alpha, 1 - alpha]))
    return {"logit": value, "ci95": [lo, hi], "pairs": n_pairs, "aggregation": method, "bootstrap": int(n_boot)}


# --------------------------------------------------------------------------------------------------
# Canvas comparison
# --------------------------------------------------------------------------------------------------


def compare_canvases(a: CanvasEmbedding | Plate | np.ndarray, b: CanvasEmbedding | Plate | np.ndarray,
                     model: FabricModel, *, method: Aggregation | None = None, trim: float | None = None,
                     n_patches: int | None = None, n_boot: int = 1000, seed: int = 0,
                     px_per_cm: tuple[float | None, float | None] = (None, None)) -> dict[str, Any]:
    """Siamese same-roll score of two canvases.

    Args:
        a, b: :class:`CanvasEmbedding` (computed once per canvas, the usual case in a collection) or
            plates/arrays, which are embedded here.
        model: a loaded :class:`FabricModel`.
        method, trim: aggregation (default: the one the calibration was fitted for).
        n_patches: patches per plate when embedding here (default: the calibrated number).
        n_boot: bootstrap replicates for the interval (by patches, see :func:`aggregate_with_ci`).
        seed: seed of the patch positions and of the bootstrap.
        px_per_cm: resolutions of arrays ``a`` and ``b``.

    Returns:
        ``{"score": calibrated probability, "logit": aggregated logit, "ci95": [lo, hi] (probability),
        "logit_ci95": [lo, hi], "pairs": n, "patches": [n_a, n_b], "aggregation": method,
        "calibrated": bool, "model_checksum": sha256}``.
    """
    agg = model.aggregation
    method = method or agg["method"]
    trim = agg["trim"] if trim is None else trim
    embs = []
    for i, x in enumerate((a, b)):
        if isinstance(x, CanvasEmbedding):
            embs.append(x)
        else:
            embs.append(canvas_embeddings(x, model, n_patches, seed=seed + i, px_per_cm=px_per_cm[i]))
    logits = pair_logits(embs[0], embs[1], model)
    r = aggregate_with_ci(logits, method, trim, n_boot=n_boot, seed=seed)
    cal = model.calibration
    if method != agg["method"] or logits.shape[0] != agg["n_patches"]:
        cal_note = (f"calibration was fitted for {agg['method']} aggregation of {agg['n_patches']} patches per "
                    f"canvas; here {method} of {logits.shape[0]}")
    else:
        cal_note = None
    out = {
        "score": round(model.calibrate(r["logit"]), 6),
        "logit": round(r["logit"], 6),
        "ci95": sorted(round(model.calibrate(v), 6) for v in r["ci95"]),
        "logit_ci95": [round(v, 6) for v in r["ci95"]],
        "pairs": r["pairs"],
        "patches": [int(logits.shape[0]), int(logits.shape[1])],
        "aggregation": method if method != "trimmed" else f"trimmed({trim:g})",
        "calibrated": cal["fitted"],
        "model_checksum": model.config.get("sha256"),
    }
    if cal_note:
        out["notes"] = [cal_note]
    return out


# --------------------------------------------------------------------------------------------------
# Yarn-statistics comparison
# --------------------------------------------------------------------------------------------------


YARN_MAX_CM = 8.0
"""Largest side (cm) of the region a yarn descriptor is measured on: larger plates are measured on
their central ``YARN_MAX_CM`` × ``YARN_MAX_CM`` cm."""


@dataclass
class YarnModel:
    """A fitted comparison of yarn descriptors (:mod:`artlens.canvas.yarn`, :mod:`artlens.train.yarn`).

    The same-roll logit of two canvases is ``w · log(1 + |d_a - d_b| / scale) + bias`` over the
    features of :data:`artlens.canvas.yarn.PAIR_FEATURES` (``w ≤ 0``), then the Platt scaling fitted on
    held-out roll families: ``p = sigmoid(a · logit + b)`` (even prior odds).

    Attributes:
        config: the checkpoint's ``config.json`` (``features``, ``pairing_scale``, ``calibration``, ...).
        path: the checkpoint folder.
        scale, impute, weight, bias: the fitted parameters (numpy).
    """

    config: dict[str, Any]
    path: Path
    scale: np.ndarray
    impute: np.ndarray
    weight: np.ndarray
    bias: float
    kind = "yarn"
    method = "yarn-statistics"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> YarnModel:
        """Load a ``yarn_logistic`` checkpoint folder."""
        from artlens.canvas.yarn import PAIR_FEATURES
        from artlens.models.checkpoint import load_checkpoint

        folder = Path(path)
        model, config = load_checkpoint(folder)
        if config.get("features") and list(config["features"]) != list(PAIR_FEATURES):
            raise InvalidParameterError(f"{folder}: fitted for other yarn features than this artlens measures "
                                        f"({len(config['features'])} vs {len(PAIR_FEATURES)}); refit it")
        sd = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in model.state_dict().items()}
        return cls(config, folder, sd["scale"], sd["impute"], sd["weight"], float(sd["bias"][0]))

    @property
    def calibration(self) -> dict[str, Any]:
        """``{"a", "b", "fitted", ...}``; identity when absent."""
        c = self.config.get("calibration") or {}
        return {"a": float(c.get("a", 1.0)), "b": float(c.get("b", 0.0)), "fitted": bool(c.get("fitted", False)),
                **{k: v for k, v in c.items() if k not in ("a", "b", "fitted")}}

    def calibrate(self, logit: float) -> float:
        """Probability ``sigmoid(a · logit + b)``."""
        c = self.calibration
        return _sigmoid(c["a"] * logit + c["b"])

    def describe(self, plate: Plate | np.ndarray, *, px_per_cm: float | None = None, n_patches: int | None = None,
                 seed: int = 0, name: str = "") -> Any:
        """The plate's :class:`~artlens.canvas.yarn.YarnDescriptor` (central ``YARN_MAX_CM`` cm at most);
        ``n_patches`` and ``seed`` are ignored (nothing is random)."""
        from artlens.canvas.yarn import yarn_descriptor

        if isinstance(plate, np.ndarray):
            if px_per_cm is None:
                raise InvalidParameterError("px_per_cm is required for an array")
            ppc, (h, w) = float(px_per_cm), plate.shape
        else:
            ppc = float(px_per_cm) if px_per_cm is not None else plate.require_px_per_cm()
            h, w = plate.shape
        n = int(round(YARN_MAX_CM * ppc))
        y0, x0 = max(0, (h - n) // 2), max(0, (w - n) // 2)
        hh, ww = min(h, n), min(w, n)
        img = plate[y0: y0 + hh, x0: x0 + ww] if isinstance(plate, np.ndarray) else plate.read(y0, x0, hh, ww)
        d = yarn_descriptor(np.asarray(img, dtype=np.float32), ppc)
        if hh < h or ww < w:
            d.notes.append(f"yarn statistics measured on the central {hh / ppc:.1f} x {ww / ppc:.1f} cm")
        return d

    def logit(self, a: Any, b: Any) -> tuple[float, np.ndarray, bool]:
        """Uncalibrated logit, the per-feature contributions ``w · log(1 + x)`` and the family pairing."""
        from artlens.canvas.yarn import pair_features

        pairing = self.config.get("pairing_scale")
        raw, swapped = pair_features(a, b, None if pairing is None else np.asarray(pairing, float))
        x = raw / self.scale
        x = np.where(np.isnan(x), self.impute, x)
        contrib = self.weight * np.log1p(x)
        return float(contrib.sum() + self.bias), contrib, swapped

    def compare(self, a: Any, b: Any, *, aggregation: str | None = None, n_boot: int = 0, seed: int = 0
                ) -> dict[str, Any]:
        """Same-roll score of two descriptors.

        Returns:
            ``{"method": "yarn-statistics", "score": calibrated probability, "logit": uncalibrated logit,
            "ci95": None, "calibrated", "model_checksum", "families_paired": "h-h/v-v" or "h-v/v-h",
            "largest_differences": the three features that lower the logit most, with their share}``.
        """
        from artlens.canvas.yarn import PAIR_FEATURES

        logit, contrib, swapped = self.logit(a, b)
        order = np.argsort(contrib)[:3]
        total = float(contrib.sum()) or -1.0
        notes = [*a.notes, *b.notes]
        out: dict[str, Any] = {
            "method": self.method,
            "score": round(self.calibrate(logit), 6),
            "logit": round(logit, 6),
            "ci95": None,
            "calibrated": self.calibration["fitted"],
            "model_checksum": self.config.get("sha256"),
            "families_paired": "h-v/v-h" if swapped else "h-h/v-v",
            "largest_differences": [{"feature": PAIR_FEATURES[k], "logit": round(float(contrib[k]), 4),
                                     "share": round(float(contrib[k]) / total, 3)} for k in order if contrib[k] < 0],
        }
        if notes:
            out["notes"] = notes
        return out
