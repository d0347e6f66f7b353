"""How typical a painting is for the verifier, and what that does to its probabilities.

The verifier's probability is calibrated on paintings like its training artists' (Platt scaling on
held-out artists of the training collection). Far from those paintings nothing says the calibration
still holds, so a probability there must not read as near-certain.

Typicality of an image = the mean cosine distance of its backbone features (global view and mean of
the patches, as the verifier reads them, before any centring) to its ``k`` nearest among a *bank* of
training images (``bank.npz`` beside the model weights). It asks "does this look like the paintings
the verifier learned from?", whatever collection the image comes from (a flat grey image or noise
sits at twice the typical distance). Distances between verifier codes were tried first and do not
separate such images from paintings. Two thresholds come with the bank, both set on images held out
of training (the validation artists the blend and calibration were chosen on):

- ``threshold``: a quantile of the held-out images' distances (95 % by default). Up to it an image is
  *typical* and its probabilities are left as calibrated.
- ``limit``: a higher quantile (99.5 %). Between the two the probability is moved linearly towards 0.5;
  at or beyond ``limit`` the verifier abstains: probability 0.5, "outside what this verifier was
  trained on".

A pair is as typical as its less typical image. The bank stores backbone features (channel
statistics), not images: no pixels of the training collection ship with artlens.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artlens.errors import UnreadableInputError

K_NEIGHBOURS = 5
OUTSIDE = "outside what this verifier was trained on"


@dataclass
class Bank:
    """Training images' features and codes, with the typicality thresholds set on held-out images."""

    global_: np.ndarray  # (n, D) backbone features of the global view
    patch_mean: np.ndarray  # (n, D) mean of the patches' features
    artist: np.ndarray  # (n,) integer artist index (for default impostors: works by many hands)
    codes: np.ndarray  # (n, E) verifier codes, centred on the training collection's mean (default impostors)
    threshold: float
    limit: float
    k: int = K_NEIGHBOURS
    meta: dict[str, Any] = field(default_factory=dict)

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Typicality distances of ``(q, 2D)`` raw features: global, then mean-patch features."""
        return knn_distance(unit(np.concatenate([self.global_, self.patch_mean], 1)), unit(features), self.k)

    def record(self) -> dict[str, Any]:
        return {"images": int(len(self.codes)), "artists": int(len(set(self.artist.tolist()))), "k": self.k,
                "threshold": self.threshold, "limit": self.limit, **self.meta}


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_distance(bank_codes: np.ndarray, codes: np.ndarray, k: int, *, exclude_self: bool = False) -> np.ndarray:
    """Mean cosine distance of each row of ``codes`` to its ``k`` nearest rows of ``bank_codes``
    (unit vectors). ``exclude_self``: ``codes`` are the bank itself; each row's own entry is skipped."""
    sim = np.asarray(codes, np.float64) @ np.asarray(bank_codes, np.float64).T
    if exclude_self:
        np.fill_diagonal(sim, -np.inf)
    k = min(k, sim.shape[1] - (1 if exclude_self else 0))
    top = -np.partition(-sim, k - 1, axis=1)[:, :k]
    return 1.0 - top.mean(axis=1)


def assess(bank: Bank, distance: float) -> dict[str, Any]:
    """Typicality of one distance: ``{"distance", "threshold", "limit", "status", "weight"}``; status
    ``typical`` (weight 1), ``atypical`` (0 < weight < 1) or ``outside`` (weight 0)."""
    if distance <= bank.threshold:
        w, status = 1.0, "typical"
    elif distance >= bank.limit:
        w, status = 0.0, "outside"
    else:
        w, status = float((bank.limit - distance) / (bank.limit - bank.threshold)), "atypical"
    return {"distance": float(distance), "threshold": bank.threshold, "limit": bank.limit, "status": status,
            "weight": w}


def temper(probability: float, weight: float) -> float:
    """Move a probability towards 0.5: ``0.5 + weight · (p − 0.5)``."""
    return float(0.5 + weight * (probability - 0.5))


def explain(status: str, which: str) -> str:
    """One sentence for the JSON and the report."""
    if status == "typical":
        return f"{which} within the range of paintings the verifier was checked on"
    if status == "atypical":
        return (f"{which} less typical than 95 % of held-out paintings of the verifier's collection: probability "
                "moved towards 0.5")
    return f"{which} {OUTSIDE}: no probability (0.5)"


def load_bank(path: str | os.PathLike[str], verifier: Any) -> Bank | None:
    """The bank in ``path`` with its codes for ``verifier`` (computed now, on the training centring the
    head was loaded with); ``None`` for a verifier without centring (siamese, or not centred)."""
    from artlens.paintings.features import Features

    if verifier.config.kind != "metric" or not getattr(verifier.head, "centre", False):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            g = z["global_"].astype(np.float32)
            pm = z["patch_mean"].astype(np.float32)
            artist = z["artist"].astype(int)
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError) as exc:
        raise UnreadableInputError(f"{path}: unreadable verifier bank ({exc})") from None
    codes = verifier.codes_from_features(Features(paths=[], global_=g, patches=pm[:, None, :])).numpy()
    from artlens.provenance import sha256_file

    meta = {**meta, "sha256": sha256_file(path)}
    return Bank(global_=g, patch_mean=pm, artist=artist, codes=codes, threshold=float(meta["threshold"]),
                limit=float(meta["limit"]), k=int(meta.get("k", K_NEIGHBOURS)), meta=meta)


def build_bank(verifier: Any, global_: np.ndarray, patch_mean: np.ndarray, artists: list[str], bank_idx: np.ndarray,
               heldout_idx: np.ndarray, out: str | os.PathLike[str], *, k: int = K_NEIGHBOURS,
               quantiles: tuple[float, float] = (0.95, 0.995), source: str = "") -> dict[str, Any]:
    """Write ``out`` (``bank.npz``): the features of the images ``bank_idx`` (training images) and the
    thresholds, set on the held-out images ``heldout_idx`` (artists never trained on)."""
    names = sorted(set(artists[i] for i in bank_idx))
    code_of = {a: i for i, a in enumerate(names)}
    global_ = np.asarray(global_, np.float16).astype(np.float32)  # as stored: thresholds fit the loaded bank
    patch_mean = np.asarray(patch_mean, np.float16).astype(np.float32)
    raw = unit(np.concatenate([global_, patch_mean], 1))
    d = knn_distance(raw[bank_idx], raw[heldout_idx], k)
    meta = {"source": source, "k": k, "threshold": float(np.quantile(d, quantiles[0])),
            "limit": float(np.quantile(d, quantiles[1])), "quantiles": list(quantiles),
            "held_out_images": int(len(heldout_idx)),
            "held_out_artists": sorted(set(artists[i] for i in heldout_idx)),
            "bank_artists": names, "model_checksum": verifier.checksum}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{out}.tmp.npz"
    np.savez_compressed(tmp, global_=global_[bank_idx].astype(np.float16),
                        patch_mean=patch_mean[bank_idx].astype(np.float16),
                        artist=np.array([code_of[artists[i]] for i in bank_idx], np.int16),
                        meta=np.array(json.dumps(meta)))
    os.replace(tmp, out)
    return meta
