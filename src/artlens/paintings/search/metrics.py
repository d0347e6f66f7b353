"""Retrieval metrics used by the tests and benchmarks: AP@k, mAP@k of a collection searched against
itself, and recall@k of an approximate index against exact search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from artlens.errors import InvalidParameterError
from artlens.paintings.embedding import l2_normalise
from artlens.paintings.search.collection import clean_label
from artlens.paintings.search.index import SearchIndex
from artlens.paintings.search.kinds import faiss_module

__all__ = ["average_precision_at_k", "mean_average_precision_at_k", "recall_at_k"]


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
        flat = faiss_module().IndexFlatIP(vecs.shape[1])
        flat.add(np.ascontiguousarray(vecs))

        def search(q: np.ndarray, kk: int) -> np.ndarray:
            return flat.search(np.ascontiguousarray(q), min(kk, vecs.shape[0]))[1]

    n = vecs.shape[0]
    if len(ys) != n:
        raise InvalidParameterError(f"{len(ys)} labels for {n} vectors")
    ys_arr = np.array([clean_label(y) if y is not None else None for y in ys], dtype=object)
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
