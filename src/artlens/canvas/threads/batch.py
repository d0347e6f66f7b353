"""Count a folder (or a CSV manifest) of plates on the batch engine, resumably.

``artlens threads count DIR_OR_CSV --out OUT`` runs :func:`count_plates`: every plate goes through
:func:`~artlens.canvas.threads.run.count_plate_file` (exactly what the single-plate command runs) into
its own subfolder ``OUT/<plate>/``, and one row per plate lands in ``OUT/plates.csv`` as soon as the
plate is done (appended, flushed and fsync'ed). Plates that fail (unreadable, no resolution, too
small, ...) land in ``OUT/skipped.csv`` with the reason; the rest go on.

Each row carries the plate's *key* (:func:`artlens.engine.item_key`: the file's SHA-256, the method, its
parameters and the model checksum). A second run over the same ``OUT`` skips every key already in
``plates.csv`` or ``skipped.csv``, so a run killed at any point resumes where it stopped, and a rerun does
nothing ("0 new"). The catalog gets one image and analysis record per plate and method, written by
this process as plates finish; a plate redone after a kill that struck between its catalog record and
its ``plates.csv`` row is not recorded twice (records already holding the same output files are kept).
At the end both CSV files are rewritten atomically, sorted by plate.
"""

from __future__ import annotations

import csv
import functools
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artlens.canvas.threads.spectral import SpectralParams
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
from artlens.io.scan import PLATE_SUFFIXES, scan_images

if TYPE_CHECKING:
    from artlens.canvas.threads.cnn import CnnParams

__all__ = ["PLATE_COLUMNS", "SKIPPED_COLUMNS", "BatchReport", "count_plates", "read_plate_list"]


PLATE_COLUMNS = ["plate", "status", "horizontal_threads_per_cm", "vertical_threads_per_cm",
                 "horizontal_interval_90", "vertical_interval_90", "horizontal_std", "vertical_std",
                 "windows", "px_per_cm", "method", "cross_check_flagged", "check", "out_dir", "path", "sha256",
                 "model_checksum", "artlens_version", "key"]
"""Columns of ``plates.csv``: densities in threads/cm (plate means of the valid windows), the 90 %
interval of each plate mean as ``lo;hi``, ``cross_check_flagged`` true where the CNN and the spectral
counter disagree on the plate (empty when no cross-check ran), ``check`` every reason to look at the plate
again, ``; ``-separated (empty when none): ``second opinion`` (the two methods disagree), ``octave doubt
<direction>`` (``harmonic_alternative``), ``few windows agree <direction>`` (see
:func:`~artlens.canvas.threads.run.few_windows_agree`)."""

SKIPPED_COLUMNS = ["plate", "path", "sha256", "reason", "key"]


@dataclass(frozen=True)
class PlateSpec:
    """One plate of the batch: its file and, from a manifest, its own resolution."""

    path: Path
    px_per_cm: float | None = None


@dataclass
class BatchReport:
    """What :func:`count_plates` did."""

    total: int
    new: int
    done_before: int
    skipped: int
    skipped_before: int
    out_dir: str
    plates_csv: str
    skipped_csv: str | None
    engine: str
    workers: int
    failures: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_plate_list(source: str | os.PathLike[str]) -> list[PlateSpec]:
    """Plates of a folder (image files by suffix, sorted) or a CSV manifest (column ``path``, optional
    ``px_per_cm``; relative paths resolve against the CSV's folder)."""
    src = Path(source).expanduser()
    if src.is_dir():
        return [PlateSpec(p) for p in scan_images(src, recursive=False, suffixes=PLATE_SUFFIXES)]
    if not src.is_file():
        raise InputNotFoundError(f"{src}: no such file or folder")
    try:
        with src.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UnreadableInputError(f"{src}: not a readable CSV ({exc})") from None
    if not rows or "path" not in rows[0]:
        raise InvalidParameterError(f"{src}: a plate manifest needs a 'path' column and at least one row")
    out = []
    for k, r in enumerate(rows, start=2):
        p = Path((r.get("path") or "").strip()).expanduser()
        if not str(p) or str(p) == ".":
            raise InvalidParameterError(f"{src}, line {k}: empty path")
        if not p.is_absolute():
            p = src.parent / p
        ppc = (r.get("px_per_cm") or "").strip()
        try:
            value = float(ppc) if ppc else None
        except ValueError:
            raise InvalidParameterError(f"{src}, line {k}: px_per_cm {ppc!r} is not a number") from None
        if value is not None and not value > 0:
            raise InvalidParameterError(f"{src}, line {k}: px_per_cm must be positive, got {ppc}")
        out.append(PlateSpec(p, value))
    return out


def _model_checksum(method: str, model: str | os.PathLike[str] | None) -> str | None:
    """SHA-256 of the CNN's weights from its ``config.json`` (no torch import), for the item keys."""
    if method == "spectral":
        return None
    from artlens.canvas.threads.cnn import DEFAULT_MODEL
    from artlens.models.pretrained import resolve_model_folder

    try:  # a folder or shipped weights by tag; InputNotFoundError is an OSError
        folder = resolve_model_folder(DEFAULT_MODEL if model is None else model, family="threads")
        return json.loads((folder / "config.json").read_text()).get("sha256")
    except (OSError, ValueError):
        raise InvalidParameterError(f"model {model}: not a thread-counting model folder (no config.json)",
                                    param="model") from None


def _names(specs: list[PlateSpec], digests: list[str]) -> list[str]:
    """Subfolder names: the file stem, with the digest's first 8 characters where stems repeat."""
    stems = [s.path.stem for s in specs]
    return [f"{stem}-{d[:8]}" if stems.count(stem) > 1 else stem for stem, d in zip(stems, digests, strict=True)]


def _make_counter(settings: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Worker factory: the per-plate function (the CNN is loaded once per worker)."""
    from artlens.canvas.threads.run import catalog_entry, count_plate_file

    fields: dict[str, Any] = {k: tuple(v) if k == "band" else v for k, v in settings["params"].items()}
    params = SpectralParams(**fields)
    cnn = None
    if settings["cnn"] is not None:  # the CNN is loaded once per worker
        from artlens.canvas.threads.cnn import CnnParams

        cnn = CnnParams(**settings["cnn"])
        cnn = replace(cnn, model=cnn.load())

    def count_one(job: dict[str, Any]) -> dict[str, Any]:
        entries: list[dict[str, Any]] = []

        def collect(plate, result, summary, files) -> None:  # noqa: ANN001
            entries.append(catalog_entry(plate, result, summary, files))

        outputs = count_plate_file(
            job["path"], job["out_dir"], params, method=settings["method"], cnn=cnn,
            px_per_cm=job["px_per_cm"], page=settings["page"], allow_huge=settings["allow_huge"],
            use_catalog=True, recorder=collect, second_opinion=settings.get("second_opinion", True))
        return {"summary": outputs.summary, "entries": entries}

    return count_one


def check_reasons(summary: dict[str, Any], check: dict[str, Any] | None) -> list[str]:
    """Why a counted plate should be looked at again (the ``check`` column of ``plates.csv``); empty when
    nothing says so."""
    from artlens.canvas.threads.run import checks

    out = ["second opinion"] if check is not None and check.get("plate_flagged") else []
    return out + [f"{kind} {d}" for kind, d in checks(summary)]


def _row(name: str, spec: PlateSpec, digest: str, key: str, out_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
    s = summary["cnn"] if summary.get("method") == "both" else summary
    check = summary.get("disagreement") or summary.get("cross_check") or summary.get("second_opinion")

    def interval(d: str) -> str:
        iv = s[d].get("interval_90")
        return "" if not iv else f"{iv[0]};{iv[1]}"

    def stat(d: str, k: str) -> Any:
        return s[d]["threads_per_cm"].get(k, "")

    return {
        "plate": name, "status": "ok",
        "horizontal_threads_per_cm": stat("horizontal", "mean"), "vertical_threads_per_cm": stat("vertical", "mean"),
        "horizontal_interval_90": interval("horizontal"), "vertical_interval_90": interval("vertical"),
        "horizontal_std": stat("horizontal", "std"), "vertical_std": stat("vertical", "std"),
        "windows": s.get("windows", ""), "px_per_cm": s.get("px_per_cm", ""), "method": summary.get("method", ""),
        "cross_check_flagged": "" if check is None else str(bool(check.get("plate_flagged"))).lower(),
        "check": "; ".join(check_reasons(s, check)),
        "out_dir": str(out_dir), "path": str(spec.path), "sha256": digest,
        "model_checksum": s.get("model_checksum") or "", "artlens_version": s.get("artlens_version", ""), "key": key,
    }


def count_plates(
    source: str | os.PathLike[str],
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
    options: BatchOptions | None = None,
    second_opinion: bool = True,
) -> BatchReport:
    """Count every plate of a folder or CSV manifest into ``out_dir`` (resumable; see the module docstring).

    Args:
        source: a folder of plates, or a CSV with a ``path`` column (and optionally ``px_per_cm``).
        out_dir: output folder: ``plates.csv``, ``skipped.csv`` and one subfolder per plate.
        params, method, cnn, page, allow_huge: as :func:`~artlens.canvas.threads.run.count_plate_file`
            (``cnn.model``: a checkpoint folder or a shipped model's name, loaded once per worker;
            ``cnn.device``: ``"cpu"`` or ``"cuda:N"``, and Ray actors then take one GPU each).
        px_per_cm: resolution for plates without one in the manifest (overrides the file's tags).
        catalog, use_catalog: where to record the analyses (one record per plate and method).
        second_opinion: as :func:`~artlens.canvas.threads.run.count_plate_file` (spectral only).
        options: :class:`~artlens.engine.BatchOptions`: engine, workers, Ray address, whether the items of
            ``skipped.csv`` run again, the progress callback.

    Returns:
        :class:`BatchReport`.
    """
    from artlens.canvas.threads.run import check_method, prepare_out_dir
    options = options or BatchOptions()
    options.check()
    check_method(method, cnn)
    params = params or SpectralParams()
    params.validate()
    cnn_settings = None
    if method == "spectral":
        cnn = None  # its settings, if any, have no use (check_method refused a model)
    else:
        from artlens.canvas.threads.cnn import CNNCounter, CnnParams

        cnn = cnn or CnnParams()
        cnn.validate()
        if isinstance(cnn.model, CNNCounter):
            raise InvalidParameterError("a batch loads its CNN in each worker: give model as a folder or a "
                                        "shipped model's name, not a loaded CNNCounter", param="model")
        cnn_settings = asdict(cnn) | {"model": None if cnn.model is None else str(cnn.model)}
    model = None if cnn_settings is None else cnn_settings["model"]
    device = "cpu" if cnn is None else cnn.device
    specs = read_plate_list(source)
    if not specs:
        raise InputNotFoundError(f"{source}: a folder with no plates in it (.tif, .tiff, .png, .jpg, .jpeg, .bmp)")
    out = prepare_out_dir(out_dir, [s.path for s in specs if s.path.exists()])
    checksum = _model_checksum(method, model)
    param_record = {"spectral": asdict(params), "page": page, "model": model, "allow_huge": allow_huge}
    if cnn is not None and (cnn.window_cm not in (None, params.window_cm) or cnn.step_cm != params.step_cm
                            or cnn.batch_size is not None):
        # CNN windows other than the spectral ones (a key without this is one of a run before CnnParams)
        param_record["cnn"] = {"window_cm": cnn.window_cm, "step_cm": cnn.step_cm, "batch_size": cnn.batch_size}
    if method == "spectral" and not second_opinion:  # (a key without this one is a checked run)
        param_record["second_opinion"] = False

    batch = Batch(ResultLedger(out / "plates.csv", PLATE_COLUMNS), ResultLedger(out / "skipped.csv", SKIPPED_COLUMNS),
                  label_column="plate", options=options)
    digests = [input_digest(s.path) for s in specs]  # unreadable ones are skipped below, keyed by their path
    names = _names(specs, digests)
    for spec, digest, name in zip(specs, digests, names, strict=True):
        ppc = spec.px_per_cm if spec.px_per_cm is not None else px_per_cm
        key = item_key(digest, f"threads.{method}", param_record | {"px_per_cm": ppc}, checksum)
        item = Item(key, name, {"path": str(spec.path), "out_dir": str(out / name), "px_per_cm": ppc,
                                "spec": spec, "digest": digest})
        batch.add(item, unreadable_reason(spec.path) if is_unreadable(digest) else None)

    cat = None
    recorded: set[tuple[str, str]] = set()
    try:
        if use_catalog and batch.todo:
            from artlens.catalog import Catalog

            cat = Catalog(catalog)  # a SQLite file or a postgresql:// URL
            for m in ("threads.spectral", "threads.cnn"):
                recorded |= {(m, json.dumps(sorted(a.get("outputs") or []))) for a in cat.analyses(method=m)}

        def skipped_row(item: Item, reason: str) -> dict[str, Any]:
            spec, digest = item.payload["spec"], item.payload["digest"]
            return {"plate": item.label, "path": str(spec.path), "sha256": "" if is_unreadable(digest) else digest}

        settings = {"params": asdict(params), "method": method, "cnn": cnn_settings, "page": page,
                    "allow_huge": allow_huge, "second_opinion": second_opinion}
        batch.run(functools.partial(_make_counter, settings),
                  on_result=functools.partial(_finish, cat=cat, recorded=recorded), skipped_row=skipped_row,
                  send=lambda i: {k: v for k, v in i.payload.items() if k in ("path", "out_dir", "px_per_cm")},
                  num_gpus=options.gpus_per_worker(device))
    finally:
        if cat is not None:
            cat.close()
    return BatchReport(total=batch.total, new=batch.new, done_before=batch.done_before, skipped=batch.failed,
                       skipped_before=batch.skipped_before, out_dir=str(out), plates_csv=str(batch.results.path),
                       skipped_csv=batch.skipped_csv, engine=options.engine, workers=options.workers,
                       failures=batch.failures)


def _finish(item: Item, result: dict[str, Any], *, cat: Any, recorded: set[tuple[str, str]]) -> dict[str, Any]:
    """Record a counted plate in the catalog (unless already there); its ``plates.csv`` row."""
    from artlens.canvas.threads.run import write_catalog_entry

    if cat is not None:
        for entry in result["entries"]:
            a = entry["analysis"]
            mark = (a["method"], json.dumps(sorted(a["outputs"])))
            if mark not in recorded:
                write_catalog_entry(cat, entry)
                recorded.add(mark)
    spec, digest = item.payload["spec"], item.payload["digest"]
    return _row(item.label, spec, digest, item.key, Path(item.payload["out_dir"]), result["summary"])
