"""``artlens paintings verify --pairs CSV --out OUT``: many painting pairs on the batch engine, resumably.

Every pair is scored exactly as the one-process path scores it (:func:`~artlens.paintings.verify.verify_pairs`:
calibrated same-artist probability, typicality against the verifier's bank) by a worker that loads the verifier
once; one row per pair lands in ``OUT/pairs.csv`` as soon as the pair is done (appended, flushed and fsync'ed).
Pairs with an image that cannot be read land in ``OUT/skipped.csv`` with the reason; the rest go on.

**The background.** A centring verifier is adapted by default to the collection at hand (the pairs' distinct
images, or ``background``): :meth:`~artlens.paintings.verify.Verifier.adapt` sets the mean features it centres
on. That is computed once, here in the driver, and the *means* (not the images) go to the workers. They are
also kept in ``OUT/background.npz`` with a digest of what they were computed from (the verifier, the background
images' SHA-256), so a resumed run reuses them bit for bit instead of reading the background again, and its
probabilities are exactly those of an uninterrupted run.

**Each image's features once, in batches.** For a metric verifier (the default) the driver extracts the backbone
features of every distinct image the run needs (the background's and the pairs' still to score) in batches, once,
and keeps them in ``OUT/features/`` (parts of :data:`FEATURES_CHUNK` images, each written atomically as it is
done), keyed by the image's SHA-256 under a digest of the verifier (checksum, backbone checksum, extractor
settings). The centring reuses them, and each pair goes to its worker with its two images' pooled features (the
global view and the patches' mean: two ``D``-vectors each, 11 KB for the shipped verifier), which is all the
scoring reads (:meth:`~artlens.paintings.verify.Verifier.remember`); no worker reads an image. A resumed run reads
the features back instead of extracting them again, so its scores are bit for bit those of an uninterrupted run.
A Siamese verifier scores feature maps: its worker reads the pair's images itself, as before.

A pair's key (:func:`artlens.engine.item_key`) is both images' SHA-256, the verifier's checksum and settings
(its provenance record) and the digest of the means it centres on: another background gives other keys. A
second run skips every key already in ``pairs.csv`` or ``skipped.csv`` (:class:`artlens.engine.Batch`), so a
killed run resumes and a rerun says "0 new". The catalog gets one ``verify.pair`` analysis per pair, written
by this process, with the key in its summary (never recorded twice).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artlens.engine import Batch, BatchOptions, Item, ResultLedger, input_digest, is_unreadable, item_key
from artlens.errors import InvalidParameterError, UnreadableInputError
from artlens.paintings.batch import BatchReport

__all__ = ["PAIR_COLUMNS", "SKIPPED_COLUMNS", "VERIFY_METHOD", "FeatureStore", "VerifyReport", "verify_pairs_batch"]

VERIFY_METHOD = "verify.pair"

PAIR_COLUMNS = ["pair", "status", "a", "b", "same_artist_probability", "score", "probability_as_calibrated",
                "typicality", "abstained", "a_sha256", "b_sha256", "centring", "parameters", "model_checksum",
                "artlens_version", "key"]
"""Columns of ``pairs.csv``: the probability (after typicality tempering), the raw ``score`` (cosine or logit),
``probability_as_calibrated`` and ``typicality`` (``typical`` / ``atypical`` / ``outside``; empty without a
bank), ``centring`` (SHA-256 of the mean features the verifier centred on; empty for a verifier without
centring), ``parameters`` (JSON: the verifier's settings that the key holds)."""

SKIPPED_COLUMNS = ["pair", "a", "b", "reason", "key"]

BACKGROUND_FILE = "background.npz"
FEATURES_DIR = "features"
FEATURES_CHUNK = 64
"""Images extracted (in the extractor's batches) and written to one ``OUT/features/`` part at a time."""
_IN_PROCESS: dict[str, Any] = {}
"""The driver's verifier, for a worker built in the driver's own process (``--engine local --workers 1``) to use
instead of loading it again; keyed by a token that holds this process's id (a spawned worker never matches)."""


@dataclass
class VerifyReport(BatchReport):
    """What :func:`verify_pairs_batch` did; ``centred_on`` as the verifier's record says it (the background
    collection, ``"training collection"``, or ``None`` for a verifier without centring)."""

    centred_on: Any = None
    background_reused: bool = False


def _means(verifier: Any) -> tuple[np.ndarray, np.ndarray] | None:
    head = verifier.head
    if not getattr(head, "centre", False):
        return None
    return (head.mean_global.detach().cpu().numpy().astype(np.float32),
            head.mean_patch.detach().cpu().numpy().astype(np.float32))


def _digest_of_means(means: tuple[np.ndarray, np.ndarray] | None) -> str:
    if means is None:
        return ""
    h = hashlib.sha256()
    for m in means:
        h.update(np.ascontiguousarray(m, np.float32).tobytes())
    return h.hexdigest()


def _read_background(path: Path, request: str) -> tuple[tuple[np.ndarray, np.ndarray] | None, dict[str, Any]] | None:
    """The means kept for ``request`` in ``background.npz``, ``(None, meta)`` when the images were too few to
    adapt to, or ``None`` when the file is missing, damaged or for another request."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if not isinstance(meta, dict) or meta.get("request") != request:
                return None
            if not meta.get("adapted"):
                return None, meta
            return (z["mean_global"].astype(np.float32), z["mean_patch"].astype(np.float32)), meta
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_background(path: Path, means: tuple[np.ndarray, np.ndarray] | None, meta: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    arrays: dict[str, Any] = {"meta": np.array(json.dumps(meta, sort_keys=True))}
    if means is not None:
        arrays |= {"mean_global": means[0], "mean_patch": means[1]}
    with tmp.open("wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _adapt(verifier: Any, out: Path, paths: list[str], digests: dict[str, str], *, source: str, required: bool,
           prefetch: Callable[[list[str]], None]) -> bool:
    """Centre ``verifier`` on ``paths`` (see the module docstring); returns whether ``background.npz`` served.

    ``required`` (an explicit background): too few readable images is an error about ``background``;
    otherwise (the pairs' own images, automatic) the verifier keeps the training collection's mean. ``prefetch``
    puts the images' features where :meth:`~artlens.paintings.verify.Verifier.adapt` finds them (the store)."""
    import warnings

    from artlens.paintings.verify import MIN_BACKGROUND

    if not required and len(paths) < MIN_BACKGROUND:
        return False
    request = hashlib.sha256(json.dumps({
        "verifier": verifier.checksum, "backbone": verifier.extractor.checksum,
        "extractor": verifier.extractor.config(), "required": required,
        "images": sorted(digests.get(p) or input_digest(p) for p in paths)}, sort_keys=True, default=str).encode()
    ).hexdigest()
    file = out / BACKGROUND_FILE
    kept = _read_background(file, request)
    if kept is not None:
        means, meta = kept
        if means is not None:
            verifier.centre_on(*means, meta["info"] | {"source": source})
        return True
    prefetch(paths)
    try:
        with warnings.catch_warnings():
            if not required:
                warnings.simplefilter("ignore")
            info = verifier.adapt(paths, source=source)
    except InvalidParameterError as exc:
        if required:
            raise InvalidParameterError(str(exc), param="background") from None
        _write_background(file, None, {"request": request, "adapted": False})
        return False
    _write_background(file, _means(verifier), {"request": request, "adapted": True, "info": info})
    return False


Row = tuple[np.ndarray, np.ndarray]
"""An image's pooled features as a metric verifier keeps them: ``(global (D,), patches' mean (1, D))``."""


def _features_key(verifier: Any) -> str:
    """Digest of what an image's features depend on: the verifier, its backbone and the extractor's settings."""
    return hashlib.sha256(json.dumps({"verifier": verifier.checksum, "backbone": verifier.extractor.checksum,
                                      "extractor": verifier.extractor.config(), "rows": "global+patch-mean"},
                                     sort_keys=True, default=str).encode()).hexdigest()


class FeatureStore:
    """``OUT/features/``: pooled features of images by SHA-256, for one verifier (its :func:`_features_key`).

    Parts of up to :data:`FEATURES_CHUNK` images (``part-<digest>.npz``: ``key``, ``sha256``, ``global_``,
    ``patches``), each written atomically once its images are extracted, so a killed run keeps every finished
    part; a part of another verifier, or a damaged one, is ignored."""

    def __init__(self, folder: Path, key: str) -> None:
        self.folder, self.key = folder, key
        self.rows: dict[str, Row] = {}
        for part in sorted(folder.glob("part-*.npz")) if folder.is_dir() else []:
            try:
                with np.load(part, allow_pickle=False) as z:
                    if str(z["key"]) != key:
                        continue
                    g, pt = z["global_"], z["patches"]
                    self.rows |= {str(d): (g[i], pt[i]) for i, d in enumerate(z["sha256"])}
            except (OSError, ValueError, KeyError, TypeError):
                continue  # damaged (a kill cannot leave one: parts are replaced atomically): extracted again

    def ensure(self, extractor: Any, paths: Sequence[str], digests: dict[str, str]) -> dict[str, str]:
        """Extract the features of ``paths`` not held yet (one path per distinct SHA-256, in batches), keep them
        and write them as parts; returns ``path -> reason`` of the images that could not be read."""
        from artlens.paintings.verify import _rows

        todo = list({digests[p]: p for p in reversed(paths) if digests[p] not in self.rows}.values())[::-1]
        failed: dict[str, str] = {}
        for start in range(0, len(todo), FEATURES_CHUNK):
            f = extractor.extract(todo[start : start + FEATURES_CHUNK])
            failed |= dict(f.failures)
            if not f.paths:
                continue
            got = {digests[p]: r for p, r in _rows(f).items()}
            self._write(got)
            self.rows |= got
        return failed

    def _write(self, rows: dict[str, Row]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        shas = sorted(rows)
        name = "part-" + hashlib.sha256("".join(shas).encode()).hexdigest()[:20] + ".npz"
        tmp = self.folder / (name + ".tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, key=np.array(self.key), sha256=np.array(shas), global_=np.stack([rows[d][0] for d in shas]),
                     patches=np.stack([rows[d][1] for d in shas]))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.folder / name)


def _make_scorer(settings: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Worker factory: the per-pair function. The verifier is loaded once per worker (in the driver's own process
    the driver's is used) and centred on the driver's means; a metric verifier scores the features that come with
    each pair (``job["features"]``: path -> :data:`Row`, or the reason it could not be read)."""
    from artlens.devices import place_extractor
    from artlens.paintings.verify import load_verifier, verify_pairs

    verifier = _IN_PROCESS.get(settings["token"]) or load_verifier(settings["model"])
    place_extractor(verifier, settings["device"])
    if settings["means"] is not None:
        mean_global, mean_patch = settings["means"]
        verifier.centre_on(mean_global, mean_patch, settings["background"])

    def score(job: dict[str, Any]) -> dict[str, Any]:
        features = job.get("features")
        if features is not None:
            for row in features.values():
                if isinstance(row, str):
                    raise UnreadableInputError(row)
            verifier._memo.clear()  # only this pair's images: the scoring reads them from here
            verifier._memo.update(features)
        row = verify_pairs(verifier, [(job["a"], job["b"])])[0]
        if "error" in row:
            raise UnreadableInputError(row["error"])
        return row

    return score


def verify_pairs_batch(
    pairs: Sequence[tuple[str, str]],
    out_dir: str | os.PathLike[str],
    model: str | os.PathLike[str] | None = None,
    *,
    background: Sequence[str] | None = None,
    background_source: str = "",
    adapt: bool = True,
    pairs_source: str = "",
    device: str = "cpu",
    catalog: str | os.PathLike[str] | None = None,
    use_catalog: bool = True,
    options: BatchOptions | None = None,
) -> VerifyReport:
    """Score every pair into ``out_dir/pairs.csv`` (resumable; see the module docstring).

    Args:
        pairs: ``(a, b)`` image paths (``read_pairs_csv`` of a pairs file).
        out_dir: output folder: ``pairs.csv``, ``skipped.csv``, ``background.npz`` and ``features/`` (a metric
            verifier's features of the images, by SHA-256: a resumed run does not extract them again).
        model: a verifier folder; ``None``: the shipped default. Loaded here (for the background) and once per
            worker.
        background, background_source: images to centre on (a collection's paths) and what to call them;
            at least :data:`~artlens.paintings.verify.MIN_BACKGROUND` must be readable.
        adapt: without ``background``, centre on the pairs' distinct images when there are enough (as
            ``verify --pairs`` does); ``False`` keeps the training collection's mean.
        pairs_source: the pairs file, recorded in the catalog's parameters.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; with engine ``ray`` and a GPU each actor takes one.
        catalog, use_catalog: where to record the results (one ``verify.pair`` analysis per pair).
        options: :class:`~artlens.engine.BatchOptions`: engine, workers, Ray address, whether the items of
            ``skipped.csv`` run again, the progress callback.
    """
    from artlens import __version__
    from artlens.devices import place_extractor, resolve_device
    from artlens.paintings.verify import load_verifier

    options = options or BatchOptions()
    options.check()
    if not pairs:
        raise InvalidParameterError("the pairs file lists no pairs", param="pairs")
    torch_device = resolve_device(device)
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise InvalidParameterError(f"out_dir {out} exists and is not a folder", param="out_dir")
    model_ref = None if model is None else str(Path(model).expanduser().resolve())
    verifier = load_verifier(model_ref)
    out.mkdir(parents=True, exist_ok=True)

    pairs = [(os.path.abspath(a), os.path.abspath(b)) for a, b in pairs]  # workers may run in another folder
    distinct = list(dict.fromkeys(p for pair in pairs for p in pair))
    digests = {p: input_digest(p) for p in distinct}
    place_extractor(verifier, torch_device)
    # a metric verifier: every image's features extracted once, in batches, here, kept in OUT/features/
    store = FeatureStore(out / FEATURES_DIR, _features_key(verifier)) if verifier.config.kind == "metric" else None
    unread: dict[str, str] = {}

    def prefetch(paths: list[str]) -> None:
        if store is None:
            return
        for p in paths:
            if p not in digests:
                digests[p] = input_digest(p)
        readable = [p for p in paths if not is_unreadable(digests[p])]
        unread.update(store.ensure(verifier.extractor, readable, digests))
        verifier._memo.update({p: store.rows[digests[p]] for p in readable if digests[p] in store.rows})

    reused = False
    if background is not None:
        reused = _adapt(verifier, out, [str(p) for p in background], digests, source=background_source,
                        required=True, prefetch=prefetch)
    elif adapt and getattr(verifier.head, "centre", False):
        reused = _adapt(verifier, out, [p for p in distinct if not is_unreadable(digests[p])], digests,
                        source=background_source or f"{pairs_source or 'the pairs'} (its distinct images, automatic)",
                        required=False, prefetch=prefetch)
    record = verifier.record()
    means = _means(verifier)
    centring = _digest_of_means(means)
    checksum = verifier.checksum
    key_params = {k: v for k, v in record.items() if k not in ("model", "centred_on")} | {"centring": centring}
    params_json = json.dumps({k: v for k, v in key_params.items() if k != "centring"}, sort_keys=True, default=str)

    batch = Batch(ResultLedger(out / "pairs.csv", PAIR_COLUMNS, sort_key=lambda r: (r["a"], r["b"], r["key"])),
                  ResultLedger(out / "skipped.csv", SKIPPED_COLUMNS, sort_key=lambda r: (r["a"], r["b"], r["key"])),
                  label_column="pair", options=options)
    for a, b in pairs:
        da, db = digests[a], digests[b]
        item = Item(item_key(f"{da}+{db}", VERIFY_METHOD, key_params, checksum), f"{Path(a).name} vs {Path(b).name}",
                    {"a": a, "b": b, "digests": (da, db)})
        bad = next((p for p, d in ((a, da), (b, db)) if is_unreadable(d)), None)
        reason = None if bad is None else (f"cannot read {bad}" if Path(bad).exists() else f"{bad}: no such file")
        batch.add(item, reason)

    cat = None
    recorded: set[str] = set()
    token = f"{os.getpid()}:{id(verifier)}"
    try:
        if use_catalog and batch.todo:
            from artlens.catalog import Catalog
            from artlens.catalog.record import recorded_item_keys

            cat = Catalog(catalog)  # a SQLite file or a postgresql:// URL
            recorded = recorded_item_keys(cat, VERIFY_METHOD)

        def on_result(item: Item, r: dict[str, Any]) -> dict[str, Any]:
            if cat is not None and item.key not in recorded:
                from artlens.catalog.record import Analysis, add_analyses

                add_analyses(cat, [Analysis(VERIFY_METHOD, {"pairs": pairs_source, "verifier": record},
                                            r | {"item_key": item.key}, image=item.payload["a"],
                                            model_checksum=checksum)])
                recorded.add(item.key)
            t = r.get("typicality") or {}
            return {"pair": item.label, "status": "ok", "a": item.payload["a"], "b": item.payload["b"],
                    "same_artist_probability": r["same_artist_probability"], "score": r["score"],
                    "probability_as_calibrated": r.get("probability_as_calibrated", r["same_artist_probability"]),
                    "typicality": t.get("status", ""), "abstained": r.get("abstained", ""),
                    "a_sha256": item.payload["digests"][0], "b_sha256": item.payload["digests"][1],
                    "centring": centring, "parameters": params_json, "model_checksum": checksum or "",
                    "artlens_version": __version__}

        def skipped_row(item: Item, reason: str) -> dict[str, Any]:
            return {"pair": item.label, "a": item.payload["a"], "b": item.payload["b"]}

        def send(i: Item) -> dict[str, Any]:
            a, b = i.payload["a"], i.payload["b"]
            if store is None:  # a Siamese verifier: the worker reads the images
                return {"a": a, "b": b}
            pairs_digests = zip((a, b), i.payload["digests"], strict=True)
            return {"a": a, "b": b, "features": {p: store.rows.get(d) or unread.get(p, f"{p}: unreadable")
                                                 for p, d in pairs_digests}}

        if store is not None and batch.todo:
            prefetch(list(dict.fromkeys(p for i in batch.todo for p in (i.payload["a"], i.payload["b"]))))
        _IN_PROCESS[token] = verifier  # --engine local --workers 1 builds its worker here: no second load
        settings = {"model": model_ref, "device": torch_device, "means": means, "background": verifier.background,
                    "token": token}
        batch.run(functools.partial(_make_scorer, settings), on_result=on_result, skipped_row=skipped_row,
                  send=send, num_gpus=options.gpus_per_worker(torch_device))
    finally:
        _IN_PROCESS.pop(token, None)
        if cat is not None:
            cat.close()
    return VerifyReport(total=batch.total, new=batch.new, done_before=batch.done_before, skipped=batch.failed,
                        skipped_before=batch.skipped_before, duplicates=batch.duplicates, out_dir=str(out),
                        results_csv=str(batch.results.path), skipped_csv=batch.skipped_csv, engine=options.engine,
                        workers=options.workers, device=torch_device, failures=batch.failures,
                        centred_on=record["centred_on"], background_reused=reused)
