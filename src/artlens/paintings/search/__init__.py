"""Embedding index of a painting collection and similarity search over it.

:func:`build_index` embeds every image of a collection once and writes an index folder (Parquet
vectors with labels, a FAISS index, ``index.json``); a killed build resumes, reusing every vector
whose image has the same path and SHA-256. :class:`SearchIndex` opens such a folder, checks it and
answers nearest-neighbour queries by cosine similarity.

One module per job, each importing only those above it in this list:

- :mod:`~artlens.paintings.search.results`: :class:`Hit`, :class:`IndexSummary`.
- :mod:`~artlens.paintings.search.collection`: :func:`load_collection` (folder, ``labels.csv``, CSV,
  dataset or image paths → :class:`Collection`).
- :mod:`~artlens.paintings.search.kinds`: the FAISS index types (flat, HNSW, IVF, PQ fast-scan
  with exact re-ranking, sharded across threads when large), :func:`build_faiss_index`,
  :func:`shard_pq_scan`; what each type costs and gains.
- :mod:`~artlens.paintings.search.store`: the index folder's layout and its Parquet / JSON / CSV files,
  and the memory-mapped re-ranking store of pq indexes (``vectors.f32.npy``).
- :mod:`~artlens.paintings.search.build`: :func:`build_index`.
- :mod:`~artlens.paintings.search.index`: :class:`SearchIndex`.
- :mod:`~artlens.paintings.search.metrics`: :func:`average_precision_at_k`,
  :func:`mean_average_precision_at_k`, :func:`recall_at_k` (used by the tests and benchmarks).

Every public name is importable from ``artlens.paintings.search`` itself.
"""

from __future__ import annotations

from artlens.paintings.search.build import build_index
from artlens.paintings.search.collection import Collection, load_collection
from artlens.paintings.search.index import SearchIndex
from artlens.paintings.search.kinds import (
    AUTO_APPROX_THRESHOLD,
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    INDEX_TYPES,
    PQ_MAX_SHARDS,
    PQ_RERANK,
    PQ_SHARD_MIN,
    RERANK_MEMMAP_MIN,
    RERANK_RAM_SHARE,
    RERANK_STORES,
    build_faiss_index,
    shard_pq_scan,
)
from artlens.paintings.search.metrics import average_precision_at_k, mean_average_precision_at_k, recall_at_k
from artlens.paintings.search.results import Hit, IndexSummary
from artlens.paintings.search.store import FORMAT_VERSION, INDEX_FORMAT

__all__ = [
    "AUTO_APPROX_THRESHOLD",
    "FORMAT_VERSION",
    "HNSW_EF_CONSTRUCTION",
    "HNSW_EF_SEARCH",
    "HNSW_M",
    "INDEX_FORMAT",
    "INDEX_TYPES",
    "PQ_MAX_SHARDS",
    "PQ_RERANK",
    "PQ_SHARD_MIN",
    "RERANK_MEMMAP_MIN",
    "RERANK_RAM_SHARE",
    "RERANK_STORES",
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
    "shard_pq_scan",
]
