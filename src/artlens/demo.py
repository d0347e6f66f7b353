"""``artlens demo``: the main job on bundled synthetic data, no external files needed.

Three synthetic canvas X-ray plates are generated — two cut from one simulated roll of fabric at
different places, one from another roll of similar density — written as TIFFs with resolution
tags, counted with the spectral thread counter, recorded in the catalog, and gathered in one
HTML report that puts each measured density next to the generator's ground truth.

Unless ``plates_only``, the demo also matches the three plates against each other (``artlens canvas
match``: similarity matrix and roll clusters) and compares a simulated hidden-layer scene's visible image
with its infrared view (``artlens beneath compare``), so that ``artlens serve`` on the demo catalog shows
every part of the mission.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from artlens.canvas.threads.count import count_threads
from artlens.canvas.threads.opinion import sample_text, second_opinion
from artlens.canvas.threads.preprocess import plate_source
from artlens.canvas.threads.run import prepare_out_dir, record_in_catalog, source_record, write_count_outputs
from artlens.canvas.threads.spectral import SpectralParams
from artlens.io.image import open_plate
from artlens.synth import Roll, write_plate_tiff


@dataclass(frozen=True)
class DemoPlate:
    """One plate of the demo: which roll, where it is cut, and what covers it."""

    name: str
    roll: str
    x_offset_cm: float
    y_offset_cm: float
    nuisances: dict[str, Any]


ROLLS: dict[str, dict[str, Any]] = {  # Roll keyword arguments
    # two rolls whose mean densities differ by 0.3 threads/cm or less: the hard case for matching
    "roll A": {"horizontal_density": 13.4, "vertical_density": 16.2, "seed": 11},
    # roll B is woven from another yarn (slubbier, thicker, less even), as rolls from different looms are;
    # two rolls of the same yarn and density cannot be told apart by their yarn (docs/canvas-matching.md)
    "roll B": {"horizontal_density": 13.7, "vertical_density": 16.0, "seed": 29, "slub_rate": 0.4,
               "thickness_variation": 0.2, "spacing_jitter": 0.06, "thread_width": 1.2},
}
PLATES = (
    DemoPlate("plate-1 (roll A)", "roll A", 10.0, 20.0,
              {"paint": 0.5, "craquelure": 0.4, "horizontal_angle_deg": 0.8, "vertical_angle_deg": 0.8}),
    DemoPlate("plate-2 (roll A)", "roll A", 14.0, 60.0,
              {"paint": 0.3, "lead_white_strokes": 3, "cusping_amplitude": 0.12, "cusping_edge": "left",
               "horizontal_angle_deg": -1.2, "vertical_angle_deg": -1.2}),
    DemoPlate("plate-3 (roll B)", "roll B", 12.0, 30.0,
              {"paint": 0.4, "craquelure": 0.3, "holes": 0.05, "horizontal_angle_deg": 0.3,
               "vertical_angle_deg": 0.3}),
)
SIZE_CM = (5.0, 6.0)  # height, width
PX_PER_CM = 200.0
HIDDEN_SIZE = (256, 256)  # the hidden-layer scene, px


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    catalog: str | os.PathLike[str] | None = None,
    use_catalog: bool = True,
    params: SpectralParams | None = None,
    size_cm: tuple[float, float] = SIZE_CM,
    progress: Callable[[str], None] | None = None,
    plates_only: bool = False,
) -> dict[str, Any]:
    """Generate, count and report the demo plates; then (unless ``plates_only``) match them and compare a
    hidden-layer scene (:func:`run_demo_extras`).

    Returns:
        ``{"report": path, "plates": [{"name", "plate", "summary", "truth", "error"}...]}`` where
        ``error`` is measured minus true mean density per direction, threads/cm; plus ``"match"`` and
        ``"beneath"`` (their summaries' paths) unless ``plates_only``.
    """
    from artlens.report import PlateSection, write_threads_report

    out = prepare_out_dir(out_dir)
    params = params or SpectralParams()
    rolls = {name: Roll(length_cm=100.0, width_cm=40.0, **spec) for name, spec in ROLLS.items()}
    sections = []
    flagged: list[str] = []
    plates_out: list[dict[str, Any]] = []
    for i, spec in enumerate(PLATES):
        if progress:
            progress(f"generating and counting {spec.name}")
        synthetic = rolls[spec.roll].cut(spec.x_offset_cm, spec.y_offset_cm, size_cm[0], size_cm[1],
                                         seed=100 + i, px_per_cm=PX_PER_CM, **spec.nuisances)
        folder = out / f"plate-{i + 1}"
        folder.mkdir(exist_ok=True)
        tif = write_plate_tiff(folder / f"plate-{i + 1}.tif", synthetic)
        truth = {k: round(float(v), 4) for k, v in synthetic.mean_truth().items()}
        truth_dens = {"horizontal": truth["horizontal_density"], "vertical": truth["vertical_density"]}
        with open_plate(tif, require_resolution=True) as plate:
            result = count_threads(plate, "spectral", params)
            opinion = second_opinion(plate_source(plate), result)  # as `artlens threads count` does
            if opinion["message"]:
                flagged.append(f"{spec.name}: {opinion['message']}")
            summary, files = write_count_outputs(folder, result, plate, name=spec.name, truth=truth_dens,
                                                 opinion=opinion)
            if use_catalog:
                record_in_catalog(catalog, plate, result, summary, files)
            preview = plate.thumbnail(800)
            source = source_record(plate) | {"roll": spec.roll,
                                             "cut_at_cm": [spec.x_offset_cm, spec.y_offset_cm]}
        sections.append(PlateSection(
            name=spec.name, result=result, preview=preview, source=source, truth=truth_dens,
            figure_paths={k: str(v) for k, v in files.items() if k.startswith(("density_", "angle_"))},
        ))
        error = {
            d: (None if summary[d]["threads_per_cm"]["mean"] is None
                else round(summary[d]["threads_per_cm"]["mean"] - truth_dens[d], 4))
            for d in ("horizontal", "vertical")
        }
        plates_out.append({"name": spec.name, "plate": str(tif), "summary": str(folder / "summary.json"),
                           "truth": truth_dens, "measured": {d: summary[d]["threads_per_cm"]["mean"]
                                                              for d in ("horizontal", "vertical")},
                           "error": error})

    notes = [
        "Synthetic data made by artlens.synth: plates 1 and 2 are cut from the same simulated roll "
        "(roll A) at different places, plate 3 from another roll (roll B) whose mean densities differ "
        "by 0.3 threads/cm or less, woven from another yarn (slubbier, thicker, less even). Ground truth "
        "comes from the generator.",
        "Per-plate folders hold the TIFF (with resolution tags), summary.json, windows.csv and the maps; "
        "run 'artlens threads count plate-1/plate-1.tif --out DIR' to count one again.",
    ]
    report = write_threads_report(out, sections, title="artlens demo — thread counting on synthetic canvases",
                                  parameters=sections[0].result.parameters, notes=flagged + notes,
                                  second_opinion=sample_text(opinion))
    manifest: dict[str, Any] = {"report": str(report), "plates": plates_out}
    if not plates_only:
        manifest |= run_demo_extras(out, [p["plate"] for p in plates_out], catalog=catalog, use_catalog=use_catalog,
                                    progress=progress)
    (out / "demo.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def run_demo_extras(out: Any, plates: list[str], *, catalog: str | os.PathLike[str] | None = None,
                    use_catalog: bool = True, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Match the demo plates (``artlens canvas match``) and compare a simulated hidden-layer scene
    (``artlens beneath compare``); both recorded in the catalog. Returns the manifest entries."""
    import warnings

    from PIL import Image

    from artlens.beneath.compare import compare_views
    from artlens.canvas.collection import CanvasComparer, match_collection
    from artlens.canvas.fabric import load_fabric_model
    from artlens.synth.hidden import builtin_pigments, make_hidden_scene

    if progress:
        progress("matching the plates (same roll or not)")
    model = load_fabric_model()  # the shipped default, DEFAULT_FABRIC_MODEL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        match = match_collection(plates, out / "match", CanvasComparer(model, n_permutations=199, seed=0),
                                 catalog=catalog, use_catalog=use_catalog)
    if progress:
        progress("comparing a hidden-layer scene's visible and infrared views")
    scene = make_hidden_scene(HIDDEN_SIZE, kind="mixed", seed=5, pigments=builtin_pigments())
    folder = out / "hidden-layer"
    folder.mkdir(exist_ok=True)
    Image.fromarray(scene.visible_rgb).save(folder / "visible.png")
    Image.fromarray(scene.ir).save(folder / "infrared.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        beneath = compare_views(folder / "visible.png", folder / "infrared.png", folder / "compare",
                                other_modality="ir", catalog=catalog, use_catalog=use_catalog)
    return {"match": match["files"]["clusters_json"], "clusters": match["clusters"],
            "singletons": match["singletons"],
            "beneath": str(folder / "compare" / "summary.json"), "beneath_heatmap": beneath["heatmap"]}

