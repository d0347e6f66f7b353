"""FAISS index kinds over L2-normalised vectors (inner product = cosine): build, tune and shard them.

Index types (``index_type``): ``"flat"`` is exact (``IndexFlatIP``); ``"hnsw"`` is
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
query on one thread, so :func:`prepare_for_search` (what
:meth:`~artlens.paintings.search.SearchIndex.open` calls) cuts a pq index of :data:`PQ_SHARD_MIN`
(100 000) vectors or more into one shard per FAISS thread (:func:`shard_pq_scan`;
``OMP_NUM_THREADS`` sets the count), each scanning and re-scoring its own part in parallel: about
7-8 ms at the same recall on 2 cores. Its one blind spot: the fast-scan drops vectors whose
estimated cosine to the query is below zero, so a pq index returns fewer than k results when fewer
than k images are positively correlated with the query (never the case for CNN features, whose
cosines are all positive).

The exact vectors a pq index re-scores with live in RAM or, memory-mapped, in the folder's
``vectors.f32.npy`` (:data:`RERANK_STORES`, :func:`attach_rerank_vectors`, :func:`auto_rerank_store`):
the same ids and scores, 2 GB less anonymous memory per million 512-d vectors, slower while the
map's pages are first touched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from artlens.errors import InvalidParameterError

__all__ = [
    "AUTO_APPROX_THRESHOLD",
    "HNSW_EF_CONSTRUCTION",
    "HNSW_EF_SEARCH",
    "HNSW_M",
    "INDEX_TYPES",
    "PQ_MAX_SHARDS",
    "PQ_RERANK",
    "PQ_SHARD_MIN",
    "PQ_TRAIN_MAX",
    "RERANK_MEMMAP_MIN",
    "RERANK_RAM_SHARE",
    "RERANK_STORES",
    "attach_rerank_vectors",
    "auto_rerank_store",
    "available_memory",
    "build_faiss_index",
    "check_index_type",
    "check_rerank_store",
    "rerank_vectors_of",
    "configure_search",
    "faiss_module",
    "prepare_for_search",
    "shard_pq_scan",
]


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
RERANK_STORES = ("auto", "ram", "memmap")
"""Where a pq index keeps the exact vectors it re-ranks with: ``"ram"`` (read into memory with the
index, 4·dim bytes per vector), ``"memmap"`` (the folder's ``vectors.f32.npy`` memory-mapped: a query
reads only its candidates' rows) or ``"auto"`` (:func:`auto_rerank_store`)."""
RERANK_RAM_SHARE = 0.25
"""With ``rerank_store="auto"``, a pq index re-ranks in RAM while its exact vectors take at most this
share of the memory available when it is opened, and from the memory-mapped store beyond. Measured
on 1 M uniform 512-d vectors, 2 cores (``benchmarks/bench_search_scale.py --store``): in RAM the
sharded index took 2.6 GB of anonymous memory (peak 4.5 GB while the shards copy the vectors) and
answered in 4.4 ms p50; memory-mapped 0.63 GB anonymous (peak 2.5 GB, the rows read so far as
reclaimable page cache) but 14 ms p50 over a fresh process's first 200 queries (page faults). So
RAM is the faster choice while it fits comfortably, the map the one that fits."""
RERANK_MEMMAP_MIN = 1_000_000
"""With ``rerank_store="auto"`` where the available memory cannot be read (no ``/proc/meminfo``):
pq indexes of at least this many vectors re-rank from the memory-mapped store."""


def check_index_type(index_type: str) -> None:
    """Raise :class:`~artlens.errors.InvalidParameterError` unless ``index_type`` is one of :data:`INDEX_TYPES`."""
    if index_type not in INDEX_TYPES:
        raise InvalidParameterError(f"index type {index_type!r}: use one of {', '.join(INDEX_TYPES)}")


def check_rerank_store(rerank_store: str) -> None:
    """Raise :class:`~artlens.errors.InvalidParameterError` unless ``rerank_store`` is one of :data:`RERANK_STORES`."""
    if rerank_store not in RERANK_STORES:
        raise InvalidParameterError(f"rerank_store {rerank_store!r}: use one of {', '.join(RERANK_STORES)}",
                                    param="rerank_store")


def available_memory() -> int | None:
    """Bytes of memory available for new allocations (Linux ``MemAvailable``), or ``None`` where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def auto_rerank_store(count: int, dim: int, available: int | None = None) -> str:
    """``"ram"`` or ``"memmap"`` for a pq index of ``count`` vectors of ``dim`` floats: ``"memmap"``
    when they would take more than :data:`RERANK_RAM_SHARE` of ``available`` bytes (default: what
    :func:`available_memory` reads), or, where that is unknown, from :data:`RERANK_MEMMAP_MIN`
    vectors. Both give the same ids and scores; only memory and speed differ."""
    available = available_memory() if available is None else available
    if available is None:
        return "memmap" if count >= RERANK_MEMMAP_MIN else "ram"
    return "memmap" if 4 * count * dim > RERANK_RAM_SHARE * available else "ram"


def _view_rows(faiss: Any, flat: Any, rows: np.ndarray) -> None:
    """Make the ``IndexFlat`` ``flat`` hold ``rows`` (C-contiguous float32) without copying them: its
    codes become a view of their memory, which the caller keeps alive and never adds to."""
    data = rows.reshape(-1).view(np.uint8)
    ptr = faiss.swig_ptr(data)
    view = faiss.MaybeOwnedVectorUInt8()
    view.is_owned = False
    view.view_data, view.view_size = ptr, data.size
    view.c_ptr, view.c_size = ptr, data.size
    flat.codes = view
    flat.ntotal = rows.shape[0]


def rerank_vectors_of(index: Any) -> np.ndarray:
    """The exact vectors of a pq index (an ``IndexRefineFlat``), ``(ntotal, d)`` float32: a view of
    FAISS' own memory (or of the file FAISS mapped when read with ``IO_FLAG_MMAP_IFC``), not a copy."""
    faiss = faiss_module()
    exact = faiss.downcast_index(faiss.downcast_index(index).refine_index)
    n, d = exact.ntotal, exact.d
    return faiss.rev_swig_ptr(exact.get_xb(), n * d).reshape(n, d)


def attach_rerank_vectors(index: Any, vectors: np.ndarray) -> None:
    """Make a pq index (an ``IndexRefineFlat``) re-rank from ``vectors`` in place of its own copy.

    ``vectors`` is ``(ntotal, d)`` C-contiguous float32, typically the read-only memory map of the
    folder's ``vectors.f32.npy``; the index points at it without copying (its exact vectors are
    dropped), so a query's re-ranking reads only its candidates' rows, through FAISS' own
    ``IndexRefineFlat`` code: ids and scores are those of the in-RAM re-ranking, bit for bit. A
    reference to ``vectors`` is kept on ``index`` (in ``index.referenced_objects``) and on the shards that
    :func:`shard_pq_scan` cuts from it, which view the same rows.
    """
    faiss = faiss_module()
    refine = faiss.downcast_index(index)
    if not isinstance(refine, faiss.IndexRefineFlat):
        raise InvalidParameterError(f"attach_rerank_vectors needs a pq index, not {type(refine).__name__}")
    exact = faiss.downcast_index(refine.refine_index)
    if (vectors.dtype != np.float32 or vectors.shape != (refine.ntotal, refine.d)
            or not vectors.flags.c_contiguous):
        raise InvalidParameterError(f"re-ranking vectors of shape {vectors.shape} ({vectors.dtype}): need "
                                    f"({refine.ntotal}, {refine.d}) C-contiguous float32", param="vectors")
    _view_rows(faiss, exact, vectors)
    # FAISS' Python wrapper allows this one attribute: objects an index needs alive
    index.referenced_objects = [*getattr(index, "referenced_objects", []), vectors]


def _attached_vectors(index: Any, n: int, d: int) -> np.ndarray | None:
    """The array given to :func:`attach_rerank_vectors` for ``index``, or ``None``."""
    for obj in getattr(index, "referenced_objects", None) or []:
        if isinstance(obj, np.ndarray) and obj.shape == (n, d):
            return obj
    return None


def faiss_module() -> Any:
    """The ``faiss`` module, or a one-line error naming the package to install."""
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
    faiss = faiss_module()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InvalidParameterError(f"need a non-empty (n, dim) array of vectors, got shape {x.shape}")
    n, dim = x.shape
    check_index_type(index_type)
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
    Python reference to every FAISS object it wires together, since they do not own one another. An
    index that re-ranks from a memory-mapped store (:func:`attach_rerank_vectors`) is not copied:
    each shard views its rows of the same map.
    """

    def __init__(self, faiss: Any, index: Any, parts: int) -> None:
        refine = faiss.downcast_index(index)
        base = faiss.downcast_index(refine.base_index)
        exact = faiss.downcast_index(refine.refine_index)
        n, d = base.ntotal, base.d
        codes = faiss.AlignedTable_to_array(base.codes)
        vectors = faiss.rev_swig_ptr(exact.get_xb(), n * d).reshape(n, d)  # a view, not a copy
        mapped = _attached_vectors(index, n, d)
        blocks = -(-n // base.bbs)
        per_block = codes.size // blocks
        bounds = [round(i * blocks / parts) for i in range(parts + 1)]
        self.parts = len(bounds) - 1
        self.kept: list[Any] = [] if mapped is None else [mapped]
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
            if mapped is None:
                flat.add(vectors[lo:hi])
            else:
                _view_rows(faiss, flat, mapped[lo:hi])
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
    faiss = faiss_module()
    refine = faiss.downcast_index(index)
    base = faiss.downcast_index(refine.base_index) if isinstance(refine, faiss.IndexRefine) else refine
    if not isinstance(base, faiss.IndexPQFastScan) or base is refine:
        raise InvalidParameterError(f"shard_pq_scan needs a pq index, not {type(refine).__name__}")
    return _ShardedPQ(faiss, index, min(parts, -(-base.ntotal // base.bbs)))


def configure_search(index: Any, params: Mapping[str, Any], ef_search: int | None = None,
                     nprobe: int | None = None, rerank: int | None = None) -> None:
    """Apply the search-time parameters that FAISS does not keep in the file (or that the user overrides)."""
    faiss = faiss_module()
    if params.get("type") == "hnsw":
        faiss.downcast_index(index).hnsw.efSearch = int(ef_search or params.get("efSearch", HNSW_EF_SEARCH))
    elif params.get("type") == "ivf":
        faiss.extract_index_ivf(index).nprobe = int(nprobe or params.get("nprobe", 1))
    elif params.get("type") == "pq":
        faiss.downcast_index(index).k_factor = float(rerank or params.get("rerank", PQ_RERANK))
        _fast_collector(faiss, index)


def prepare_for_search(index: Any, params: Mapping[str, Any], count: int, *, ef_search: int | None = None,
                       nprobe: int | None = None, rerank: int | None = None) -> Any:
    """An index read from disk, ready for queries: search-time parameters applied
    (:func:`configure_search`) and, for a pq index of :data:`PQ_SHARD_MIN` vectors or more, its scan
    cut into one shard per FAISS thread (at most :data:`PQ_MAX_SHARDS`; :func:`shard_pq_scan`).

    Args:
        index: the FAISS index.
        params: its type and parameters, as recorded in ``index.json``.
        count: vectors in the index.
        ef_search, nprobe, rerank: overrides of the recorded search-time parameters.

    Returns:
        ``index`` itself, or the sharded index that replaces it.
    """
    configure_search(index, params, ef_search, nprobe, rerank)
    threads = min(faiss_module().omp_get_max_threads(), PQ_MAX_SHARDS)
    if params.get("type") == "pq" and count >= PQ_SHARD_MIN and threads >= 2:
        return shard_pq_scan(index, threads)
    return index
