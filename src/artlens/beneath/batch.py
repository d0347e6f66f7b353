"""``artlens beneath compare --pairs CSV --out OUT``: many visible / other pairs on the batch engine, resumably.

Every pair goes through :func:`~artlens.beneath.compare.compare_views` (exactly what the one-pair command
runs; a worker loads a graph model once) into its own subfolder ``OUT/<pair>/``, and one row per pair lands
in ``OUT/pairs.csv`` as soon as the pair is done (appended, flushed and fsync'ed). Pairs that fail (an
unreadable image, a failed registration...) land in ``OUT/skipped.csv`` with the reason; the rest go on.

A pair's key (:func:`artlens.engine.item_key`) is both images' SHA-256, the method, its parameters and the
model checksum; a second run skips every key already in ``pairs.csv`` or ``skipped.csv``
(:class:`artlens.engine.Batch`), so a killed run resumes and a rerun says "0 new". The catalog gets one
analysis per pair, written by this process, with the key in its summary (never recorded twice).
"""

from __future__ import annotations

import csv
import functools
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from artlens.engine import Batch, BatchOptions, Item, ResultLedger, input_digest, is_unreadable, item_key
from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError

__all__ = ["PAIR_COLUMNS", "SKIPPED_COLUMNS", "CompareReport", "compare_pairs", "read_view_pairs"]

PAIR_COLUMNS = ["pair", "status", "method", "heatmap", "registration", "residual_px", "valid_fraction",
                "cells_flagged", "out_dir", "visible", "other", "visible_sha256", "other_sha256", "parameters",
                "model_checksum", "artlens_version", "key"]
"""Columns of ``pairs.csv``: the method's heatmap (``.npy``), the registration used and its residual (px), the
share of the visible image the other view covers, the cells where the map and its cross-check disagree."""

SKIPPED_COLUMNS = ["pair", "visible", "other", "reason", "key"]


@dataclass
class CompareReport:
    """What :func:`compare_pairs` did."""

    total: int
    new: int
    done_before: int
    skipped: int
    skipped_before: int
    duplicates: int
    out_dir: str
    pairs_csv: str
    skipped_csv: str | None
    engine: str
    workers: int
    failures: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_view_pairs(path: str | os.PathLike[str]) -> list[tuple[Path, Path]]:
    """``(visible, other)`` pairs of a CSV with columns ``visible,other`` (relative paths resolve against the
    CSV's folder)."""
    src = Path(path).expanduser()
    if not src.is_file():
        raise InputNotFoundError(f"{src}: no such file")
    try:
        with src.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UnreadableInputError(f"{src}: not a readable CSV ({exc})") from None
    if not rows or not {"visible", "other"} <= set(rows[0]):
        raise InvalidParameterError(f"{src}: a pairs file needs columns 'visible' and 'other' and at least one row",
                                    param="pairs")
    out = []
    for k, r in enumerate(rows, start=2):
        v, o = (r.get("visible") or "").strip(), (r.get("other") or "").strip()
        if not v or not o:
            raise InvalidParameterError(f"{src}, line {k}: empty visible or other path", param="pairs")
        out.append(tuple(p if p.is_absolute() else src.parent / p for p in (Path(v).expanduser(),
                                                                           Path(o).expanduser())))
    return out  # type: ignore[return-value]


def _make_comparer(settings: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Worker factory: the per-pair function (a graph model is loaded once per worker)."""
    from artlens.beneath.compare import compare_views, load_beneath_model

    kwargs = dict(settings["compare"])
    loaded = None
    if kwargs["method"] in ("gat", "gcn"):
        net, config = load_beneath_model(kwargs["model"], kwargs["method"])
        loaded = (net.to(kwargs["device"]), config)

    def compare_one(job: dict[str, Any]) -> dict[str, Any]:
        return compare_views(job["visible"], job["other"], job["out_dir"], use_catalog=False, loaded=loaded, **kwargs)

    return compare_one


def _model_checksum(method: str, model: str | os.PathLike[str] | None) -> str | None:
    """The graph model's weights checksum from its ``config.json`` (no torch import), for the keys."""
    if method not in ("gat", "gcn"):
        return None
    from artlens.beneath.compare import DEFAULT_MODEL
    from artlens.models.pretrained import resolve_model_folder

    folder = resolve_model_folder(DEFAULT_MODEL[method] if model is None else model, what="beneath model",
                                  family="beneath")
    try:
        return str(json.loads((Path(folder) / "config.json").read_text())["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InvalidParameterError(f"model {model}: not a beneath model folder (no config.json checksum)",
                                    param="model") from None


def compare_pairs(
    pairs: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    method: str = "pixel",
    model: str | os.PathLike[str] | None = None,
    segmentation: str | None = None,
    region_px: float | None = None,
    polarity: str | None = None,
    other_modality: str = "ir",
    registration: str = "auto",
    nonrigid: bool = False,
    max_residual_px: float = 2.0,
    report: bool = True,
    seed: int = 0,
    device: str = "cpu",
    catalog: str | os.PathLike[str] | None = None,
    use_catalog: bool = True,
    options: BatchOptions | None = None,
) -> CompareReport:
    """Compare every ``visible,other`` pair of a CSV into ``out_dir`` (resumable; see the module docstring).

    Args:
        pairs: CSV with columns ``visible`` and ``other``.
        out_dir: output folder: ``pairs.csv``, ``skipped.csv`` and one subfolder per pair.
        method ... seed: as :func:`~artlens.beneath.compare.compare_views` (the model loaded once per worker).
        device: where the graph models run (``auto``, ``cpu``, ``cuda``, ``cuda:N``; checked before anything is
            written; with engine ``ray`` and a GPU each actor takes one); not part of the key.
        catalog, use_catalog: where to record the analyses (one per pair).
        options: :class:`~artlens.engine.BatchOptions`: engine, workers, Ray address, whether the items of
            ``skipped.csv`` run again, the progress callback.
    """
    from artlens import __version__
    from artlens.beneath.compare import METHODS

    options = options or BatchOptions()
    options.check()
    if method not in METHODS:
        raise InvalidParameterError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}",
                                    param="method")
    if model is not None and method not in ("gat", "gcn"):
        raise InvalidParameterError(f"model applies to the gat and gcn methods, not to {method!r}", param="model")
    from artlens.devices import check_device_spec, resolve_device

    torch_device = resolve_device(device) if method in ("gat", "gcn") or "cuda" in str(device) else \
        check_device_spec(device)
    specs = read_view_pairs(pairs)
    checksum = _model_checksum(method, model)
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise InvalidParameterError(f"out_dir {out} exists and is not a folder", param="out_dir")
    out.mkdir(parents=True, exist_ok=True)
    model_ref = None if model is None else str(model)
    if model is not None and Path(model).expanduser().exists():  # a folder (not a shipped tag): absolute, for Ray
        model_ref = str(Path(model).expanduser().resolve())
    settings = {"method": method, "model": model_ref, "segmentation": segmentation,
                "region_px": region_px, "polarity": polarity, "other_modality": other_modality,
                "registration": registration, "nonrigid": nonrigid, "max_residual_px": max_residual_px,
                "report": report, "seed": seed}
    key_params = dict(settings)
    del key_params["model"]
    settings["device"] = torch_device  # where it runs, not what it computes: not in the key
    batch = Batch(ResultLedger(out / "pairs.csv", PAIR_COLUMNS, sort_key=lambda r: (r["pair"], r["key"])),
                  ResultLedger(out / "skipped.csv", SKIPPED_COLUMNS, sort_key=lambda r: (r["pair"], r["key"])),
                  label_column="pair", options=options)
    digests = [(input_digest(v), input_digest(o)) for v, o in specs]
    stems = [f"{v.stem}--{o.stem}" for v, o in specs]
    for (v, o), (dv, do), stem in zip(specs, digests, stems, strict=True):
        key = item_key(f"{dv}+{do}", f"beneath.{method}", key_params, checksum)
        name = f"{stem}-{key[:8]}" if stems.count(stem) > 1 else stem
        item = Item(key, name, {"visible": str(v), "other": str(o), "out_dir": str(out / name),
                                "digests": (dv, do)})
        bad = next((p for p, d in ((v, dv), (o, do)) if is_unreadable(d)), None)
        reason = None if bad is None else (f"cannot read {bad}" if bad.exists() else f"{bad}: no such file")
        batch.add(item, reason)

    cat = None
    recorded: set[str] = set()
    params_json = json.dumps(key_params, sort_keys=True)
    try:
        if use_catalog and batch.todo:
            from artlens.catalog import Catalog
            from artlens.catalog.record import recorded_item_keys

            cat = Catalog(catalog)  # a SQLite file or a postgresql:// URL
            recorded = recorded_item_keys(cat, f"beneath.{method}")

        def on_result(item: Item, s: dict[str, Any]) -> dict[str, Any]:
            if cat is not None and item.key not in recorded:
                from artlens.beneath.compare import record_comparison

                record_comparison(cat, s, item_key=item.key)
                recorded.add(item.key)
            r, d = s["registration"], s["disagreement"]
            return {"pair": item.label, "status": "ok", "method": s["method"], "heatmap": s["heatmap"],
                    "registration": "skipped" if r.get("skipped") else r.get("method_used", ""),
                    "residual_px": r.get("residual_px", ""), "valid_fraction": s["valid_fraction"],
                    "cells_flagged": d.get("n_flagged", ""), "out_dir": item.payload["out_dir"],
                    "visible": item.payload["visible"], "other": item.payload["other"],
                    "visible_sha256": item.payload["digests"][0], "other_sha256": item.payload["digests"][1],
                    "parameters": params_json, "model_checksum": checksum or "", "artlens_version": __version__}

        def skipped_row(item: Item, reason: str) -> dict[str, Any]:
            return {"pair": item.label, "visible": item.payload["visible"], "other": item.payload["other"]}

        batch.run(functools.partial(_make_comparer, {"compare": settings}), on_result=on_result,
                  skipped_row=skipped_row, send=lambda i: {k: i.payload[k] for k in ("visible", "other", "out_dir")},
                  num_gpus=options.gpus_per_worker(torch_device))
    finally:
        if cat is not None:
            cat.close()
    return CompareReport(total=batch.total, new=batch.new, done_before=batch.done_before, skipped=batch.failed,
                         skipped_before=batch.skipped_before, duplicates=batch.duplicates, out_dir=str(out),
                         pairs_csv=str(batch.results.path), skipped_csv=batch.skipped_csv, engine=options.engine,
                         workers=options.workers, failures=batch.failures)
