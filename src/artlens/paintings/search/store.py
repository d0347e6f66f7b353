"""The index folder on disk: its format, the Parquet vector table and the small files around it.

Layout (written by :func:`~artlens.paintings.search.build_index`)::

    INDEX/
      index.json        what built it: embedder (name, config, checksum), dim, count, FAISS type and
                        parameters, label columns, artlens version, time, provenance
      embedder.json     the embedder record alone (written first, so that a resumed build can check it)
      vectors.parquet   one row per indexed image, in FAISS id order: path (absolute), sha256,
                        vector (fixed-size list of float32), label columns (artist, style, label, ...)
      index.faiss       FAISS index over the L2-normalised vectors, inner product (= cosine)
      vectors.f32.npy   pq indexes only: the exact vectors again, raw float32 ``(count, dim)`` in id
                        order (a NumPy ``.npy``), the re-ranking store that
                        :meth:`~artlens.paintings.search.SearchIndex.open` memory-maps instead of
                        holding the vectors in RAM; made on first open for folders built without it
      failures.csv      path, reason: images that could not be read (skipped)
      parts/            Parquet chunks written while embedding (part-00000.parquet, ...); removed
                        once the index is complete

Every file is written to a temporary name and renamed, so a killed build never leaves half a file.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "INDEX_FORMAT",
    "OUTPUTS",
    "RERANK_VECTORS",
    "clear_index",
    "open_rerank_vectors",
    "read_cache_file",
    "read_json",
    "rebuild_hint",
    "vector_table",
    "vectors_from_column",
    "write_failures",
    "write_parquet_atomic",
    "write_rerank_vectors",
]

INDEX_FORMAT = "artlens-search-index"
FORMAT_VERSION = 1

RERANK_VECTORS = "vectors.f32.npy"
"""The memory-mapped re-ranking store of a pq index (see :func:`write_rerank_vectors`)."""

RERANK_MADVISE_RANDOM = True
"""Tell the kernel that the re-ranking store is read at random (``MADV_RANDOM``: no read-ahead, one
page per fault), so that only the candidates' pages come into memory; ``False`` leaves the default
read-ahead (``benchmarks/bench_search_scale.py --store`` measures both)."""

OUTPUTS = ("index.json", "embedder.json", "vectors.parquet", "index.faiss", RERANK_VECTORS, "failures.csv")
"""The files a build writes (``parts/`` besides); :func:`clear_index` removes these and nothing else."""


def rebuild_hint(index_dir: Path | str) -> str:
    """The advice appended to a damaged-index error (parameters in backticks, which the CLI shows as
    its command and flag)."""
    return f"rebuild {index_dir} with `build_index` (`rebuild=True`)"


def vector_table(paths: Sequence[str], shas: Sequence[str], vectors: np.ndarray,
                  labels: Mapping[str, Mapping[str, str]] | None, columns: Sequence[str]):
    import pyarrow as pa

    v = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = v.shape[1]
    arrays = {
        "path": pa.array(list(paths), pa.string()),
        "sha256": pa.array(list(shas), pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1), pa.float32()), dim),
    }
    labels = labels or {}
    for col in columns:
        arrays[col] = pa.array([(labels.get(p) or {}).get(col) for p in paths], pa.string())
    return pa.table(arrays)


def write_parquet_atomic(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def vectors_from_column(column: Any, dim: int | None = None) -> np.ndarray:
    """``(n, dim)`` float32 from a (chunked) fixed-size-list Parquet column."""
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(arr) == 0:
        return np.zeros((0, dim or 0), dtype=np.float32)
    width = arr.type.list_size
    flat = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(len(arr), width)


def read_cache_file(path: Path, dim: int) -> tuple[list[tuple[str, str]], np.ndarray] | None:
    """``(keys, vectors)`` of one Parquet file of earlier vectors, or ``None`` when it cannot be used."""
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path, columns=["path", "sha256", "vector"])
        vec = vectors_from_column(t.column("vector"), dim)
    except Exception as exc:  # noqa: BLE001 - a damaged cache file only costs re-embedding
        warnings.warn(f"{path.name}: cannot be read ({type(exc).__name__}); its images are embedded again",
                      stacklevel=3)
        return None
    if vec.shape[0] and vec.shape[1] != dim:
        return None
    keys = list(zip(t.column("path").to_pylist(), t.column("sha256").to_pylist(), strict=True))
    return keys, vec


def clear_index(index_dir: Path) -> None:
    """Remove what a build writes (and nothing else the folder may hold)."""
    for name in OUTPUTS:
        with contextlib.suppress(FileNotFoundError):
            (index_dir / name).unlink()
    shutil.rmtree(index_dir / "parts", ignore_errors=True)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_failures(path: Path, failures: Sequence[tuple[str, str]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "reason"])
        w.writerows(failures)
    os.replace(tmp, path)


def write_rerank_vectors(path: Path, vectors: np.ndarray, chunk_rows: int = 65_536) -> None:
    """Write ``vectors`` as a raw float32 ``.npy`` at ``path``, atomically (a temporary file of this
    process, flushed to disk, then renamed), copying ``chunk_rows`` rows at a time so that a
    memory-mapped source is never read into RAM whole. Two processes doing it at once both succeed."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    n, dim = vectors.shape
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, dim))
        for i in range(0, n, chunk_rows):
            out[i:i + chunk_rows] = vectors[i:i + chunk_rows]
        out.flush()
        del out
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def open_rerank_vectors(path: Path, count: int, dim: int) -> np.ndarray | None:
    """The re-ranking store at ``path`` memory-mapped read-only (``(count, dim)`` float32, C order),
    with the kernel told that its pages are read at random (no read-ahead: a query touches scattered
    rows; :data:`RERANK_MADVISE_RANDOM`); ``None`` when it is missing, truncated or of another shape
    or type (the caller writes it again)."""
    import mmap

    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if (not isinstance(arr, np.memmap) or arr.dtype != np.float32 or arr.shape != (count, dim)
            or not arr.flags.c_contiguous):
        return None
    raw = getattr(arr, "_mmap", None)
    if RERANK_MADVISE_RANDOM and raw is not None and hasattr(mmap, "MADV_RANDOM"):
        with contextlib.suppress(OSError, ValueError):
            raw.madvise(mmap.MADV_RANDOM)
    return arr
