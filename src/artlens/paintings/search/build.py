"""Build an index folder: embed every image of a collection once, resumably.

Embedding is done in chunks of ``batch_size`` images and each chunk is written as a Parquet part, so
a killed build resumes: a rerun reuses every vector whose image has the same path and SHA-256 (from
the parts and from an earlier ``vectors.parquet``) and embeds only new or changed images. The folder
layout is described in :mod:`artlens.paintings.search.store`.

The chunks run on the batch engine (:func:`artlens.engine.run_items`): with ``workers=1`` and engine
``local`` in this process with the embedder given, otherwise in a pool of processes or Ray actors that
each build the embedder once from its record (name and config) and embed whole chunks; each chunk's part
is written as soon as the chunk comes back, in whatever order chunks finish. A chunk is the same images
whichever worker embeds it, so the vectors are those of the one-process build.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from artlens.errors import InvalidParameterError, UnreadableInputError
from artlens.io.scan import IMAGE_SUFFIXES
from artlens.paintings.embedders import create_embedder, embedder_from_record, embedder_record, same_embedder
from artlens.paintings.embedding import Embedder, l2_normalise
from artlens.paintings.search.collection import RESERVED, clean_label, load_collection
from artlens.paintings.search.kinds import build_faiss_index, check_index_type, faiss_module
from artlens.paintings.search.results import IndexSummary
from artlens.paintings.search.store import (
    FORMAT_VERSION,
    INDEX_FORMAT,
    RERANK_VECTORS,
    clear_index,
    read_cache_file,
    read_json,
    rebuild_hint,
    vector_table,
    write_failures,
    write_parquet_atomic,
    write_rerank_vectors,
)
from artlens.provenance import provenance, resolve_path, sha256_file

__all__ = ["build_index"]


def _check_embedder(index_dir: Path, record: dict[str, Any]) -> None:
    for name in ("embedder.json", "index.json"):
        path = index_dir / name
        if not path.exists():
            continue
        data = read_json(path)
        old = None if data is None else (data.get("embedder") if name == "index.json" else data)
        if not isinstance(old, dict):
            raise UnreadableInputError(f"{path}: damaged; {rebuild_hint(index_dir)}")
        if not same_embedder(old, record):
            def show(r: dict[str, Any]) -> str:
                return f"{r.get('name')} {json.dumps(r.get('config'), sort_keys=True)}"

            raise InvalidParameterError(
                f"{index_dir} was built with embedder {show(old)}, not {show(record)}; vectors of different "
                "embedders cannot be mixed: pass the same `embedder`, or start over with `rebuild=True`",
                param="embedder")


class _Progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None  # a rich.progress.Progress while enabled

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def task(self, description: str, total: int) -> Any:
        return None if self._bar is None else self._bar.add_task(description, total=total)

    def advance(self, task: Any, n: int = 1) -> None:
        if self._bar is not None and task is not None:
            self._bar.advance(task, n)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _embed_chunk(emb: Embedder, paths: list[str]) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    batch = emb.embed_paths(paths)
    return [str(p) for p in batch.paths], np.asarray(batch.vectors, dtype=np.float32), list(batch.failures)


def _make_chunk_embedder(record: dict[str, Any], device: str) -> Callable[[list[str]], Any]:
    """Worker factory: the embedder rebuilt from its record (once per worker), on ``device``."""
    from artlens.devices import place_extractor

    emb = embedder_from_record(record)  # refuses other weights or another vector length
    if getattr(emb, "extractor", None) is not None:
        place_extractor(emb, device)
    return functools.partial(_embed_chunk, emb)


def build_index(
    paths_or_dataset: Any,
    index_dir: str | os.PathLike[str],
    embedder: Embedder | str,
    *,
    batch_size: int = 32,
    labels: Mapping[str, Mapping[str, Any]] | None = None,
    rebuild: bool = False,
    progress: bool = True,
    index_type: str = "auto",
    engine: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    device: str = "cpu",
) -> IndexSummary:
    """Embed a collection once and write a searchable index folder (layout in :mod:`artlens.paintings.search.store`).

    Args:
        paths_or_dataset: anything :func:`load_collection` takes: a folder, a CSV, a dataset or image paths.
        index_dir: index folder (created).
        embedder: an :class:`~artlens.paintings.embedding.Embedder` or a registered name.
        batch_size: images per embedding call and per Parquet part (the unit of resumption).
        labels: extra labels, ``{path: {column: value}}``; they override the collection's own.
        rebuild: discard what the folder holds (our files only) and embed everything again.
        progress: show a progress bar on stderr.
        index_type: ``"auto"``, ``"flat"``, ``"hnsw"``, ``"ivf"`` or ``"pq"`` (see :func:`build_faiss_index`).
        engine, workers, ray_address: :func:`artlens.engine.run_items` (chunks of ``batch_size`` images per
            item); ``workers=1`` with engine ``local`` embeds in this process with ``embedder`` itself.
        device: a resolved device (``cpu``, ``cuda:N``) for the workers' embedders (with engine ``ray`` and a
            GPU each actor takes one); the in-process embedder stays where it is.

    Returns:
        An :class:`IndexSummary`; ``reused`` counts the vectors taken from an earlier run.

    Raises:
        InvalidParameterError: empty collection, no readable image, bad batch size or index type, or a
            folder built by another embedder (use ``rebuild=True``).
        InputNotFoundError: the collection folder or CSV does not exist.

    Unreadable images are skipped: listed in ``failures.csv`` with their reason and summed up in one
    warning (``notice:`` on the command line).
    """
    from artlens.engine import Item, check_engine, run_items

    if int(batch_size) < 1:
        raise InvalidParameterError(f"batch size {batch_size}: need at least 1")
    check_index_type(index_type)
    check_engine(engine, workers, ray_address)
    coll = load_collection(paths_or_dataset)
    if not coll.paths:
        raise InvalidParameterError(f"{coll.source or 'collection'}: no images to index "
                                    f"(looked for {', '.join(IMAGE_SUFFIXES)})")
    all_labels: dict[str, dict[str, str]] = {p: dict(v) for p, v in coll.labels.items()}
    for p, extra in (labels or {}).items():
        clean = {str(k): c for k, v in extra.items() if str(k) not in RESERVED and (c := clean_label(v)) is not None}
        all_labels.setdefault(resolve_path(p), {}).update(clean)
    emb = create_embedder(embedder) if isinstance(embedder, str) else embedder
    record = embedder_record(emb)
    dim = record["dim"]

    index_dir = Path(index_dir).expanduser()
    if index_dir.exists() and not index_dir.is_dir():
        raise InvalidParameterError(f"{index_dir}: is a file, not an index folder")
    if rebuild and index_dir.exists():
        clear_index(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    _check_embedder(index_dir, record)
    (index_dir / "embedder.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    for stale in ("index.json", RERANK_VECTORS):  # the folder is incomplete until index.json is written again
        with contextlib.suppress(FileNotFoundError):
            (index_dir / stale).unlink()
    parts_dir = index_dir / "parts"
    parts_dir.mkdir(exist_ok=True)

    # earlier vectors: {(path, sha256): (block, row)}
    blocks: list[np.ndarray] = []
    cache: dict[tuple[str, str], tuple[int, int]] = {}
    part_files = sorted(parts_dir.glob("part-*.parquet"))
    for f in [index_dir / "vectors.parquet", *part_files]:
        if not f.is_file():
            continue
        got = read_cache_file(f, dim)
        if got is None:
            continue
        keys, vec = got
        blocks.append(vec)
        for row, key in enumerate(keys):
            cache[key] = (len(blocks) - 1, row)
    next_part = 1 + max((int(f.stem.split("-")[1]) for f in part_files if f.stem.split("-")[1].isdigit()),
                        default=-1)

    failures: list[tuple[str, str]] = list(coll.missing)
    label_columns = sorted({k for v in all_labels.values() for k in v})
    shas: dict[str, str] = {}
    embedded = 0
    with _Progress(progress) as bar:
        task = bar.task("hashing", len(coll.paths))
        for p in coll.paths:
            try:
                shas[p] = sha256_file(p)
            except FileNotFoundError:
                failures.append((p, f"{p}: no such file"))
            except OSError as exc:
                failures.append((p, f"{p}: cannot be read ({exc.strerror or type(exc).__name__})"))
            bar.advance(task)
        readable = [p for p in coll.paths if p in shas]
        todo = [p for p in readable if (p, shas[p]) not in cache]
        reused = len(readable) - len(todo)
        task = bar.task("embedding", len(todo))
        items = [Item(str(k), f"images {k * int(batch_size) + 1}-{k * int(batch_size) + len(chunk)}", list(chunk))
                 for k, chunk in enumerate(_chunks(todo, int(batch_size)))]
        factory: Callable[[], Callable[[list[str]], Any]]
        if engine == "local" and int(workers) == 1:
            factory = functools.partial(functools.partial, _embed_chunk, emb)  # this process, this embedder
        else:
            factory = functools.partial(_make_chunk_embedder, record, device)
        for outcome in run_items(items, factory, engine=engine, workers=workers, ray_address=ray_address,
                                 num_gpus=1.0 if engine == "ray" and device.startswith("cuda") else 0.0):
            chunk = outcome.item.payload
            if not outcome.ok:  # the chunk's images are embedded again by the next run
                failures.extend((resolve_path(p), outcome.error or "embedding failed") for p in chunk)
                bar.advance(task, len(chunk))
                continue
            raw_paths, vec, chunk_failures = outcome.result
            if vec.ndim != 2 or vec.shape[1] != dim:
                raise InvalidParameterError(f"embedder {emb.name!r} returned vectors of shape {vec.shape}, "
                                            f"expected (n, {dim})")
            got_paths = [resolve_path(p) for p in raw_paths]
            bad = ~np.isfinite(vec).all(axis=1)
            for i in np.flatnonzero(bad):
                failures.append((got_paths[i], "embedding is not finite"))
            keep = np.flatnonzero(~bad)
            got_paths = [got_paths[i] for i in keep]
            vec = l2_normalise(vec[keep]) if keep.size else np.zeros((0, dim), np.float32)
            failures.extend((resolve_path(p), r) for p, r in chunk_failures)
            if got_paths:
                got_shas = [shas.get(p, "") for p in got_paths]
                table = vector_table(got_paths, got_shas, vec, all_labels, label_columns)
                write_parquet_atomic(table, parts_dir / f"part-{next_part:05d}.parquet")
                next_part += 1
                blocks.append(vec)
                for row, key in enumerate(zip(got_paths, got_shas, strict=True)):
                    cache[key] = (len(blocks) - 1, row)
                embedded += len(got_paths)
            bar.advance(task, len(chunk))

    final = [p for p in readable if (p, shas[p]) in cache]
    fail_csv = index_dir / "failures.csv"
    write_failures(fail_csv, failures)
    if failures:
        first_path, first_reason = failures[0]
        warnings.warn(f"{len(failures)} of {len(coll.paths) + len(coll.missing)} images could not be read and were "
                      f"skipped "
                      f"(first: {first_reason if first_path in first_reason else f'{first_path}: {first_reason}'}); "
                      f"see {fail_csv}", stacklevel=2)
    if not final:
        raise InvalidParameterError(f"{coll.source or 'collection'}: none of the {len(coll.paths) + len(coll.missing)} "
                                    f"images could be read; see {fail_csv}")
    where = [cache[(p, shas[p])] for p in final]
    vectors = np.empty((len(final), dim), dtype=np.float32)
    by_block: dict[int, list[tuple[int, int]]] = {}
    for out_row, (b, r) in enumerate(where):
        by_block.setdefault(b, []).append((out_row, r))
    for b, pairs in by_block.items():
        idx = np.array(pairs)
        vectors[idx[:, 0]] = blocks[b][idx[:, 1]]

    write_parquet_atomic(vector_table(final, [shas[p] for p in final], vectors, all_labels, label_columns),
                          index_dir / "vectors.parquet")
    index, params = build_faiss_index(vectors, index_type)
    faiss = faiss_module()
    tmp = index_dir / "index.faiss.tmp"
    faiss.write_index(index, str(tmp))
    os.replace(tmp, index_dir / "index.faiss")
    if params["type"] == "pq":  # the re-ranking store that SearchIndex.open memory-maps
        write_rerank_vectors(index_dir / RERANK_VECTORS, vectors)

    from artlens import __version__

    settings = {"embedder": record["name"], "embedder_config": record["config"], "index_type": index_type,
                "batch_size": int(batch_size)}
    info = {
        "format": INDEX_FORMAT,
        "format_version": FORMAT_VERSION,
        "embedder": record,
        "dim": dim,
        "count": len(final),
        "faiss": params,
        "label_columns": label_columns,
        "collection": {"source": coll.source, "images": len(coll.paths) + len(coll.missing), "indexed": len(final),
                       "reused": reused, "embedded": embedded, "failures": len(failures)},
        "artlens_version": __version__,
        "provenance": provenance("search-index", settings, record["checksum"]),
    }
    info["created_utc"] = info["provenance"]["created_utc"]
    tmp = index_dir / "index.json.tmp"
    tmp.write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, index_dir / "index.json")
    shutil.rmtree(parts_dir, ignore_errors=True)
    return IndexSummary(index_dir, len(final), reused, embedded, failures, record["name"], dim, params)

