"""Learned thread counting: a CNN regressing thread density from X-ray sub-crops (DL4ART regVGG).

Inference only: this module imports torch but never Lightning (training lives in
:mod:`artlens.train.threads`). The model sees ``crop_cm``-wide square crops resampled to its own
``px_per_cm`` and min-max scaled; it predicts the density of the horizontal threads, and the
vertical density is the same model on the crop rotated by 90°.

References:
    A. Delgado, J. J. Murillo-Fuentes, L. Alba-Carcelén, "Thread Counting in Plain Weave for Old
    Paintings Using Regression Deep Learning Models", Int J Comput Vis, 2025.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artlens.canvas.threads.grid import DEFAULT_STEP_CM, DEFAULT_WINDOW_CM, WindowGrid, check_window
from artlens.canvas.threads.preprocess import normalise_crops, plate_source, resample_crop
from artlens.canvas.threads.result import DirectionMaps, ThreadCountResult
from artlens.canvas.threads.spectral import flag_outliers
from artlens.errors import InvalidParameterError
from artlens.io.image import Plate

DEFAULT_MODEL = "threads_phase"
"""Tag of the default weights shipped inside the package (``artlens/canvas/threads/weights/``): the
weave-phase CNN, ``weavephase.threads_phase``. ``threads_regvgg`` (``regvgg_small.threads_regvgg``) is
the shipped regVGG density regressor; :func:`artlens.models.pretrained_path` finds either."""


@dataclass
class CNNCounter:
    """A loaded thread-density CNN and how it wants its input.

    Attributes:
        model: torch module in eval mode, ``(B, 1, S, S) → (B,)`` threads/cm.
        config: the checkpoint's ``config.json`` (includes ``sha256`` of the weights).
        px_per_cm: resolution the model expects, px/cm.
        crop_cm: side of the crop it was trained on, cm.
    """

    model: Any
    config: dict[str, Any]
    path: Path

    @property
    def px_per_cm(self) -> float:
        return float(self.config["input_px_per_cm"])

    @property
    def crop_cm(self) -> float:
        return float(self.config["crop_cm"])

    @property
    def size(self) -> int:
        return int(round(self.crop_cm * self.px_per_cm))

    @property
    def task(self) -> str:
        """``"thread_density"`` (one density per crop, regVGG) or ``"thread_phase"`` (phase maps)."""
        return str(self.config.get("task", "thread_density"))

    @property
    def fixed_window_cm(self) -> float | None:
        """The window a density regressor must use (its crop); ``None`` for phase networks (any window)."""
        return None if self.task == "thread_phase" else self.crop_cm

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, device: str = "cpu") -> CNNCounter:
        """Load a checkpoint folder, or a model shipped with artlens by tag, e.g. ``"threads_regvgg"``
        (default: the shipped default, :data:`DEFAULT_MODEL`)."""
        from artlens.models.checkpoint import load_checkpoint
        from artlens.models.pretrained import resolve_model_folder

        folder = resolve_model_folder(DEFAULT_MODEL if path is None else path, what="thread-counting model",
                                      family="threads")
        model, config = load_checkpoint(folder, map_location=device)
        for key in ("input_px_per_cm", "crop_cm"):
            if key not in config:
                raise InvalidParameterError(f"{folder}: config.json lacks {key!r}; not a thread-counting model")
        return cls(model.to(device), config, folder)

    def predict(self, crops: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Densities (threads/cm) of ``(N, 2)`` = (horizontal, vertical) for normalised ``(N, S, S)`` crops
        (density regressors only; a phase network counts with :func:`count_threads_cnn`)."""
        import torch

        if self.task == "thread_phase":
            raise InvalidParameterError("a phase network has no per-crop density output; use count_threads_cnn")

        device = next(self.model.parameters()).device
        out = np.empty((crops.shape[0], 2), dtype=np.float64)
        with torch.inference_mode():
            for i in range(0, crops.shape[0], batch_size):
                x = torch.from_numpy(np.ascontiguousarray(crops[i: i + batch_size])).unsqueeze(1).to(device)
                out[i: i + len(x), 0] = self.model(x).float().cpu().numpy()
                out[i: i + len(x), 1] = self.model(torch.rot90(x, 1, dims=(2, 3))).float().cpu().numpy()
        return out


@dataclass(frozen=True)
class CnnParams:
    """Settings of the CNN counter. Lengths in cm.

    Attributes:
        model: a checkpoint folder, the name of a model shipped with artlens (``threads_phase``,
            ``threads_regvgg``) or an already loaded :class:`CNNCounter`; ``None``: the shipped default,
            :data:`DEFAULT_MODEL`.
        window_cm: window side. ``None``: :data:`~artlens.canvas.threads.grid.DEFAULT_WINDOW_CM` for a
            phase network (which measures any window), the model's own crop for a density regressor
            (regVGG), which counts windows of that size only: any other ``window_cm`` is an error,
            never silently replaced.
        step_cm: distance between window centres.
        batch_size: tiles (phase network) or crops (regressor) per forward pass; ``None``: 4 tiles / 64
            crops with ``device="cpu"``, 16 / 256 on a GPU.
        device: torch device the model is loaded on (``"cpu"``, ``"cuda:0"``); with a loaded counter,
            where it was loaded.
    """

    model: str | os.PathLike[str] | CNNCounter | None = None
    window_cm: float | None = None
    step_cm: float = DEFAULT_STEP_CM
    batch_size: int | None = None
    device: str = "cpu"

    def validate(self) -> None:
        """Raise :class:`~artlens.errors.InvalidParameterError` for settings no plate can use."""
        check_window(DEFAULT_WINDOW_CM if self.window_cm is None else self.window_cm, self.step_cm)
        if self.batch_size is not None and not (isinstance(self.batch_size, int) and self.batch_size > 0):
            raise InvalidParameterError(f"batch_size must be a positive integer, got {self.batch_size!r}",
                                        param="batch_size")

    def load(self) -> CNNCounter:
        """The model: ``model`` itself when it is a loaded :class:`CNNCounter`, else loaded on ``device``."""
        if isinstance(self.model, CNNCounter):
            return self.model
        return CNNCounter.load(self.model, device=self.device)

    def window_for(self, counter: CNNCounter) -> float:
        """The window side ``counter`` counts with these settings, cm (see ``window_cm``)."""
        fixed = counter.fixed_window_cm
        if fixed is None:
            return DEFAULT_WINDOW_CM if self.window_cm is None else self.window_cm
        if self.window_cm is not None and abs(self.window_cm - fixed) > 1e-9:
            raise InvalidParameterError(f"this CNN ({counter.config['model']}) counts {fixed:g} cm windows only; "
                                        f"use window_cm {fixed:g} (or leave it unset)", param="window_cm")
        return fixed

    def batch_for(self, counter: CNNCounter) -> int:
        """Tiles or crops per forward pass (see ``batch_size``)."""
        if self.batch_size is not None:
            return self.batch_size
        phase = counter.task == "thread_phase"
        if self.device == "cpu":
            return 4 if phase else 64
        return 16 if phase else 256

    def grid(self, counter: CNNCounter, shape: tuple[int, int], px_per_cm: float) -> WindowGrid:
        """The windows ``counter`` measures over a plate of ``shape`` px at ``px_per_cm``."""
        return WindowGrid.over(shape, px_per_cm, self.window_for(counter), self.step_cm,
                               fixed_window=counter.fixed_window_cm is not None)


def count_threads_cnn(
    plate: Plate | np.ndarray,
    params: CnnParams | None = None,
    *,
    px_per_cm: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ThreadCountResult:
    """Thread densities over a plate from a CNN.

    A phase network (the shipped ``threads_phase``, see :mod:`artlens.canvas.threads.phase`) measures any
    window and also gives angles and a confidence. A density regressor (regVGG) works on windows of its own
    crop size (:class:`CnnParams`).

    Args:
        plate: :class:`~artlens.io.Plate` or 2-D array (then ``px_per_cm`` is required).
        params: :class:`CnnParams` (model, window, step, batch size, device); default: the shipped model,
            1 cm windows every 0.5 cm.
        px_per_cm: resolution, px/cm; overrides the plate's own.
        progress: called as ``progress(done, total)`` after each band of windows.

    Returns:
        :class:`ThreadCountResult` with ``method="cnn"``. For a regressor, angles and confidence are
        NaN and outliers are windows that disagree with their 3×3 neighbours.
    """
    p = params or CnnParams()
    p.validate()
    counter = p.load()
    src = plate_source(plate, px_per_cm)
    ppc, shape = src.px_per_cm, src.shape
    grid = p.grid(counter, shape, ppc)
    batch_size = p.batch_for(counter)
    if counter.task == "thread_phase":
        from artlens.canvas.threads.phase import count_threads_phase

        return count_threads_phase(src, counter, grid, batch_size=batch_size, progress=progress)
    n, ny, nx = grid.window_px, grid.ny, grid.nx
    dens = np.full((2, ny, nx), np.nan)
    for i in range(ny):
        top = grid.y0 + i * grid.step_px
        rows = src.rows(top, top + n)
        crops = np.stack([resample_crop(rows[:, left: left + n], ppc, counter.px_per_cm, counter.size)
                          for left in grid.lefts])
        pred = counter.predict(normalise_crops(crops), batch_size=batch_size)
        dens[0, i], dens[1, i] = pred[:, 0], pred[:, 1]
        if progress is not None:
            progress(i + 1, ny)

    maps = {}
    for k, name in enumerate(("horizontal", "vertical")):
        conf = np.full((ny, nx), np.nan)
        outlier = flag_outliers(dens[k], np.ones((ny, nx)))
        maps[name] = DirectionMaps(dens[k], np.full((ny, nx), np.nan), conf, outlier)
    parameters = grid.parameters() | {
        "model": counter.config["model"], "model_path": str(counter.path),
        "model_px_per_cm": counter.px_per_cm, "batch_size": batch_size,
    }
    return ThreadCountResult(
        method="cnn", px_per_cm=ppc, window_cm=grid.window_cm, step_cm=grid.step_cm, x_cm=grid.x_cm,
        y_cm=grid.y_cm, horizontal=maps["horizontal"], vertical=maps["vertical"], plate_shape_px=shape,
        parameters=parameters, model_checksum=counter.config.get("sha256"),
    )
