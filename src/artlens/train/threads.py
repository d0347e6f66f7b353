"""Training the thread-density CNN with Lightning (CPU, one GPU or many by flags).

Data are arrays of crops ``(N, S, S)`` in 0..1 with labels ``(N, 2)`` = (horizontal, vertical)
threads/cm and a group id per crop (the X-ray plate it came from): splits keep each plate's crops
on one side. Two sources go through the same code path:

- ``synthetic_crops``: plates from :mod:`artlens.synth` with random densities (7–32 threads/cm),
  angles (±3°) and nuisances; labels are the generator's mean truth inside each crop;
- ``labelled_crops``: a dataset folder written by ``artlens threads import-labels`` (crops + thread
  masks); random sub-crops with mask-derived densities (DL4ART's augmentation: sub-crops × flips,
  small rotations).

Online augmentation: left-right / top-bottom flips (labels unchanged) and 90° rotation (labels
swapped).

Phase networks (:mod:`artlens.models.phase`, task ``thread_phase``) learn per-pixel targets instead:
samples are whole images (1.5 cm synthetic plates, or labelled crops) with their thread-phase maps
(the generator's, or :func:`~artlens.canvas.threads.labels.mask_phase` of the masks), cut into random
``crop_cm`` training crops; flips and the 90° rotation transform the phase with the image.

A run directory holds ``config.json`` (resolved), ``metrics.csv``, ``last.ckpt`` (Lightning
state for ``--resume``, loaded with ``weights_only=True``) and ``model/`` (best weights as safetensors
+ JSON config, what ``artlens threads count --method cnn --model RUN/model`` loads).
"""

from __future__ import annotations

import json
import os
from typing import Any

import lightning as L
import numpy as np
import torch
from pydantic import Field

from artlens.canvas.threads.preprocess import normalise_crops, resample_crop
from artlens.errors import InvalidParameterError
from artlens.models import create_model
from artlens.models.losses import get_loss
from artlens.train.runs import TrainerConfig, TrainingConfig, fit, open_run
from artlens.train.splits import holdout_split


class TrainConfig(TrainingConfig):
    """Everything that defines a training run (saved as ``RUN/config.json``); the Lightning settings
    are in ``trainer`` (:class:`~artlens.train.runs.TrainerConfig`)."""

    model: str = "regvgg_small"
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    input_px_per_cm: float = 100.0
    crop_cm: float = 1.0
    loss: str = "nmae"
    lr: float = 1e-3
    lr_schedule: str = "constant"  # or "cosine" (per epoch, over trainer.max_epochs)
    batch_size: int = 32
    data: str | None = None
    synthetic: int = 0  # number of synthetic plates
    yarn_texture: bool = True  # synthetic plates also get ply grooves, twist, cell blotches and grain
    thread_balance: float = 0.0  # > 0: half the synthetic plates get |thread_balance| up to this value
    wider: float = 0.0  # > 0: this fraction of plates gets interstice lattices, lining canvases, banding
    harder: float = 0.0  # > 0: this fraction of plates gets thick lumpy paint (impasto), heavy blur and noise
    broad: float = 0.0  # > 0: this fraction of plates gets broad, flat-topped threads with thin bright gaps
    crops_per_plate: int = 8
    subcrops_per_sample: int = 8
    val_fraction: float = 0.2
    num_workers: int = 0
    init_from: str | None = None  # checkpoint folder to fine-tune from
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(max_epochs=20, patience=4,
                                                                         checkpoint_every_n_steps=20))

    @property
    def size(self) -> int:
        return int(round(self.crop_cm * self.input_px_per_cm))


# -- data ------------------------------------------------------------------------------------------

def _random_weave(rng: np.random.Generator, crop_cm: float, yarn_texture: bool = False,
                  thread_balance: float = 0.0, wider: float = 0.0, harder: float = 0.0,
                  broad: float = 0.0) -> dict[str, Any]:
    """Random plate parameters covering realistic canvases and nuisances (easy to hard).

    ``yarn_texture`` adds what real X-rays show and the plain renderer lacks: two-ply grooves and
    twist striation inside the threads, blotchy cells and fine grain (half of the plates each).
    ``thread_balance`` > 0 makes one thread system fainter than the other on half the plates
    (:class:`~artlens.synth.WeaveParams` ``thread_balance`` uniform in ``±thread_balance``). Both
    draw after everything else, so the other parameters stay those of the same seed without them.
    ``wider`` > 0 (drawn last of all): that fraction of the plates gets a lattice of spots at every
    interstice (bright or dark, strength 0.3-3), each of those also a lining canvas (half of them)
    and scanner banding (half): what a second, independent simulator showed the CNN had never seen.
    ``harder`` > 0 (drawn after ``wider``): that fraction of the plates shows the weave under thick,
    lumpy paint (``impasto`` 0.3-1, which hides it where thick and adds a texture stronger than it),
    heavy smooth paint (0.5-1), blur of 0.8-2.2 px, noise of 0.02-0.1 and grain (0.3-1): the low
    signal-to-noise X-rays of thickly painted canvases.
    ``broad`` > 0 (drawn last): that fraction of the plates has flat-topped threads (``flat_top``
    0.3-0.8) 1.0-1.3 times as wide as usual, so that neighbours touch and the gaps show as thin
    bright lines, a weave contrast of 0.05-0.3, and on half of them two-ply yarn (``ply_groove``
    0.3-0.8): the broad dark bands a second simulator drew and this one did not.
    """
    level = rng.uniform()
    p: dict[str, Any] = dict(
        height_cm=crop_cm * 2.5, width_cm=crop_cm * 2.5, px_per_cm=200.0,
        horizontal_density=float(rng.uniform(7, 32)), vertical_density=float(rng.uniform(7, 32)),
        horizontal_angle_deg=float(rng.uniform(-3, 3)), vertical_angle_deg=float(rng.uniform(-3, 3)),
        spacing_jitter=float(rng.uniform(0.0, 0.1)), thickness_variation=float(rng.uniform(0.05, 0.35)),
        slub_rate=float(rng.uniform(0, 0.8) * level), weave_contrast=float(rng.uniform(0.1, 0.6)),
        paint=float(rng.uniform(0, 0.8) * level), craquelure=float(rng.uniform(0, 0.8) * level),
        lead_white_strokes=int(rng.integers(0, 3) * (level > 0.5)), holes=float(rng.uniform(0, 0.1) * level),
        density_gradient=float(rng.uniform(0, 0.1) * level), noise=float(rng.uniform(0.01, 0.08)),
        blur_px=float(rng.uniform(0.3, 1.5)), invert=bool(rng.uniform() < 0.2), equalize=bool(rng.uniform() < 0.3),
        bit_depth=int(rng.choice([8, 16])), seed=int(rng.integers(1 << 31)),
    )
    if rng.uniform() < 0.3 * level:
        p.update(cusping_amplitude=float(rng.uniform(0.03, 0.15)),
                 cusping_edge=str(rng.choice(["left", "right", "top", "bottom"])))
    if yarn_texture:
        on = rng.uniform(size=4) < 0.5
        p.update(ply_groove=float(rng.uniform(0, 0.9) * on[0]), twist=float(rng.uniform(0, 0.8) * on[1]),
                 cell_variation=float(rng.uniform(0, 1.0) * on[2]), grain=float(rng.uniform(0, 1.0) * on[3]))
    if thread_balance > 0:
        on_balance = rng.uniform() < 0.5
        p["thread_balance"] = float(rng.uniform(-thread_balance, thread_balance) * on_balance)
    if wider > 0:
        on_wide = rng.uniform(size=3) < (wider, 0.5, 0.5)
        if on_wide[0]:
            p["interstice_lattice"] = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 3.0))
            p["lining"] = float(rng.uniform(0.2, 1.0) * on_wide[1])
            p["banding"] = float(rng.uniform(0.2, 1.0) * on_wide[2])
    if harder > 0 and rng.uniform() < harder:
        p.update(impasto=float(rng.uniform(0.3, 1.0)),
                 paint=float(rng.uniform(0.5, 1.0)), blur_px=float(rng.uniform(0.8, 2.2)),
                 noise=float(rng.uniform(0.02, 0.1)), grain=float(rng.uniform(0.3, 1.0)))
    if broad > 0 and rng.uniform() < broad:
        p.update(flat_top=float(rng.uniform(0.3, 0.8)), thread_width=float(rng.uniform(1.0, 1.3)),
                 weave_contrast=float(rng.uniform(0.05, 0.3)))
        if rng.uniform() < 0.5:
            p["ply_groove"] = float(rng.uniform(0.3, 0.8))
    return p


def synthetic_crops(n_plates: int, cfg: TrainConfig, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops, labels (threads/cm) and plate ids from ``n_plates`` synthetic plates."""
    from artlens.synth import WeaveParams, make_plate

    rng = np.random.default_rng(seed)
    xs, ys, gs = [], [], []
    for plate_id in range(n_plates):
        params = _random_weave(rng, cfg.crop_cm, cfg.yarn_texture, cfg.thread_balance, cfg.wider, cfg.harder,
                               cfg.broad)
        plate = make_plate(WeaveParams(**params))
        n = int(round(cfg.crop_cm * plate.px_per_cm))
        h, w = plate.image.shape
        for _ in range(cfg.crops_per_plate):
            y0, x0 = int(rng.integers(0, h - n + 1)), int(rng.integers(0, w - n + 1))
            crop = plate.image[y0: y0 + n, x0: x0 + n].astype(np.float32)
            truth = plate.truth_in_window(y0, x0, n, n)
            xs.append(resample_crop(crop, plate.px_per_cm, cfg.input_px_per_cm, cfg.size))
            ys.append((truth["horizontal_density"], truth["vertical_density"]))
            gs.append(plate_id)
    return normalise_crops(np.stack(xs)), np.asarray(ys, np.float32), np.asarray(gs)


def labelled_crops(dataset: str | os.PathLike[str], cfg: TrainConfig, seed: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Random sub-crops of labelled samples with mask-derived densities; group = plate."""
    from scipy import ndimage as ndi

    from artlens.canvas.threads.labels import load_labelled_crops, mask_density

    rng = np.random.default_rng(seed)
    samples = load_labelled_crops(dataset)
    if not samples:
        raise InvalidParameterError(f"{dataset}: no labelled crops found (run 'artlens threads import-labels')")
    plates = sorted({str(s.plate) for s in samples})
    xs, ys, gs = [], [], []
    for s in samples:
        from artlens.io import open_plate

        with open_plate(s.image_path, s.px_per_cm) as pl:
            image, ppc = pl.read(), pl.require_px_per_cm()
        n = int(round(cfg.crop_cm * ppc))
        for k in range(cfg.subcrops_per_sample):
            img, hm, vm = image, s.h_mask, s.v_mask
            if k % 2 == 1:  # a small rotation (1-6 degrees), masks rotated with the image
                angle = float(rng.uniform(1, 6) * rng.choice([-1, 1]))
                img = ndi.rotate(image, angle, reshape=False, order=1, mode="reflect")
                hm = ndi.rotate(hm.astype(np.uint8), angle, reshape=False, order=0) > 0
                vm = ndi.rotate(vm.astype(np.uint8), angle, reshape=False, order=0) > 0
            h, w = img.shape
            if n > min(h, w):
                raise InvalidParameterError(f"{s.name}: sample ({h}x{w} px) smaller than a {cfg.crop_cm} cm crop")
            y0, x0 = int(rng.integers(0, h - n + 1)), int(rng.integers(0, w - n + 1))
            region = (y0, x0, n, n)
            labels = (mask_density(hm, "horizontal", ppc, region), mask_density(vm, "vertical", ppc, region))
            if not all(np.isfinite(labels)):
                continue
            xs.append(resample_crop(img[y0: y0 + n, x0: x0 + n], ppc, cfg.input_px_per_cm, cfg.size))
            ys.append(labels)
            gs.append(plates.index(str(s.plate)))
    return normalise_crops(np.stack(xs)), np.asarray(ys, np.float32), np.asarray(gs), plates


class CropDataset(torch.utils.data.Dataset):
    """Crops with online flips and 90° rotations (which swap the two labels). Each item is one
    direction: ``(crop (1, S, S), horizontal-thread density)``."""

    def __init__(self, x: np.ndarray, y: np.ndarray, augment: bool, seed: int = 0):
        self.x, self.y, self.augment, self.seed = x, y, augment, seed
        self.epoch = 0

    def __len__(self) -> int:
        return 2 * len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j, rotate = divmod(i, 2)
        crop, label = self.x[j], self.y[j, 1 if rotate else 0]
        if rotate:
            crop = np.rot90(crop)
        if self.augment:
            rng = np.random.default_rng((self.seed, self.epoch, i))
            if rng.uniform() < 0.5:
                crop = crop[:, ::-1]
            if rng.uniform() < 0.5:
                crop = crop[::-1, :]
        return torch.from_numpy(np.ascontiguousarray(crop)).unsqueeze(0), torch.tensor(float(label))


# -- phase networks ------------------------------------------------------------------------------

PHASE_PLATE_CM = 1.5
"""Side of the synthetic plates a phase network trains on, cm."""


def task_of(cfg: TrainConfig) -> str:
    """``"thread_density"`` (regression) or ``"thread_phase"``, from the model or ``init_from``."""
    if cfg.init_from:
        from artlens.models.checkpoint import read_config

        return str(read_config(cfg.init_from)[1].get("task", "thread_density"))
    return str(getattr(create_model(cfg.model, **cfg.model_kwargs), "task", "thread_density"))


def input_defaults(model: str, init_from: str | None = None) -> dict[str, Any]:
    """Task, input resolution (px/cm) and training crop (cm) for a model name or a checkpoint to
    fine-tune: the checkpoint's own values, else 200 px/cm and 0.64 cm crops for phase networks and
    100 px/cm and 1 cm crops for density regressors."""
    if init_from:
        from artlens.models.checkpoint import read_config

        base = read_config(init_from)[1]
        task = str(base.get("task", "thread_density"))
        return {"task": task, "input_px_per_cm": float(base.get("input_px_per_cm", 100.0)),
                "crop_cm": float(base.get("crop_cm", 1.0))}

    task = str(getattr(create_model(model), "task", "thread_density"))
    if task == "thread_phase":
        return {"task": task, "input_px_per_cm": 200.0, "crop_cm": 0.64}
    return {"task": task, "input_px_per_cm": 100.0, "crop_cm": 1.0}


def _pool_phase(phase: np.ndarray) -> np.ndarray:
    """Mean of 2 × 2 blocks (the phase network's output grid); NaN where any input is NaN."""
    h, w = phase.shape[0] // 2 * 2, phase.shape[1] // 2 * 2
    return phase[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)).astype(np.float32)


def _phase_sample(image: np.ndarray, phases: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 normalised image (even size) and ``(2, H/2, W/2)`` pooled phase, origin moved near 0."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    x = normalise_crops(image[None, :h, :w].astype(np.float32))[0]
    ph = np.stack([_pool_phase(p[:h, :w].astype(np.float64)) for p in phases])
    for k in range(2):
        if np.isfinite(ph[k]).any():
            ph[k] -= np.floor(np.nanmin(ph[k]))
    return np.round(x * 255).astype(np.uint8), ph


def synthetic_phase_samples(n_plates: int, cfg: TrainConfig, seed: int
                            ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """``n_plates`` synthetic 1.5 cm plates at the model's resolution: images, phase maps, plate ids."""
    from artlens.synth import WeaveParams, make_plate

    rng = np.random.default_rng(seed)
    xs, phs = [], []
    for _ in range(n_plates):
        params = _random_weave(rng, PHASE_PLATE_CM / 2.5, cfg.yarn_texture, cfg.thread_balance, cfg.wider,
                               cfg.harder, cfg.broad)
        params["px_per_cm"] = cfg.input_px_per_cm
        plate = make_plate(WeaveParams(**params))
        x, ph = _phase_sample(plate.image, [plate.thread_phase["horizontal"], plate.thread_phase["vertical"]])
        xs.append(x)
        phs.append(ph)
    return xs, phs, np.arange(n_plates)


def labelled_phase_samples(dataset: str | os.PathLike[str], cfg: TrainConfig, seed: int
                           ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, list[str]]:
    """Labelled crops with mask-derived phase maps (and one slightly rotated copy each), resampled to
    the model's resolution; group = plate."""
    from scipy import ndimage as ndi

    from artlens.canvas.threads.labels import load_labelled_crops, mask_phase

    rng = np.random.default_rng(seed)
    samples = load_labelled_crops(dataset)
    if not samples:
        raise InvalidParameterError(f"{dataset}: no labelled crops found (run 'artlens threads import-labels')")
    plates = sorted({str(s.plate) for s in samples})
    xs, phs, gs = [], [], []
    for s in samples:
        image = s.read_image().astype(np.float32)
        phases = [mask_phase(s.h_mask, "horizontal"), mask_phase(s.v_mask, "vertical")]
        zoom = cfg.input_px_per_cm / s.px_per_cm
        if abs(zoom - 1) > 1e-6:
            image = ndi.zoom(image, zoom, order=1)
            phases = [ndi.zoom(p, zoom, order=1, cval=np.nan) for p in phases]
        if min(image.shape) < cfg.size:
            raise InvalidParameterError(f"{s.name}: sample smaller than a {cfg.crop_cm} cm training crop")
        for k in range(2):
            img, ph = image, phases
            if k == 1:  # a small rotation (1-6 degrees), phase rotated with the image
                angle = float(rng.uniform(1, 6) * rng.choice([-1, 1]))
                img = ndi.rotate(image, angle, reshape=False, order=1, mode="reflect")
                ph = [ndi.rotate(p, angle, reshape=False, order=1, cval=np.nan) for p in phases]
            x, p = _phase_sample(img, ph)
            xs.append(x)
            phs.append(p)
            gs.append(plates.index(str(s.plate)))
    return xs, phs, np.asarray(gs), plates


class PhaseCropDataset(torch.utils.data.Dataset):
    """Random ``size``-px crops of phase samples, ``items_per_sample`` per sample and epoch.

    Item: ``(crop (1, S, S) in 0..1, target (3, S/2, S/2))`` with the target's cosine, sine and
    validity of the horizontal threads' phase. Half the items are rotated by 90° (the vertical
    threads become horizontal); flips follow. The phase is kept increasing downwards: a top-bottom
    flip or the rotation (which reverses the vertical threads' numbering) negates it.
    """

    def __init__(self, images: list[np.ndarray], phases: list[np.ndarray], size: int, items_per_sample: int,
                 augment: bool, seed: int = 0):
        if size % 2:
            raise InvalidParameterError(f"phase networks need an even crop size, got {size} px")
        self.images, self.phases, self.size = images, phases, size
        self.items, self.augment, self.seed = items_per_sample, augment, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.images) * self.items

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = i // self.items
        img, ph_all = self.images[j], self.phases[j]
        rng = np.random.default_rng((self.seed, self.epoch, i) if self.augment else (self.seed, i))
        s, h = self.size, self.size // 2
        y0 = 2 * int(rng.integers(0, (img.shape[0] - s) // 2 + 1))
        x0 = 2 * int(rng.integers(0, (img.shape[1] - s) // 2 + 1))
        rotate = rng.uniform() < 0.5 if self.augment else i % 2 == 1
        x = img[y0: y0 + s, x0: x0 + s].astype(np.float32) / 255.0
        ph = ph_all[1 if rotate else 0, y0 // 2: y0 // 2 + h, x0 // 2: x0 // 2 + h].astype(np.float64)
        if rotate:
            x, ph = np.rot90(x), -np.rot90(ph)
        if self.augment and rng.uniform() < 0.5:
            x, ph = x[::-1], -ph[::-1]
        if self.augment and rng.uniform() < 0.5:
            x, ph = x[:, ::-1], ph[:, ::-1]
        valid = np.isfinite(ph)
        ph = np.where(valid, ph, 0.0)
        target = np.stack([np.cos(2 * np.pi * ph) * valid, np.sin(2 * np.pi * ph) * valid, valid])
        return (torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(0),
                torch.from_numpy(target.astype(np.float32)))


# -- Lightning -------------------------------------------------------------------------------------

class ThreadRegression(L.LightningModule):
    """Lightning module of a thread counter: a density regressor (``loss`` on threads/cm, MAE logged)
    or a phase network (masked ``phase_mse``), built from a :class:`TrainConfig` (or fine-tuned from
    ``init_from``). Adam, constant or cosine learning rate per epoch."""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.cfg = c = TrainConfig.model_validate(config)
        if c.init_from:
            from artlens.models.checkpoint import load_checkpoint

            self.model, _ = load_checkpoint(c.init_from)
            self.model.train()
        else:
            self.model = create_model(c.model, input_size=c.size, **c.model_kwargs)
        self.phase = getattr(self.model, "task", "") == "thread_phase"
        self.loss = get_loss("phase_mse" if self.phase else c.loss)
        self.lr = c.lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # type: ignore[no-any-return]

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        pred = self(x)
        loss = self.loss(pred, y)
        self.log(f"{stage}_loss", loss, prog_bar=True, on_epoch=True, sync_dist=True, on_step=False, batch_size=len(y))
        if not self.phase:
            self.log(f"{stage}_mae", torch.abs(pred - y).mean(), on_epoch=True, on_step=False, sync_dist=True,
                     batch_size=len(y))
        return loss  # type: ignore[no-any-return]

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> Any:
        opt = torch.optim.Adam(self.parameters(), lr=self.lr)
        if self.cfg.lr_schedule == "cosine":
            epochs = max(1, int(self.cfg.trainer.max_epochs))
            return [opt], [torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=self.lr / 50)]
        return opt

    def on_train_epoch_start(self) -> None:
        ds = getattr(self.trainer.train_dataloader, "dataset", None)
        if isinstance(ds, CropDataset | PhaseCropDataset):
            ds.epoch = self.current_epoch


def prepare_data(cfg: TrainConfig) -> dict[str, Any]:
    """Build the crop arrays (or, for phase networks, the samples) and the plate-grouped split."""
    if task_of(cfg) == "thread_phase":
        return _prepare_phase_data(cfg)
    parts = []
    if cfg.synthetic:
        x, y, g = synthetic_crops(cfg.synthetic, cfg, cfg.seed)
        parts.append((x, y, g, "synthetic"))
    if cfg.data:
        x, y, g, _ = labelled_crops(cfg.data, cfg, cfg.seed)
        parts.append((x, y, g + 1_000_000, "labelled"))
    if not parts:
        raise InvalidParameterError("nothing to train on: give `data` (a labelled dataset folder) and/or a number of "
                                    "`synthetic` plates", param="data")
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    g = np.concatenate([p[2] for p in parts])
    split = holdout_split(g, val_fraction=cfg.val_fraction, seed=cfg.seed)  # whole plates on one side
    return {"x": x, "y": y, "groups": g, "train": split["train"], "val": split["val"],
            "sources": [p[3] for p in parts]}


def _prepare_phase_data(cfg: TrainConfig) -> dict[str, Any]:
    xs: list[np.ndarray] = []
    phs: list[np.ndarray] = []
    groups, sources = [], []
    if cfg.synthetic:
        x, p, g = synthetic_phase_samples(cfg.synthetic, cfg, cfg.seed)
        xs += x
        phs += p
        groups.append(g)
        sources.append("synthetic")
    if cfg.data:
        x, p, g, _ = labelled_phase_samples(cfg.data, cfg, cfg.seed)
        xs += x
        phs += p
        groups.append(g + 1_000_000)
        sources.append("labelled")
    if not xs:
        raise InvalidParameterError("nothing to train on: give `data` (a labelled dataset folder) and/or a number of "
                                    "`synthetic` plates", param="data")
    g = np.concatenate(groups)
    split = holdout_split(g, val_fraction=cfg.val_fraction, seed=cfg.seed)  # whole plates on one side
    return {"x": xs, "phase": phs, "groups": g, "train": split["train"], "val": split["val"], "sources": sources}


def _datasets(cfg: TrainConfig, data: dict[str, Any]) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset]:
    x, tr, va = data["x"], data["train"], data["val"]
    if "phase" in data:
        ph = data["phase"]
        return (PhaseCropDataset([x[i] for i in tr], [ph[i] for i in tr], cfg.size, cfg.crops_per_plate,
                                 augment=True, seed=cfg.seed),
                PhaseCropDataset([x[i] for i in va], [ph[i] for i in va], cfg.size, cfg.crops_per_plate,
                                 augment=False, seed=cfg.seed))
    y = data["y"]
    return CropDataset(x[tr], y[tr], augment=True, seed=cfg.seed), CropDataset(x[va], y[va], augment=False)


def train_thread_counter(cfg: TrainConfig, run_dir: str | os.PathLike[str], *, resume: bool = False,
                         data: dict[str, Any] | None = None, enable_progress_bar: bool = False) -> dict[str, Any]:
    """Train (or resume) a run; returns the final metrics and the path of the exported model.

    The run directory is self-describing: ``config.json``, ``metrics.csv``, ``last.ckpt``,
    ``model/`` (safetensors + config). With ``resume=True`` the config is read from the run
    directory and training continues from ``last.ckpt`` (epoch, step, optimizer state).
    """
    from artlens import __version__
    from artlens.models.checkpoint import save_checkpoint

    run, cfg = open_run(run_dir, cfg, resume=resume)
    data = data or prepare_data(cfg)
    train_ds, val_ds = _datasets(cfg, data)
    g = torch.Generator().manual_seed(cfg.seed)
    train_dl = torch.utils.data.DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True, generator=g,
                                           num_workers=cfg.num_workers)
    val_dl = torch.utils.data.DataLoader(val_ds, batch_size=cfg.batch_size * 2, num_workers=cfg.num_workers)

    module = ThreadRegression(cfg.model_dump())
    trainer, best = fit(module, train_dl, val_dl, cfg.trainer, run, resume=resume,
                        enable_progress_bar=enable_progress_bar)

    metrics: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["best_val_loss"] = float(best.best_model_score) if best.best_model_score is not None else None
    metrics["epochs"] = trainer.current_epoch
    metrics["global_step"] = trainer.global_step
    if not trainer.is_global_zero:  # a further DDP process: rank 0 writes the model
        return {"model": str(run / "model"), "metrics": metrics, "run": str(run)}
    model_kwargs = {"input_size": cfg.size, **cfg.model_kwargs}
    if cfg.init_from:
        from artlens.models.checkpoint import read_config

        base = read_config(cfg.init_from)[1]
        model_name, model_kwargs = base["model"], base["kwargs"]
    else:
        model_name = cfg.model
    phase = "phase" in data
    out = save_checkpoint(module.model, model_name, model_kwargs, run / "model", extra={
        "input_px_per_cm": cfg.input_px_per_cm, "crop_cm": cfg.crop_cm,
        "task": "thread_phase" if phase else "thread_density",
        "output": ("(cos, sin) of 2 pi x the phase of the horizontal threads at half the input resolution "
                   "(vertical: rotate the crop by 90 degrees)" if phase else
                   "density of horizontal threads, threads/cm (vertical: rotate the crop by 90 degrees)"),
        "training": {"config": cfg.model_dump(), "sources": data["sources"], "n_crops": int(len(data["x"])),
                     "n_train": int(len(data["train"])), "n_val": int(len(data["val"]))},
        "metrics": metrics, "artlens_version": __version__,
    })
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return {"model": str(out), "metrics": metrics, "run": str(run)}
