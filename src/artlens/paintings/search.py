"""Embedding index of a painting collection and similarity search over it.

:func:`build_index` embeds every image of a collection once and writes an index folder::

    INDEX/
      index.json        what built it: embedder (name, config, checksum), dim, count, FAISS type and
                        parameters, label columns, artlens version, time, provenance
      embedder.json     the embedder record alone (written first, so that a resumed build can check it)
      vectors.parquet   one row per indexed image, in FAISS id order: path (absolute), sha256,
                        vector (fixed-size list of float32), label columns (artist, style, label, ...)
      index.faiss       FAISS index over the L2-normalised vectors, inner product (= cosine)
      failures.csv      path, reason: images that could not be read (skipped)
      parts/            Parquet chunks written while embedding (part-00000.parquet, ...); removed
                        once the index is complete

Embedding is done in chunks of ``batch_size`` images and each chunk is written as a part, so a
killed build resumes: a rerun reuses every vector whose image has the same path and SHA-256 (from
the parts and from an earlier ``vectors.parquet``) and embeds only new or changed images.

:class:`SearchIndex` opens such a folder, checks it and answers nearest-neighbour queries
(:meth:`SearchIndex.search`, :meth:`SearchIndex.search_image`). The metrics used by the benchmarks
(:func:`average_precision_at_k`, :func:`mean_average_precision_at_k`, :func:`recall_at_k`) live
here too.

FAISS index types (``index_type``): ``"flat"`` is exact (``IndexFlatIP``); ``"hnsw"`` is
``IndexHNSWFlat`` (M = 32, efConstruction = 80, efSearch = 128, inner product); ``"ivf"`` is
``IVF{nlist},Flat`` with nlist ≈ 4·√n and nprobe = nlist / 8; ``"pq"`` compresses every vector to
4 bits per 4 dimensions, scans all codes with FAISS' SIMD fast-scan and re-scores the best 500·k
exactly (``IndexRefineFlat``). ``"auto"`` picks exact search below
:data:`AUTO_APPROX_THRESHOLD` (50 000) vectors and HNSW from there on. Approximate indexes do well on
image features (clustered, low intrinsic dimension) but poorly on structureless data: on vectors
uniform on the 512-d sphere HNSW reached recall@10 = 0.58 at efSearch 512 (100 000 vectors).

What does and does not help on such data (``benchmarks/bench_search_scale.py``, 512-d uniform
vectors, 2 cores): an HNSW graph built with ``METRIC_L2`` over the same normalised vectors (whose
ranking is the same, cosine = 1 − d²/2) gives the same recall and speed as the inner-product graph
(97 % of the result positions identical): on unit vectors the two orders agree. More links do
help: at 30 000 vectors, recall@10 at efSearch 256 / 512 went from 0.70 / 0.89 (M = 32,
efConstruction = 80) to 0.77 / 0.94 with efConstruction = 200, and to 0.94 / 0.99 with M = 64,
efConstruction = 200 (p50 6.0 / 9.1 ms against 7.9 / 10.4 ms for M = 32: better recall at equal
latency), for 1.7-2.3 × the build time and 11 % more memory. On feature-like vectors M = 32 already
reaches recall 1.0 at p50 < 1 ms, so the defaults stay; pass ``hnsw_m=64, ef_construction=200`` to
:func:`build_faiss_index` for structureless vectors. IVF does not gain from more k-means training
(it already trains on up to 256 vectors per list, i.e. on all of them up to 1 M vectors), and OPQ /
PQ fast-scan with exact re-ranking of 4·k candidates lost recall (0.16 at nprobe 128 against 0.45
for ``IVF,Flat``). Without the IVF step, scanning every code and re-ranking many more candidates
does work: ``"pq"`` with 500·k candidates reached recall@10 ≈ 0.95 on 1 M uniform 512-d vectors in
about 12-14 ms on one thread (exact search: 220-250 ms), built in about 10 s. FAISS searches one
query on one thread, so :meth:`SearchIndex.open` cuts a pq index of :data:`PQ_SHARD_MIN` (100 000)
vectors or more into one shard per FAISS thread (:func:`shard_pq_scan`; ``OMP_NUM_THREADS`` sets the
count), each scanning and re-scoring its own part in parallel: about 7-8 ms at the same recall on
2 cores. Its one blind spot: the
fast-scan drops vectors whose estimated cosine to the query is below zero, so a pq index returns
fewer than k results when fewer than k images are positively correlated with the query (never the
case for CNN features, whose cosines are all positive).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shutil
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artlens.errors import (
    InputNotFoundError,
    InvalidParameterError,
    UnreadableInputError,
)
from artlens.paintings.embedders import create_embedder, embedder_from_record, embedder_record, same_embedder
from artlens.paintings.embedding import Embedder, l2_normalise
from artlens.paintings.images import is_image_file
from artlens.provenance import provenance, resolve_path, sha256_file

__all__ = [
    "AUTO_APPROX_THRESHOLD",
    "Collection",
    "Hit",
    "IndexSummary",
    "SearchIndex",
    "average_precision_at_k",
    "build_faiss_index",
    "build_index",
    "load_collection",
    "mean_average_precision_at_k",
    "recall_at_k",
]

INDEX_FORMAT = "artlens-search-index"
FORMAT_VERSION = 1

AUTO_APPROX_THRESHOLD = 50_000
"""With ``index_type="auto"``, collections of at least this many images get an HNSW index, smaller
ones exact search. An exact query reads all n × dim floats, so its time grows linearly with n: on the
2-core development machine (``benchmarks/bench_search_scale.py``, 512-d, one thread) the median was
4-5 ms at 20 000 vectors and 24 ms at 100 000, so about 50 000 is where exact search leaves the
10 ms target of the search issue; HNSW answered feature-like vectors in < 1 ms at recall@10 = 1.0."""

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
PQ_RERANK = 500
"""With ``index_type="pq"``, candidates re-ranked exactly per result wanted (FAISS ``k_factor``): a
query for k = 10 re-scores the 5 000 best by the compressed codes. On 1 M vectors uniform on the
512-d sphere this gave recall@10 = 0.95 (``benchmarks/bench_search_scale.py``)."""
PQ_TRAIN_MAX = 65_536
PQ_SHARD_MIN = 100_000
"""A pq index of at least this many vectors is opened with its code scan split across the FAISS
threads (:func:`shard_pq_scan`): one query's scan then runs on every core. Below it the scan takes
about a millisecond and thread start-up would eat the gain."""
PQ_MAX_SHARDS = 8
"""At most this many shards however many threads: each costs a thread start per query, and one core
scanned 500 000 codes in about 4.5 ms here, so eight shards of 1 M codes should take about a
millisecond each (an estimate: only 2 cores were measured)."""
INDEX_TYPES = ("auto", "flat", "hnsw", "ivf", "pq")

_RESERVED = ("path", "sha256", "vector")
_PATH_COLUMNS = ("path", "file", "filename", "image")


def _rebuild_hint(index_dir: Path | str) -> str:
    return f"rebuild it with `artlens index COLLECTION --index {index_dir} --rebuild`"


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


@dataclass
class Hit:
    """One search result.

    Attributes:
        path: absolute path of the indexed image.
        score: final score, best first (the cosine, or the re-ranked score).
        rank: 1-based position in the result list.
        labels: the image's label columns (``artist``, ``style``, ...), empty values left out.
        cosine: cosine similarity to the query (equal to ``score`` unless re-ranked).
        graph_distance: hops between the query's and this image's artist in the influence graph
            (``None`` when not re-ranked, or unknown).
    """

    path: str
    score: float
    rank: int
    labels: dict[str, Any] = field(default_factory=dict)
    cosine: float | None = None
    graph_distance: float | None = None

    def __post_init__(self) -> None:
        if self.cosine is None:
            self.cosine = self.score

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-ready dict: path, score, rank, cosine, graph_distance, then the labels (a label
        whose name clashes with one of those keys is prefixed with ``label_``)."""
        out: dict[str, Any] = {"path": self.path, "score": float(self.score), "rank": int(self.rank),
                               "cosine": None if self.cosine is None else float(self.cosine),
                               "graph_distance": self.graph_distance}
        for k, v in self.labels.items():
            out[f"label_{k}" if k in out else k] = v
        return out


@dataclass
class IndexSummary:
    """What :func:`build_index` did.

    Attributes:
        index_dir: the index folder.
        images: images in the index.
        reused: of those, vectors reused from an earlier (possibly interrupted) build.
        embedded: images embedded in this run.
        failures: ``(path, reason)`` of the images skipped.
        embedder: embedder name.
        dim: vector length.
        faiss: FAISS type and parameters (as in ``index.json``).
    """

    index_dir: Path
    images: int
    reused: int
    embedded: int
    failures: list[tuple[str, str]]
    embedder: str
    dim: int
    faiss: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """``{"index", "images", "reused", "failures", "embedder", "dim", "faiss"}`` (failures as a count)."""
        return {"index": str(self.index_dir), "images": self.images, "reused": self.reused,
                "failures": len(self.failures), "embedder": self.embedder, "dim": self.dim, "faiss": self.faiss}


# --------------------------------------------------------------------------------------------------
# Collections
# --------------------------------------------------------------------------------------------------


@dataclass
class Collection:
    """Images to index with their labels.

    Attributes:
        paths: absolute image paths, in order, without duplicates.
        labels: ``{absolute path: {column: value}}``.
        source: what the collection was read from (folder, CSV or ``None``).
        missing: ``(path, reason)`` of listed images that do not exist (reported as failures).
    """

    paths: list[str]
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    source: str | None = None
    missing: list[tuple[str, str]] = field(default_factory=list)


def _clean_label(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    s = str(v).strip()
    return s or None


def _read_label_csv(csv_path: Path) -> dict[str, dict[str, str]]:
    """``{absolute path: labels}`` from a CSV with a path/file column (paths relative to the CSV)."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip() for f in (reader.fieldnames or [])]
            col = next((c for c in _PATH_COLUMNS if c in fields), None)
            if col is None:
                raise InvalidParameterError(f"{csv_path}: no image column (need one of {', '.join(_PATH_COLUMNS)}; "
                                            f"found {', '.join(fields) or 'none'})")
            out: dict[str, dict[str, str]] = {}
            for row in reader:
                row = {(k or "").strip(): v for k, v in row.items()}
                p = _clean_label(row.get(col))
                if p is None:
                    continue
                full = Path(p).expanduser()
                if not full.is_absolute():
                    full = csv_path.parent / full
                labels = {k: c for k, v in row.items()
                          if k and k != col and k not in _RESERVED and (c := _clean_label(v)) is not None}
                out[resolve_path(full)] = labels
            return out
    except UnicodeDecodeError:
        raise UnreadableInputError(f"{csv_path}: not a UTF-8 CSV file") from None
    except csv.Error as exc:
        raise UnreadableInputError(f"{csv_path}: malformed CSV ({exc})") from None


def _scan_folder(root: Path) -> Collection:
    """Images under ``root`` (recursive, sorted, hidden folders skipped); labels from ``labels.csv``
    when present, else the first-level sub-folder's name as ``label``."""
    paths: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        paths.extend(resolve_path(Path(dirpath) / f) for f in sorted(filenames)
                     if is_image_file(f) and not f.startswith("."))
    labels_csv = root / "labels.csv"
    if labels_csv.is_file():
        labels = _read_label_csv(labels_csv)
    else:
        labels = {}
        base = Path(resolve_path(root))
        for p in paths:
            rel = Path(p).relative_to(base)
            if len(rel.parts) > 1:
                labels[p] = {"label": rel.parts[0]}
    return Collection(paths, labels, str(root))


def _from_dataset(dataset: Any, root: Path | None = None) -> Collection:
    paths: list[str] = []
    labels: dict[str, dict[str, str]] = {}
    for rec in dataset.records:
        p = Path(rec.path).expanduser()
        if not p.is_absolute() and root is not None and (root / p).exists():
            p = root / p
        full = resolve_path(p)
        paths.append(full)
        rec_labels = {str(k): c for k, v in (getattr(rec, "labels", None) or {}).items()
                      if str(k) not in _RESERVED and (c := _clean_label(v)) is not None}
        if rec_labels:
            labels[full] = rec_labels
    missing = [(str(p), str(r)) for p, r in (getattr(dataset, "missing", None) or [])]
    return Collection(paths, labels, None if root is None else str(root), missing)


def load_collection(source: Any) -> Collection:
    """The images (and labels) of a collection.

    Args:
        source: a folder (images found recursively; ``labels.csv`` in it gives labels, else the
            first-level sub-folder names become the ``label`` column), a CSV file with a
            ``path``/``file`` column (paths relative to the CSV; the other columns are labels), a
            dataset with ``.records`` of ``(path, labels)`` (:mod:`artlens.paintings.datasets`), or
            an iterable of image paths.

    Returns:
        The :class:`Collection`, paths made absolute, duplicates dropped.

    Raises:
        InputNotFoundError: the folder or CSV does not exist.
        InvalidParameterError: a CSV without an image column.

    Folders and CSV files go through :func:`artlens.paintings.datasets.load_dataset` when that module is
    available (for a folder holding ``labels.csv``: that CSV, so the images it lists), and through the
    scan described above otherwise (or when it cannot read them).
    """
    if isinstance(source, Collection):
        coll = source
    elif hasattr(source, "records"):
        root = getattr(source, "root", None)
        coll = _from_dataset(source, Path(root) if root else None)
    elif isinstance(source, (str, os.PathLike)):
        p = Path(source).expanduser()
        if not p.exists():
            raise InputNotFoundError(f"{p}: no such folder or file")
        coll = None
        try:
            from artlens.paintings.datasets import load_dataset  # written separately; optional here
        except ImportError:
            load_dataset = None
        if load_dataset is not None:
            try:
                ds = load_dataset(p / "labels.csv" if (p / "labels.csv").is_file() else p)
                coll = _from_dataset(ds, p if p.is_dir() else p.parent)
                coll.source = str(p)
            except Exception:  # noqa: BLE001 - fall back on the plain scan, which reports its own errors
                coll = None
        if coll is None:
            if p.is_dir():
                coll = _scan_folder(p)
            elif p.suffix.lower() == ".csv":
                labels = _read_label_csv(p)
                coll = Collection(list(labels), labels, str(p))
            elif is_image_file(p):
                coll = Collection([resolve_path(p)], {}, str(p))
            else:
                raise InvalidParameterError(f"{p}: not a folder, a CSV file or an image")
    else:
        coll = Collection([resolve_path(x) for x in source], {}, None)
    seen: set[str] = set()
    paths = [p for p in coll.paths if not (p in seen or seen.add(p))]
    return Collection(paths, coll.labels, coll.source, list(coll.missing))


# --------------------------------------------------------------------------------------------------
# FAISS
# --------------------------------------------------------------------------------------------------


def _faiss():
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        raise InvalidParameterError("similarity search needs FAISS: pip install faiss-cpu") from None
    return faiss


def build_faiss_index(vectors: np.ndarray, index_type: str = "auto", *, hnsw_m: int = HNSW_M,
                      ef_construction: int = HNSW_EF_CONSTRUCTION, ef_search: int = HNSW_EF_SEARCH,
                      nlist: int | None = None, nprobe: int | None = None, rerank: int = PQ_RERANK,
                      seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """A FAISS inner-product index over L2-normalised vectors (inner product = cosine).

    Args:
        vectors: ``(n, dim)`` float32, rows L2-normalised.
        index_type: ``"flat"`` (exact ``IndexFlatIP``), ``"hnsw"`` (``IndexHNSWFlat``,
            ``METRIC_INNER_PRODUCT``), ``"ivf"`` (``IVF{nlist},Flat``, trained by k-means on up to
            256 vectors per list), ``"pq"`` (every vector compressed to 4 bits per 4 dimensions,
            ``PQ{dim/4}x4fs``, scanned in full with FAISS' SIMD fast-scan, then the best
            ``rerank``·k candidates re-scored exactly: ``IndexRefineFlat``; builds in seconds where
            HNSW takes hours at 1 M vectors, and needs no structure in the data) or ``"auto"`` (flat
            below :data:`AUTO_APPROX_THRESHOLD` = 50 000 vectors, HNSW from there on).
        hnsw_m: HNSW links per node.
        ef_construction: HNSW candidate list while building.
        ef_search: HNSW candidate list while searching (higher: better recall, slower).
        nlist: IVF lists (default ≈ 4·√n, at most n / 39 so that k-means has enough points).
        nprobe: IVF lists visited per query (default nlist / 8).
        rerank: PQ candidates re-scored exactly per result wanted (default :data:`PQ_RERANK`).
        seed: seed of the IVF / PQ training sample and k-means.

    Returns:
        ``(index, params)`` with ``params`` the JSON-ready type and parameters recorded in ``index.json``.

    Raises:
        InvalidParameterError: unknown type, empty or non-2-D input.
    """
    faiss = _faiss()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InvalidParameterError(f"need a non-empty (n, dim) array of vectors, got shape {x.shape}")
    n, dim = x.shape
    if index_type not in INDEX_TYPES:
        raise InvalidParameterError(f"index type {index_type!r}: use one of {', '.join(INDEX_TYPES)}")
    kind = index_type
    if kind == "auto":
        kind = "flat" if n < AUTO_APPROX_THRESHOLD else "hnsw"
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
        index.add(x)
        return index, {"type": "flat", "class": "IndexFlatIP", "metric": "inner_product"}
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(ef_construction)
        index.add(x)
        index.hnsw.efSearch = int(ef_search)
        return index, {"type": "hnsw", "class": "IndexHNSWFlat", "metric": "inner_product", "M": int(hnsw_m),
                       "efConstruction": int(ef_construction), "efSearch": int(ef_search)}
    if kind == "pq":
        return _build_pq(faiss, x, int(rerank), seed)
    # IVF
    if nlist is None:
        nlist = int(round(4 * math.sqrt(n)))
        nlist = max(1, min(nlist, n // 39))
    nlist = max(1, min(int(nlist), n))
    nprobe = max(1, min(int(nprobe) if nprobe is not None else max(1, nlist // 8), nlist))
    index = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    n_train = min(n, max(256 * nlist, 39 * nlist))
    train = x if n_train >= n else x[np.sort(rng.choice(n, n_train, replace=False))]
    faiss.extract_index_ivf(index).cp.seed = int(seed)
    index.train(train)
    index.add(x)
    index.nprobe = nprobe
    return index, {"type": "ivf", "class": "IndexIVFFlat", "metric": "inner_product", "nlist": nlist,
                   "nprobe": nprobe, "trained_on": int(train.shape[0])}


def _pq_subquantizers(dim: int) -> int:
    """Sub-quantizers for ``dim``: one per 4 dimensions, or the largest divisor of ``dim`` below that."""
    if dim < 4:
        return 1
    return max(m for m in range(1, dim // 4 + 1) if dim % m == 0)


def _build_pq(faiss: Any, x: np.ndarray, rerank: int, seed: int) -> tuple[Any, dict[str, Any]]:
    n, dim = x.shape
    if rerank < 1:
        raise InvalidParameterError(f"rerank {rerank}: need at least 1")
    m = _pq_subquantizers(dim)
    base = faiss.index_factory(dim, f"PQ{m}x4fs", faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    train = x if n <= PQ_TRAIN_MAX else x[np.sort(rng.choice(n, PQ_TRAIN_MAX, replace=False))]
    # 16 centroids per sub-space; FAISS wants 39 points per centroid, so small collections repeat rows
    if train.shape[0] < 16 * 39:
        train = np.resize(train, (16 * 39, dim))
    base.pq.cp.seed = int(seed)
    base.train(train)
    index = faiss.IndexRefineFlat(base)
    index.add(x)
    index.k_factor = float(rerank)
    _fast_collector(faiss, index)
    return index, {"type": "pq", "class": "IndexRefineFlat(IndexPQFastScan)", "metric": "inner_product",
                   "M": m, "nbits": 4, "rerank": rerank, "trained_on": int(min(n, PQ_TRAIN_MAX))}


def _fast_collector(faiss: Any, index: Any) -> None:
    """Keep the large candidate lists of a PQ fast-scan cheap: FAISS' default collector (a heap) slows
    down for thousands of candidates; implementation 13 (a SIMD reservoir) was 1.4 x faster at 5 000
    candidates in ``benchmarks/bench_search_scale.py`` and returns the same results."""
    base = faiss.downcast_index(faiss.downcast_index(index).base_index)
    base.implem = 13


class _ShardedPQ:
    """A pq index cut into ``parts`` contiguous shards that one query searches in parallel threads.

    FAISS searches one query on one thread, so a single query over 1 M codes uses one core however
    many there are. Here the fast-scan codes are cut into runs of whole 32-vector blocks (no
    re-encoding; ids unchanged), each run becomes an ``IndexRefine(IndexPQFastScan, IndexFlatIP)``
    over its own slice of the exact vectors, and an ``IndexShards`` searches them in parallel
    threads and merges their exactly re-scored top k. Each shard re-scores ``rerank / parts`` · k of
    its own candidates, so the total re-scored stays rerank · k, as in the unsplit index.

    Building it copies the exact vectors once (the unsplit index can then be dropped) and keeps a
    Python reference to every FAISS object it wires together, since they do not own one another.
    """

    def __init__(self, faiss: Any, index: Any, parts: int) -> None:
        refine = faiss.downcast_index(index)
        base = faiss.downcast_index(refine.base_index)
        exact = faiss.downcast_index(refine.refine_index)
        n, d = base.ntotal, base.d
        codes = faiss.AlignedTable_to_array(base.codes)
        vectors = faiss.rev_swig_ptr(exact.get_xb(), n * d).reshape(n, d)  # a view, not a copy
        blocks = -(-n // base.bbs)
        per_block = codes.size // blocks
        bounds = [round(i * blocks / parts) for i in range(parts + 1)]
        self.parts = len(bounds) - 1
        self.kept: list[Any] = []
        self.shards: list[Any] = []
        self.index = faiss.IndexShards(d, True, True)  # threaded, successive ids
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            lo, hi = a * base.bbs, min(b * base.bbs, n)
            scan = faiss.IndexPQFastScan(d, base.M, base.nbits, base.metric_type, base.bbs)
            scan.pq = base.pq
            scan.is_trained = True
            faiss.copy_array_to_AlignedTable(np.ascontiguousarray(codes[a * per_block:b * per_block]), scan.codes)
            scan.ntotal, scan.ntotal2 = hi - lo, (b - a) * base.bbs
            scan.implem = base.implem
            flat = faiss.IndexFlatIP(d)
            flat.add(vectors[lo:hi])
            shard = faiss.IndexRefine(scan, flat)
            self.kept += [scan, flat]
            self.shards.append(shard)
            self.index.add_shard(shard)
        self.rerank = float(refine.k_factor)

    @property
    def rerank(self) -> float:
        """Candidates re-scored per result wanted, over all shards."""
        return self._rerank

    @rerank.setter
    def rerank(self, value: float) -> None:
        self._rerank = float(value)
        for shard in self.shards:
            shard.k_factor = max(1.0, self._rerank / self.parts)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(x, k)


def shard_pq_scan(index: Any, parts: int) -> _ShardedPQ:
    """``index`` (a pq index from :func:`build_faiss_index`) cut into ``parts`` shards that one query
    searches in parallel threads (see :class:`_ShardedPQ`); it answers ``search(x, k)`` like a FAISS
    index, and its ``rerank`` can be changed. The unsplit ``index`` is no longer needed afterwards.

    On 1 M uniform 512-d vectors with 2 threads this cut the single-query p50 from about 12 to about
    7 ms at the same recall@10 of 0.95 (``benchmarks/bench_search_scale.py``). Batches of queries
    gain nothing: FAISS already spreads many queries over the threads.
    """
    if parts < 2:
        raise InvalidParameterError(f"parts = {parts}: need at least 2 shards")
    faiss = _faiss()
    refine = faiss.downcast_index(index)
    base = faiss.downcast_index(refine.base_index) if isinstance(refine, faiss.IndexRefine) else refine
    if not isinstance(base, faiss.IndexPQFastScan) or base is refine:
        raise InvalidParameterError(f"shard_pq_scan needs a pq index, not {type(refine).__name__}")
    return _ShardedPQ(faiss, index, min(parts, -(-base.ntotal // base.bbs)))


def _configure(index: Any, params: Mapping[str, Any], ef_search: int | None = None, nprobe: int | None = None,
               rerank: int | None = None) -> None:
    """Apply the search-time parameters that FAISS does not keep in the file (or that the user overrides)."""
    faiss = _faiss()
    if params.get("type") == "hnsw":
        faiss.downcast_index(index).hnsw.efSearch = int(ef_search or params.get("efSearch", HNSW_EF_SEARCH))
    elif params.get("type") == "ivf":
        faiss.extract_index_ivf(index).nprobe = int(nprobe or params.get("nprobe", 1))
    elif params.get("type") == "pq":
        faiss.downcast_index(index).k_factor = float(rerank or params.get("rerank", PQ_RERANK))
        _fast_collector(faiss, index)


# --------------------------------------------------------------------------------------------------
# Parquet helpers
# --------------------------------------------------------------------------------------------------


def _vector_table(paths: Sequence[str], shas: Sequence[str], vectors: np.ndarray,
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


def _write_parquet_atomic(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _vectors_from_column(column: Any, dim: int | None = None) -> np.ndarray:
    """``(n, dim)`` float32 from a (chunked) fixed-size-list Parquet column."""
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(arr) == 0:
        return np.zeros((0, dim or 0), dtype=np.float32)
    width = arr.type.list_size
    flat = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(len(arr), width)


def _read_cache_file(path: Path, dim: int) -> tuple[list[tuple[str, str]], np.ndarray] | None:
    """``(keys, vectors)`` of one Parquet file of earlier vectors, or ``None`` when it cannot be used."""
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path, columns=["path", "sha256", "vector"])
        vec = _vectors_from_column(t.column("vector"), dim)
    except Exception as exc:  # noqa: BLE001 - a damaged cache file only costs re-embedding
        warnings.warn(f"{path.name}: cannot be read ({type(exc).__name__}); its images are embedded again",
                      stacklevel=3)
        return None
    if vec.shape[0] and vec.shape[1] != dim:
        return None
    keys = list(zip(t.column("path").to_pylist(), t.column("sha256").to_pylist(), strict=True))
    return keys, vec


# --------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------


_OUTPUTS = ("index.json", "embedder.json", "vectors.parquet", "index.faiss", "failures.csv")


def _clear_index(index_dir: Path) -> None:
    """Remove what a build writes (and nothing else the folder may hold)."""
    for name in _OUTPUTS:
        with contextlib.suppress(FileNotFoundError):
            (index_dir / name).unlink()
    shutil.rmtree(index_dir / "parts", ignore_errors=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _check_embedder(index_dir: Path, record: dict[str, Any]) -> None:
    for name in ("embedder.json", "index.json"):
        path = index_dir / name
        if not path.exists():
            continue
        data = _read_json(path)
        old = None if data is None else (data.get("embedder") if name == "index.json" else data)
        if not isinstance(old, dict):
            raise UnreadableInputError(f"{path}: damaged; {_rebuild_hint(index_dir)}")
        if not same_embedder(old, record):
            def show(r: dict[str, Any]) -> str:
                return f"{r.get('name')} {json.dumps(r.get('config'), sort_keys=True)}"

            raise InvalidParameterError(
                f"{index_dir} was built with embedder {show(old)}, not {show(record)}; vectors of different "
                f"embedders cannot be mixed: pass the same --embedder, or use --rebuild to start over")


class _Progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar = None

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


def _write_failures(path: Path, failures: Sequence[tuple[str, str]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "reason"])
        w.writerows(failures)
    os.replace(tmp, path)


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
) -> IndexSummary:
    """Embed a collection once and write a searchable index folder (layout in the module docstring).

    Args:
        paths_or_dataset: anything :func:`load_collection` takes: a folder, a CSV, a dataset or image paths.
        index_dir: index folder (created).
        embedder: an :class:`~artlens.paintings.embedding.Embedder` or a registered name.
        batch_size: images per embedding call and per Parquet part (the unit of resumption).
        labels: extra labels, ``{path: {column: value}}``; they override the collection's own.
        rebuild: discard what the folder holds (our files only) and embed everything again.
        progress: show a progress bar on stderr.
        index_type: ``"auto"``, ``"flat"``, ``"hnsw"``, ``"ivf"`` or ``"pq"`` (see :func:`build_faiss_index`).

    Returns:
        An :class:`IndexSummary`; ``reused`` counts the vectors taken from an earlier run.

    Raises:
        InvalidParameterError: empty collection, no readable image, bad batch size or index type, or a
            folder built by another embedder (use ``rebuild=True``).
        InputNotFoundError: the collection folder or CSV does not exist.

    Unreadable images are skipped: listed in ``failures.csv`` with their reason and summed up in one
    warning (``notice:`` on the command line).
    """
    if int(batch_size) < 1:
        raise InvalidParameterError(f"batch size {batch_size}: need at least 1")
    if index_type not in INDEX_TYPES:
        raise InvalidParameterError(f"index type {index_type!r}: use one of {', '.join(INDEX_TYPES)}")
    coll = load_collection(paths_or_dataset)
    if not coll.paths:
        raise InvalidParameterError(f"{coll.source or 'collection'}: no images to index "
                                    f"(looked for {', '.join(('.jpg', '.png', '.tif', '...'))})")
    all_labels: dict[str, dict[str, str]] = {p: dict(v) for p, v in coll.labels.items()}
    for p, extra in (labels or {}).items():
        clean = {str(k): c for k, v in extra.items() if str(k) not in _RESERVED and (c := _clean_label(v)) is not None}
        all_labels.setdefault(resolve_path(p), {}).update(clean)
    emb = create_embedder(embedder) if isinstance(embedder, str) else embedder
    record = embedder_record(emb)
    dim = record["dim"]

    index_dir = Path(index_dir).expanduser()
    if index_dir.exists() and not index_dir.is_dir():
        raise InvalidParameterError(f"{index_dir}: is a file, not an index folder")
    if rebuild and index_dir.exists():
        _clear_index(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    _check_embedder(index_dir, record)
    (index_dir / "embedder.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    with contextlib.suppress(FileNotFoundError):  # the folder is incomplete until index.json is written again
        (index_dir / "index.json").unlink()
    parts_dir = index_dir / "parts"
    parts_dir.mkdir(exist_ok=True)

    # earlier vectors: {(path, sha256): (block, row)}
    blocks: list[np.ndarray] = []
    cache: dict[tuple[str, str], tuple[int, int]] = {}
    part_files = sorted(parts_dir.glob("part-*.parquet"))
    for f in [index_dir / "vectors.parquet", *part_files]:
        if not f.is_file():
            continue
        got = _read_cache_file(f, dim)
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
        for chunk in _chunks(todo, int(batch_size)):
            batch = emb.embed_paths(list(chunk))
            vec = np.asarray(batch.vectors, dtype=np.float32)
            if vec.ndim != 2 or vec.shape[1] != dim:
                raise InvalidParameterError(f"embedder {emb.name!r} returned vectors of shape {vec.shape}, "
                                            f"expected (n, {dim})")
            got_paths = [resolve_path(p) for p in batch.paths]
            bad = ~np.isfinite(vec).all(axis=1)
            for i in np.flatnonzero(bad):
                failures.append((got_paths[i], "embedding is not finite"))
            keep = np.flatnonzero(~bad)
            got_paths = [got_paths[i] for i in keep]
            vec = l2_normalise(vec[keep]) if keep.size else np.zeros((0, dim), np.float32)
            failures.extend((resolve_path(p), r) for p, r in batch.failures)
            if got_paths:
                got_shas = [shas.get(p, "") for p in got_paths]
                table = _vector_table(got_paths, got_shas, vec, all_labels, label_columns)
                _write_parquet_atomic(table, parts_dir / f"part-{next_part:05d}.parquet")
                next_part += 1
                blocks.append(vec)
                for row, key in enumerate(zip(got_paths, got_shas, strict=True)):
                    cache[key] = (len(blocks) - 1, row)
                embedded += len(got_paths)
            bar.advance(task, len(chunk))

    final = [p for p in readable if (p, shas[p]) in cache]
    fail_csv = index_dir / "failures.csv"
    _write_failures(fail_csv, failures)
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

    _write_parquet_atomic(_vector_table(final, [shas[p] for p in final], vectors, all_labels, label_columns),
                          index_dir / "vectors.parquet")
    index, params = build_faiss_index(vectors, index_type)
    faiss = _faiss()
    tmp = index_dir / "index.faiss.tmp"
    faiss.write_index(index, str(tmp))
    os.replace(tmp, index_dir / "index.faiss")

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


# --------------------------------------------------------------------------------------------------
# Opening and searching
# --------------------------------------------------------------------------------------------------


class SearchIndex:
    """A built index folder, checked and ready for queries (see :meth:`open`).

    Attributes:
        index_dir: the folder.
        record: the parsed ``index.json``.
        count: number of indexed images.
        dim: vector length.
        label_columns: label column names.
    """

    def __init__(self, index_dir: Path, record: dict[str, Any], faiss_index: Any, paths: list[str],
                 shas: list[str]) -> None:
        self.index_dir = index_dir
        self.record = record
        self.count = int(record["count"])
        self.dim = int(record["dim"])
        self.label_columns: list[str] = list(record.get("label_columns") or [])
        self._index = faiss_index
        self._paths = paths
        self._shas = shas
        self._labels: dict[str, list[str | None]] | None = None
        self._vectors: np.ndarray | None = None
        self._embedder: Embedder | None = None
        self._row_of_path = {p: i for i, p in enumerate(paths)}

    @classmethod
    def open(cls, index_dir: str | os.PathLike[str], *, ef_search: int | None = None,
             nprobe: int | None = None, rerank: int | None = None) -> SearchIndex:
        """Open and check an index folder written by :func:`build_index`.

        Args:
            index_dir: the folder.
            ef_search: HNSW candidate list size (default: the one recorded).
            nprobe: IVF lists visited per query (default: the one recorded).
            rerank: PQ candidates re-scored exactly per result wanted (default: the one recorded).

        Returns:
            The index.

        Raises:
            InputNotFoundError: no such folder, or a folder that is not an index.
            UnreadableInputError: a damaged or incomplete index (missing, truncated or corrupt
                ``index.json``, ``vectors.parquet`` or ``index.faiss``, or counts that disagree); the
                message says how to rebuild it.
        """
        import pyarrow.parquet as pq

        d = Path(index_dir).expanduser()
        if not d.exists():
            raise InputNotFoundError(f"{d}: no such index folder (build one with `artlens index COLLECTION "
                                     f"--index {d}`)")
        if not d.is_dir():
            raise UnreadableInputError(f"{d}: is a file, not an index folder")

        def damaged(why: str) -> UnreadableInputError:
            return UnreadableInputError(f"{d}: search index is damaged ({why}); {_rebuild_hint(d)}")

        rec_path = d / "index.json"
        if not rec_path.exists():
            if (d / "parts").is_dir() or (d / "embedder.json").exists():
                raise UnreadableInputError(f"{d}: search index is incomplete (an interrupted build?); rerun "
                                           f"`artlens index COLLECTION --index {d}` to finish it, or use --rebuild")
            raise InputNotFoundError(f"{d}: not a search index (no index.json); build one with "
                                     f"`artlens index COLLECTION --index {d}`")
        record = _read_json(rec_path)
        if record is None:
            raise damaged("index.json is not valid JSON")
        try:
            if record.get("format") != INDEX_FORMAT:
                raise ValueError("not an artlens search index")
            count, dim = int(record["count"]), int(record["dim"])
            if count < 1 or dim < 1 or not isinstance(record.get("embedder"), dict):
                raise ValueError("bad count, dim or embedder")
            params = dict(record.get("faiss") or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise damaged(f"index.json: {exc}") from None

        vec_path = d / "vectors.parquet"
        if not vec_path.is_file():
            raise damaged("vectors.parquet is missing")
        try:
            pf = pq.ParquetFile(vec_path)
            names = set(pf.schema_arrow.names)
            if not {"path", "sha256", "vector"} <= names:
                raise ValueError("columns path, sha256, vector missing")
            if pf.metadata.num_rows != count:
                raise ValueError(f"{pf.metadata.num_rows} rows, index.json says {count}")
            t = pf.read(columns=["path", "sha256"])
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
            raise damaged(f"vectors.parquet: {str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}") \
                from None

        faiss = _faiss()
        fx_path = d / "index.faiss"
        if not fx_path.is_file():
            raise damaged("index.faiss is missing")
        try:
            index = faiss.read_index(str(fx_path))
        except RuntimeError:
            raise damaged("index.faiss cannot be read: truncated or corrupt") from None
        if index.ntotal != count or index.d != dim:
            raise damaged(f"index.faiss holds {index.ntotal} vectors of {index.d} dims, index.json says "
                          f"{count} of {dim}")
        _configure(index, params, ef_search, nprobe, rerank)
        threads = min(faiss.omp_get_max_threads(), PQ_MAX_SHARDS)
        if params.get("type") == "pq" and count >= PQ_SHARD_MIN and threads >= 2:
            index = shard_pq_scan(index, threads)
        return cls(d, record, index, t.column("path").to_pylist(), t.column("sha256").to_pylist())

    # -- contents ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return (f"SearchIndex({str(self.index_dir)!r}, count={self.count}, dim={self.dim}, "
                f"embedder={self.embedder_name!r}, faiss={self.faiss_params.get('type')!r})")

    @property
    def embedder_name(self) -> str:
        """Name of the embedder that built the index."""
        return str(self.record["embedder"].get("name"))

    @property
    def faiss_params(self) -> dict[str, Any]:
        """FAISS type and parameters (from ``index.json``)."""
        return dict(self.record.get("faiss") or {})

    def paths(self) -> list[str]:
        """Absolute image paths, in id order."""
        return list(self._paths)

    def sha256s(self) -> list[str]:
        """SHA-256 of each indexed file, in id order."""
        return list(self._shas)

    def _load_labels(self) -> dict[str, list[str | None]]:
        if self._labels is None:
            import pyarrow.parquet as pq

            if self.label_columns:
                t = pq.read_table(self.index_dir / "vectors.parquet", columns=self.label_columns)
                self._labels = {c: t.column(c).to_pylist() for c in self.label_columns}
            else:
                self._labels = {}
        return self._labels

    def labels(self, column: str) -> list[str | None]:
        """Values of one label column, in id order (``None`` where an image has none).

        Raises:
            InvalidParameterError: no such column (the message lists the columns there are).
        """
        cols = self._load_labels()
        if column not in cols:
            raise InvalidParameterError(f"no label column {column!r} in the index (columns: "
                                        f"{', '.join(self.label_columns) or 'none'})")
        return list(cols[column])

    def labels_at(self, i: int) -> dict[str, str]:
        """Labels of image ``i`` (empty values left out)."""
        return {c: v[i] for c, v in self._load_labels().items() if v[i] is not None}

    def vectors(self) -> np.ndarray:
        """All vectors, ``(count, dim)`` float32, in id order."""
        if self._vectors is None:
            import pyarrow.parquet as pq

            t = pq.read_table(self.index_dir / "vectors.parquet", columns=["vector"])
            self._vectors = _vectors_from_column(t.column("vector"), self.dim)
        return self._vectors

    def find(self, path: str | os.PathLike[str]) -> int | None:
        """Id of an image in the index: by absolute path, else by content (SHA-256); ``None`` when absent."""
        i = self._row_of_path.get(resolve_path(path))
        if i is not None:
            return i
        try:
            sha = sha256_file(path)
        except OSError:
            return None
        with contextlib.suppress(ValueError):
            return self._shas.index(sha)
        return None

    def embedder(self) -> Embedder:
        """The embedder that built the index, rebuilt from ``index.json`` (for embedding queries)."""
        if self._embedder is None:
            self._embedder = embedder_from_record(self.record["embedder"])
        return self._embedder

    # -- queries -----------------------------------------------------------------------------------

    def search_ids(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw FAISS answer: ``(scores, ids)``, each ``(nq, min(k, count))``; id ``-1`` where fewer were found."""
        q = np.asarray(vectors, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise InvalidParameterError(f"query vectors of shape {q.shape}: need (n, {self.dim})")
        if int(k) < 1:
            raise InvalidParameterError(f"k = {k}: need at least 1")
        q = np.ascontiguousarray(l2_normalise(q))
        return self._index.search(q, min(int(k), self.count))

    def search(self, vectors: np.ndarray, k: int = 10) -> list[list[Hit]]:
        """The ``k`` nearest images of each query vector by cosine similarity.

        Args:
            vectors: ``(nq, dim)`` or ``(dim,)`` query vectors (normalised here).
            k: results per query (at most the index size).

        Returns:
            One list of :class:`Hit` per query, best first.
        """
        scores, ids = self.search_ids(vectors, k)
        out = []
        for srow, irow in zip(scores, ids, strict=True):
            hits = []
            for s, i in zip(srow, irow, strict=True):
                if i < 0:
                    continue
                hits.append(Hit(self._paths[i], float(s), len(hits) + 1, self.labels_at(int(i))))
            out.append(hits)
        return out

    def embed_query(self, path: str | os.PathLike[str], embedder: Embedder | None = None) -> np.ndarray:
        """Vector ``(dim,)`` of a query image, made by the index's own embedder.

        Raises:
            InputNotFoundError: no such file.
            UnreadableInputError: the image cannot be read.
            InvalidParameterError: ``embedder`` is not the one that built the index.
        """
        p = Path(path).expanduser()
        if not p.exists():
            raise InputNotFoundError(f"{p}: no such file")
        if embedder is None:
            emb = self.embedder()
        else:
            if not same_embedder(embedder_record(embedder), self.record["embedder"]):
                raise InvalidParameterError(f"embedder {embedder.name!r} is not the one that built {self.index_dir} "
                                            f"({self.embedder_name!r}); leave it out to use the index's own")
            emb = embedder
        batch = emb.embed_paths([str(p)])
        if batch.failures or batch.vectors.shape[0] != 1:
            reason = batch.failures[0][1] if batch.failures else "no vector"
            raise UnreadableInputError(reason if str(p) in reason else f"{p}: {reason}")
        return np.asarray(batch.vectors[0], dtype=np.float32)

    def search_image(self, path: str | os.PathLike[str], k: int = 10, embedder: Embedder | None = None) -> list[Hit]:
        """The ``k`` images most similar to an image file (embedded with the index's embedder)."""
        return self.search(self.embed_query(path, embedder), k)[0]


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def average_precision_at_k(relevant: Sequence[bool] | np.ndarray, k: int, n_relevant: int | None = None) -> float:
    """Average precision of one ranked list, cut at ``k``.

    ``AP@k = (1 / min(k, R)) · Σ_{i ≤ k} P(i) · rel(i)``, with ``rel(i)`` 1 when the i-th result is
    relevant, ``P(i)`` the precision of the first i results and ``R`` the number of relevant items in
    the whole collection (the query itself excluded). With ``R = 0`` the AP is undefined: NaN.

    Args:
        relevant: booleans in rank order (at least the first ``k`` are used).
        k: cut-off.
        n_relevant: ``R``; default: the number of ``True`` in ``relevant`` (right only when the list
            holds every item).

    Returns:
        AP@k in 0..1, or NaN when ``R = 0``.

    Example:
        >>> round(average_precision_at_k([True, False, True, False], k=4, n_relevant=3), 4)
        0.5556
    """
    if int(k) < 1:
        raise InvalidParameterError(f"k = {k}: need at least 1")
    rel = np.asarray(relevant, dtype=bool)[: int(k)]
    r = int(np.asarray(relevant, dtype=bool).sum()) if n_relevant is None else int(n_relevant)
    if r <= 0:
        return float("nan")
    hits = np.cumsum(rel)
    precision = hits / np.arange(1, rel.size + 1)
    return float((precision * rel).sum() / min(int(k), r))


def mean_average_precision_at_k(index_or_vectors: SearchIndex | np.ndarray, labels: str | Sequence[Any],
                                k: int = 10, exclude_self: bool = True) -> float:
    """mAP@k of a collection searched against itself: every labelled image is a query once.

    For a query q with label y, the results are its ``k`` nearest images by cosine (q itself left
    out when ``exclude_self``), a result is relevant when it carries the label y, and
    ``AP@k = (1 / min(k, R)) · Σ_{i ≤ k} P(i) · rel(i)`` with ``R`` the number of *other* images
    labelled y (:func:`average_precision_at_k`). mAP@k is the mean over queries with ``R ≥ 1``;
    images without a label are never queries and never relevant.

    Args:
        index_or_vectors: a :class:`SearchIndex` (searched with its own FAISS index, exact or
            approximate) or an ``(n, dim)`` array (searched exactly).
        labels: a label column name (with an index) or one label per image.
        k: cut-off (10 for mAP@10).
        exclude_self: leave the query out of its own results.

    Returns:
        mAP@k in 0..1 (NaN when no image has a relevant partner).
    """
    if isinstance(index_or_vectors, SearchIndex):
        idx = index_or_vectors
        ys = idx.labels(labels) if isinstance(labels, str) else list(labels)

        def search(q: np.ndarray, kk: int) -> np.ndarray:
            return idx.search_ids(q, kk)[1]

        vecs = idx.vectors()
    else:
        vecs = l2_normalise(np.asarray(index_or_vectors, dtype=np.float32))
        ys = list(labels)
        flat = _faiss().IndexFlatIP(vecs.shape[1])
        flat.add(np.ascontiguousarray(vecs))

        def search(q: np.ndarray, kk: int) -> np.ndarray:
            return flat.search(np.ascontiguousarray(q), min(kk, vecs.shape[0]))[1]

    n = vecs.shape[0]
    if len(ys) != n:
        raise InvalidParameterError(f"{len(ys)} labels for {n} vectors")
    ys_arr = np.array([_clean_label(y) if y is not None else None for y in ys], dtype=object)
    valid = np.array([y is not None for y in ys_arr])
    values, counts = np.unique(ys_arr[valid].astype(str), return_counts=True)
    count_of = dict(zip(values.tolist(), counts.tolist(), strict=True))
    queries = [i for i in range(n) if valid[i] and count_of[ys_arr[i]] - (1 if exclude_self else 0) >= 1]
    if not queries:
        return float("nan")
    ids = search(vecs[queries], int(k) + (1 if exclude_self else 0))
    aps = []
    for q, row in zip(queries, ids, strict=True):
        row = [int(j) for j in row if j >= 0]
        if exclude_self:
            row = [j for j in row if j != q][: int(k)] if q in row else row[: int(k)]
        rel = [ys_arr[j] == ys_arr[q] for j in row]
        r = count_of[ys_arr[q]] - (1 if exclude_self else 0)
        aps.append(average_precision_at_k(rel, int(k), r))
    return float(np.mean(aps))


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Recall@k of an approximate search: the mean fraction of the exact ``k`` neighbours it found.

    Args:
        approx_ids: ``(nq, k')`` ids returned by the approximate index (``-1`` ignored).
        exact_ids: ``(nq, k)`` ids of the exact top k.

    Returns:
        ``mean_q |approx_q ∩ exact_q| / k`` in 0..1.
    """
    a = np.atleast_2d(np.asarray(approx_ids))
    e = np.atleast_2d(np.asarray(exact_ids))
    if a.shape[0] != e.shape[0]:
        raise InvalidParameterError(f"{a.shape[0]} approximate rows for {e.shape[0]} exact ones")
    k = e.shape[1]
    if k == 0:
        return float("nan")
    found = [len(set(ar[ar >= 0].tolist()) & set(er.tolist())) / k for ar, er in zip(a, e, strict=True)]
    return float(np.mean(found))
