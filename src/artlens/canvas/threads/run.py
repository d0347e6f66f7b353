"""Count threads on a plate file and write everything a conservator needs to a folder:
``summary.json``, ``windows.csv``, density and angle maps, ``report.html``; record it in the catalog.

This is what ``artlens threads count`` runs; the CLI only parses arguments.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from artlens.canvas.threads.count import count_threads
from artlens.canvas.threads.preprocess import plate_source
from artlens.canvas.threads.result import DIRECTIONS, ThreadCountResult
from artlens.canvas.threads.spectral import SpectralParams
from artlens.errors import InvalidParameterError
from artlens.io.image import Plate, open_plate
from artlens.provenance import provenance

if TYPE_CHECKING:
    from artlens.canvas.threads.cnn import CnnParams


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
        raise InvalidParameterError(f"out_dir {out} exists and is not a folder", param="out_dir")
    for p in inputs or []:
        if out.resolve() == p.resolve():
            raise InvalidParameterError("out_dir must not be the input file", param="out_dir")
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
    cross: dict[str, Any] | None = None,
    opinion: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Write summary.json, windows.csv, the four maps and (optionally) report.html for one plate.

    ``cross``: a :func:`cross_check` record, written to ``summary.json`` as ``cross_check`` and shown
    in the report; ``opinion``: a :func:`~artlens.canvas.threads.opinion.second_opinion` record, written
    as ``second_opinion`` and shown the same way."""
    from artlens.canvas.threads.opinion import sample_text
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
    if cross is not None:
        extra["cross_check"] = cross
    if opinion is not None:
        extra["second_opinion"] = opinion
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
        notes = [c["message"] for c in (cross, opinion) if c is not None and c["message"]]
        notes += check_notes(summary)
        files["report_html"] = write_threads_report(
            out_dir, [section], title=f"Thread count — {plate.path.name}", parameters=result.parameters,
            notes=notes, second_opinion=None if opinion is None or "skipped" in opinion else sample_text(opinion),
        )
    return summary, files


def catalog_entry(plate: Plate, result: ThreadCountResult, summary: dict[str, Any],
                  files: dict[str, Path]) -> dict[str, Any]:
    """The image and analysis records of one count, JSON-ready (see :func:`write_catalog_entry`)."""
    from artlens import __version__

    return {
        "image": {"path": str(plate.path), "sha256": plate.sha256, "modality": plate.modality,
                  "px_per_cm": plate.px_per_cm, "width_px": plate.shape[1], "height_px": plate.shape[0]},
        "analysis": {
            "method": f"threads.{result.method}",
            "parameters": result.parameters,
            "artlens_version": __version__,
            "summary": {k: summary[k] for k in ("windows", "horizontal", "vertical", "px_per_cm") if k in summary},
            "outputs": [str(p.resolve()) for p in files.values()],
            "model_checksum": result.model_checksum,
        },
    }


def write_catalog_entry(cat: Any, entry: dict[str, Any]) -> int:
    """Add a :func:`catalog_entry` to an open :class:`~artlens.catalog.Catalog`; returns the analysis id."""
    image_id = cat.add_image(**entry["image"])
    return cat.add_analysis(image_id, **entry["analysis"])


def record_in_catalog(catalog_path: str | os.PathLike[str] | None, plate: Plate, result: ThreadCountResult,
                      summary: dict[str, Any], files: dict[str, Path]) -> int:
    """Add the image and the analysis to the catalog; returns the analysis id."""
    from artlens.catalog import Catalog

    with Catalog(catalog_path) as cat:
        return write_catalog_entry(cat, catalog_entry(plate, result, summary, files))


METHODS = ("spectral", "cnn", "both")
"""What :func:`count_plate_file` runs: one counter (:data:`artlens.canvas.threads.count.METHODS`) or both."""


def check_method(method: str, cnn: CnnParams | None) -> None:
    """Raise :class:`~artlens.errors.InvalidParameterError` for an unknown ``method``, or CNN settings
    with a model for the spectral method (which would ignore them)."""
    if method not in METHODS:
        raise InvalidParameterError(f"method must be one of {', '.join(METHODS)}, got {method!r}", param="method")
    if cnn is not None and cnn.model is not None and method == "spectral":
        raise InvalidParameterError("model is used by method cnn or both", param="model")


def count_plate_file(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    params: SpectralParams | None = None,
    *,
    method: str = "spectral",
    cnn: CnnParams | None = None,
    px_per_cm: float | None = None,
    page: int = 0,
    allow_huge: bool = False,
    catalog: str | os.PathLike[str] | None = None,
    use_catalog: bool = True,
    progress: Callable[[int, int], None] | None = None,
    cross_check_cnn: bool = True,
    second_opinion: bool = True,
    recorder: Callable[[Plate, ThreadCountResult, dict[str, Any], dict[str, Path]], int | None] | None = None,
) -> CountOutputs:
    """Count threads in one X-ray plate file and write the results to ``out_dir``.

    Args:
        path: the plate (TIFF, PNG, JPEG, BMP); it is only read.
        out_dir: output folder (created if missing).
        params: :class:`SpectralParams` of the spectral counter.
        method: ``"spectral"``, ``"cnn"`` or ``"both"``. With ``"both"`` each method writes its own
            subfolder, and ``summary.json`` / ``disagreement.csv`` / ``report.html`` compare them window
            by window.
        cnn: :class:`~artlens.canvas.threads.cnn.CnnParams` of the CNN (model, window, step, batch size,
            device; default: the shipped model). Whenever the spectral counter runs beside the CNN
            (``"both"``, or the cross-check of ``"cnn"``), it counts the CNN's windows: ``params``'
            ``window_cm`` and ``step_cm`` give way to the CNN's (for a density regressor, its crop).
        px_per_cm: resolution override, px/cm. Required when the file has no resolution tags.
        page: TIFF page.
        allow_huge: accept more than 2**31 pixels.
        catalog: catalog database path (default: ``$ARTLENS_CATALOG`` or ``./artlens.db``).
        use_catalog: record the image and analysis in the catalog.
        progress: ``progress(done, total)`` callback over bands of windows.
        cross_check_cnn: with ``method="cnn"``, also run the spectral counter on the same windows
            and flag (never average) where they disagree (:func:`cross_check`); ``summary.json``
            gets a ``cross_check`` record and the maps mark the windows to check.
        second_opinion: with ``method="spectral"``, check the plate densities with the phase CNN on a
            central sample (:func:`artlens.canvas.threads.opinion.second_opinion`); ``summary.json`` gets
            a ``second_opinion`` record, and a disagreement is a "check here" in the report.
        recorder: ``recorder(plate, result, summary, files)`` records each analysis instead of
            :func:`record_in_catalog` (the batch runner collects :func:`catalog_entry` s this way).
    """
    check_method(method, cnn)
    src = Path(path).expanduser()
    params = params or SpectralParams()
    record = recorder or (lambda *args: record_in_catalog(catalog, *args))
    with open_plate(src, px_per_cm, page=page, allow_huge=allow_huge, require_resolution=True) as plate:
        cnn_params = None
        if method in ("cnn", "both"):
            from artlens.canvas.threads.cnn import CnnParams

            cnn = cnn or CnnParams()
            cnn.validate()
            counter = cnn.load()  # once, for both the grid and the count
            window = cnn.window_for(counter)
            cnn_params = replace(cnn, model=counter, window_cm=window)
            # the spectral counter beside the CNN counts the CNN's windows
            params = replace(params, window_cm=window, step_cm=cnn.step_cm)
        out = prepare_out_dir(out_dir, [src])
        results: dict[str, ThreadCountResult] = {}
        if method in ("spectral", "both") or (method == "cnn" and cross_check_cnn):
            results["spectral"] = count_threads(plate, "spectral", params, progress=progress)
        if cnn_params is not None:
            results["cnn"] = count_threads(plate, "cnn", cnn_params, progress=progress)
        check = cross_check(results["spectral"], results["cnn"]) if len(results) == 2 else None
        opinion = None
        if method == "spectral" and second_opinion:
            from artlens.canvas.threads.opinion import second_opinion as check_spectral

            opinion = check_spectral(plate_source(plate), results["spectral"], cnn)
        if method != "both":
            result = results[method]
            summary, files = write_count_outputs(out, result, plate, cross=check, opinion=opinion)
            analysis_id = record(plate, result, summary, files) if use_catalog else None
            return CountOutputs(result, summary, out, files, analysis_id)

        summaries, all_files = {}, {}
        for name, result in results.items():
            sub = out / name
            sub.mkdir(exist_ok=True)
            summaries[name], files = write_count_outputs(sub, result, plate, report=False)
            all_files.update({f"{name}_{k}": v for k, v in files.items()})
            if use_catalog:
                record(plate, result, summaries[name], files)
        assert check is not None
        base = compare_results(results["spectral"], results["cnn"])
        comparison = {d: base[d] | check[d] for d in DIRECTIONS}
        comparison["tolerance"] = check["tolerance"]
        comparison["plate_flagged"] = check["plate_flagged"]
        comparison["message"] = check["message"]
        all_files["disagreement_csv"] = write_disagreement_csv(out / "disagreement.csv", results["spectral"],
                                                               results["cnn"])
        summary = {"method": "both", "spectral": summaries["spectral"], "cnn": summaries["cnn"],
                   "disagreement": comparison}
        for key in ("artlens_version", "px_per_cm", "window_cm", "step_cm", "windows", "plate_cm", "source"):
            summary[key] = summaries["cnn"][key]
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        all_files["summary_json"] = out / "summary.json"
        all_files["report_html"] = _write_both_report(out, plate, results, comparison)
    return CountOutputs(results["cnn"], summary, out, all_files, None)


CROSS_CHECK_TOLERANCE = {"window_threads_per_cm": 0.5, "window_relative": 0.05, "plate_threads_per_cm": 0.25,
                         "window_fraction": 0.1}
"""When two counters disagree: a window differs by more than max(0.5 threads/cm, 5 % of the spectral
density); a plate when the plate means differ by more than 0.25 threads/cm or more than 10 % of the
windows compared differ."""


def cross_check(spectral: ThreadCountResult, other: ThreadCountResult,
                tolerance: dict[str, float] | None = None) -> dict[str, Any]:
    """Where two counters on the same window grid disagree; marks ``check`` on both results' maps.

    Never averages the two: each keeps its own numbers, and the windows and plate where they part
    beyond ``tolerance`` (:data:`CROSS_CHECK_TOLERANCE`) are flagged, with a message that says so.
    Where a direction's plate is flagged, each result's 90 % plate interval is widened to cover the
    other's (``DirectionMaps.disputed``): neither count is trusted over the other.

    Returns:
        ``{"horizontal": {...}, "vertical": {...}, "tolerance": {...}, "plate_flagged": bool,
        "message": str | None}``; per direction the plate means of both (threads/cm), their
        difference, the windows compared and flagged, and ``plate_flagged``.
    """
    tol = dict(CROSS_CHECK_TOLERANCE, **(tolerance or {}))
    if spectral.horizontal.density.shape != other.horizontal.density.shape:
        raise InvalidParameterError("the two results do not share a window grid")
    out: dict[str, Any] = {"tolerance": tol, "reference": spectral.method, "checked": other.method}
    messages = []
    for d in DIRECTIONS:
        a, b = spectral.direction(d), other.direction(d)
        a.disputed = b.disputed = None
        own = {"a": spectral.plate_interval(d), "b": other.plate_interval(d)}
        diff = b.density - a.density
        ok = np.isfinite(diff)
        limit = np.maximum(tol["window_threads_per_cm"], tol["window_relative"] * np.abs(a.density))
        flagged = ok & (np.abs(diff) > limit)
        a.check, b.check = flagged, flagged.copy()
        ma, mb = a.stats()["threads_per_cm"]["mean"], b.stats()["threads_per_cm"]["mean"]
        plate_diff = None if ma is None or mb is None else round(mb - ma, 4)
        frac = float(flagged.sum() / ok.sum()) if ok.any() else 1.0
        plate_flagged = bool(plate_diff is None or abs(plate_diff) > tol["plate_threads_per_cm"]
                             or frac > tol["window_fraction"])
        out[d] = {"spectral_threads_per_cm": ma, f"{other.method}_threads_per_cm": mb,
                  "plate_difference": plate_diff, "windows_compared": int(ok.sum()),
                  "windows_flagged": int(flagged.sum()), "plate_flagged": plate_flagged}
        if plate_flagged:
            a.disputed = {"method": other.method, "interval_90": own["b"]}
            b.disputed = {"method": spectral.method, "interval_90": own["a"]}
            what = ("one method found no thread peak" if plate_diff is None
                    else f"{other.method} {mb:.2f} vs spectral {ma:.2f} threads/cm")
            messages.append(f"{d} threads: {what}, {int(flagged.sum())} of {int(ok.sum())} windows differ "
                            "beyond tolerance")
    out["plate_flagged"] = bool(messages)
    out["message"] = ("check here: the methods disagree — " + "; ".join(messages)
                      + ". Neither is averaged; look at the flagged windows in the maps.") if messages else None
    return out


def compare_results(a: ThreadCountResult, b: ThreadCountResult) -> dict[str, Any]:
    """Per-direction disagreement of two results on the same window grid, threads/cm."""
    if a.horizontal.density.shape != b.horizontal.density.shape:
        raise InvalidParameterError("the two results do not share a window grid")
    out: dict[str, Any] = {}
    for d in ("horizontal", "vertical"):
        diff = b.direction(d).density - a.direction(d).density
        ok = np.isfinite(diff)
        out[d] = {
            "windows_compared": int(ok.sum()),
            "mean_difference": round(float(diff[ok].mean()), 4) if ok.any() else None,
            "mean_abs_difference": round(float(np.abs(diff[ok]).mean()), 4) if ok.any() else None,
            "max_abs_difference": round(float(np.abs(diff[ok]).max()), 4) if ok.any() else None,
            "unit": "threads/cm (cnn - spectral)",
        }
    return out


def write_disagreement_csv(path: Path, a: ThreadCountResult, b: ThreadCountResult) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "col", "x_cm", "y_cm", "h_spectral", "h_cnn", "h_difference",
                    "v_spectral", "v_cnn", "v_difference"])
        for i, yc in enumerate(a.y_cm):
            for j, xc in enumerate(a.x_cm):
                vals = []
                for d in ("horizontal", "vertical"):
                    s, c = a.direction(d).density[i, j], b.direction(d).density[i, j]
                    vals += [_r(s), _r(c), _r(c - s)]
                w.writerow([i, j, round(float(xc), 4), round(float(yc), 4), *vals])
    return path


def _r(x: float) -> Any:
    return "" if not np.isfinite(x) else round(float(x), 4)


def _write_both_report(out: Path, plate: Plate, results: dict[str, ThreadCountResult],
                       comparison: dict[str, Any]) -> Path:
    from artlens.report import PlateSection, write_threads_report

    preview = plate.thumbnail(800)
    source = source_record(plate)
    sections = [
        PlateSection(name=f"{plate.path.name} — {name}", result=r, preview=preview, source=source,
                     figure_paths={k: str(v) for k, v in
                                   ((m, out / name / f"{m}.png") for m in
                                    ("density_horizontal", "density_vertical", "angle_horizontal",
                                     "angle_vertical")) if v.exists()})
        for name, r in results.items()
    ]
    notes = [comparison["message"]] if comparison.get("message") else []
    notes += [f"{d}: CNN minus spectral over {c['windows_compared']} windows: mean {c['mean_difference']}, "
             f"mean absolute {c['mean_abs_difference']}, largest {c['max_abs_difference']} threads/cm "
             "(per window in disagreement.csv)" for d, c in comparison.items() if d in DIRECTIONS]
    return write_threads_report(out, sections, title=f"Thread count — {plate.path.name} (spectral and CNN)",
                                parameters=results["spectral"].parameters, notes=notes)


def summary_line(summary: dict[str, Any]) -> str:
    """One human line per direction, e.g. ``horizontal  12.03 ± 0.21 threads/cm  angle 0.4°``."""
    lines = []
    for name in ("horizontal", "vertical"):
        s = summary[name]
        d, a = s["threads_per_cm"], s["angle_deg"]
        if d["mean"] is None:
            lines.append(f"{name:<10}  no thread peak found in the search band")
            continue
        angle = ("angle not estimated" if a["mean"] is None
                 else f"angle {a['mean']:+.2f} ± {a['std']:.2f}°")
        interval = s.get("interval_90")
        plate = f" (90 % interval {interval[0]:.2f}–{interval[1]:.2f})" if interval else ""
        corrected = s.get("harmonic_windows_corrected") or 0
        harmonic = f", {corrected} read at a harmonic and divided back" if corrected else ""
        lines.append(
            f"{name:<10}  {d['mean']:6.2f} ± {d['std']:.2f} threads/cm (median {d['median']:.2f}){plate}"
            f"   {angle}   windows {s['valid_windows']} (+{s['outlier_windows']} outliers{harmonic})"
        )
        alt = s.get("harmonic_alternative")
        if alt:
            lines.append(f"{'':<10}  check: {alt['windows']} windows found {alt['threads_per_cm']:.2f} threads/cm, "
                         f"the {alt['relation']} of this; the weave may be that density (look at the plate)")
        if few_windows_agree(s):
            lines.append(f"{'':<10}  check: only {s['valid_windows']} of {_read_windows(s)} windows agree on this "
                         "density; the rest read others (paint, a lining, a patch?): look at the plate")
    return "\n".join(lines)


FEW_WINDOWS = 0.4
"""A direction is marked "check here" when fewer than this share of the windows that found a peak agree with
the plate's density (the rest are outliers). Chosen on development draws (family B seeds 610 000 / 640 000,
family C seed 0; ``count_threads_spectral`` defaults): it marked all 4 misread directions of family B and 8
of its 316 right ones; on family C 20 of 49 misread directions and 61 of 595 right ones."""


def _read_windows(s: dict[str, Any]) -> int:
    return int(s.get("valid_windows", 0)) + int(s.get("outlier_windows", 0))


def few_windows_agree(s: dict[str, Any]) -> bool:
    """Whether a direction's summary rests on fewer than :data:`FEW_WINDOWS` of the windows that found a peak."""
    n = _read_windows(s)
    return s["threads_per_cm"]["mean"] is not None and n > 0 and s["valid_windows"] < FEW_WINDOWS * n


def few_windows_note(direction: str, s: dict[str, Any]) -> str:
    """The report's "check here" note for a direction where few windows agree (:func:`few_windows_agree`)."""
    return (f"Check here — {direction} threads: only {s['valid_windows']} of {_read_windows(s)} windows agree on "
            f"the {s['threads_per_cm']['mean']:.2f} threads/cm reported; the others read other densities or "
            "weak peaks (heavy paint, a lining canvas, a patch, brush marks), so the figure rests on a minority "
            "of the plate: count a few threads where the map is uniform to confirm it.")


def checks(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Reasons in a count's summary (one method's) to look at the plate again, other than a second reader's:
    ``("octave doubt", direction)`` for a ``harmonic_alternative``, ``("few windows agree", direction)``
    (:func:`few_windows_agree`)."""
    out = []
    for d in DIRECTIONS:
        if not isinstance(summary.get(d), dict):
            continue
        if summary[d].get("harmonic_alternative"):
            out.append(("octave doubt", d))
        if few_windows_agree(summary[d]):
            out.append(("few windows agree", d))
    return out


def check_notes(summary: dict[str, Any]) -> list[str]:
    """The report's "check here" notes for :func:`checks`."""
    return [octave_doubt(d, summary[d]["threads_per_cm"]["mean"], summary[d]["harmonic_alternative"])
            if kind == "octave doubt" else few_windows_note(d, summary[d]) for kind, d in checks(summary)]


def octave_doubt(direction: str, mean: float | None, alt: dict[str, Any]) -> str:
    """The report's "check here" note for a ``harmonic_alternative`` of the spectral counter."""
    chosen = "?" if mean is None else f"{mean:.2f}"
    return (f"Check here — {direction} threads: {alt['windows']} windows found {alt['threads_per_cm']:.2f} "
            f"threads/cm, the {alt['relation']} of the {chosen} threads/cm reported. Spots at the interstices "
            "or two-ply yarn can make a harmonic as strong as the threads' own frequency, so the windows "
            "cannot settle which is the weave: count a few threads on the plate to decide.")
