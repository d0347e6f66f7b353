"""Compare a painting's visible image with a second view of it and map where they differ.

:func:`compare_views` is the library function behind ``artlens beneath compare``:

1. open both files (:func:`artlens.io.bands.open_modality`); a colour file given as the other view is
   converted to its luminance with a notice;
2. register the other view onto the visible one (:func:`artlens.beneath.registration.register`,
   skipped with a notice when they are already aligned);
3. normalise the other view (robust percentiles; inverted for ``polarity="bright"``, e.g. X-rays of
   lead white); for ``gat`` and ``gcn``, cut both views into the same superpixels and build one graph
   per view (:func:`artlens.beneath.graphs.build_graphs`);
4. run the method: ``"pixel"`` (default) — per-pixel, multi-scale evidence from a robust colour
   look-up table fitted on the image and on its tiles (:func:`artlens.beneath.pixel.pixel_evidence`),
   training-free, no graphs; ``"gat"`` / ``"gcn"`` — a Siamese graph encoder (the shipped default
   model or ``model=``), whose *embedding distance* is the heatmap, with the GAT's *attention* map
   beside it; ``"residual"`` — the training-free robust-regression residual. The pixel and residual
   maps are written for every method;
5. cross-check: the method's map is compared, cell by cell and by rank, with a second map (``pixel``
   with ``residual``, the others with ``pixel``); cells where one points and the other does not are
   flagged ("check here"), never averaged (:mod:`artlens.beneath.disagreement`);
6. write the raw maps (``.npy``, float32, the visible image's height and width, higher = more
   likely hidden or different content), overlay figures, ``summary.json``, ``report.html``, and
   record the analysis in the catalog.

Outside the part of the visible image that the registered other view covers, the maps hold their
smallest value over the covered part (``valid.npy`` marks the covered pixels).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artlens.errors import InvalidImageError, InvalidParameterError

__all__ = ["CROSS_CHECK", "DEFAULT_METHOD", "DEFAULT_MODEL", "METHODS", "METHOD_DESCRIPTIONS", "PRIMARY_MAP",
           "LoadedPair", "compare_views", "load_beneath_model", "load_pair"]

METHODS = ("pixel", "gat", "gcn", "residual")
"""Methods of :func:`compare_views`; the first is the default."""
DEFAULT_METHOD = "pixel"
METHOD_DESCRIPTIONS = {
    "pixel": "pixel: per-pixel, multi-scale evidence, training-free. The other view is predicted from the visible "
             "colours by a smooth robust look-up table (Huber-weighted, trilinear on a 12³ colour lattice) fitted on "
             "the whole image together with a smooth lighting field (a quadratic of the pixel position), and by "
             "tables refitted on overlapping tiles (about a third of the image side); the observed view is aligned "
             "on the prediction to a sub-pixel (phase correlation); a pixel counts as explained when a neighbour "
             "within ±1 px is predicted as dark; the residual is smoothed at 0, 0.7 and 1.4 px and turned into "
             "robust z-scores; the map is the largest of them (global or local), with pixels beside a stronger "
             "line ranked below it. No superpixels: 1-2 px lines keep their width.",
    "gat": "gat: a Siamese graph-attention encoder (trained on synthetic scenes) embeds superpixel graphs of both "
           "views; the map is each region's embedding distance, constant within a region (about 32 px).",
    "gcn": "gcn: a Siamese graph-convolution encoder (trained on synthetic scenes) embeds superpixel graphs of both "
           "views; the map is each region's embedding distance, constant within a region (about 32 px).",
    "residual": "residual: the other view predicted from the visible colours (median of each of 32 colour clusters) "
                "minus the observed other view, per pixel; training-free.",
}
"""One paragraph per method for summaries and reports."""
PRIMARY_MAP = {"pixel": "pixel", "gat": "embedding_distance", "gcn": "embedding_distance", "residual": "residual"}
"""The heatmap each method reports (``summary["heatmap"]``)."""
CROSS_CHECK = {"pixel": "residual", "gat": "pixel", "gcn": "pixel", "residual": "pixel"}
"""The second map each method's map is compared with (:func:`artlens.beneath.disagreement.cross_check`)."""
DEFAULT_MODEL = {"gat": "beneath_default", "gcn": "beneath_gcn_default"}
"""Tags of the models shipped for each learned method (folders in ``artlens/beneath/weights/``; the tags
``beneath_gat.beneath_default`` and ``beneath_gcn.beneath_gcn_default`` of :mod:`artlens.models.pretrained`)."""
MAX_PIXELS = 64_000_000
OTHER_MODALITIES = ("ir", "xray", "band", "gray")


def load_beneath_model(model: str | os.PathLike[str] | None = None, method: str = "gat") -> tuple[Any, dict[str, Any]]:
    """A Siamese graph model and its config: ``model`` (a checkpoint folder or shipped weights by tag) or
    the one shipped for ``method`` (:data:`DEFAULT_MODEL`).

    Raises:
        InputNotFoundError: no such checkpoint, or no shipped model.
        InvalidParameterError: the checkpoint is not a ``beneath`` model, or not of ``method``'s kind.
    """
    from artlens.models.checkpoint import load_checkpoint
    from artlens.models.pretrained import resolve_model_folder

    path = resolve_model_folder(DEFAULT_MODEL[method] if model is None else model, what="beneath model",
                                family="beneath")
    net, config = load_checkpoint(path)
    if not str(config["model"]).startswith("beneath_"):
        raise InvalidParameterError(f"{path}: a {config['model']!r} model, not a beneath model")
    if getattr(net, "conv_kind", method) != method:
        raise InvalidParameterError(f"{path}: a {net.conv_kind.upper()} model; use method {net.conv_kind!r}",
                                    param="method")
    config["path"] = str(Path(path).resolve())
    return net, config


@dataclass
class LoadedPair:
    """Two views of a painting on the visible image's grid.

    Attributes:
        visible: ``(H, W, 3)`` float32 colours in ``[0, 1]``.
        other: ``(H, W)`` float32 other view registered onto the visible grid (file samples scaled to
            ``[0, 1]``; 0 outside ``valid``).
        valid: ``(H, W)`` bool pixels covered by the other view.
        registration: the :class:`~artlens.beneath.registration.RegistrationResult`.
        sources: per view ``{"path", "sha256", "modality", "bit_depth", "shape", "notes"}``.
        notes: what was done (conversions, registration), in order.
    """

    visible: np.ndarray
    other: np.ndarray
    valid: np.ndarray
    registration: Any
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def load_pair(visible: str | os.PathLike[str], other: str | os.PathLike[str], *, registration: str = "auto",
              nonrigid: bool = False, max_residual_px: float = 2.0, other_modality: str = "ir") -> LoadedPair:
    """Open a visible colour image and a second view of the painting, and register the second onto the first.

    Args:
        visible: 8-bit (or 16-bit) RGB file.
        other: single-band file (8/16-bit PNG or TIFF); a colour file is converted to luminance with a notice.
        registration: method of :func:`~artlens.beneath.registration.register` (``"auto"``, ``"feature"``,
            ``"intensity"``, ``"none"``).
        nonrigid: add a TV-L1 optical-flow step after the global transform.
        max_residual_px: largest acceptable registration residual (visible pixels).
        other_modality: recorded modality of the other view (:data:`OTHER_MODALITIES`).

    Raises:
        InputNotFoundError, UnreadableInputError: missing or unreadable files.
        InvalidImageError: a grey visible image, images too small or too large.
        InvalidParameterError: a failed registration (with advice).
    """
    from artlens.beneath.registration import register
    from artlens.io.bands import Band, BandStack, open_modality, to_single_band
    from artlens.provenance import sha256_file

    if other_modality not in OTHER_MODALITIES:
        raise InvalidParameterError(
            f"unknown modality {other_modality!r}; expected one of {', '.join(OTHER_MODALITIES)}")
    vis = open_modality(visible, modality="rgb")
    assert isinstance(vis, BandStack)
    h, w = vis.shape
    if h * w > MAX_PIXELS:
        raise InvalidImageError(f"{Path(visible).name} has {h * w / 1e6:.0f} Mpx; beneath compares images of at most "
                                f"{MAX_PIXELS / 1e6:.0f} Mpx: reduce or crop it")
    oth = open_modality(other, modality=other_modality if other_modality != "gray" else None)
    notes: list[str] = []
    if isinstance(oth, BandStack):
        oth = to_single_band(oth, modality=other_modality, source=str(other))
    assert isinstance(oth, Band)
    notes += [f"other view: {n}" for n in oth.notes]
    rgb = np.moveaxis(vis.as_array(), 0, -1)
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    result = register(luma, oth.data, method=registration, nonrigid=nonrigid, max_residual_px=max_residual_px)
    valid = result.valid if result.valid is not None else np.ones((h, w), bool)
    notes += [f"registration: {n}" for n in result.notes]
    other_img = np.clip(np.where(valid, result.warped, 0.0), 0.0, 1.0).astype(np.float32)
    sources = {
        "visible": {"path": str(Path(visible).resolve()), "sha256": sha256_file(visible), "modality": "rgb",
                    "bit_depth": vis[0].bit_depth, "shape": [h, w], "notes": list(vis[0].notes)},
        "other": {"path": str(Path(other).resolve()), "sha256": sha256_file(other), "modality": oth.modality,
                  "bit_depth": oth.bit_depth, "shape": list(oth.shape), "notes": list(oth.notes)},
    }
    return LoadedPair(rgb.astype(np.float32), other_img, valid.astype(bool), result, sources, notes)


def _fill_invalid(heat: np.ndarray, valid: np.ndarray) -> np.ndarray:
    heat = np.asarray(heat, dtype=np.float32)
    if valid.all():
        return heat
    return np.where(valid, heat, float(heat[valid].min()) if valid.any() else 0.0).astype(np.float32)


def compare_views(
    visible: str | os.PathLike[str],
    other: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    method: str = DEFAULT_METHOD,
    model: str | os.PathLike[str] | None = None,
    segmentation: str | None = None,
    region_px: float | None = None,
    polarity: str | None = None,
    other_modality: str = "ir",
    registration: str = "auto",
    nonrigid: bool = False,
    max_residual_px: float = 2.0,
    report: bool = True,
    catalog: str | os.PathLike[str] | None = None,
    use_catalog: bool = True,
    seed: int = 0,
    loaded: tuple[Any, dict[str, Any]] | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Map where ``other`` (IR, a band, an X-ray) differs from the ``visible`` image; write the results.

    Args:
        visible: RGB image file (8-bit usually).
        other: single-band image file (8/16-bit PNG or TIFF), any size (it is registered).
        out_dir: output folder (created).
        method: ``"pixel"`` (default), ``"gat"``, ``"gcn"`` or ``"residual"`` (:data:`METHODS`).
        model: checkpoint folder of a Siamese graph model (default: the one shipped for ``method``); only
            for ``"gat"`` and ``"gcn"``.
        segmentation: what SLIC sees (``"stacked"``, ``"visible"``, ``"other"``); default: the model's.
        region_px: mean superpixel area, px; default: the model's (32).
        polarity: ``"dark"`` (hidden content darker in the other view: IR) or ``"bright"`` (X-ray); default
            ``"bright"`` for ``other_modality="xray"``, else ``"dark"``.
        other_modality: recorded modality of ``other``.
        registration: registration method (``"auto"``, ``"feature"``, ``"intensity"``, ``"none"``).
        nonrigid: add a non-rigid optical-flow step to the registration.
        max_residual_px: largest acceptable registration residual, px.
        report: write ``report.html``.
        catalog: catalog database (default ``$ARTLENS_CATALOG`` or ``./artlens.db``).
        use_catalog: record the images and the analysis in the catalog.
        seed: seed of the regressions' pixel samples.
        loaded: ``(net, config)`` from :func:`load_beneath_model` for ``method`` (a batch loads it once per
            worker); default: loaded here from ``model``.
        device: where a graph model runs (``auto``, ``cpu``, ``cuda``, ``cuda:N``:
            :func:`artlens.devices.resolve_device`; CUDA without a GPU is refused before anything is read); the
            other methods run on numpy, on the CPU.

    Returns:
        The summary (also written to ``out_dir/summary.json``): ``heatmap`` (path of the method's ``.npy``
        map), ``method``, ``method_description`` (:data:`METHOD_DESCRIPTIONS`), ``pixel`` (the pixel map's
        parameters, residual shift, lighting range and tiles: computed for every method), ``disagreement``
        (the cells where the method's map and its cross-check :data:`CROSS_CHECK` disagree, see
        :func:`artlens.beneath.disagreement.cross_check`, and its figure), ``registration``
        (:meth:`RegistrationResult.to_dict`), ``heatmaps`` (every map's ``npy``/``png`` and meaning),
        ``graph``, ``model``, ``timings_s``, ``files``, ``notes``, ``provenance`` and, when recorded,
        ``catalog_analysis_id``.

    Raises:
        InvalidParameterError: unknown method/segmentation/polarity, a failed registration.
        InputNotFoundError, UnreadableInputError, InvalidImageError: bad input files.
    """
    from artlens.beneath.disagreement import cross_check, save_disagreement_figure
    from artlens.beneath.graphs import POLARITIES, SEGMENTATIONS, build_graphs, normalise_other
    from artlens.beneath.heatmaps import HEATMAPS, model_heatmaps, residual_map, save_heatmap
    from artlens.beneath.pixel import pixel_evidence
    from artlens.provenance import provenance

    if method not in METHODS:
        raise InvalidParameterError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if model is not None and method not in ("gat", "gcn"):
        raise InvalidParameterError(f"model applies to the gat and gcn methods, not to {method!r}", param="model")
    polarity = polarity or ("bright" if other_modality == "xray" else "dark")
    if polarity not in POLARITIES:
        raise InvalidParameterError(f"unknown polarity {polarity!r}; expected one of {', '.join(POLARITIES)}")
    if segmentation is not None and segmentation not in SEGMENTATIONS:
        raise InvalidParameterError(
            f"unknown segmentation {segmentation!r}; expected one of {', '.join(SEGMENTATIONS)}")
    from artlens.devices import check_device_spec, resolve_device

    # only the graph models use torch: the other methods check the spec (and refuse CUDA without a GPU)
    torch_device = resolve_device(device) if method in ("gat", "gcn") or "cuda" in str(device) else \
        check_device_spec(device)
    timings: dict[str, float] = {}
    net, mconfig = (None, None)
    t = time.perf_counter()
    if method in ("gat", "gcn"):  # fail on a missing model before the slow steps
        net, mconfig = loaded if loaded is not None else load_beneath_model(model, method)
        net = net.to(torch_device)
    timings["model_load"] = time.perf_counter() - t

    t = time.perf_counter()
    pair = load_pair(visible, other, registration=registration, nonrigid=nonrigid, max_residual_px=max_residual_px,
                     other_modality=other_modality)
    timings["load_and_registration"] = time.perf_counter() - t
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    oth = normalise_other(pair.other, polarity=polarity, valid=pair.valid)
    graph_cfg = (mconfig or {}).get("graphs", {})
    seg = segmentation or graph_cfg.get("segmentation", "stacked")
    rpx = float(region_px if region_px is not None else graph_cfg.get("region_px", 32.0))
    compactness = float(graph_cfg.get("compactness", 0.2))

    maps: dict[str, np.ndarray] = {}
    graph_info: dict[str, Any] | None = None
    if net is not None:
        t = time.perf_counter()
        graphs = build_graphs(pair.visible, oth, segmentation=seg, region_px=rpx, compactness=compactness,
                              polarity=polarity, valid=pair.valid, other_is_normalised=True, seed=seed)
        timings["graphs"] = time.perf_counter() - t
        t = time.perf_counter()
        for name, values in model_heatmaps(net, graphs).items():
            if name in HEATMAPS:
                maps[name] = graphs.paint(values)
        timings["inference"] = time.perf_counter() - t
        graph_info = {**graphs.parameters, "mean_region_px": float(graphs.areas.mean())}
    # the pixel map is computed for every method: it is the default's map and the others' cross-check
    t = time.perf_counter()
    maps["pixel"], pixel_info = pixel_evidence(pair.visible, oth, valid=pair.valid, seed=seed)
    timings["pixel"] = time.perf_counter() - t
    t = time.perf_counter()
    maps["residual"] = residual_map(pair.visible, oth, valid=pair.valid, seed=seed)
    timings["residual"] = time.perf_counter() - t
    primary = PRIMARY_MAP[method]
    check = CROSS_CHECK[method]
    t = time.perf_counter()
    disagreement = cross_check(maps[primary], maps[check], names=(primary, check), valid=pair.valid)
    timings["cross_check"] = time.perf_counter() - t

    t = time.perf_counter()
    preview = (pair.visible * 255).round().astype(np.uint8)
    written: dict[str, dict[str, str]] = {}
    order = [primary, *(k for k in maps if k != primary)]
    for name in order:
        saved = save_heatmap(out, name, _fill_invalid(maps[name], pair.valid), preview,
                             model=method if name != "residual" else "")
        written[name] = {"npy": str(saved["npy"].resolve()), "png": str(saved["png"].resolve()),
                         "meaning": HEATMAPS[name]["meaning"], "label": HEATMAPS[name]["label"]}
    disagreement["figure"] = str(save_disagreement_figure(preview, disagreement, out / "disagreement.png").resolve())
    np.save(out / "valid.npy", pair.valid)
    other_png = out / "other_registered.png"
    from PIL import Image

    Image.fromarray((oth * 255).round().astype(np.uint8)).save(other_png)
    timings["figures"] = time.perf_counter() - t

    parameters = {"method": method, "polarity": polarity, "other_modality": other_modality,
                  "registration": registration, "nonrigid": nonrigid, "max_residual_px": max_residual_px,
                  "seed": seed}
    if net is not None and mconfig is not None:  # loaded together
        parameters.update(segmentation=seg, region_px=rpx, compactness=compactness, model=mconfig["model"],
                          model_path=mconfig["path"])
    parameters["pixel"] = pixel_info["params"]
    checksum = mconfig.get("sha256") if mconfig else None
    model_info = None if mconfig is None else {
        "name": mconfig["model"], "path": mconfig["path"], "sha256": checksum, "kwargs": mconfig.get("kwargs", {}),
        "training": (mconfig.get("training") or {}).get("sources"), "metrics": mconfig.get("metrics")}
    summary: dict[str, Any] = {
        "heatmap": written[primary]["npy"],
        "heatmap_name": primary,
        "method": method,
        "method_description": METHOD_DESCRIPTIONS[method],
        "pixel": pixel_info,
        "disagreement": disagreement,
        "registration": pair.registration.to_dict(),
        "heatmaps": written,
        "shape": list(pair.visible.shape[:2]),
        "valid_fraction": float(pair.valid.mean()),
        "graph": graph_info,
        "model": model_info,
        "sources": pair.sources,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "notes": pair.notes,
        "provenance": provenance(f"beneath.{method}", parameters, checksum),
    }
    files = {"summary_json": str((out / "summary.json").resolve()), "valid_npy": str((out / "valid.npy").resolve()),
             "other_registered_png": str(other_png.resolve())}
    if report:
        from artlens.report.beneath import write_beneath_report

        files["report_html"] = str(write_beneath_report(out / "report.html", summary, preview, other_png).resolve())
    summary["files"] = files
    if use_catalog:
        summary["catalog_analysis_id"] = _record(catalog, summary, parameters, checksum)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def record_comparison(cat: Any, summary: dict[str, Any], item_key: str | None = None) -> int:
    """Record a comparison's two images and its analysis in an open catalog (a batch's driver does,
    with the pair's ``item_key`` in the analysis's summary); returns the analysis id."""
    prov = summary["provenance"]
    return _record(cat, summary, prov["parameters"], prov["model_checksum"], item_key=item_key)


def _record(catalog: Any, summary: dict[str, Any], parameters: dict[str, Any],
            checksum: str | None, item_key: str | None = None) -> int:
    """Record both images and the analysis in the catalog (a location or an open
    :class:`~artlens.catalog.Catalog`); returns the analysis id."""
    import contextlib

    from artlens import __version__
    from artlens.catalog import Catalog

    src = summary["sources"]
    with contextlib.nullcontext(catalog) if isinstance(catalog, Catalog) else Catalog(catalog) as cat:
        ids = {}
        for view in ("visible", "other"):
            s = src[view]
            ids[view] = cat.add_image(s["path"], s["sha256"], s["modality"], width_px=s["shape"][1],
                                      height_px=s["shape"][0])
        outputs = [v for files in summary["heatmaps"].values() for v in (files["npy"], files["png"])]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cat.add_analysis(
                ids["visible"], method=f"beneath.{summary['method']}",
                parameters={**parameters, "other_image_id": ids["other"], "other_path": src["other"]["path"]},
                artlens_version=__version__,
                summary={"heatmap": summary["heatmap"], "heatmap_name": summary["heatmap_name"],
                         "registration": {k: summary["registration"][k] for k in
                                          ("method_used", "residual_px", "scale", "rotation_deg", "skipped")},
                         "valid_fraction": summary["valid_fraction"],
                         "disagreement": {k: summary["disagreement"][k] for k in
                                          ("methods", "cells_compared", "n_flagged")},
                         **({"item_key": item_key} if item_key else {})},
                outputs=outputs, model_checksum=checksum)
