"""Map overlays for the deep-zoom viewer: a thread count's density/angle maps and a beneath heatmap as
transparent PNGs placed in the image's pixel frame, with their colour scales.

Thread maps are rebuilt from the analysis' ``windows.csv`` (window centres in cm, densities in threads/cm,
angles in degrees), so analyses recorded by the CLI get overlays too. Each window is one cell of
``step_cm`` side around its centre; windows without a peak are transparent.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

THREAD_MAPS = {
    "density_horizontal": ("h_threads_per_cm", "threads/cm", "viridis"),
    "density_vertical": ("v_threads_per_cm", "threads/cm", "viridis"),
    "angle_horizontal": ("h_angle_deg", "degrees", "coolwarm"),
    "angle_vertical": ("v_angle_deg", "degrees", "coolwarm"),
}
CELL_PX = 8  # each window drawn as CELL_PX x CELL_PX pixels; the viewer scales it without smoothing


def _find_output(outputs: list[str], name: str) -> Path | None:
    for p in outputs:
        if Path(p).name == name and Path(p).is_file():
            return Path(p)
    return None


def thread_grid(outputs: list[str], column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(values (ny, nx), x_cm, y_cm)`` of one ``windows.csv`` column, or ``None`` without a windows.csv."""
    path = _find_output(outputs, "windows.csv")
    if path is None:
        return None
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or column not in rows[0]:
        return None
    ny = max(int(r["row"]) for r in rows) + 1
    nx = max(int(r["col"]) for r in rows) + 1
    values = np.full((ny, nx), np.nan)
    x_cm, y_cm = np.zeros(nx), np.zeros(ny)
    for r in rows:
        i, j = int(r["row"]), int(r["col"])
        x_cm[j], y_cm[i] = float(r["x_cm"]), float(r["y_cm"])
        if r[column] != "":
            values[i, j] = float(r[column])
    return values, x_cm, y_cm


def _step(centres: np.ndarray, fallback: float) -> float:
    return float(np.median(np.diff(centres))) if centres.size > 1 else fallback


def thread_overlay(analysis: dict[str, Any], name: str) -> tuple[bytes, dict[str, Any]] | None:
    """The PNG of one thread map and its placement: ``bounds_px`` ``[[y0, x0], [y1, x1]]`` in the image's
    full-resolution pixels, ``vmin``/``vmax`` and ``units`` of the colour scale."""
    if name not in THREAD_MAPS:
        return None
    column, units, cmap = THREAD_MAPS[name]
    grid = thread_grid(analysis["outputs"], column)
    if grid is None:
        return None
    values, x_cm, y_cm = grid
    ppc = float(analysis["summary"].get("px_per_cm") or analysis["parameters"].get("px_per_cm") or 0)
    if ppc <= 0:
        return None
    step = float(analysis["parameters"].get("step_cm") or _step(x_cm, _step(y_cm, 1.0)))
    sx, sy = _step(x_cm, step), _step(y_cm, step)
    finite = values[np.isfinite(values)]
    if finite.size:
        vmin, vmax = (float(v) for v in np.percentile(finite, [2, 98]))
    else:
        vmin, vmax = 0.0, 1.0
    if vmax - vmin < 1e-6:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    png = _colour_png(values, vmin, vmax, cmap)
    bounds = [[(y_cm[0] - sy / 2) * ppc, (x_cm[0] - sx / 2) * ppc],
              [(y_cm[-1] + sy / 2) * ppc, (x_cm[-1] + sx / 2) * ppc]]
    meta = {"name": name, "units": units, "vmin": round(vmin, 3), "vmax": round(vmax, 3), "colormap": cmap,
            "bounds_px": [[round(v, 2) for v in p] for p in bounds],
            "mean": None if not finite.size else round(float(finite.mean()), 3)}
    return png, meta


def heatmap_overlay(npy: Path, shape: tuple[int, int]) -> tuple[bytes, dict[str, Any]]:
    """A beneath heatmap (``.npy``, higher = more hidden content) as a PNG over the whole visible image."""
    values = np.load(npy, allow_pickle=False).astype(float)
    finite = values[np.isfinite(values)]
    vmin, vmax = (float(np.percentile(finite, 1)), float(np.percentile(finite, 99.5))) if finite.size else (0.0, 1.0)
    if vmax - vmin < 1e-9:
        vmax = vmin + 1.0
    png = _colour_png(values, vmin, vmax, "inferno", cell=1)
    meta = {"name": npy.stem, "units": "heatmap score (higher: more likely hidden content)", "vmin": round(vmin, 4),
            "vmax": round(vmax, 4), "colormap": "inferno", "bounds_px": [[0, 0], [shape[0], shape[1]]]}
    return png, meta


def _colour_png(values: np.ndarray, vmin: float, vmax: float, cmap: str, cell: int = CELL_PX) -> bytes:
    from matplotlib import colormaps
    from PIL import Image

    norm = np.clip((values - vmin) / (vmax - vmin), 0, 1)
    rgba = colormaps[cmap](np.nan_to_num(norm), bytes=True)
    rgba[..., 3] = np.where(np.isfinite(values), 255, 0)
    if cell > 1:
        rgba = np.repeat(np.repeat(rgba, cell, axis=0), cell, axis=1)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def colourbar_png(cmap: str, width: int = 256, height: int = 14) -> bytes:
    """A horizontal colour bar (low values left) for the legend under the viewer."""
    ramp = np.tile(np.linspace(0, 1, width), (height, 1))
    return _colour_png(ramp, 0.0, 1.0, cmap, cell=1)
