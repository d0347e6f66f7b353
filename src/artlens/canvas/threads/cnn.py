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
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from artlens.canvas.threads.result import DirectionMaps, ThreadCountResult
from artlens.canvas.threads.spectral import SpectralParams, flag_outliers
from artlens.errors import InvalidImageError, InvalidParameterError
from artlens.io.image import Plate

DEFAULT_MODEL = "threads_phase"
"""Folder name of the default weights shipped inside the package (``artlens/canvas/threads/weights/``):
the weave-phase CNN. ``threads_regvgg`` is the shipped regVGG density regressor."""


def shipped_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Path of a model folder shipped with artlens."""
    return Path(str(resources.files("artlens.canvas.threads") / "weights" / name))


def resample_crop(crop: np.ndarray, src_px_per_cm: float, dst_px_per_cm: float, size: int) -> np.ndarray:
    """Resample a square crop to ``size × size`` px at ``dst_px_per_cm`` (box filter), float32."""
    if crop.shape[0] == size and crop.shape[1] == size and abs(src_px_per_cm - dst_px_per_cm) < 1e-6:
        return crop.astype(np.float32, copy=False)
    img = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32), mode="F")
    return np.asarray(img.resize((size, size), Image.Resampling.BOX), dtype=np.float32)


def normalise_crops(crops: np.ndarray) -> np.ndarray:
    """Per-crop robust min-max scaling to 0..1 (1st–99th percentile), ``(N, S, S)`` float32."""
    flat = crops.reshape(crops.shape[0], -1)
    lo = np.percentile(flat, 1, axis=1)[:, None, None]
    hi = np.percentile(flat, 99, axis=1)[:, None, None]
    out = (crops - lo) / np.maximum(hi - lo, 1e-6)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


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
        """Load a checkpoint folder, or a model shipped with artlens by name (default: the shipped
        default, :data:`DEFAULT_MODEL`)."""
        from artlens.models.checkpoint import load_checkpoint

        folder = Path(path) if path is not None else shipped_model_path()
        if path is not None and not folder.exists() and shipped_model_path(str(path)).is_dir():
            folder = shipped_model_path(str(path))  # a shipped model by name, e.g. "threads_phase"
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


def count_threads_cnn(
    plate: Plate | np.ndarray,
    counter: CNNCounter | None = None,
    *,
    step_cm: float = 0.5,
    window_cm: float | None = None,
    px_per_cm: float | None = None,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ThreadCountResult:
    """Thread densities over a plate from a CNN.

    A phase network (the shipped ``threads_phase``, see :mod:`artlens.canvas.threads.phase`) measures any
    window (``window_cm``, default 1.0 cm) and also gives angles and a confidence. A density regressor
    (regVGG) works on windows of its own crop size (``window_cm`` must be that or ``None``).

    Args:
        plate: :class:`~artlens.io.Plate` or 2-D array (then ``px_per_cm`` is required).
        counter: a loaded :class:`CNNCounter`; default: the shipped model.
        step_cm: distance between window centres, cm.
        window_cm: window side, cm.
        batch_size: crops (regressor, default 64) or tiles (phase network, default 4) per forward pass.

    Returns:
        :class:`ThreadCountResult` with ``method="cnn"``. For a regressor, angles and confidence are
        NaN and outliers are windows that disagree with their 3×3 neighbours.
    """
    counter = counter or CNNCounter.load()
    if isinstance(plate, np.ndarray):
        if px_per_cm is None:
            raise InvalidParameterError("px_per_cm is required when counting an array")
        ppc, shape = float(px_per_cm), (int(plate.shape[0]), int(plate.shape[1]))
        array = plate.astype(np.float32, copy=False)

        def read_rows(y0: int, y1: int) -> np.ndarray:
            return array[y0:y1]
    else:
        ppc = float(px_per_cm) if px_per_cm is not None else plate.require_px_per_cm()
        shape, read_rows = plate.shape, plate.rows
    if step_cm <= 0:
        raise InvalidParameterError("--step-cm must be positive")
    if counter.task == "thread_phase":
        from artlens.canvas.threads.phase import count_threads_phase

        source = plate if not isinstance(plate, np.ndarray) else array
        return count_threads_phase(source, counter, ppc=ppc, shape=shape, window_cm=window_cm or 1.0,
                                   step_cm=step_cm, batch_size=batch_size or 4, progress=progress)
    if window_cm is not None and abs(window_cm - counter.crop_cm) > 1e-9:
        raise InvalidParameterError(f"this CNN ({counter.config['model']}) counts {counter.crop_cm:g} cm windows "
                                    f"only; use --window-cm {counter.crop_cm:g}")
    batch_size = batch_size or 64
    window_cm = counter.crop_cm
    n = int(round(window_cm * ppc))
    step = max(1, int(round(step_cm * ppc)))
    h, w = shape
    if n > h or n > w:
        raise InvalidImageError(
            f"the plate ({h / ppc:.2f} x {w / ppc:.2f} cm) is smaller than the model's {window_cm:g} cm window"
        )
    ny, nx = (h - n) // step + 1, (w - n) // step + 1
    y0 = (h - n - (ny - 1) * step) // 2
    x0 = (w - n - (nx - 1) * step) // 2
    dens = np.full((2, ny, nx), np.nan)
    for i in range(ny):
        rows = read_rows(y0 + i * step, y0 + i * step + n)
        crops = np.stack([resample_crop(rows[:, x0 + j * step: x0 + j * step + n], ppc, counter.px_per_cm,
                                        counter.size) for j in range(nx)])
        pred = counter.predict(normalise_crops(crops), batch_size=batch_size)
        dens[0, i], dens[1, i] = pred[:, 0], pred[:, 1]
        if progress is not None:
            progress(i + 1, ny)

    p = SpectralParams(window_cm=window_cm, step_cm=step_cm)
    maps = {}
    for k, name in enumerate(("horizontal", "vertical")):
        conf = np.full((ny, nx), np.nan)
        outlier = flag_outliers(dens[k], np.ones((ny, nx)), p)
        maps[name] = DirectionMaps(dens[k], np.full((ny, nx), np.nan), conf, outlier)
    parameters = {
        "window_cm": window_cm, "step_cm": step_cm, "window_px": n, "step_px": step,
        "model": counter.config["model"], "model_path": str(counter.path),
        "model_px_per_cm": counter.px_per_cm, "batch_size": batch_size,
    }
    return ThreadCountResult(
        method="cnn", px_per_cm=ppc, window_cm=window_cm, step_cm=step_cm,
        x_cm=(x0 + np.arange(nx) * step + n / 2) / ppc, y_cm=(y0 + np.arange(ny) * step + n / 2) / ppc,
        horizontal=maps["horizontal"], vertical=maps["vertical"], plate_shape_px=shape,
        parameters=parameters, model_checksum=counter.config.get("sha256"),
    )
