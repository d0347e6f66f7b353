"""Painting commands over many inputs on the batch engine, resumably.

``artlens paintings classify predict FOLDER --out OUT`` runs :func:`predict_folder`: every image of the
folder (and its subfolders) is classified by a worker that loads the classifier once, and one row per
image lands in ``OUT/predictions.csv`` as soon as the image is done (appended, flushed and fsync'ed).
Images that cannot be read land in ``OUT/skipped.csv`` with the reason; the rest go on.

Each row carries the image's *key* (:func:`artlens.engine.item_key`: the image's SHA-256, the method, the
parameters and the classifier's checksum). A second run over the same ``OUT`` skips every key already in
``predictions.csv`` or ``skipped.csv`` (:class:`artlens.engine.Batch`), so a run killed at any point resumes
where it stopped and a rerun does nothing ("0 new"). The catalog gets one analysis per image, written by
this process as images finish, with the key in its summary: an image redone after a kill that struck
between its catalog record and its row is not recorded twice.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from artlens.engine import (
    Batch,
    BatchOptions,
    Item,
    ResultLedger,
    input_digest,
    is_unreadable,
    item_key,
    unreadable_reason,
)
from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError

__all__ = ["PREDICTION_COLUMNS", "SKIPPED_COLUMNS", "BatchReport", "classifier_identity", "predict_folder"]

PREDICTION_COLUMNS = ["image", "status", "label", "probability", "predictions", "method", "parameters", "path",
                      "sha256", "model_checksum", "artlens_version", "key"]
"""Columns of ``predictions.csv``: ``image`` (path relative to the folder), the top class and its probability,
``predictions`` (the top-k as JSON ``[{"label", "probability"}]``), ``parameters`` (JSON: what the key holds
besides the image and the checksum)."""

SKIPPED_COLUMNS = ["image", "path", "sha256", "reason", "key"]

CLASSIFY_METHOD = "paintings.classify"


@dataclass
class BatchReport:
    """What a painting batch did: items in total, new, done before, skipped now and before, and duplicates
    (files identical to one before them, which share its row)."""

    total: int
    new: int
    done_before: int
    skipped: int
    skipped_before: int
    duplicates: int
    out_dir: str
    results_csv: str
    skipped_csv: str | None
    engine: str
    workers: int
    device: str
    failures: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read_config(folder: Path) -> dict[str, Any]:
    from artlens.paintings.classify import CONFIG

    try:
        doc = json.loads((folder / CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UnreadableInputError(f"{folder / CONFIG}: malformed classifier config ({exc})") from None
    if not isinstance(doc, dict):
        raise UnreadableInputError(f"{folder / CONFIG}: malformed classifier config")
    return doc


def classifier_identity(model: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """``(checksum, settings)`` of a classifier or blend folder, from its ``config.json`` files alone
    (no weights loaded): the checksum a prediction is recorded with (the head's SHA-256; for a blend,
    the SHA-256 of its members' checksums, method and weights, as ``classify predict`` records it), and
    the settings that also change the result (label column, variant, backbone, the backbone file's
    SHA-256, a stacked blend's weights). The worker checks every file against these when it loads.
    """
    import hashlib

    from artlens.paintings.classify import BLEND_NAME, _model_folder

    folder = _model_folder(model)
    doc = _read_config(folder)
    if doc.get("model") == BLEND_NAME:
        members = []
        for m in doc.get("members") or []:
            sub = _read_config(_model_folder(m if os.path.isabs(m) else folder / m))
            members.append({"model_checksum": sub.get("sha256"), "backbone_sha256": sub.get("backbone_sha256"),
                            "config": sub.get("config")})
        key = json.dumps([[m["model_checksum"] for m in members], doc.get("method"), doc.get("weights")])
        checksum = hashlib.sha256(key.encode()).hexdigest()
        return checksum, {"blend": doc.get("method"), "weights": doc.get("weights"), "files": doc.get("files"),
                          "members": members}
    cfg = doc.get("config") or {}
    if not doc.get("sha256") or not isinstance(cfg, dict):
        raise UnreadableInputError(f"{folder}: not a painting classifier (no weights checksum in its config)")
    return str(doc["sha256"]), {"label_column": cfg.get("label_column"), "variant": cfg.get("variant"),
                                "backbone": cfg.get("backbone"), "backbone_sha256": doc.get("backbone_sha256"),
                                "classes": cfg.get("classes")}


def _make_predictor(settings: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Worker factory: the per-image function (the classifier is loaded once per worker)."""
    from artlens.paintings.classify import load_classifier

    clf = load_classifier(settings["model"]).to(settings["device"])

    def predict_one(job: dict[str, Any]) -> dict[str, Any]:
        row = clf.predict([job["path"]], top_k=settings["top_k"], tta=settings["tta"], tiles=settings["tiles"])[0]
        if "error" in row:
            raise UnreadableInputError(row["error"])
        return {"predictions": row["predictions"]}

    return predict_one


def predict_folder(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    model: str | os.PathLike[str],
    *,
    top_k: int = 5,
    tta: bool | None = None,
    tiles: int | str | None = None,
    device: str = "cpu",
    catalog: str | os.PathLike[str] | None = None,
    use_catalog: bool = True,
    options: BatchOptions | None = None,
) -> BatchReport:
    """Classify every image of a folder into ``out_dir/predictions.csv`` (resumable; see the module docstring).

    Args:
        source: a folder of images (subfolders included, hidden entries left out).
        out_dir: output folder: ``predictions.csv`` and ``skipped.csv``.
        model: a classifier or blend folder (a training run, its ``model/`` folder), loaded once per worker.
        top_k, tta, tiles: as :meth:`artlens.paintings.classify.Classifier.predict`.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (:func:`artlens.devices.resolve_device`); with
            engine ``ray`` and a GPU each actor takes one.
        catalog, use_catalog: where to record the predictions (one analysis per image).
        options: :class:`~artlens.engine.BatchOptions`: engine, workers, Ray address, whether the items of
            ``skipped.csv`` run again, the progress callback.
    """
    from artlens import __version__
    from artlens.devices import resolve_device
    from artlens.io.scan import scan_images

    options = options or BatchOptions()
    options.check()
    if top_k < 1:
        raise InvalidParameterError(f"top_k must be at least 1, got {top_k}", param="top_k")
    if tiles is not None and tiles != "all":
        from artlens.paintings.classify import _tile_count

        tiles = _tile_count(tiles)
    src = Path(source).expanduser()
    if not src.is_dir():
        raise InputNotFoundError(f"{src}: no such folder")
    torch_device = resolve_device(device)
    checksum, identity = classifier_identity(model)
    images = scan_images(src)
    if not images:
        raise InputNotFoundError(f"{src}: a folder with no images in it")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise InvalidParameterError(f"out_dir {out} exists and is not a folder", param="out_dir")
    out.mkdir(parents=True, exist_ok=True)

    parameters = {"top_k": top_k, "tta": tta, "tiles": tiles, **identity}
    recorded_parameters = {"model": str(Path(model).expanduser().resolve()), "top_k": top_k, "tta": tta,
                           "tiles": tiles, **{k: identity.get(k) for k in ("label_column", "variant", "backbone")}}
    batch = Batch(ResultLedger(out / "predictions.csv", PREDICTION_COLUMNS, sort_key=lambda r: (r["image"], r["key"])),
                  ResultLedger(out / "skipped.csv", SKIPPED_COLUMNS, sort_key=lambda r: (r["image"], r["key"])),
                  label_column="image", options=options)
    for path in images:
        digest = input_digest(path)
        item = Item(item_key(digest, CLASSIFY_METHOD, parameters, checksum), path.relative_to(src).as_posix(),
                    {"path": str(path), "digest": digest})
        batch.add(item, unreadable_reason(path) if is_unreadable(digest) else None)

    cat = None
    recorded: set[str] = set()
    params_json = json.dumps({"top_k": top_k, "tta": tta, "tiles": tiles}, sort_keys=True)
    try:
        if use_catalog and batch.todo:
            from artlens.catalog import Catalog
            from artlens.catalog.record import recorded_item_keys

            cat = Catalog(catalog)  # a SQLite file or a postgresql:// URL
            recorded = recorded_item_keys(cat, CLASSIFY_METHOD)

        def on_result(item: Item, result: dict[str, Any]) -> dict[str, Any]:
            preds = result["predictions"]
            if cat is not None and item.key not in recorded:
                from artlens.catalog.record import Analysis, add_analyses

                add_analyses(cat, [Analysis(CLASSIFY_METHOD, recorded_parameters,
                                            {"path": item.payload["path"], "predictions": preds,
                                             "item_key": item.key},
                                            image=item.payload["path"], model_checksum=checksum)])
                recorded.add(item.key)
            return {"image": item.label, "status": "ok", "label": preds[0]["label"],
                    "probability": preds[0]["probability"], "predictions": json.dumps(preds),
                    "method": CLASSIFY_METHOD, "parameters": params_json, "path": item.payload["path"],
                    "sha256": item.payload["digest"], "model_checksum": checksum, "artlens_version": __version__}

        def skipped_row(item: Item, reason: str) -> dict[str, Any]:
            digest = item.payload["digest"]
            return {"image": item.label, "path": item.payload["path"],
                    "sha256": "" if is_unreadable(digest) else digest}

        settings = {"model": recorded_parameters["model"], "device": torch_device, "top_k": top_k, "tta": tta,
                    "tiles": tiles}
        batch.run(functools.partial(_make_predictor, settings), on_result=on_result, skipped_row=skipped_row,
                  send=lambda i: {"path": i.payload["path"]}, num_gpus=options.gpus_per_worker(torch_device))
    finally:
        if cat is not None:
            cat.close()
    return BatchReport(total=batch.total, new=batch.new, done_before=batch.done_before, skipped=batch.failed,
                       skipped_before=batch.skipped_before, duplicates=batch.duplicates, out_dir=str(out),
                       results_csv=str(batch.results.path),
                       skipped_csv=batch.skipped_csv, engine=options.engine, workers=options.workers,
                       device=torch_device, failures=batch.failures)
