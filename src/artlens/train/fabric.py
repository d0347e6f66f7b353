"""Training the Siamese fabric model with Lightning (CPU, one GPU or many by flags).

Data are canvases grouped by roll. Two sources go through the same code path:

- :func:`synthetic_collection`: rolls from :class:`artlens.synth.Roll` in *families* of
  ``family_size`` rolls whose nominal densities lie within ``hard_spread`` (0.3) threads/cm of each
  other -- the hard negatives that density alone cannot separate -- each roll with its own yarn
  statistics (spacing jitter, thickness spread, slubs, weave contrast); canvases cut at random,
  generally distant offsets, in a random orientation (rotations by 90° and flips), with paint,
  cracks, thread angles, blur and noise drawn per canvas;
- :func:`labelled_collection`: a lab's own plates from a CSV with columns ``plate,roll`` (optional
  ``px_per_cm``; relative paths are relative to the CSV's folder).

From each canvas ``patches_per_canvas`` random ``patch_cm`` patches are cut, resampled to the model's
px/cm and min-max scaled. :class:`PairDataset` draws pairs afresh every epoch: half same-roll (patches
of two *different* canvases of one roll whenever the roll has two), half different-roll, of which
``hard_fraction`` come from a roll of similar density (within ``hard_spread`` threads/cm in both
directions, or the nearest roll when none is that close); each patch is independently rotated by a
multiple of 90° and flipped. Splits are grouped by roll: validation rolls are never seen in training.
Loss: binary cross-entropy on the logit. Early stopping on the validation loss.

After training, the canvas score is calibrated: every validation canvas is embedded once
(``calib_patches`` patches), all pairs of validation canvases are scored by the aggregated logit
(``aggregation``), and a Platt scaling ``p = sigmoid(a · logit + b)`` is fitted on them (Platt's
smoothed targets, so separable data give finite ``a``). ``config.json`` of the exported model holds
``input_px_per_cm``, ``patch_cm``, ``calibration`` and ``aggregation``.

A run directory holds ``config.json`` (resolved), ``metrics.csv``, ``last.ckpt`` (Lightning state for
``--resume``, loaded with ``weights_only=True``), ``model/`` (safetensors + JSON config, what
``artlens canvas compare --fabric-model RUN/model`` loads) and ``calibration.csv`` (the canvas pairs
the calibration was fitted on).

References:
    J. J. Murillo-Fuentes, P. M. Olmos, L. Alba-Carcelén, "Canvas comparison with Siamese networks on
    X-ray patches" (arXiv:2506.20272), 2025.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import lightning as L
import numpy as np
import torch
from pydantic import Field

from artlens.canvas.fabric import sample_patches
from artlens.errors import InputNotFoundError, InvalidParameterError
from artlens.models import create_model
from artlens.models.calibration import fit_platt, roc_auc  # noqa: F401 - re-exported for callers
from artlens.train.runs import TrainerConfig, TrainingConfig, fit, open_run
from artlens.train.splits import holdout_split


class FabricTrainConfig(TrainingConfig):
    """Everything that defines a fabric training run (saved as ``RUN/config.json``); the Lightning
    settings are in ``trainer`` (:class:`~artlens.train.runs.TrainerConfig`)."""

    model: str = "siamese_fabric"
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    input_px_per_cm: float = 100.0
    patch_cm: float = 1.0
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    data: str | None = None  # CSV plate,roll
    synthetic: int = 0  # number of synthetic rolls
    randomisation: str = "classic"  # "classic" (synthetic_collection) or "wide" (wide_collection)
    family_size: int = 3  # rolls per family of similar density
    hard_spread: float = 0.3  # threads/cm: densities of one family lie within this of each other
    canvases_per_roll: int = 4
    canvas_cm: float = 4.0
    render_px_per_cm: float = 100.0
    patches_per_canvas: int = 32
    pairs_per_epoch: int = 2048
    val_pairs: int = 512
    hard_fraction: float = 0.5
    val_fraction: float = 0.25
    calib_patches: int = 32
    aggregation: str = "mean"
    trim: float = 0.1
    num_workers: int = 0
    init_from: str | None = None  # fabric model folder to fine-tune from (e.g. the shipped one)
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(max_epochs=20, patience=4,
                                                                         checkpoint_every_n_steps=50))

    @property
    def size(self) -> int:
        return int(round(self.patch_cm * self.input_px_per_cm))


# -- data ------------------------------------------------------------------------------------------


@dataclass
class Canvas:
    """One canvas of a collection: its plate, resolution, roll and the roll's nominal densities."""

    image: np.ndarray
    px_per_cm: float
    roll: int
    densities: tuple[float, float]  # (horizontal, vertical) nominal threads/cm of its roll
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def synthetic_collection(n_rolls: int, canvases_per_roll: int, *, canvas_cm: float | tuple[float, float] = 4.0,
                         px_per_cm: float = 100.0, family_size: int = 3, hard_spread: float = 0.3, seed: int = 0,
                         roll_length_cm: float = 120.0, roll_width_cm: float = 80.0) -> list[Canvas]:
    """Canvases cut from ``n_rolls`` synthetic rolls (``canvases_per_roll`` each).

    Rolls come in families of ``family_size`` whose nominal (horizontal, vertical) densities lie
    within ``hard_spread`` threads/cm of each other. Canvases of ``canvas_cm`` (side, or
    ``(height, width)``) are cut at independent uniform positions on the roll -- generally far apart,
    so they share no threads -- each in a random orientation (``np.rot90`` by 0–3 quarter turns, a
    left-right flip half of the time) with its own paint, cracks, thread angles, blur and noise.
    ``meta`` holds the cut (offset, orientation) and the roll's yarn statistics.
    """
    from artlens.synth import Roll

    rng = np.random.default_rng(seed)
    if np.isscalar(canvas_cm):
        h_cm = w_cm = cast(float, canvas_cm)
    else:
        h_cm, w_cm = cast(tuple[float, float], canvas_cm)
    out: list[Canvas] = []
    base = (0.0, 0.0)
    for r in range(n_rolls):
        if r % max(1, family_size) == 0:
            base = (float(rng.uniform(9.0, 20.0)), float(rng.uniform(9.0, 20.0)))
        d0 = float(base[0] + rng.uniform(-hard_spread / 2, hard_spread / 2))
        dens = (d0, float(base[1] + rng.uniform(-hard_spread / 2, hard_spread / 2)))
        yarn = dict(spacing_jitter=float(rng.uniform(0.02, 0.08)), thickness_variation=float(rng.uniform(0.08, 0.3)),
                    slub_rate=float(rng.uniform(0.0, 0.6)))
        contrast = float(rng.uniform(0.15, 0.5))
        roll = Roll(dens[0], dens[1], seed=int(rng.integers(1 << 31)), length_cm=roll_length_cm,
                    width_cm=roll_width_cm, **yarn)
        for c in range(canvases_per_roll):
            x0 = float(rng.uniform(1.0, roll_width_cm - w_cm - 1.0))
            y0 = float(rng.uniform(1.0, roll_length_cm - h_cm - 1.0))
            plate = roll.cut(x0, y0, h_cm, w_cm, seed=int(rng.integers(1 << 31)), px_per_cm=px_per_cm,
                             weave_contrast=contrast, horizontal_angle_deg=float(rng.uniform(-1, 1)),
                             vertical_angle_deg=float(rng.uniform(-1, 1)), paint=float(rng.uniform(0, 0.4)),
                             craquelure=float(rng.uniform(0, 0.4)), noise=float(rng.uniform(0.01, 0.05)),
                             blur_px=float(rng.uniform(0.4, 1.2)))
            k, flip = int(rng.integers(4)), bool(rng.uniform() < 0.5)
            img = np.rot90(np.fliplr(plate.image) if flip else plate.image, k)
            out.append(Canvas(np.ascontiguousarray(img), px_per_cm, r, dens, f"roll{r:02d}-canvas{c:02d}",
                              {"x_offset_cm": x0, "y_offset_cm": y0, "rot90": k, "flip": flip, **yarn,
                               "weave_contrast": contrast}))
    return out


WIDE_YARN = {
    "spacing_jitter": (0.0, 0.12),
    "spacing_correlation": (0.0, 0.9),
    "thickness_variation": (0.0, 0.4),
    "slub_rate": (0.0, 1.5),
    "thread_width": (0.6, 1.15),
    "stripe_contrast": (0.0, 0.4),
    "stripe_threads": (3.0, 30.0),
}
"""Ranges of the roll-level yarn factors of ``randomisation="wide"`` (see :func:`wide_roll`)."""


def wide_roll(rng: np.random.Generator, densities: tuple[float, float], *, length_cm: float = 120.0,
              width_cm: float = 80.0) -> tuple[Any, dict[str, Any]]:
    """A :class:`~artlens.synth.Roll` with every yarn factor drawn over a wide range (:data:`WIDE_YARN`).

    Half of the rolls have one yarn for warp and weft, the others one per direction. Spacing
    correlation, slubs and stripes are absent from a good share of rolls (so that "none" is a common
    value, not an edge case). Returns the roll and its roll-level render settings (relief contrast
    ``weave_contrast``, ``ply_groove``, ``twist``, ``thread_balance``), which every cut of the roll shares.
    """
    from artlens.synth import Roll

    def draw() -> dict[str, float]:
        u = {k: float(rng.uniform(*r)) for k, r in WIDE_YARN.items()}
        if rng.uniform() < 0.4:
            u["spacing_correlation"] = 0.0
        if rng.uniform() < 0.4:
            u["slub_rate"] = float(rng.uniform(0.0, 0.15))
        if rng.uniform() < 0.5:
            u["stripe_contrast"] = 0.0
        return u

    a = draw()
    yarn: dict[str, Any] = a if rng.uniform() < 0.5 else {k: (a[k], v) for k, v in draw().items()}
    roll = Roll(densities[0], densities[1], seed=int(rng.integers(1 << 31)), length_cm=length_cm,
                width_cm=width_cm, **yarn)
    look = {"weave_contrast": float(rng.uniform(0.0, 0.7)),
            "ply_groove": float(rng.uniform(0.0, 0.6)) if rng.uniform() < 0.3 else 0.0,
            "twist": float(rng.uniform(0.0, 0.5)) if rng.uniform() < 0.3 else 0.0,
            "thread_balance": float(rng.uniform(-0.5, 0.5))}
    return roll, {"yarn": yarn, "look": look}


def wide_imaging(rng: np.random.Generator, px_per_cm: float, densities: tuple[float, float]) -> dict[str, Any]:
    """Imaging and surface conditions of one cut, drawn independently of its roll: blur (at most a
    quarter of the finer thread spacing), noise, paint, cracks, lead white, interstice dots (holes),
    cell blotches, grain, thread angles, density gradient, cusping, inversion and equalisation.
    Contrast and gamma are applied afterwards by :func:`wide_tone`."""
    period_px = px_per_cm / max(densities)
    cusp = rng.uniform() < 0.2
    return {
        "blur_px": float(min(rng.uniform(0.3, 2.5), 0.25 * period_px)),
        "noise": float(rng.uniform(0.005, 0.08)),
        "paint": float(rng.uniform(0.0, 0.7)),
        "craquelure": float(rng.uniform(0.0, 0.6)),
        "lead_white_strokes": int(rng.poisson(0.7)),
        "holes": float(rng.uniform(0.02, 0.5)) if rng.uniform() < 0.4 else 0.0,
        "cell_variation": float(rng.uniform(0.0, 0.6)),
        "grain": float(rng.uniform(0.0, 0.7)),
        "horizontal_angle_deg": float(rng.uniform(-3, 3)),
        "vertical_angle_deg": float(rng.uniform(-3, 3)),
        "density_gradient": float(rng.uniform(-0.03, 0.03)),
        "cusping_amplitude": float(rng.uniform(0.03, 0.15)) if cusp else 0.0,
        "cusping_edge": str(rng.choice(["left", "right", "top", "bottom"])),
        "invert": bool(rng.uniform() < 0.5),
        "equalize": bool(rng.uniform() < 0.25),
    }


def wide_tone(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Random tone curve of one cut: gamma in [0.5, 2] (log-uniform), output range [lo, hi] with
    lo in [0, 0.3] and hi in [0.7, 1]; quantised to 8 bits half of the time. Returns float32 in [0, 1]."""
    x = image.astype(np.float32) / float(np.iinfo(image.dtype).max if image.dtype.kind == "u" else 1.0)
    gamma = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    lo, hi = float(rng.uniform(0.0, 0.3)), float(rng.uniform(0.7, 1.0))
    x = lo + (hi - lo) * np.clip(x, 0, 1) ** gamma
    if rng.uniform() < 0.5:
        x = np.round(x * 255) / 255
    return x.astype(np.float32)


def wide_collection(n_rolls: int, canvases_per_roll: int, *, canvas_cm: tuple[float, float] = (3.5, 6.0),
                    px_per_cm: tuple[float, float] = (80.0, 220.0), family_size: int = 4, hard_spread: float = 0.3,
                    density_range: tuple[float, float] = (8.0, 22.0), seed: int = 0,
                    roll_length_cm: float = 120.0, roll_width_cm: float = 80.0) -> list[Canvas]:
    """Canvases from rolls with *wide* randomisation (``randomisation="wide"``).

    Rolls come in families of ``family_size`` whose nominal densities lie within ``hard_spread``
    threads/cm (in a quarter of the families warp and weft are within 0.5 threads/cm of each other,
    a balanced weave); every yarn factor is drawn per roll over a wide range (:func:`wide_roll`).
    Each cut has its own size (a side drawn from ``canvas_cm``), resolution (``px_per_cm`` range),
    place on the roll (independent, generally far apart), orientation (90° turns, flip) and imaging
    conditions (:func:`wide_imaging`, :func:`wide_tone`), so that nothing but the fabric links
    roll-mates. ``meta`` holds the roll's factors and the cut's conditions.
    """
    rng = np.random.default_rng(seed)
    out: list[Canvas] = []
    base = (0.0, 0.0)
    for r in range(n_rolls):
        if r % max(1, family_size) == 0:
            b0 = float(rng.uniform(*density_range))
            b1 = b0 + float(rng.uniform(-0.5, 0.5)) if rng.uniform() < 0.25 else float(rng.uniform(*density_range))
            base = (b0, b1)
        d0 = float(base[0] + rng.uniform(-hard_spread / 2, hard_spread / 2))
        dens = (d0, float(base[1] + rng.uniform(-hard_spread / 2, hard_spread / 2)))
        roll, factors = wide_roll(rng, dens, length_cm=roll_length_cm, width_cm=roll_width_cm)
        for c in range(canvases_per_roll):
            h_cm, w_cm = (float(rng.uniform(*canvas_cm)) for _ in range(2))
            ppc = float(rng.uniform(*px_per_cm))
            imaging = wide_imaging(rng, ppc, dens)
            x0 = float(rng.uniform(3.5, roll_width_cm - w_cm - 3.5))
            y0 = float(rng.uniform(3.5, roll_length_cm - h_cm - 3.5))
            plate = roll.cut(x0, y0, h_cm, w_cm, seed=int(rng.integers(1 << 31)), px_per_cm=ppc,
                             **factors["look"], **imaging)
            img = wide_tone(rng, plate.image)
            k, flip = int(rng.integers(4)), bool(rng.uniform() < 0.5)
            img = np.rot90(np.fliplr(img) if flip else img, k)
            out.append(Canvas(np.ascontiguousarray(img), ppc, r, dens, f"roll{r:03d}-canvas{c:02d}",
                              {"x_offset_cm": x0, "y_offset_cm": y0, "rot90": k, "flip": flip, **factors,
                               "imaging": imaging}))
    return out


def read_roll_manifest(csv_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a lab's plate CSV (columns ``plate``, ``roll``, optional ``px_per_cm`` and ``family``), each
    with ``path`` (relative paths resolved against the CSV's folder) and ``px_per_cm`` (float or None)."""
    path = Path(csv_path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such file")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"plate", "roll"} <= set(rows[0]):
        raise InvalidParameterError(f"{path}: needs columns 'plate' and 'roll'")
    for r in rows:
        p = Path(r["plate"])
        r["path"] = p if p.is_absolute() else path.parent / p
        try:
            r["px_per_cm"] = float(r["px_per_cm"]) if r.get("px_per_cm") else None
        except ValueError:
            raise InvalidParameterError(f"{path}: px_per_cm {r['px_per_cm']!r} of {r['plate']} is not a number "
                                        "(px/cm)") from None
    return rows


def labelled_collection(csv_path: str | os.PathLike[str]) -> tuple[list[Canvas], list[str]]:
    """Canvases of a lab's CSV (``plate,roll`` and optional ``px_per_cm``); returns them and the roll names.

    The nominal densities used to pick hard negatives are the medians of a spectral count (1 cm
    windows) of each plate's central region (at most 4 × 4 cm), sorted per plate so orientation does
    not matter.
    """
    from artlens.canvas.threads import SpectralParams, count_threads_spectral
    from artlens.io import open_plate

    rows = read_roll_manifest(csv_path)
    rolls = sorted({r["roll"] for r in rows})
    out = []
    for r in rows:
        p, ppc = r["path"], r["px_per_cm"]
        with open_plate(p, ppc, require_resolution=True) as pl:
            ppc = pl.require_px_per_cm()
            h, w = pl.shape
            n = int(min(4 * ppc, h, w))
            image = pl.read() if h * w <= 4e7 else pl.read((h - n) // 2, (w - n) // 2, n, n)
        cy, cx = image.shape[0] // 2, image.shape[1] // 2
        centre = image[max(0, cy - n // 2): cy + n // 2, max(0, cx - n // 2): cx + n // 2]
        res = count_threads_spectral(centre, SpectralParams(), px_per_cm=ppc)  # 1 cm windows every 0.5 cm
        d = sorted(float(np.nanmedian(m.density)) if np.isfinite(m.density).any() else 0.0
                   for m in (res.horizontal, res.vertical))
        out.append(Canvas(image, ppc, rolls.index(r["roll"]), (d[0], d[1]), p.name, {"path": str(p)}))
    return out, rolls


def hard_neighbours(densities: dict[int, tuple[float, float]], spread: float) -> dict[int, list[int]]:
    """For each roll, the other rolls whose densities (orientation-free: sorted pairs) lie within
    ``spread`` threads/cm in both directions; the nearest roll when none does."""
    keys = sorted(densities)
    d = {k: np.sort(np.asarray(densities[k], float)) for k in keys}
    out: dict[int, list[int]] = {}
    for k in keys:
        others = [j for j in keys if j != k]
        close = [j for j in others if np.all(np.abs(d[j] - d[k]) <= spread + 1e-9)]
        if not close and others:
            close = [min(others, key=lambda j: float(np.abs(d[j] - d[k]).max()))]
        out[k] = close
    return out


def collection_patches(canvases: list[Canvas], cfg: FabricTrainConfig, seed: int) -> dict[str, Any]:
    """Patches of every canvas, with their canvas and roll ids."""
    xs, canvas_of = [], []
    for i, c in enumerate(canvases):
        p, _ = sample_patches(c.image, cfg.patches_per_canvas, cfg.patch_cm, cfg.input_px_per_cm,
                              px_per_cm=c.px_per_cm, seed=seed * 100_003 + i)
        xs.append(p)
        canvas_of += [i] * len(p)
    return {"x": np.concatenate(xs), "canvas": np.asarray(canvas_of), "roll": np.asarray([c.roll for c in canvases])}


class PairDataset(torch.utils.data.Dataset):
    """Balanced patch pairs, redrawn every epoch (or fixed when ``fixed=True``, for validation).

    Item ``i`` is same-roll when ``i`` is even. Same-roll pairs take patches of two different canvases
    of one roll when it has two; different-roll pairs take a hard (similar-density) roll with
    probability ``hard_fraction``. Each patch is rotated by ``k × 90°`` and flipped at random.
    Returns ``(a (1, S, S), b (1, S, S), label float)``.
    """

    def __init__(self, x: np.ndarray, canvas_of_patch: np.ndarray, roll_of_canvas: np.ndarray, canvases: list[int],
                 hard: dict[int, list[int]], n_pairs: int, hard_fraction: float, seed: int, fixed: bool = False):
        self.x, self.n_pairs, self.hard_fraction, self.seed, self.fixed = x, n_pairs, hard_fraction, seed, fixed
        self.epoch = 0
        cset = set(canvases)
        self.patches_of = {c: np.flatnonzero(canvas_of_patch == c) for c in canvases}
        self.canvases_of: dict[int, list[int]] = {}
        for c in canvases:
            self.canvases_of.setdefault(int(roll_of_canvas[c]), []).append(c)
        self.rolls = sorted(self.canvases_of)
        if len(self.rolls) < 2:
            raise InvalidParameterError("pair sampling needs at least 2 rolls on each side of the split")
        self.hard = {r: [j for j in hard.get(r, []) if j in self.canvases_of] for r in self.rolls}
        del cset

    def __len__(self) -> int:
        return self.n_pairs

    def _patch(self, rng: np.random.Generator, canvas: int) -> np.ndarray:
        p = self.x[int(rng.choice(self.patches_of[canvas]))]
        p = np.rot90(p, int(rng.integers(4)))
        return p[:, ::-1] if rng.uniform() < 0.5 else p

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, 0 if self.fixed else self.epoch, i))
        same = i % 2 == 0
        r1 = int(rng.choice(self.rolls))
        if same:
            cs = self.canvases_of[r1]
            c1, c2 = (rng.choice(cs, 2, replace=False) if len(cs) > 1 else (cs[0], cs[0]))
        else:
            if self.hard[r1] and rng.uniform() < self.hard_fraction:
                r2 = int(rng.choice(self.hard[r1]))
            else:
                r2 = int(rng.choice([r for r in self.rolls if r != r1]))
            c1, c2 = rng.choice(self.canvases_of[r1]), rng.choice(self.canvases_of[r2])
        a, b = self._patch(rng, int(c1)), self._patch(rng, int(c2))
        t = [torch.from_numpy(np.ascontiguousarray(p)).unsqueeze(0) for p in (a, b)]
        return t[0], t[1], torch.tensor(float(same))


def prepare_data(cfg: FabricTrainConfig) -> dict[str, Any]:
    """Canvases, patches, the roll-grouped split and the hard-negative table."""
    canvases: list[Canvas] = []
    sources = []
    if cfg.synthetic:
        if cfg.synthetic < 4:
            raise InvalidParameterError("`synthetic` needs at least 4 rolls (2 for training, 2 held out)",
                                        param="synthetic")
        if cfg.randomisation == "wide":
            canvases += wide_collection(cfg.synthetic, cfg.canvases_per_roll, family_size=cfg.family_size,
                                        hard_spread=cfg.hard_spread, seed=cfg.seed,
                                        canvas_cm=(cfg.canvas_cm, cfg.canvas_cm + 2.0))
            sources.append("synthetic (wide randomisation)")
        else:
            canvases += synthetic_collection(cfg.synthetic, cfg.canvases_per_roll, canvas_cm=cfg.canvas_cm,
                                             px_per_cm=cfg.render_px_per_cm, family_size=cfg.family_size,
                                             hard_spread=cfg.hard_spread, seed=cfg.seed)
            sources.append("synthetic")
    if cfg.data:
        lab, _ = labelled_collection(cfg.data)
        offset = cfg.synthetic
        for c in lab:
            c.roll += offset
        canvases += lab
        sources.append("labelled")
    if not canvases:
        raise InvalidParameterError("nothing to train on: give `data` (a plates CSV) and/or a number of `synthetic` "
                                    "rolls", param="data")
    patches = collection_patches(canvases, cfg, cfg.seed)
    rolls = patches["roll"]  # whole rolls on one side; at least 2 validation rolls when there are 4 or more
    split = holdout_split(rolls, val_fraction=cfg.val_fraction, seed=cfg.seed,
                          min_val=2 if len(np.unique(rolls)) >= 4 else 1)
    train_rolls, val_rolls = set(rolls[split["train"]].tolist()), set(rolls[split["val"]].tolist())
    dens = {c.roll: c.densities for c in canvases}
    return {"canvases": canvases, **patches, "train_rolls": train_rolls, "val_rolls": val_rolls,
            "hard": hard_neighbours(dens, cfg.hard_spread), "sources": sources}


# -- calibration -----------------------------------------------------------------------------------


def calibrate_on_canvases(model: Any, canvases: list[Canvas], cfg: FabricTrainConfig, *, seed: int = 0
                          ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Fit the Platt scaling of the aggregated canvas logit on all pairs of ``canvases``.

    Returns:
        ``(calibration dict, rows of the pairs used)``; ``fitted`` is False (identity) when the pairs
        lack same-roll or different-roll examples.
    """
    from artlens.canvas.fabric import FabricModel, aggregate, canvas_embeddings, pair_logits

    fm = FabricModel(model.eval(), {"input_px_per_cm": cfg.input_px_per_cm, "patch_cm": cfg.patch_cm,
                                    "aggregation": {"method": cfg.aggregation, "trim": cfg.trim,
                                                    "n_patches": cfg.calib_patches}}, Path("."))
    embs = [canvas_embeddings(c.image, fm, cfg.calib_patches, seed=seed + i, px_per_cm=c.px_per_cm)
            for i, c in enumerate(canvases)]
    rows = []
    for i in range(len(canvases)):
        for j in range(i + 1, len(canvases)):
            logit = aggregate(pair_logits(embs[i], embs[j], fm), cast(Any, cfg.aggregation), cfg.trim)
            rows.append({"a": canvases[i].name, "b": canvases[j].name, "logit": logit,
                         "same_roll": int(canvases[i].roll == canvases[j].roll)})
    x = np.array([r["logit"] for r in rows], float)
    y = np.array([r["same_roll"] for r in rows], int)
    cal: dict[str, Any] = {"method": "platt", "aggregation": cfg.aggregation, "n_patches": cfg.calib_patches,
                           "n_pairs": len(rows), "n_same_roll": int(y.sum()), "n_canvases": len(canvases)}
    if len(rows) and 0 < y.sum() < len(y):
        a, b = fit_platt(x, y)
        cal.update(a=a, b=b, fitted=True, canvas_auc=roc_auc(x, y))
    else:
        cal.update(a=1.0, b=0.0, fitted=False, canvas_auc=float("nan"),
                   note="validation canvases lack same-roll or different-roll pairs; identity calibration")
    return cal, rows


# -- Lightning -------------------------------------------------------------------------------------


class FabricSiamese(L.LightningModule):
    """Lightning module of the Siamese fabric model (built from a :class:`FabricTrainConfig`, or
    fine-tuned from ``init_from``): BCE on the same-roll logit, accuracy logged, AdamW."""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.save_hyperparameters({"config": config})
        c = FabricTrainConfig.model_validate(config)
        if c.init_from:
            from artlens.models.checkpoint import load_checkpoint

            self.model, _ = load_checkpoint(c.init_from)
            self.model.train()
        else:
            self.model = create_model(c.model, input_size=c.size, **c.model_kwargs)
        self.loss = torch.nn.BCEWithLogitsLoss()
        self.lr, self.wd = c.lr, c.weight_decay

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.model(a, b)  # type: ignore[no-any-return]

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        a, b, y = batch
        logit = self(a, b)
        loss = self.loss(logit, y)
        self.log(f"{stage}_loss", loss, prog_bar=True, on_epoch=True, sync_dist=True, on_step=False, batch_size=len(y))
        self.log(f"{stage}_acc", ((logit > 0).float() == y).float().mean(), on_epoch=True, on_step=False,
                 sync_dist=True, batch_size=len(y))
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> Any:
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.wd)

    def on_train_epoch_start(self) -> None:
        ds = getattr(self.trainer.train_dataloader, "dataset", None)
        if isinstance(ds, PairDataset):
            ds.epoch = self.current_epoch


def train_fabric_model(cfg: FabricTrainConfig, run_dir: str | os.PathLike[str], *, resume: bool = False,
                       data: dict[str, Any] | None = None, enable_progress_bar: bool = False) -> dict[str, Any]:
    """Train (or resume) a fabric run; returns the final metrics and the path of the exported model.

    The run directory is self-describing (``config.json``, ``metrics.csv``, ``last.ckpt``,
    ``model/``, ``calibration.csv``). With ``resume=True`` the config is read from the run directory
    and training continues from ``last.ckpt`` (epoch, step, optimizer state).
    """
    from artlens import __version__
    from artlens.models.checkpoint import save_checkpoint

    run, cfg = open_run(run_dir, cfg, resume=resume)
    if cfg.init_from:
        from artlens.models.checkpoint import read_config

        size = read_config(cfg.init_from)[1]["kwargs"].get("input_size")
        if size is not None and int(size) != cfg.size:
            raise InvalidParameterError(f"{cfg.init_from} sees {size}-px patches, this run makes {cfg.size}-px ones "
                                        "(patch_cm x input_px_per_cm); use the starting model's settings")
    data = data or prepare_data(cfg)
    canvases = data["canvases"]
    train_c = [i for i, c in enumerate(canvases) if c.roll in data["train_rolls"]]
    val_c = [i for i, c in enumerate(canvases) if c.roll in data["val_rolls"]]
    common = (data["x"], data["canvas"], data["roll"])
    train_ds = PairDataset(*common, train_c, data["hard"], cfg.pairs_per_epoch, cfg.hard_fraction, cfg.seed)
    val_ds = PairDataset(*common, val_c, data["hard"], cfg.val_pairs, cfg.hard_fraction, cfg.seed + 1, fixed=True)
    g = torch.Generator().manual_seed(cfg.seed)
    train_dl = torch.utils.data.DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True, generator=g,
                                           num_workers=cfg.num_workers)
    val_dl = torch.utils.data.DataLoader(val_ds, batch_size=cfg.batch_size * 2, num_workers=cfg.num_workers)

    module = FabricSiamese(cfg.model_dump())
    trainer, best = fit(module, train_dl, val_dl, cfg.trainer, run, resume=resume,
                        enable_progress_bar=enable_progress_bar)
    module.model.cpu().eval()
    metrics: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["best_val_loss"] = float(best.best_model_score) if best.best_model_score is not None else None
    metrics["epochs"] = trainer.current_epoch
    metrics["global_step"] = trainer.global_step
    if not trainer.is_global_zero:  # a further DDP process: rank 0 calibrates and writes the model
        return {"model": str(run / "model"), "metrics": metrics, "calibration": {}, "run": str(run)}

    cal, rows = calibrate_on_canvases(module.model, [canvases[i] for i in val_c], cfg, seed=cfg.seed + 7)
    with (run / "calibration.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["a", "b", "logit", "same_roll"])
        w.writeheader()
        w.writerows(rows)
    metrics["val_canvas_auc"] = cal["canvas_auc"]
    metrics = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
    cal = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in cal.items()}
    model_name, model_kwargs = cfg.model, {"input_size": cfg.size, **cfg.model_kwargs}
    if cfg.init_from:  # the architecture is the starting model's
        from artlens.models.checkpoint import read_config

        base = read_config(cfg.init_from)[1]
        model_name, model_kwargs = base["model"], base["kwargs"]
    out = save_checkpoint(module.model, model_name, model_kwargs, run / "model", extra={
        "input_px_per_cm": cfg.input_px_per_cm, "patch_cm": cfg.patch_cm, "task": "fabric_similarity",
        "output": "logit that two patches come from the same roll; canvas score = calibrated aggregate",
        "calibration": cal,
        "aggregation": {"method": cfg.aggregation, "trim": cfg.trim, "n_patches": cfg.calib_patches},
        "training": {"config": cfg.model_dump(), "sources": data["sources"], "n_canvases": len(canvases),
                     "n_patches": int(len(data["x"])), "train_rolls": sorted(int(r) for r in data["train_rolls"]),
                     "val_rolls": sorted(int(r) for r in data["val_rolls"])},
        "metrics": metrics, "artlens_version": __version__,
    })
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return {"model": str(out), "metrics": metrics, "calibration": cal, "run": str(run)}
