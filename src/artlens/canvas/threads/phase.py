"""Thread counting from a weave-phase CNN (:mod:`artlens.models.phase`).

The network maps the X-ray to ``z = (cos 2πφ, sin 2πφ)`` of the thread phase ``φ`` (``φ = k`` on the
``k``-th thread's centre line) at half its input resolution. Across a window the phase advances by one
per thread, so the window's density is the mean phase gradient:

1. for every pair of neighbouring output pixels, the phase step ``Δ = arg(z₂ · conj(z₁))`` in
   radians (no unwrapping: one step is far below π up to 40 threads/cm at 100 output px/cm), weighted
   by ``|z₁| |z₂|`` (the network's own confidence: it shrinks ``z`` where it cannot see the weave);
2. the weighted means ``g_y``, ``g_x`` of the vertical and horizontal steps inside the window;
3. density = ``hypot(g_y, g_x) / 2π`` × output px/cm (threads/cm); angle = direction of the gradient,
   with the spectral counter's sign conventions; confidence = ``|Σ steps| / Σ |steps|`` (1 when all
   steps agree).

This is the number of threads crossed per cm — the quantity a person counts — measured with every pixel
of the window, so it needs no peak picking and no harmonic check. The plate is processed once, in
overlapping tiles (each normalised on its own, 1st–99th percentile), and windows are sums over the
per-pixel steps, so overlapping windows cost nothing extra. Pixels within :data:`EDGE_PX` output pixels
of the plate's border (where the network sees zero padding) are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from artlens.canvas.threads.grid import WindowGrid
from artlens.canvas.threads.preprocess import PlateSource, normalise_crops, resampled_rows
from artlens.canvas.threads.result import DirectionMaps, ThreadCountResult
from artlens.canvas.threads.spectral import flag_outliers
from artlens.errors import InvalidImageError

TILE = 512
"""Core side of a tile, in model input px."""
HALO = 48
"""Context added around each tile, model input px (the network's receptive field is about 80 px)."""
EDGE_PX = 8
"""Output pixels next to the plate's border that are not used."""


class PhaseModel(Protocol):
    """What the phase counter needs of a loaded network (a
    :class:`~artlens.canvas.threads.cnn.CNNCounter` with ``task == "thread_phase"``)."""

    model: Any
    config: dict[str, Any]
    path: Path

    @property
    def px_per_cm(self) -> float: ...


def _phase_rows(counter: PhaseModel, band: np.ndarray, rotate: bool, batch_size: int) -> np.ndarray:
    """Complex phase map of a model-resolution band (its halo rows included), ``(rows/2, cols/2)``."""
    import torch

    hb, wb = band.shape
    starts = list(range(0, wb, TILE))
    tiles, spans = [], []
    for x0 in starts:
        a, b = max(0, x0 - HALO), min(wb, x0 + TILE + HALO)
        tiles.append(band[:, a:b])
        spans.append((a, b, x0, min(wb, x0 + TILE)))
    out = np.zeros((hb // 2, wb // 2), dtype=np.complex64)
    device = next(counter.model.parameters()).device
    with torch.inference_mode():
        for i in range(0, len(tiles), batch_size):
            group = tiles[i: i + batch_size]
            width = max(t.shape[1] for t in group)
            stack = np.zeros((len(group), hb, width), dtype=np.float32)
            for k, t in enumerate(group):
                stack[k, :, : t.shape[1]] = normalise_crops(t[None])[0]
            x = torch.from_numpy(stack).unsqueeze(1).to(device)
            if rotate:
                x = torch.rot90(x, 1, dims=(2, 3))
            z = counter.model(x).float()
            if rotate:
                z = torch.rot90(z, -1, dims=(2, 3))
            z = z.cpu().numpy()
            for k, (a, _, c0, c1) in enumerate(spans[i: i + batch_size]):
                out[:, c0 // 2: c1 // 2] = (z[k, 0] + 1j * z[k, 1])[:, (c0 - a) // 2: (c1 - a) // 2]
    return out


def _row_sums(steps: np.ndarray, weights: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row, sums over the column ranges ``[c0_j, c1_j)`` of weighted steps, weights and the
    complex steps: ``(Σ w·Δ, Σ w, Σ w·e^{iΔ})`` each ``(rows, n_windows)``."""
    def csum(a: np.ndarray) -> np.ndarray:
        c = np.zeros((a.shape[0], a.shape[1] + 1), dtype=a.dtype)
        np.cumsum(a, axis=1, out=c[:, 1:])
        return c[:, c1] - c[:, c0]

    return csum(steps * weights), csum(weights), csum(weights * np.exp(1j * steps))


def count_threads_phase(
    plate: PlateSource,
    counter: PhaseModel,
    grid: WindowGrid,
    *,
    batch_size: int = 4,
    input_px_per_cm: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ThreadCountResult:
    """Densities (threads/cm), angles (degrees) and confidence per window from a phase network.

    Called by :func:`~artlens.canvas.threads.cnn.count_threads_cnn` for ``thread_phase`` models.

    Args:
        plate: the plate's rows, shape and resolution (:func:`~artlens.canvas.threads.preprocess.plate_source`).
        counter: a loaded phase network (:class:`PhaseModel`).
        grid: the windows to measure (:class:`~artlens.canvas.threads.grid.WindowGrid` over ``plate``).
        batch_size: tiles per forward pass.
        input_px_per_cm: resolution the plate is resampled to for the network, px/cm; ``None``: the
            model's own (``counter.px_per_cm``). Half of it reads a coarse weave's long period the way
            the network reads twice that density (:data:`~artlens.canvas.threads.cnn.COARSE_BELOW`).
    """
    ppc, shape = plate.px_per_cm, plate.shape
    model_ppc = counter.px_per_cm if input_px_per_cm is None else float(input_px_per_cm)
    h, w = shape
    n, nx = grid.window_px, grid.nx
    scale = model_ppc / ppc
    out_ppc = model_ppc / 2
    hm, wm = int(np.floor(h * scale / 2)) * 2, int(np.floor(w * scale / 2)) * 2
    ho, wo = hm // 2, wm // 2
    if min(ho, wo) < 2 * EDGE_PX + 4:
        raise InvalidImageError(f"the plate ({h / ppc:.2f} x {w / ppc:.2f} cm) is too small for the phase CNN")
    # window bounds on the output grid (output pixel k covers plate px [2k/scale, (2k+2)/scale))
    to_out = scale / 2
    r0 = np.clip(np.round(grid.tops * to_out).astype(int), 0, ho)
    r1 = np.clip(np.round((grid.tops + n) * to_out).astype(int), 0, ho)
    c0 = np.clip(np.round(grid.lefts * to_out).astype(int), 0, wo)
    c1 = np.clip(np.round((grid.lefts + n) * to_out).astype(int), 0, wo)

    read = resampled_rows(plate.rows, shape, scale)
    band_rows = max(TILE // 2, 2 * HALO) // 2 * 2  # output rows per band
    # per output row: sums for (vertical steps, horizontal steps) x (w.Δ, w, w.e^iΔ), per direction
    sums = {d: np.zeros((6, ho, nx), dtype=np.complex128) for d in ("horizontal", "vertical")}
    valid_cols = np.zeros(wo, bool)
    valid_cols[EDGE_PX: wo - EDGE_PX] = True
    bands = list(range(0, ho, band_rows))
    prev: dict[str, np.ndarray] = {}
    for b, o0 in enumerate(bands):
        o1 = min(ho, o0 + band_rows)
        m0, m1 = max(0, 2 * o0 - HALO), min(hm, 2 * o1 + HALO)
        band = read(m0, m1)
        for d, rotate in (("horizontal", False), ("vertical", True)):
            z = _phase_rows(counter, band, rotate, batch_size)[(2 * o0 - m0) // 2: (2 * o1 - m0) // 2]
            rows = np.arange(o0, o1)
            z = np.where(((rows >= EDGE_PX) & (rows < ho - EDGE_PX))[:, None] & valid_cols[None], z, 0)
            zz = np.concatenate([prev[d][None], z]) if d in prev else z
            first = o0 - 1 if d in prev else o0
            prev[d] = z[-1]
            dy = zz[1:] * np.conj(zz[:-1])  # step between row r and r+1, stored at row r
            dx = z[:, 1:] * np.conj(z[:, :-1])
            s = sums[d]
            for k, (steps, lo, hi) in enumerate(((dy, c0, c1), (dx, c0, np.maximum(c1 - 1, c0)))):
                ws, wt, cs = _row_sums(np.angle(steps), np.abs(steps), lo, hi)
                at = slice(first, first + len(steps)) if k == 0 else slice(o0, o1)
                s[3 * k, at], s[3 * k + 1, at], s[3 * k + 2, at] = ws, wt, cs
        if progress is not None:
            progress(b + 1, len(bands))

    maps = {}
    for d, s in sums.items():
        c = np.zeros((6, ho + 1, nx), dtype=np.complex128)
        np.cumsum(s, axis=1, out=c[:, 1:])
        wy = c[:, r1 - 1] - c[:, r0]  # vertical steps inside the window: rows r0 .. r1-2
        wx = c[:, r1] - c[:, r0]
        with np.errstate(invalid="ignore", divide="ignore"):
            gy = (wy[0] / wy[1]).real
            gx = (wx[3] / wx[4]).real
            coherence = (np.abs(wy[2]) + np.abs(wx[5])) / (wy[1].real + wx[4].real)
        if d == "horizontal":  # phase increases downwards: g_y > 0
            sign = np.where(gy < 0, -1.0, 1.0)
            gy, gx = gy * sign, gx * sign
            angle = np.degrees(np.arctan2(gx, gy))
        else:  # vertical threads: phase increases to the right, g_x > 0
            sign = np.where(gx < 0, -1.0, 1.0)
            gy, gx = gy * sign, gx * sign
            angle = np.degrees(np.arctan2(-gy, gx))
        density = np.hypot(gy, gx) / (2 * np.pi) * out_ppc
        conf = np.clip(np.nan_to_num(coherence.real, nan=0.0), 0.0, 1.0)
        density = np.where(np.isfinite(density) & (conf > 0), density, np.nan)
        maps[d] = DirectionMaps(density, np.where(np.isfinite(density), angle, np.nan), conf,
                                flag_outliers(density, conf))
    parameters = grid.parameters() | {
        "model": counter.config["model"], "model_path": str(counter.path), "model_px_per_cm": counter.px_per_cm,
        "input_px_per_cm": model_ppc, "estimator": "mean phase gradient of the phase CNN's output",
        "tile_px": TILE, "halo_px": HALO, "edge_px": EDGE_PX, "batch_size": batch_size,
    }
    return ThreadCountResult(
        method="cnn", px_per_cm=ppc, window_cm=grid.window_cm, step_cm=grid.step_cm, x_cm=grid.x_cm,
        y_cm=grid.y_cm, horizontal=maps["horizontal"], vertical=maps["vertical"], plate_shape_px=shape,
        parameters=parameters, model_checksum=counter.config.get("sha256"),
    )
