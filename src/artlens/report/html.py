"""Self-contained HTML reports for thread counting.

A report is one ``report.html`` file: images are embedded as base64 PNG data URIs and the CSS is
inline, so the file can be mailed, archived or opened offline without anything beside it.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from artlens.canvas.threads.result import DIRECTIONS, ThreadCountResult
from artlens.report.figures import (
    DEFAULT_DPI,
    DIRECTION_TITLES,
    MAP_NAMES,
    angle_map_figure,
    density_map_figure,
    figure_to_png_bytes,
    plate_figure,
    save_figure,
)
from artlens.report.templating import render_template

__all__ = ["PlateSection", "png_data_uri", "render_threads_report", "write_maps", "write_threads_report"]

_TEMPLATE = "threads.html"


@dataclass
class PlateSection:
    """One plate in a thread-counting report.

    Attributes:
        name: heading of the section (e.g. the plate's file name).
        result: the thread count of the plate.
        preview: optional 2-D grayscale view of the whole plate (e.g. from
            :func:`artlens.report.preview_image`); the maps are drawn over it.
        source: provenance shown in the report, e.g. ``path``, ``sha256``, ``px_per_cm``,
            ``px_per_cm_source``, ``size``; any other keys are shown too.
        truth: optional ground-truth mean densities in threads/cm per direction, e.g.
            ``{"horizontal": 12.0, "vertical": 15.0}`` for synthetic plates; adds truth and error
            columns to the summary table.
        figure_paths: optional already-written map PNGs keyed by :data:`MAP_NAMES`
            (as returned by :func:`write_maps`); they are embedded instead of re-rendering.
    """

    name: str
    result: ThreadCountResult
    preview: np.ndarray | None = None
    source: dict[str, Any] | None = None
    truth: dict[str, float] | None = None
    figure_paths: dict[str, str] | None = None


# --------------------------------------------------------------------------------------------------
# Maps on disk
# --------------------------------------------------------------------------------------------------


def _map_figure(result: ThreadCountResult, name: str, preview: np.ndarray | None):
    kind, direction = name.split("_", 1)
    draw = density_map_figure if kind == "density" else angle_map_figure
    return draw(result, direction, preview)


def write_maps(
    out_dir: str | Path,
    result: ThreadCountResult,
    preview: np.ndarray | None,
    prefix: str = "",
    dpi: int = DEFAULT_DPI,
) -> dict[str, Path]:
    """Save the four map PNGs of one plate.

    Writes ``{prefix}density_horizontal.png``, ``{prefix}density_vertical.png``,
    ``{prefix}angle_horizontal.png`` and ``{prefix}angle_vertical.png`` into ``out_dir``.

    Returns:
        ``{"density_horizontal": path, ...}`` keyed by :data:`MAP_NAMES`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        name: save_figure(_map_figure(result, name, preview), out_dir / f"{prefix}{name}.png", dpi=dpi)
        for name in MAP_NAMES
    }


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for embedding PNG bytes in HTML."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --------------------------------------------------------------------------------------------------
# Formatting helpers (the template only prints strings)
# --------------------------------------------------------------------------------------------------


def _num(x: Any, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and not math.isfinite(x):
        return "–"
    return f"{x:.{digits}f}"


def _value(v: Any) -> str:
    """A parameter or source value as short text."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, default=str)
    if isinstance(v, np.ndarray):
        return json.dumps(v.tolist())
    if isinstance(v, np.generic):
        return _value(v.item())
    return str(v)


def _pairs(d: Mapping[str, Any] | None, first: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Key/value rows, keys in ``first`` leading, the others in their order."""
    if not d:
        return []
    keys = [k for k in first if k in d] + [k for k in d if k not in first]
    return [(str(k), _value(d[k])) for k in keys]


def _summary_rows(result: ThreadCountResult, truth: Mapping[str, float] | None) -> list[dict[str, str]]:
    rows = []
    for direction in DIRECTIONS:
        s = result.direction(direction).stats()
        d, a = s["threads_per_cm"], s["angle_deg"]
        row = {
            "direction": DIRECTION_TITLES[direction],
            "mean": _num(d["mean"]),
            "std": _num(d["std"]),
            "median": _num(d["median"]),
            "angle_mean": _num(a["mean"]),
            "angle_std": _num(a["std"]),
            "valid": str(s["valid_windows"]),
            "outlier": str(s["outlier_windows"]),
            "no_peak": str(s["no_peak_windows"]),
            "confidence": _num(s["confidence_mean"]),
        }
        if truth is not None:
            t = truth.get(direction)
            row["truth"] = _num(t)
            if t is not None and d["mean"] is not None:
                err = d["mean"] - t
                row["error"] = f"{err:+.2f}"
                row["rel_error"] = f"{100 * err / t:+.1f} %" if t else "–"
            else:
                row["error"] = row["rel_error"] = "–"
        rows.append(row)
    return rows


def _section_context(
    index: int, section: PlateSection, parameters: Mapping[str, Any], dpi: int
) -> dict[str, Any]:
    r = section.result
    paths = section.figure_paths or {}
    maps = []
    for name in MAP_NAMES:
        path = paths.get(name)
        if path is not None and Path(path).is_file():
            png = Path(path).read_bytes()
        else:
            png = figure_to_png_bytes(_map_figure(r, name, section.preview), dpi=dpi)
        kind, direction = name.split("_", 1)
        maps.append({"name": name, "alt": f"{kind} map, {DIRECTION_TITLES[direction]}",
                     "src": png_data_uri(png)})
    plate_src = None
    if section.preview is not None:
        plate_src = png_data_uri(figure_to_png_bytes(plate_figure(r, section.preview, title=section.name),
                                                     dpi=dpi))
    h_cm, w_cm = (n / r.px_per_cm for n in r.plate_shape_px)
    grid = [
        ("method", r.method),
        ("plate", f"{w_cm:.2f} × {h_cm:.2f} cm ({r.plate_shape_px[1]} × {r.plate_shape_px[0]} px)"),
        ("resolution", f"{r.px_per_cm:g} px/cm"),
        ("windows", f"{r.n_windows} ({r.y_cm.size} rows × {r.x_cm.size} columns), "
                    f"{r.window_cm:g} cm wide, every {r.step_cm:g} cm"),
    ]
    if r.model_checksum:
        grid.append(("model checksum", r.model_checksum))
    return {
        "anchor": f"plate-{index + 1}",
        "name": section.name,
        "source": _pairs(section.source, first=("path", "sha256", "px_per_cm", "px_per_cm_source", "size")),
        "grid": grid,
        # the counter's own parameters, where they add to the report-wide ones
        "result_parameters": _pairs({k: v for k, v in r.parameters.items()
                                     if k not in parameters or _value(parameters[k]) != _value(v)}),
        "has_truth": section.truth is not None,
        "summary": _summary_rows(r, section.truth),
        "plate_src": plate_src,
        "maps": maps,
    }


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


def render_threads_report(
    sections: Sequence[PlateSection],
    title: str,
    parameters: Mapping[str, Any],
    notes: str | Sequence[str] | None = None,
    *,
    created: datetime | None = None,
    dpi: int = DEFAULT_DPI,
    second_opinion: str | None = None,
) -> str:
    """The report's HTML as a string; see :func:`write_threads_report`."""
    from artlens import __version__

    if isinstance(notes, str):
        notes = [notes]
    created = created or datetime.now(UTC)
    return render_template(_TEMPLATE, {
        "title": title,
        "version": __version__,
        "created": created.isoformat(timespec="seconds"),
        "parameters": _pairs(parameters, first=("method", "window_cm", "step_cm", "band", "taper")),
        "notes": list(notes or []),
        "sections": [_section_context(i, s, parameters, dpi) for i, s in enumerate(sections)],
        "methods": {method_kind(s.result) for s in sections},
        "second_opinion": second_opinion,
    })


def method_kind(result: ThreadCountResult) -> str:
    """``"spectral"``, ``"phase"`` (the phase CNN) or ``"regression"`` (a density-regression CNN):
    which description the report's Method section gives."""
    if result.method == "spectral":
        return "spectral"
    return "phase" if "phase" in str(result.parameters.get("estimator", "")) else "regression"


def write_threads_report(
    out_dir: str | Path,
    sections: Sequence[PlateSection],
    title: str,
    parameters: Mapping[str, Any],
    notes: str | Sequence[str] | None = None,
    *,
    created: datetime | None = None,
    dpi: int = DEFAULT_DPI,
    second_opinion: str | None = None,
) -> Path:
    """Write a self-contained thread-counting report to ``out_dir/report.html``.

    For each plate the report shows the preview, the density and angle maps of both thread
    directions, a summary table (with truth and error columns when ``truth`` is given) and the
    source's provenance; the page also lists the counting ``parameters``, the artlens version,
    the creation time and a short description of the method.

    Args:
        out_dir: directory to write into (created if missing).
        sections: one :class:`PlateSection` per plate.
        title: page title.
        parameters: counting parameters shown in the report (window/step in cm, band, taper, ...).
        notes: optional free-text remarks, one paragraph per string.
        created: timestamp to print (default: now, UTC); pass one for reproducible output.
        dpi: resolution of the figures rendered for embedding.
        second_opinion: the sample the phase CNN checked a spectral count on (e.g. ``"4.0 × 4.0 cm"``),
            described in the Method section; ``None`` when no second opinion ran.

    Returns:
        The path of ``report.html``.

    References:
        Johnson, D. H., Johnson, C. R. Jr., Erdmann, R. G. (2013). Weave analysis of paintings on
        canvas from radiographs. Signal Processing 93, 527-540.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    html = render_threads_report(sections, title, parameters, notes, created=created, dpi=dpi,
                                 second_opinion=second_opinion)
    path.write_text(html, encoding="utf-8")
    return path
