"""Count threads on a plate file and write everything a conservator needs to a folder:
``summary.json``, ``windows.csv``, density and angle maps, ``report.html``; record it in the catalog.

This is what ``artlens threads count`` runs; the CLI only parses arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artlens.canvas.threads.result import ThreadCountResult
from artlens.canvas.threads.spectral import SpectralParams, count_threads_spectral
from artlens.errors import InvalidParameterError
from artlens.io.image import Plate, open_plate
from artlens.provenance import provenance


@dataclass
class CountOutputs:
    """What :func:`count_plate_file` produced."""

    result: ThreadCountResult
    summary: dict[str, Any]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    analysis_id: int | None = None


def source_record(plate: Plate) -> dict[str, Any]:
    """Provenance of an input image, for ``summary.json`` and the report."""
    return {
        "path": str(plate.path),
        "sha256": plate.sha256,
        "format": plate.info.format,
        "page": plate.info.page,
        "shape_px": list(plate.shape),
        "dtype": plate.info.dtype,
        "px_per_cm": plate.px_per_cm,
        "px_per_cm_source": plate.px_per_cm_source,
        "modality": plate.modality,
    }


def prepare_out_dir(out_dir: str | os.PathLike[str], inputs: list[Path] | None = None) -> Path:
    """Create the output folder; refuse a folder that is one of the inputs' own files."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise InvalidParameterError(f"--out {out} exists and is not a folder")
    for p in inputs or []:
        if out.resolve() == p.resolve():
            raise InvalidParameterError("--out must not be the input file")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_count_outputs(
    out_dir: Path,
    result: ThreadCountResult,
    plate: Plate,
    *,
    name: str | None = None,
    truth: dict[str, float] | None = None,
    report: bool = True,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Write summary.json, windows.csv, the four maps and (optionally) report.html for one plate."""
    from artlens.report import PlateSection, write_maps, write_threads_report

    preview = plate.thumbnail(800)
    source = source_record(plate)
    files: dict[str, Path] = {}
    files["windows_csv"] = result.write_csv(out_dir / "windows.csv")
    files.update(write_maps(out_dir, result, preview))
    extra: dict[str, Any] = {
        "source": source,
        "provenance": provenance(result.method, result.parameters, result.model_checksum),
    }
    if truth is not None:
        extra["truth_threads_per_cm"] = truth
    files["summary_json"] = result.write_summary(out_dir / "summary.json", extra)
    summary = result.summary() | extra
    if report:
        section = PlateSection(
            name=name or plate.path.name,
            result=result,
            preview=preview,
            source=source,
            truth=truth,
            figure_paths={k: str(v) for k, v in files.items() if k.startswith(("density_", "angle_"))},
        )
        files["report_html"] = write_threads_report(
            out_dir, [section], title=f"Thread count — {plate.path.name}", parameters=result.parameters
        )
    return summary, files


def record_in_catalog(catalog_path: str | os.PathLike[str] | None, plate: Plate, result: ThreadCountResult,
                      summary: dict[str, Any], files: dict[str, Path]) -> int:
    """Add the image and the analysis to the catalog; returns the analysis id."""
    from artlens import __version__
    from artlens.catalog import Catalog, default_catalog_path

    with Catalog(default_catalog_path(None if catalog_path is None else str(catalog_path))) as cat:
        image_id = cat.add_image(str(plate.path), plate.sha256, plate.modality, px_per_cm=plate.px_per_cm,
                                 width_px=plate.shape[1], height_px=plate.shape[0])
        return cat.add_analysis(
            image_id,
            method=f"threads.{result.method}",
            parameters=result.parameters,
            artlens_version=__version__,
            summary={k: summary[k] for k in ("windows", "horizontal", "vertical", "px_per_cm") if k in summary},
            outputs=[str(p.resolve()) for p in files.values()],
            model_checksum=result.model_checksum,
        )


def count_plate_file(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    params: SpectralParams | None = None,
    *,
    px_per_cm: float | None = None,
    page: int = 0,
    allow_huge: bool = False,
    catalog: str | os.PathLike[str] | None = None,
    use_catalog: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> CountOutputs:
    """Count threads in one X-ray plate file and write the results to ``out_dir``.

    Args:
        path: the plate (TIFF, PNG, JPEG, BMP); it is only read.
        out_dir: output folder (created if missing).
        params: :class:`SpectralParams`.
        px_per_cm: resolution override, px/cm. Required when the file has no resolution tags.
        page: TIFF page.
        allow_huge: accept more than 2**31 pixels.
        catalog: catalog database path (default: ``$ARTLENS_CATALOG`` or ``./artlens.db``).
        use_catalog: record the image and analysis in the catalog.
        progress: ``progress(done, total)`` callback over bands of windows.
    """
    src = Path(path).expanduser()
    with open_plate(src, px_per_cm, page=page, allow_huge=allow_huge, require_resolution=True) as plate:
        params = params or SpectralParams()
        result = count_threads_spectral(plate, params, progress=progress)
        out = prepare_out_dir(out_dir, [src])
        summary, files = write_count_outputs(out, result, plate)
        analysis_id = record_in_catalog(catalog, plate, result, summary, files) if use_catalog else None
    return CountOutputs(result, summary, out, files, analysis_id)


def summary_line(summary: dict[str, Any]) -> str:
    """One human line per direction, e.g. ``horizontal  12.03 ± 0.21 threads/cm  angle 0.4°``."""
    lines = []
    for name in ("horizontal", "vertical"):
        s = summary[name]
        d, a = s["threads_per_cm"], s["angle_deg"]
        if d["mean"] is None:
            lines.append(f"{name:<10}  no thread peak found in the search band")
            continue
        lines.append(
            f"{name:<10}  {d['mean']:6.2f} ± {d['std']:.2f} threads/cm (median {d['median']:.2f})"
            f"   angle {a['mean']:+.2f} ± {a['std']:.2f}°   windows {s['valid_windows']}"
            f" (+{s['outlier_windows']} outliers)"
        )
    return "\n".join(lines)
