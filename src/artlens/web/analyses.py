"""The analyses the web app runs as jobs: thin adapters over the library functions the CLI calls.

Each kind has a ``check`` (run when the job is posted: the images exist, the parameters are known and in
range; raises :class:`~artlens.errors.InvalidParameterError` with a one-line message) and a ``run`` (in a
worker thread: calls the library, writes into the job's folder, records the analysis in the catalog, and
returns the job's JSON result). Progress is reported through :meth:`JobContext.progress`, which raises
:class:`JobCancelled` once a cancel was requested.
"""

from __future__ import annotations

import csv
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from artlens.errors import InputNotFoundError, InvalidParameterError


class JobCancelled(Exception):
    """Raised inside a job when the user asked to cancel it."""


@dataclass
class JobContext:
    """What a running job may use: its catalog (opened in this worker thread), folders and progress."""

    job: dict[str, Any]
    catalog: Any
    catalog_path: Path | str
    out_dir: Path
    report: Callable[[float, str | None], bool]

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress 0..1; raises :class:`JobCancelled` when a cancel was requested."""
        if not self.report(fraction, message):
            raise JobCancelled()

    def image(self, image_id: int) -> dict[str, Any]:
        row = self.catalog.get_image(int(image_id))
        if row is None:
            raise InputNotFoundError(f"image {image_id} is no longer in the catalog")
        if not Path(row["path"]).is_file():
            raise InputNotFoundError(f"image {image_id}: its file {Path(row['path']).name} is missing")
        return row


# --- parameter checks --------------------------------------------------------------------------------------


@overload
def _number(params: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float: ...
@overload
def _number(params: dict[str, Any], key: str, default: float | None, lo: float, hi: float) -> float | None: ...
def _number(params: dict[str, Any], key: str, default: float | None, lo: float, hi: float) -> float | None:
    value = params.get(key, default)
    if value is None or value == "":
        return default
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{key} must be a number, not {str(value)[:40]!r}") from None
    if not lo <= value <= hi:
        raise InvalidParameterError(f"{key} must lie between {lo:g} and {hi:g}, got {value:g}")
    return value


def _choice(params: dict[str, Any], key: str, default: str, options: tuple[str, ...]) -> str:
    value = str(params.get(key) or default)
    if value not in options:
        raise InvalidParameterError(f"{key} must be one of {', '.join(options)}, not {value[:40]!r}")
    return value


def _image_id(cat: Any, value: Any, what: str) -> int:
    try:
        image_id = int(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{what} must be an image id, not {str(value)[:40]!r}") from None
    if cat.get_image(image_id) is None:
        raise InvalidParameterError(f"{what}: there is no image {image_id} in the catalog")
    return image_id


def _only(params: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidParameterError(f"unknown parameter(s): {', '.join(unknown)} (known: {', '.join(sorted(allowed))})")


# --- threads.count -----------------------------------------------------------------------------------------


def check_threads(cat: Any, image: Any, params: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    _only(params, {"px_per_cm", "window_cm", "step_cm", "method"})
    image_id = _image_id(cat, image, "image")
    row = cat.get_image(image_id)
    ppc = _number(params, "px_per_cm", row.get("px_per_cm"), 1e-3, 1e6)
    if ppc is None:
        raise InvalidParameterError(
            f"image {image_id} has no resolution: give px_per_cm (pixels per centimetre, e.g. 200 for 508 dpi)")
    from artlens.canvas.threads.grid import DEFAULT_STEP_CM, DEFAULT_WINDOW_CM

    out = {"px_per_cm": ppc, "window_cm": _number(params, "window_cm", DEFAULT_WINDOW_CM, 0.1, 20.0),
           "step_cm": _number(params, "step_cm", DEFAULT_STEP_CM, 0.05, 20.0),
           "method": _choice(params, "method", "spectral", ("spectral", "cnn"))}
    return image_id, out


def run_threads(ctx: JobContext) -> tuple[dict[str, Any], int | None]:
    """``artlens threads count``: :func:`artlens.canvas.threads.run.count_plate_file`."""
    from artlens.canvas.threads.cnn import CnnParams
    from artlens.canvas.threads.run import count_plate_file
    from artlens.canvas.threads.spectral import SpectralParams

    p = ctx.job["params"]
    row = ctx.image(ctx.job["image_id"])
    params = SpectralParams(window_cm=p["window_cm"], step_cm=p["step_cm"])
    cnn = CnnParams(window_cm=p["window_cm"], step_cm=p["step_cm"]) if p["method"] == "cnn" else None
    ctx.progress(0.0, "counting threads")
    outputs = count_plate_file(row["path"], ctx.out_dir, params, method=p["method"], cnn=cnn, px_per_cm=p["px_per_cm"],
                               catalog=ctx.catalog_path,
                               progress=lambda done, total: ctx.progress(0.95 * done / max(total, 1)))
    return dict(outputs.summary), outputs.analysis_id


# --- beneath.compare ---------------------------------------------------------------------------------------


def check_beneath(cat: Any, image: Any, params: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    from artlens.beneath.compare import DEFAULT_METHOD, METHODS

    _only(params, {"other", "method", "modality"})
    return _image_id(cat, image, "image (the visible one)"), {
        "other": _image_id(cat, params.get("other"), "other (the IR / X-ray image)"),
        "method": _choice(params, "method", DEFAULT_METHOD, tuple(METHODS)),
        "modality": _choice(params, "modality", "ir", ("ir", "xray", "band", "gray"))}


def run_beneath(ctx: JobContext) -> tuple[dict[str, Any], int | None]:
    """``artlens beneath compare``: :func:`artlens.beneath.compare.compare_views`."""
    from artlens.beneath.compare import compare_views

    p = ctx.job["params"]
    visible, other = ctx.image(ctx.job["image_id"]), ctx.image(p["other"])
    ctx.progress(0.05, "registering and comparing the two views")
    s = compare_views(visible["path"], other["path"], ctx.out_dir, method=p["method"], other_modality=p["modality"],
                      catalog=ctx.catalog_path)
    return s, s.get("catalog_analysis_id")


# --- verify ------------------------------------------------------------------------------------------------


def check_pair(cat: Any, image: Any, params: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    _only(params, {"other"})
    a = _image_id(cat, image, "image")
    b = _image_id(cat, params.get("other"), "other")
    if a == b:
        raise InvalidParameterError("choose two different images")
    return a, {"other": b}


def run_verify(ctx: JobContext) -> tuple[dict[str, Any], int | None]:
    """``artlens verify A B --heatmap --report``: :func:`artlens.paintings.verify.verify_pairs`, Grad-CAM,
    and :func:`artlens.report.verification.write_verification_report`."""
    from artlens import __version__
    from artlens.errors import UnreadableInputError
    from artlens.paintings.verify import load_verifier, verify_pairs
    from artlens.report.verification import write_verification_report

    a, b = ctx.image(ctx.job["image_id"]), ctx.image(ctx.job["params"]["other"])
    ctx.progress(0.05, "loading the verifier")
    verifier = load_verifier(None)
    ctx.progress(0.3, "scoring the pair")
    row = verify_pairs(verifier, [(a["path"], b["path"])])[0]
    if "error" in row:
        raise UnreadableInputError(row["error"])
    record = verifier.record()
    row["verifier"] = record
    ctx.progress(0.6, "Grad-CAM heatmaps")
    heatmaps = pair_heatmaps(ctx, verifier, a, b)
    row["heatmaps"] = heatmaps
    report = ctx.out_dir / "report.html"
    write_verification_report(report, "pair", row, record)
    row["report"] = str(report)
    (ctx.out_dir / "summary.json").write_text(json.dumps(row, indent=2, default=str) + "\n")
    outputs = [str(ctx.out_dir / "summary.json"), str(report), *heatmaps.values()]
    analysis_id = ctx.catalog.add_analysis(
        a["id"], "verify", {"a": a["id"], "b": b["id"]}, __version__,
        {"same_artist_probability": row.get("same_artist_probability"), "other_image": b["id"]}, outputs,
        model_checksum=record.get("model_checksum"))
    return row, analysis_id


def pair_heatmaps(ctx: JobContext, verifier: Any, a: dict[str, Any], b: dict[str, Any]) -> dict[str, str]:
    """Grad-CAM of the verifier's pair score over A and B (as ``artlens verify A B --heatmap``), written as
    ``gradcam_a.png`` / ``gradcam_b.png`` (overlays with a colour bar) and their ``.npy`` maps in the job's
    folder; ``{"a": png, "b": png}``."""
    import numpy as np

    from artlens.paintings.images import load_rgb
    from artlens.paintings.verify import grad_cam_pair
    from artlens.report.overlays import save_heatmap_overlay

    cam_a, cam_b, _ = grad_cam_pair(verifier, a["path"], b["path"])
    heatmaps = {}
    for tag, img_row, cam in (("a", a, cam_a), ("b", b, cam_b)):
        img = np.asarray(load_rgb(img_row["path"]).resize((cam.shape[1], cam.shape[0])))
        png = ctx.out_dir / f"gradcam_{tag}.png"
        save_heatmap_overlay(img, cam, png, title=f"Grad-CAM (image {img_row['id']})", label="contribution to score")
        np.save(png.with_suffix(".npy"), cam)
        heatmaps[tag] = str(png)
    return heatmaps


# --- verify.reference: one painting against a reference set -------------------------------------------------


def _id_list(cat: Any, value: Any, what: str) -> list[int]:
    if value in (None, "", []):
        return []
    if not isinstance(value, list):
        raise InvalidParameterError(f"{what} must list image ids")
    return list(dict.fromkeys(_image_id(cat, i, what) for i in value))


IMPOSTOR_SETS = ("bank", "other_artists", "filter", "images")
"""Where a ``verify.reference`` job takes its impostors (works by other hands) from: the shipped verifier's
bank of training works (the CLI's default with one reference set), every catalogued painting attributed to
another artist, the catalogued paintings of chosen artists and / or one source, or listed images."""


def check_reference(cat: Any, image: Any, params: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    """The questioned painting and its reference set: the catalogued paintings of ``artist`` or the listed
    ``references`` (not both), the questioned one left out; the impostor set chosen by ``impostor_set`` (see
    :data:`IMPOSTOR_SETS` and :func:`impostor_set`)."""
    from artlens.paintings.attribution import MIN_REFERENCES

    _only(params, {"artist", "references", "impostor_set", "impostors", "impostor_artists", "impostor_source",
                   "k", "top"})
    q = _image_id(cat, image, "image (the questioned painting)")
    artist = str(params.get("artist") or "").strip() or None
    listed = _id_list(cat, params.get("references"), "references")
    if (artist is None) == (not listed):
        raise InvalidParameterError("give the reference set as an artist or as a list of images (references), "
                                    "one of the two")
    paintings = painting_rows(cat)
    if artist is not None:
        refs = [r["id"] for r in paintings if r["artist"] == artist and r["id"] != q]
        name = artist
    else:
        refs = [i for i in listed if i != q]
        name = f"{len(refs)} chosen images"
    if len(refs) < MIN_REFERENCES:
        raise InvalidParameterError(f"the reference set ({name}) holds {len(refs)} image(s) besides the questioned "
                                    f"one; it needs at least {MIN_REFERENCES} (ideally 10 or more securely "
                                    "attributed works)")
    chosen = impostor_set(cat, params, q, refs, artist, paintings)
    return q, {"artist": artist, "references": refs, "impostors": chosen["images"], "impostor_set": chosen,
               "name": name, "k": int(_number(params, "k", 3, 1, 20)), "top": int(_number(params, "top", 5, 1, 20))}


def _name_list(value: Any, what: str) -> list[str]:
    if value in (None, "", []):
        return []
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in values):
        raise InvalidParameterError(f"{what} must list artist names")
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))


def impostor_set(cat: Any, params: dict[str, Any], q: int, refs: list[int], artist: str | None,
                 paintings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The impostors of a ``verify.reference`` job, resolved to image ids when the job is posted.

    ``impostor_set`` (default ``bank``, or ``images`` when ``impostors`` is given):

    - ``bank``: the shipped verifier's bank of training works (``images`` is ``None``);
    - ``other_artists``: every catalogued painting whose artwork names an artist other than the reference
      set's (``artist``, or the artists of the listed reference images);
    - ``filter``: the catalogued paintings of ``impostor_artists`` and / or from ``impostor_source``, less the
      reference set's artist's works;
    - ``images``: the listed ``impostors`` (image ids).

    The questioned work and the reference works are never impostors. Returns ``{"kind", "description",
    "images", "artists", "source"}``; raises :class:`InvalidParameterError` for an unknown set, a filter that
    names nothing in the catalog, or fewer than ``MIN_REFERENCES`` impostors.
    """
    from artlens.paintings.attribution import MIN_REFERENCES

    listed = params.get("impostors") not in (None, "", [])
    kind = _choice(params, "impostor_set", "images" if listed else "bank", IMPOSTOR_SETS)
    names = _name_list(params.get("impostor_artists"), "impostor_artists")
    source = str(params.get("impostor_source") or "").strip() or None
    if listed and kind != "images":
        raise InvalidParameterError(f"impostors (image ids) go with impostor_set images, not {kind}")
    if (names or source) and kind != "filter":
        raise InvalidParameterError(f"impostor_artists and impostor_source go with impostor_set filter, not {kind}")
    rows = painting_rows(cat) if paintings is None else paintings
    artist_of = {r["id"]: r["artist"] for r in rows}
    own = {artist} if artist else {a for i in refs if (a := artist_of.get(i))}
    excluded = {q, *refs}
    out: dict[str, Any] = {"kind": kind, "images": None, "artists": None, "source": None}
    if kind == "bank":
        return out | {"description": "the verifier's bank of training works"}
    if kind == "images":
        if not listed:
            raise InvalidParameterError("impostor_set images: list the impostors (image ids, 3 or more)")
        ids = [i for i in _id_list(cat, params.get("impostors"), "impostors") if i not in excluded]
        what = "the chosen images"
        if len(ids) < MIN_REFERENCES:
            raise InvalidParameterError(f"impostors: {len(ids)} image(s) outside the reference set, need at "
                                        f"least {MIN_REFERENCES}")
    elif kind == "other_artists":
        if not own:
            raise InvalidParameterError("impostor_set other_artists needs the reference set's artist: choose the "
                                        "reference set by artist, or reference images whose artworks name one")
        picked = [r for r in rows if r["artist"] and r["artist"] not in own and r["id"] not in excluded]
        ids = [r["id"] for r in picked]
        what = f"the catalogued works of artists other than {', '.join(sorted(own))}"
    else:
        if not names and source is None:
            raise InvalidParameterError("impostor_set filter: give impostor_artists (artist names) and / or "
                                        "impostor_source (a collection) to choose catalogued paintings")
        for n in names:
            if n in own:
                raise InvalidParameterError(f"impostor_artists: {n!r} is the reference set's artist; impostors "
                                            "must be works by other hands")
            if not any(r["artist"] == n for r in rows):
                raise InvalidParameterError(f"impostor_artists: the catalog holds no painting by {n[:80]!r}")
        if source is not None and not any(r["source"] == source for r in rows):
            raise InvalidParameterError(f"impostor_source: the catalog holds no painting from {source[:80]!r}")
        picked = [r for r in rows if (not names or r["artist"] in names) and (source is None or r["source"] == source)
                  and r["id"] not in excluded and r["artist"] not in own]
        ids = [r["id"] for r in picked]
        parts = ([f"by {', '.join(names)}"] if names else []) + ([f"from {source}"] if source else [])
        what = "the catalogued works " + " ".join(parts)
        if own and not names:
            what += f" (less those of {', '.join(sorted(own))})"
        out |= {"artists": names or None, "source": source}
    if len(ids) < MIN_REFERENCES:
        raise InvalidParameterError(f"the impostor set ({what}) holds {len(ids)} image(s) besides the questioned "
                                    f"and reference works; it needs at least {MIN_REFERENCES}")
    if kind == "other_artists":
        out["artists"] = sorted({artist_of[i] for i in ids})
    found = sorted({a for i in ids if (a := artist_of.get(i))})
    by = ""
    if found:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        by = f" by {len(found)} artist{'s' if len(found) != 1 else ''} ({shown})"
    return out | {"images": ids, "description": f"{what}: {len(ids)} works{by}"}


def run_reference(ctx: JobContext) -> tuple[dict[str, Any], int | None]:
    """``artlens paintings verify Q --reference DIR [--impostors DIR]``: the shipped verifier, centred on the
    images at hand when there are enough of them (as the CLI does), and
    :func:`artlens.paintings.attribution.attribute_paths`."""
    import warnings

    from artlens import __version__
    from artlens.errors import UnreadableInputError
    from artlens.paintings.attribution import attribute_paths
    from artlens.paintings.verify import MIN_BACKGROUND, load_verifier

    p = ctx.job["params"]
    q = ctx.image(ctx.job["image_id"])
    refs = [ctx.image(i) for i in p["references"]]
    imps = [ctx.image(i) for i in p["impostors"] or []]
    id_of = {str(Path(r["path"]).resolve()): r["id"] for r in [q, *refs, *imps]}
    ctx.progress(0.05, "loading the verifier")
    verifier = load_verifier(None)
    at_hand = list(dict.fromkeys(r["path"] for r in [*refs, *imps, q]))
    if len(at_hand) >= MIN_BACKGROUND and getattr(verifier.head, "centre", False):
        ctx.progress(0.1, f"centring on the {len(at_hand)} images at hand")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                verifier.adapt(at_hand, source="the reference works and the questioned work (automatic)")
            except InvalidParameterError:  # too few readable: keep the training collection's centre
                pass
    ctx.progress(0.2, f"encoding {len(refs)} reference works and calibrating on them")
    results, info = attribute_paths(verifier, [q["path"]], [(p["name"], [r["path"] for r in refs])],
                                    [r["path"] for r in imps] if imps else None, k=p["k"], top=p["top"], seed=0)
    if not results:
        raise UnreadableInputError(f"image {q['id']} could not be read by the verifier")
    best = results[0]["ranking"][0]
    closest = [{"image": id_of.get(str(Path(c["path"]).resolve())), "name": Path(c["path"]).name,
                "score": c["score"]} for c in best.pop("closest")]
    record = verifier.record()
    heatmaps: dict[str, Any] = {}
    nearest = next((r for r in refs if r["id"] == closest[0]["image"]), None) if closest else None
    if nearest is not None:  # as the CLI's --heatmap: the questioned work against its closest reference
        ctx.progress(0.8, f"Grad-CAM against the closest reference work (image {nearest['id']})")
        heatmaps = pair_heatmaps(ctx, verifier, q, nearest)
    chosen = dict(p.get("impostor_set") or {"kind": "images" if imps else "bank", "images": p["impostors"],
                                             "description": ""})
    if chosen["kind"] == "bank":  # the library says which bank: its size, artists and collection
        chosen["description"] = best["impostors"]
    else:
        unread = {str(Path(x["path"]).resolve()) for x in info["skipped"]}
        chosen["used"] = sum(str(Path(r["path"]).resolve()) not in unread for r in imps)
        best["impostors"] = chosen["description"] or best["impostors"]
    result = {"image": q["id"], "reference": p["name"], "artist": p["artist"], **best, "closest": closest,
              "impostor_set": chosen,
              "method": info["method"], "parameters": info["parameters"],
              "skipped": [{"image": id_of.get(str(Path(x["path"]).resolve())), "reason": x["reason"]}
                          for x in info["skipped"]],
              "verifier": {k: record.get(k) for k in ("kind", "backbone", "model_checksum", "centred_on")}}
    if heatmaps:
        result["heatmaps"] = heatmaps
        result["heatmaps_against"] = nearest["id"] if nearest is not None else None
    (ctx.out_dir / "summary.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    analysis_id = ctx.catalog.add_analysis(
        q["id"], "verify.attribution", {"references": p["references"], "artist": p["artist"],
                                        "impostors": p["impostors"],
                                        "impostor_set": {k: chosen.get(k) for k in ("kind", "artists", "source")},
                                        **info["parameters"]}, __version__,
        {"likelihood_ratio": best["likelihood_ratio"], "interval": best["interval"],
         "probability": best["probability"], "reference": p["name"], "impostors": best["impostors"]},
        [str(ctx.out_dir / "summary.json"), *heatmaps.values()], model_checksum=record.get("model_checksum"))
    return result, analysis_id


# --- classify: a classifier folder on the server ---------------------------------------------------------


def classifier_folder(value: Any) -> Path:
    """The classifier folder a form names (a training run, its ``model/`` folder or the ``config.json`` in it),
    checked without loading weights: a one-line :class:`InvalidParameterError` when it is not one."""
    from artlens.paintings.classify import BLEND_NAME, CONFIG, MODEL_NAME

    text = str(value or "").strip()
    if not text:
        raise InvalidParameterError("model: give the path of a classifier folder on this server (a training run "
                                    "of `artlens paintings classify train`, or its model/ folder)")
    p = Path(text).expanduser()
    if not p.is_absolute():
        raise InvalidParameterError(f"model: {text[:80]!r} must be an absolute path on this server")
    if p.is_file() and p.name == CONFIG:
        p = p.parent
    if not p.is_dir():
        raise InvalidParameterError(f"model: {text[:80]!r} is not a folder on this server")
    if (p / "model" / CONFIG).is_file():
        p = p / "model"
    try:
        kind = json.loads((p / CONFIG).read_text()).get("model")
    except (OSError, ValueError, AttributeError):
        kind = None
    if kind not in (MODEL_NAME, BLEND_NAME):
        raise InvalidParameterError(f"model: {text[:80]!r} is not a classifier folder (no {CONFIG} of a painting "
                                    "classifier in it or in its model/ folder)")
    return p.resolve()


def check_classify(cat: Any, image: Any, params: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    _only(params, {"model", "top_k"})
    image_id = _image_id(cat, image, "image (the painting to classify)")
    return image_id, {"model": str(classifier_folder(params.get("model"))),
                      "top_k": int(_number(params, "top_k", 5, 1, 50))}


def run_classify(ctx: JobContext) -> tuple[dict[str, Any], int | None]:
    """``artlens paintings classify predict IMAGE --model RUN``:
    :func:`artlens.paintings.classify.load_classifier` and ``predict``."""
    from artlens import __version__
    from artlens.errors import UnreadableInputError
    from artlens.paintings.classify import load_classifier

    p = ctx.job["params"]
    row = ctx.image(ctx.job["image_id"])
    ctx.progress(0.05, "loading the classifier")
    clf = load_classifier(classifier_folder(p["model"]))
    ctx.progress(0.3, "classifying")
    [pred] = clf.predict([row["path"]], top_k=p["top_k"])
    if "error" in pred:
        raise UnreadableInputError(f"image {row['id']}: {pred['error'].replace(row['path'], Path(row['path']).name)}")
    record = clf.record()
    ctx.progress(0.6, "Grad-CAM of the predicted class")
    heatmaps, cam_label = classify_heatmaps(ctx, clf, row["path"])
    result = {"image": row["id"], "predictions": pred["predictions"], "classes": list(clf.classes),
              "label_column": record.get("label_column"), "model": Path(p["model"]).name,
              "model_checksum": record.get("model_checksum"), "heatmaps": heatmaps, "heatmap_label": cam_label}
    (ctx.out_dir / "summary.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    analysis_id = ctx.catalog.add_analysis(
        row["id"], "paintings.classify", {"model": p["model"], "top_k": p["top_k"],
                                          "label_column": record.get("label_column")}, __version__,
        {"predictions": pred["predictions"], "label_column": record.get("label_column")},
        [str(ctx.out_dir / "summary.json"), *heatmaps.values()], model_checksum=record.get("model_checksum"))
    return result, analysis_id


def classify_heatmaps(ctx: JobContext, clf: Any, path: str) -> tuple[dict[str, str], str]:
    """Grad-CAM of the predicted class (as ``paintings classify predict --heatmap``): the whole image (global
    view) and the full-resolution tiles, each written as ``gradcam_global.png`` / ``gradcam_tiles.png`` (an
    overlay with a colour bar) and its ``.npy`` map where the model has that view; ``({tag: png}, class)``."""
    import numpy as np

    from artlens.report.overlays import save_heatmap_overlay

    cam = clf.grad_cam(path)
    out = {}
    for tag, m, what in (("global", cam.global_map, "whole image (global view)"),
                         ("tiles", cam.tile_map, "full-resolution tiles")):
        if m is None:
            continue
        png = ctx.out_dir / f"gradcam_{tag}.png"
        save_heatmap_overlay(cam.image, m, png, title=f"Grad-CAM for {cam.label} ({cam.probability:.2f}), {what}",
                             label="contribution to the class score", vmin=0.0, vmax=1.0)
        np.save(png.with_suffix(".npy"), m)
        out[tag] = str(png)
    return out, str(cam.label)


# --- canvas.compare / canvas.match -------------------------------------------------------------------------


def _comparer(cat: Any, image_ids: list[int], density_only: bool, permutations: int) -> Any:
    """The comparer ``artlens canvas compare/match`` builds: the shipped fabric model unless density only."""
    from artlens.canvas.collection import MATCH_PARAMS, CanvasComparer

    model = None
    if not density_only:
        from artlens.canvas.fabric import load_fabric_model

        model = load_fabric_model()  # the shipped default, DEFAULT_FABRIC_MODEL
    resolutions = {cat.get_image(i)["px_per_cm"] for i in image_ids}
    ppc = resolutions.pop() if len(resolutions) == 1 else None
    return CanvasComparer(model, px_per_cm=ppc, params=MATCH_PARAMS,
                          n_permutations=permutations, seed=0)


def check_canvas_compare(cat: Any, image: Any, params: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    _only(params, {"other", "density_only"})
    a, out = check_pair(cat, image, {"other": params.get("other")})
    return a, out | {"density_only": bool(params.get("density_only", False))}


def run_canvas_compare(ctx: JobContext) -> tuple[dict[str, Any], int | None]:
    """``artlens canvas compare A B``: :meth:`artlens.canvas.collection.CanvasComparer.compare`."""
    from artlens import __version__

    p = ctx.job["params"]
    a, b = ctx.image(ctx.job["image_id"]), ctx.image(p["other"])
    ctx.progress(0.05, "counting both plates and comparing")
    r = _comparer(ctx.catalog, [a["id"], b["id"]], p["density_only"], 999).compare(a["path"], b["path"])
    summary_path = ctx.out_dir / "compare.json"
    summary_path.write_text(json.dumps(r, indent=2, default=str) + "\n")
    analysis_id = ctx.catalog.add_analysis(
        a["id"], "canvas.compare", {"a": a["id"], "b": b["id"], "density_only": p["density_only"]}, __version__,
        {"same_roll_probability": r["same_roll_probability"], "evidence": r["evidence"], "other_image": b["id"]},
        [str(summary_path)])
    return r, analysis_id


def check_canvas_match(cat: Any, image: Any, params: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    from artlens.canvas.clusters import CLUSTER_LINKAGE, CLUSTER_THRESHOLD, check_clustering

    _only(params, {"images", "density_only", "threshold"})
    threshold = _number(params, "threshold", CLUSTER_THRESHOLD, 0.0, 1.0)
    check_clustering(threshold, CLUSTER_LINKAGE)  # strictly between 0 and 1
    ids = params.get("images")
    if not isinstance(ids, list) or len(ids) < 2:
        raise InvalidParameterError("images must list at least two image ids")
    ids = list(dict.fromkeys(_image_id(cat, i, "images") for i in ids))
    if len(ids) < 2:
        raise InvalidParameterError("images must list at least two different image ids")
    return None, {"images": ids, "density_only": bool(params.get("density_only", False)), "threshold": threshold}


def run_canvas_match(ctx: JobContext) -> tuple[dict[str, Any], int | None]:
    """``artlens canvas match``: :func:`artlens.canvas.collection.match_collection` over the chosen images,
    named ``image-<id>`` (links in the job folder; the stored files are not touched)."""
    from artlens.canvas.collection import match_collection

    p = ctx.job["params"]
    links = ctx.out_dir / "plates"
    links.mkdir(exist_ok=True)
    paths = []
    for image_id in p["images"]:
        row = ctx.image(image_id)
        link = links / f"image-{image_id}{Path(row['path']).suffix}"
        if not link.exists():
            os.symlink(row["path"], link)
        paths.append(link)
    ctx.progress(0.05, f"comparing {len(paths)} plates pairwise")
    s = match_collection(paths, ctx.out_dir / "match", _comparer(ctx.catalog, p["images"], p["density_only"], 199),
                         threshold=p["threshold"], catalog=ctx.catalog_path)
    s["matrix"] = similarity_matrix(Path(s["files"]["pairs_csv"]), [pl["name"] for pl in s["plates"]])
    s["image_ids"] = {pl["name"]: int(pl["name"].split("-")[1].split(".")[0]) for pl in s["plates"]}
    return s, None


def similarity_matrix(pairs_csv: Path, names: list[str]) -> list[list[float | None]]:
    """The same-roll probability matrix (rows and columns in ``names`` order) from ``pairs.csv``."""
    index = {n: k for k, n in enumerate(names)}
    m: list[list[float | None]] = [[1.0 if i == j else None for j in range(len(names))] for i in range(len(names))]
    with open(pairs_csv, newline="") as fh:
        for r in csv.DictReader(fh):
            i, j = index.get(r["a"]), index.get(r["b"])
            if i is not None and j is not None and r["same_roll_probability"]:
                m[i][j] = m[j][i] = round(float(r["same_roll_probability"]), 4)
    return m


# --- search by example -----------------------------------------------------------------------------------

_SEARCH_LOCK = threading.Lock()  # one index folder per app: build and query it one job at a time


def check_search(cat: Any, image: Any, params: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    _only(params, {"k"})
    return _image_id(cat, image, "image (the query)"), {"k": int(_number(params, "k", 12, 1, 100))}


def run_search(ctx: JobContext) -> tuple[dict[str, Any], int | None]:
    """``artlens index`` over the catalog's paintings (every image that is not an X-ray), then ``artlens
    search``: :func:`artlens.paintings.search.build_index` (incremental: images embedded before are reused)
    and :meth:`~artlens.paintings.search.SearchIndex.search`."""
    from artlens import __version__
    from artlens.paintings.search import SearchIndex, build_index

    query = ctx.image(ctx.job["image_id"])
    rows = [r for r in ctx.catalog.images() if r["modality"] != "xray" and Path(r["path"]).is_file()]
    if not rows:
        raise InvalidParameterError("the catalog holds no paintings (images other than X-rays) to search")
    by_path = {str(Path(r["path"]).resolve()): r["id"] for r in rows}
    index_dir = ctx.out_dir.parent.parent / "search-index"
    ctx.progress(0.05, f"embedding the collection ({len(rows)} images; earlier ones are reused)")
    with _SEARCH_LOCK:
        summary = build_index(list(by_path), index_dir, "lite0", progress=False)
        ctx.progress(0.8, "searching")
        idx = SearchIndex.open(index_dir)
        hits = idx.search(idx.embed_query(query["path"]), ctx.job["params"]["k"])[0]
    results = [h.to_dict() | {"image": by_path.get(str(Path(h.path).resolve()))} for h in hits]
    for r in results:
        r["name"] = Path(r.pop("path")).name  # no server paths in the result
    result = {"query": query["id"], "results": results, "embedder": idx.embedder_name, "indexed": summary.images}
    (ctx.out_dir / "results.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    analysis_id = ctx.catalog.add_analysis(
        query["id"], "paintings.search", {"k": ctx.job["params"]["k"], "embedder": idx.embedder_name,
                                          "index": str(index_dir)}, __version__,
        {"results": [[r["image"], round(r["score"], 4)] for r in results]}, [str(ctx.out_dir / "results.json")])
    return result, analysis_id


# --- paintings.map: the collection's embedding map --------------------------------------------------------

MAP_METHODS = ("tsne", "umap")


def painting_rows(cat: Any, artist: str | None = None, source: str | None = None) -> list[dict[str, Any]]:
    """The catalogued paintings (every image that is not an X-ray, its file present), with their artwork's
    ``artist`` and ``source`` added; only those of ``artist`` / ``source`` when given (exact match)."""
    artworks = {a["id"]: a for a in cat.artworks()}
    out = []
    for r in cat.images():
        if r["modality"] == "xray" or not Path(r["path"]).is_file():
            continue
        art = artworks.get(r["artwork_id"]) or {}
        row = r | {"artist": art.get("artist"), "source": art.get("source"), "title": art.get("title")}
        if artist and row["artist"] != artist:
            continue
        if source and row["source"] != source:
            continue
        out.append(row)
    return out


def _selection_text(artist: str | None, source: str | None) -> str:
    parts = [f"artist {artist!r}" if artist else "", f"source {source!r}" if source else ""]
    return " and ".join(p for p in parts if p) or "the whole catalog"


def check_map(cat: Any, image: Any, params: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    _only(params, {"artist", "source", "method"})
    if image not in (None, ""):
        raise InvalidParameterError("paintings.map maps a collection: give no image (choose with artist / source)")
    artist = str(params.get("artist") or "").strip() or None
    source = str(params.get("source") or "").strip() or None
    method = _choice(params, "method", "tsne", MAP_METHODS)
    if method == "umap":
        import importlib.util

        if importlib.util.find_spec("umap") is None:
            raise InvalidParameterError("method umap needs umap-learn, which is not installed here (use tsne)")
    n = len(painting_rows(cat, artist, source))
    if n < 2:
        raise InvalidParameterError(f"{_selection_text(artist, source)} holds {n} painting(s) (images other than "
                                    "X-rays); a map needs at least 2")
    return None, {"artist": artist, "source": source, "method": method}


def _search_index(ctx: JobContext, rows: list[dict[str, Any]], message: str) -> Any:
    """The app's search index (``DATA/search-index/``, Lite0) brought up to date with every catalogued painting
    (incremental: images embedded before are reused), opened. Call under ``_SEARCH_LOCK``."""
    from artlens.paintings.search import SearchIndex, build_index

    every = list(dict.fromkeys(str(Path(r["path"]).resolve()) for r in [*painting_rows(ctx.catalog), *rows]))
    index_dir = ctx.out_dir.parent.parent / "search-index"
    ctx.progress(0.05, message)
    build_index(every, index_dir, "lite0", progress=False)
    return SearchIndex.open(index_dir)


def run_map(ctx: JobContext) -> tuple[dict[str, Any], int | None]:
    """``artlens index`` + ``artlens paintings map``: the selected paintings' vectors from the app's search
    index (:func:`~artlens.paintings.search.build_index`, incremental) projected to 2-D by
    :func:`artlens.paintings.maps.project_2d`; the page draws the points (each a link to its image)."""
    import numpy as np

    from artlens import __version__
    from artlens.paintings.maps import project_2d

    p = ctx.job["params"]
    rows = painting_rows(ctx.catalog, p["artist"], p["source"])
    if len(rows) < 2:
        raise InvalidParameterError(f"{_selection_text(p['artist'], p['source'])} now holds {len(rows)} painting(s); "
                                    "a map needs at least 2")
    with _SEARCH_LOCK:
        idx = _search_index(ctx, rows, f"embedding the paintings ({len(rows)} mapped; earlier ones are reused)")
        found = [(r, idx.find(r["path"])) for r in rows]
        vectors_all = idx.vectors()
    kept = [(r, i) for r, i in found if i is not None]
    if len(kept) < 2:
        raise InvalidParameterError(f"only {len(kept)} of the {len(rows)} paintings could be read; a map needs 2")
    vectors = np.stack([vectors_all[i] for _, i in kept])
    ctx.progress(0.7, f"projecting {len(kept)} paintings ({p['method']})")
    coords, used = project_2d(vectors, p["method"], seed=0)
    lo, span = coords.min(axis=0), np.ptp(coords, axis=0)
    span[span == 0] = 1.0
    unit = (coords - lo) / span
    points = [{"image": r["id"], "name": Path(r["path"]).name, "title": r["title"], "artist": r["artist"],
               "modality": r["modality"], "x": round(float(coords[k, 0]), 5), "y": round(float(coords[k, 1]), 5),
               "u": round(float(unit[k, 0]), 5), "v": round(float(unit[k, 1]), 5)} for k, (r, _) in enumerate(kept)]
    skipped = [{"image": r["id"], "name": Path(r["path"]).name} for r, i in found if i is None]
    result = {"method": used, "requested_method": p["method"], "embedder": idx.embedder_name, "artist": p["artist"],
              "source": p["source"], "points": points, "skipped": skipped}
    with open(ctx.out_dir / "map.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "name", "x", "y", "artist", "title"])
        for pt in points:
            w.writerow([pt["image"], pt["name"], pt["x"], pt["y"], pt["artist"] or "", pt["title"] or ""])
    (ctx.out_dir / "map.json").write_text(json.dumps(result, indent=2) + "\n")
    analysis_id = ctx.catalog.add_analysis(
        None, "paintings.map", {"artist": p["artist"], "source": p["source"], "method": used,
                                "embedder": idx.embedder_name, "seed": 0}, __version__,
        {"images": len(points), "method": used}, [str(ctx.out_dir / "map.json"), str(ctx.out_dir / "map.csv")])
    return result, analysis_id


# --- the registry ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One job kind: its check, its run, and a title for the pages."""

    title: str
    check: Callable[[Any, Any, dict[str, Any]], tuple[int | None, dict[str, Any]]]
    run: Callable[[JobContext], tuple[dict[str, Any], int | None]]


KINDS: dict[str, Kind] = {
    "threads.count": Kind("Thread count", check_threads, run_threads),
    "beneath.compare": Kind("Beneath compare", check_beneath, run_beneath),
    "verify": Kind("Verify two paintings", check_pair, run_verify),
    "verify.reference": Kind("Verify against a reference set", check_reference, run_reference),
    "canvas.compare": Kind("Canvas compare", check_canvas_compare, run_canvas_compare),
    "canvas.match": Kind("Canvas match", check_canvas_match, run_canvas_match),
    "search": Kind("Search by example", check_search, run_search),
    "classify": Kind("Classify a painting", check_classify, run_classify),
    "paintings.map": Kind("Map of the paintings", check_map, run_map),
}
