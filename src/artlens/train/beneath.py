"""Training the Siamese graph encoders of ``beneath`` with Lightning (CPU, one GPU or many by flags).

**Data.** Two sources go through the same code path (:func:`prepare_scenes`):

- synthetic scenes (:func:`artlens.synth.hidden.make_hidden_scene`) rendered with *randomised
  variants of the built-in pigment set* (:func:`jitter_pigments`: each pigment's K and S curves
  multiplied by smooth random factors, plus a random near-infrared absorption, so that paints differ
  in IR as real ones do), a random IR band, noise, blur, patch count and hiding contrast; thin
  underdrawings, filled earlier shapes or both, usually with decoys. Their masks say which regions
  hold hidden content. No measured pigment table and no real image is used;
- real band pairs (``pairs``: a CSV with columns ``visible,other``), registered like
  ``artlens beneath compare``. Without ground truth, every region of a real pair is assumed to agree
  between the views (positive pairs only), and it provides negatives.

Each scene becomes a :class:`~artlens.beneath.graphs.GraphPair`, plus the other view's graph on
the same regions after shifting the other image by 8-24 pixels (a *shifted crop*).

**Loss.** :func:`~artlens.models.losses.contrastive_loss` (Hadsell et al. 2006) on pairs of region
embeddings, in four groups whose weights are set in the config:

- own pairs ``(z_visible[i], z_other[i])``: positive where less than ``consistent_below`` of the
  region is hidden content (decoys included: dark in both views, they agree), negative where more
  than ``hidden_above`` is; positives and negatives weigh the same in total;
- other regions: ``(z_visible[i], z_other[j])`` for a random region ``j`` of the same image;
- other images: ``(z_visible[i], z_other[k])`` for a random region ``k`` of another image of the batch;
- shifted crops: ``(z_visible[i], z_shifted[i])``.

Negatives of the last three groups are kept only where the two regions really differ in the other
view (mean intensities ``negative_min_gap`` apart), so that two patches of one flat paint are never
asked to differ. With ``head_weight > 0`` a supervised head is trained too (BCE on the own pairs).

The run directory is the shared one of :mod:`artlens.train.runs` (``config.json``, ``metrics.csv``,
``last.ckpt``, ``checkpoints/best.ckpt``) plus ``data/`` (the prepared graphs, so that ``--resume``
does not render them again), ``model/`` (safetensors + config.json: what ``artlens beneath compare
--model RUN/model`` loads) and ``metrics.json`` (including the validation pixel average precision of
the embedding distance).

References:
    Hadsell, R., Chopra, S. and LeCun, Y. (2006). Dimensionality reduction by learning an invariant
    mapping. CVPR.
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from pydantic import Field

from artlens.errors import InputNotFoundError, InvalidParameterError
from artlens.models import create_model
from artlens.train.runs import TrainerConfig, TrainingConfig, fit, open_run

__all__ = [
    "BeneathSiamese",
    "BeneathTrainConfig",
    "SceneDataset",
    "collate_scenes",
    "jitter_pigments",
    "pixel_average_precision",
    "prepare_scenes",
    "synthetic_scene",
    "train_beneath_model",
]


class BeneathTrainConfig(TrainingConfig):
    """Everything that defines a ``beneath`` training run (saved as ``RUN/config.json``); the
    Lightning settings are in ``trainer`` (:class:`~artlens.train.runs.TrainerConfig`)."""

    model: str = "beneath_gat"
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    synthetic: int = 200  # training scenes
    val_synthetic: int = 40  # validation scenes (other seeds)
    size: int = 256  # scene side, px
    kinds: list[str] = Field(default_factory=lambda: ["underdrawing", "composition", "mixed"])
    decoy_probability: float = 0.8
    pigment_jitter: float = 0.35  # log-sd of the random K, S factors
    nir_absorption: float = 0.6  # largest random extra K above 750 nm
    pairs: str | None = None  # CSV visible,other of real band pairs
    segmentation: str = "stacked"
    region_px: float = 32.0
    compactness: float = 0.2
    margin: float = 1.0
    consistent_below: float = 0.1
    hidden_above: float = 0.5
    own_weight: float = 1.0
    region_weight: float = 0.5
    image_weight: float = 0.25
    shift_weight: float = 0.25
    negative_min_gap: float = 0.1
    head_weight: float = 0.0
    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = 8  # scenes per step
    prep_workers: int = 1
    num_workers: int = 0
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(max_epochs=40, patience=8,
                                                                         checkpoint_every_n_steps=50))


# -- synthetic scenes ------------------------------------------------------------------------------------
def jitter_pigments(rng: np.random.Generator, jitter: float = 0.35, nir_absorption: float = 0.6) -> Any:
    """A random variant of the built-in pigment set (:func:`artlens.synth.hidden.builtin_pigments`).

    Each pigment's K and S are multiplied by ``exp(a + b t)`` with ``t = (wavelength - 700) / 300`` and
    ``a, b ~ N(0, jitter)`` (independently for K and S); every pigment but the black gets an extra
    absorption ``c * sigmoid((wavelength - 750) / 40)`` with ``c ~ U(0, nir_absorption)``, so that some
    paints are darker in the near infrared than their colour suggests.
    """
    from artlens.synth.hidden import PigmentSet, builtin_pigments

    base = builtin_pigments()
    wl = base.wavelengths_nm
    t = (wl - 700.0) / 300.0
    nir = 1.0 / (1.0 + np.exp(-(wl - 750.0) / 40.0))
    K, S = base.K.copy(), base.S.copy()
    for p, name in enumerate(base.names):
        K[p] *= np.exp(rng.normal(0, jitter) + rng.normal(0, jitter) * t)
        S[p] *= np.exp(rng.normal(0, jitter) + rng.normal(0, jitter) * t)
        if "black" not in name.lower():
            K[p] += rng.uniform(0, nir_absorption) * nir
    return PigmentSet(list(base.names), wl, K, S, "built-in (jittered)", False,
                      [*base.notes, f"randomised: jitter {jitter:g}, NIR absorption up to {nir_absorption:g}"])


def synthetic_scene(seed: int, size: int = 256, *, kinds: tuple[str, ...] | list[str] = ("underdrawing",
                    "composition", "mixed"), decoy_probability: float = 0.8, pigment_jitter: float = 0.35,
                    nir_absorption: float = 0.6) -> Any:
    """One randomised training scene (a :class:`~artlens.synth.hidden.HiddenScene`); draws again with a
    milder pigment jitter when a draw leaves too few paints that hide the layer."""
    from artlens.synth.hidden import Camera, make_hidden_scene

    rng = np.random.default_rng(seed)
    for attempt in range(6):
        scale = 0.5**attempt
        ps = jitter_pigments(rng, pigment_jitter * scale, nir_absorption * scale)
        lo = float(rng.choice([800.0, 850.0, 900.0]))
        camera = Camera(ir_band_nm=(lo, min(1000.0, lo + float(rng.choice([100.0, 150.0, 200.0])))))
        try:
            return make_hidden_scene(
                (size, size), kind=str(rng.choice(list(kinds))), decoys=bool(rng.uniform() < decoy_probability),
                seed=int(rng.integers(1 << 31)), pigments=ps, camera=camera, n_patches=int(rng.integers(5, 13)),
                vis_contrast=float(rng.uniform(0.01, 0.04)), min_ir_contrast=float(rng.uniform(0.08, 0.2)),
                noise=float(rng.uniform(0.002, 0.01)), blur_px=float(rng.uniform(0.4, 1.0)), wavelength_step_nm=20.0)
        except InvalidParameterError:
            continue
    raise InvalidParameterError(f"could not draw a usable synthetic scene for seed {seed}")


def _scene_record(visible: np.ndarray, other: np.ndarray, mask: np.ndarray | None, cfg: BeneathTrainConfig,
                  seed: int, valid: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Graphs of one scene (and of its shifted crop) as plain arrays."""
    from artlens.beneath.graphs import VIEW_FEATURES, build_graphs, edge_weights, normalise_other, view_block

    oth = normalise_other(other, valid=valid)
    g = build_graphs(visible, oth, segmentation=cfg.segmentation, region_px=cfg.region_px,
                     compactness=cfg.compactness, valid=valid, other_is_normalised=True, seed=seed)
    rng = np.random.default_rng(seed)
    dy, dx = (int(v) * int(rng.choice([-1, 1])) for v in rng.integers(8, 25, 2))
    x_shift = g.other.x.copy()
    x_shift[:, : len(VIEW_FEATURES)] = view_block(g.labels, np.roll(oth, (dy, dx), axis=(0, 1)))
    w_shift = edge_weights(g.other.edge_index, x_shift[:, 0])
    hidden = g.region_fraction(mask) if mask is not None else np.zeros(g.num_nodes, np.float32)
    return {"x_vis": g.visible.x, "x_oth": g.other.x, "x_shift": x_shift, "edge_index": g.visible.edge_index,
            "w_vis": g.visible.edge_weight, "w_oth": g.other.edge_weight, "w_shift": w_shift,
            "hidden": hidden.astype(np.float32), "area": g.areas.astype(np.float32),
            "labelled": np.full(g.num_nodes, mask is not None)}


def _synthetic_record(args: tuple[int, dict[str, Any]]) -> dict[str, np.ndarray]:
    seed, config = args
    cfg = BeneathTrainConfig(**config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = synthetic_scene(seed, cfg.size, kinds=cfg.kinds, decoy_probability=cfg.decoy_probability,
                            pigment_jitter=cfg.pigment_jitter, nir_absorption=cfg.nir_absorption)
    return _scene_record(s.visible_rgb, s.ir, s.mask, cfg, seed)


def _real_pairs(csv_path: str | os.PathLike[str], cfg: BeneathTrainConfig) -> list[dict[str, np.ndarray]]:
    from artlens.beneath.compare import load_pair

    path = Path(csv_path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"visible", "other"} <= set(rows[0]):
        raise InvalidParameterError(f"{path}: needs columns 'visible' and 'other'")
    out = []
    for k, r in enumerate(rows):
        paths = [Path(r[c]) if Path(r[c]).is_absolute() else path.parent / r[c] for c in ("visible", "other")]
        pair = load_pair(paths[0], paths[1])
        out.append(_scene_record(pair.visible, pair.other, None, cfg, cfg.seed + 10_000 + k, valid=pair.valid))
    return out


def prepare_scenes(cfg: BeneathTrainConfig, n: int, seed: int, *, real: bool = False) -> list[dict[str, np.ndarray]]:
    """Graph records of ``n`` synthetic scenes (seeds ``seed, seed + 1, ...``), plus the real pairs of
    ``cfg.pairs`` when ``real``; ``cfg.prep_workers`` processes render them."""
    jobs = [(seed + i, cfg.model_dump()) for i in range(n)]
    if cfg.prep_workers > 1 and n > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(cfg.prep_workers) as pool:
            records = pool.map(_synthetic_record, jobs, chunksize=max(1, n // (4 * cfg.prep_workers)))
    else:
        records = [_synthetic_record(j) for j in jobs]
    if real and cfg.pairs:
        records += _real_pairs(cfg.pairs, cfg)
    return records


_KEYS = ("x_vis", "x_oth", "x_shift", "w_vis", "w_oth", "w_shift", "hidden", "area", "labelled")


def _save_records(path: Path, records: list[dict[str, np.ndarray]]) -> None:
    nodes = np.array([len(r["hidden"]) for r in records])
    edges = np.array([r["edge_index"].shape[1] for r in records])
    arrays = {k: np.concatenate([r[k] for r in records]) for k in _KEYS}
    arrays["edge_index"] = np.concatenate([r["edge_index"] for r in records], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    savez: Any = np.savez  # numpy's stub types **kwargs as its allow_pickle flag
    savez(tmp, nodes=nodes, edges=edges, **arrays)
    os.replace(tmp, path)


def _load_records(path: Path) -> list[dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as z:
        nodes, edges = z["nodes"], z["edges"]
        arrays = {k: z[k] for k in (*_KEYS, "edge_index")}
    n0, e0 = np.r_[0, np.cumsum(nodes)], np.r_[0, np.cumsum(edges)]
    out = []
    for i in range(len(nodes)):
        r = {k: arrays[k][n0[i] : n0[i + 1]] for k in _KEYS if k[0] != "w"}
        r.update({k: arrays[k][e0[i] : e0[i + 1]] for k in ("w_vis", "w_oth", "w_shift")})
        r["edge_index"] = arrays["edge_index"][:, e0[i] : e0[i + 1]]
        out.append(r)
    return out


# -- batches ---------------------------------------------------------------------------------------------
class SceneDataset(torch.utils.data.Dataset):
    """Scene graph records as tensors (one item = one scene)."""

    def __init__(self, records: list[dict[str, np.ndarray]]):
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.asarray(v)) for k, v in self.records[i].items()}


def collate_scenes(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One disjoint union of the scenes' graphs: node arrays concatenated, edge indices offset,
    ``batch`` the scene of each node."""
    out: dict[str, torch.Tensor] = {}
    offset = 0
    eis, batch = [], []
    for k, it in enumerate(items):
        n = it["hidden"].shape[0]
        eis.append(it["edge_index"] + offset)
        batch.append(torch.full((n,), k, dtype=torch.long))
        offset += n
    for key in items[0]:
        if key != "edge_index":
            out[key] = torch.cat([it[key] for it in items])
    out["edge_index"] = torch.cat(eis, dim=1)
    out["batch"] = torch.cat(batch)
    return out


def pixel_average_precision(score: np.ndarray, hidden_fraction: np.ndarray, area: np.ndarray) -> float:
    """Pixel average precision of a per-region score: each region counts its hidden pixels as
    positives and the rest as negatives, all at the region's score (equal to the AP of the painted map).
    """
    from sklearn.metrics import average_precision_score

    pos = hidden_fraction * area
    if pos.sum() <= 0:
        return float("nan")
    y = np.r_[np.ones(len(score)), np.zeros(len(score))]
    w = np.r_[pos, area - pos]
    keep = w > 0
    return float(average_precision_score(y[keep], np.r_[score, score][keep], sample_weight=w[keep]))


# -- Lightning -------------------------------------------------------------------------------------------
def _random_partner(batch: torch.Tensor, same_scene: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """For each node a random node of the same scene (``same_scene``) or of another scene (where the batch
    has two; else of the same scene)."""
    n = batch.numel()
    counts = torch.bincount(batch)
    starts = torch.cumsum(counts, 0) - counts
    if same_scene or counts.numel() < 2:
        r = torch.rand(n, generator=generator)
        return starts[batch] + (r * counts[batch]).long().clamp_max(counts[batch] - 1)
    shift = 1 + (torch.rand(n, generator=generator) * (counts.numel() - 1)).long()
    other = (batch + shift) % counts.numel()
    r = torch.rand(n, generator=generator)
    return starts[other] + (r * counts[other]).long().clamp_max(counts[other] - 1)


def beneath_losses(model: Any, b: dict[str, torch.Tensor], cfg: BeneathTrainConfig) -> dict[str, torch.Tensor]:
    """The loss terms of one batch (see the module notes) and the embedding distance of the own pairs."""
    from artlens.models.losses import contrastive_loss

    ei = b["edge_index"]
    zv = model.embed(b["x_vis"], ei, b["w_vis"])
    zo = model.embed(b["x_oth"], ei, b["w_oth"])
    zs = model.embed(b["x_shift"], ei, b["w_shift"])
    d_own = model.distance(zv, zo)
    hidden, labelled = b["hidden"], b["labelled"].bool()
    pos = (hidden < cfg.consistent_below).float()
    neg = ((hidden > cfg.hidden_above) & labelled).float()
    w_own = pos / pos.sum().clamp_min(1.0) + neg / neg.sum().clamp_min(1.0) if neg.sum() > 0 else pos / pos.sum()
    terms = {"own": contrastive_loss(d_own, None, pos, margin=cfg.margin, distance="precomputed",
                                     weight=w_own * (pos + neg))}
    view_mean = b["x_oth"][:, 0]
    for name, z_b, idx, mean_b in (
        ("region", zo, _random_partner(b["batch"], True), None),
        ("image", zo, _random_partner(b["batch"], False), None),
        ("shift", zs, torch.arange(len(zv)), b["x_shift"][:, 0]),
    ):
        gap = (view_mean - (view_mean[idx] if mean_b is None else mean_b[idx])).abs()
        keep = (gap > cfg.negative_min_gap).float()
        if keep.sum() > 0:
            terms[name] = contrastive_loss(model.distance(zv, z_b[idx]), None, torch.zeros_like(keep),
                                           margin=cfg.margin, distance="precomputed", weight=keep)
        else:
            terms[name] = d_own.sum() * 0.0
    total = (cfg.own_weight * terms["own"] + cfg.region_weight * terms["region"] + cfg.image_weight * terms["image"]
             + cfg.shift_weight * terms["shift"])
    if cfg.head_weight > 0 and getattr(model, "head", None) is not None:
        sel = (pos + neg) > 0
        logit = model.head_logit(zv, zo)
        terms["head"] = torch.nn.functional.binary_cross_entropy_with_logits(logit[sel], neg[sel],
                                                                               weight=w_own[sel] * sel.sum())
        total = total + cfg.head_weight * terms["head"]
    terms["loss"] = total
    terms["distance"] = d_own.detach()
    return terms


class BeneathSiamese(L.LightningModule):
    """Lightning module of a Siamese graph encoder (:func:`beneath_losses`; validation pixel AP of the
    embedding distance logged as ``val_ap``), with the node-feature scaling of the training graphs."""

    def __init__(self, config: dict[str, Any], feature_mean: np.ndarray, feature_std: np.ndarray):
        super().__init__()
        self.save_hyperparameters({"config": config}, ignore=["feature_mean", "feature_std"])
        self.cfg = BeneathTrainConfig.model_validate(config)
        kwargs = dict(self.cfg.model_kwargs)
        if self.cfg.head_weight > 0:
            kwargs["head"] = True
        self.model = create_model(self.cfg.model, **kwargs)
        self.model.set_feature_scaling(torch.as_tensor(feature_mean), torch.as_tensor(feature_std))
        self._val: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        t = beneath_losses(self.model, batch, self.cfg)
        n = int(batch["batch"].max()) + 1
        for k in ("loss", "own", "region", "image", "shift", "head"):
            if k in t:
                self.log(f"train_{k}" if k != "loss" else "train_loss", t[k], on_epoch=True, on_step=False,
                         sync_dist=True, batch_size=n)
        return t["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        t = beneath_losses(self.model, batch, self.cfg)
        n = int(batch["batch"].max()) + 1
        self.log("val_loss", t["loss"], on_epoch=True, sync_dist=True, on_step=False, prog_bar=True, batch_size=n)
        self._val.append((t["distance"].cpu().numpy(), batch["hidden"].cpu().numpy(), batch["area"].cpu().numpy()))

    def on_validation_epoch_end(self) -> None:
        if self._val:
            d, h, a = (np.concatenate(v) for v in zip(*self._val, strict=True))
            ap = pixel_average_precision(d, h, a)
            if math.isfinite(ap):
                # under DDP: this rank's share of the pairs (not synced: a rank may have no finite AP)
                self.log("val_ap", ap, prog_bar=True)
        self._val = []

    def configure_optimizers(self) -> Any:
        return torch.optim.AdamW(self.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)


def _feature_scaling(records: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([np.concatenate([r["x_vis"], r["x_oth"]]) for r in records])
    return x.mean(axis=0).astype(np.float32), (x.std(axis=0) + 1e-6).astype(np.float32)


def train_beneath_model(cfg: BeneathTrainConfig, run_dir: str | os.PathLike[str], *, resume: bool = False,
                        data: tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]] | None = None,
                        enable_progress_bar: bool = False) -> dict[str, Any]:
    """Train (or resume) a ``beneath`` run; returns the final metrics and the exported model's folder.

    Args:
        cfg: the run's configuration (read back from the run directory with ``resume``).
        run_dir: the run directory.
        resume: continue from ``run_dir/last.ckpt`` with the saved config and prepared graphs.
        data: ``(train_records, val_records)`` prepared already (tests); default: rendered and cached in
            ``run_dir/data``.
        enable_progress_bar: show Lightning's progress bar.

    Raises:
        InvalidParameterError: a non-``beneath`` model name, or nothing to train on.
    """
    from artlens import __version__
    from artlens.models.checkpoint import save_checkpoint

    if not cfg.model.startswith("beneath_"):
        from artlens.models import list_models

        valid = ", ".join(list_models("beneath_*"))
        raise InvalidParameterError(f"model must be a beneath model; valid models: {valid}")
    if cfg.synthetic < 1 and not cfg.pairs:
        raise InvalidParameterError("nothing to train on: give a number of `synthetic` scenes and/or `pairs` (a CSV of "
                                    "real band pairs)", param="synthetic")
    run, cfg = open_run(run_dir, cfg, resume=resume)
    if data is None:
        train_file, val_file = run / "data" / "train.npz", run / "data" / "val.npz"
        if train_file.is_file() and val_file.is_file():
            data = (_load_records(train_file), _load_records(val_file))
        else:
            data = (prepare_scenes(cfg, cfg.synthetic, cfg.seed * 1_000_003, real=True),
                    prepare_scenes(cfg, max(cfg.val_synthetic, 1), cfg.seed * 1_000_003 + 500_000))
            _save_records(train_file, data[0])
            _save_records(val_file, data[1])
    train_records, val_records = data
    mean, std = _feature_scaling(train_records)
    g = torch.Generator().manual_seed(cfg.seed)
    train_dl = torch.utils.data.DataLoader(SceneDataset(train_records), batch_size=cfg.batch_size, shuffle=True,
                                           generator=g, collate_fn=collate_scenes, num_workers=cfg.num_workers)
    val_dl = torch.utils.data.DataLoader(SceneDataset(val_records), batch_size=cfg.batch_size,
                                         collate_fn=collate_scenes, num_workers=cfg.num_workers)
    module = BeneathSiamese(cfg.model_dump(), mean, std)
    trainer, best = fit(module, train_dl, val_dl, cfg.trainer, run, resume=resume,
                        enable_progress_bar=enable_progress_bar)
    model = module.model.cpu().eval()
    metrics: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["best_val_loss"] = float(best.best_model_score) if best.best_model_score is not None else None
    metrics["epochs"] = trainer.current_epoch
    metrics["global_step"] = trainer.global_step
    if not trainer.is_global_zero:  # a further DDP process: rank 0 evaluates and writes the model
        return {"model": str(run / "model"), "metrics": metrics, "run": str(run)}
    with torch.no_grad():  # validation AP of the best weights
        d, h, a = [], [], []
        for b in val_dl:
            t = beneath_losses(model, b, cfg)
            d.append(t["distance"].numpy())
            h.append(b["hidden"].numpy())
            a.append(b["area"].numpy())
        metrics["val_pixel_ap"] = pixel_average_precision(np.concatenate(d), np.concatenate(h), np.concatenate(a))
    metrics = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
    out = save_checkpoint(model, cfg.model, model.architecture(), run / "model", extra={
        "task": "beneath_difference",
        "output": "per-region embedding distance between the visible and the other view (higher = differs)",
        "graphs": {"segmentation": cfg.segmentation, "region_px": cfg.region_px, "compactness": cfg.compactness},
        "training": {"config": cfg.model_dump(), "train_scenes": len(train_records), "val_scenes": len(val_records),
                     "sources": ["synthetic (jittered built-in pigments)"] + (["real pairs"] if cfg.pairs else [])},
        "metrics": metrics, "artlens_version": __version__,
    })
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return {"model": str(out), "metrics": metrics, "run": str(run)}
