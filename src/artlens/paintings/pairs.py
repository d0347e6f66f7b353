"""Pairs of images for same-artist verification: a balanced, seeded training sampler with hard
negatives, and an exhaustive-or-sampled balanced set for evaluation (AUC).

A pair is one row ``(i, j, same)`` of an ``int64`` array: item indices ``i`` and ``j`` and ``same = 1``
when both items carry the same label (a positive), ``0`` otherwise (a negative).

Example:
    >>> sampler = PairSampler(["a", "a", "b", "b", "c"], seed=0)
    >>> pairs = sampler.sample(10, epoch=0)
    >>> pairs.shape, int(pairs[:, 2].sum())
    ((10, 3), 5)
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from artlens.errors import InvalidParameterError


def _encode(labels: Sequence[Hashable], what: str = "labels") -> np.ndarray:
    """Integer codes of ``labels`` (code order = sorted distinct values)."""
    values = list(labels)
    distinct = sorted(set(values), key=lambda v: (str(v), type(v).__name__))
    code = {v: k for k, v in enumerate(distinct)}
    return np.fromiter((code[v] for v in values), dtype=np.int64, count=len(values))


class _Blocks:
    """Items sorted by class code: ``order[start[c]:start[c] + size[c]]`` are the members of class ``c``."""

    def __init__(self, codes: np.ndarray) -> None:
        self.codes = codes
        self.order = np.argsort(codes, kind="stable")
        self.size = np.bincount(codes, minlength=int(codes.max()) + 1 if codes.size else 0)
        self.start = np.concatenate([[0], np.cumsum(self.size)[:-1]]).astype(np.int64)
        self.rank = np.empty_like(self.order)
        self.rank[self.order] = np.arange(codes.size) - self.start[codes[self.order]]


def _check_labels(codes: np.ndarray) -> None:
    n_classes = int(codes.max()) + 1 if codes.size else 0
    if n_classes < 2:
        raise InvalidParameterError(f"pairs need at least 2 classes, got {n_classes}")
    if np.bincount(codes).max() < 2:
        raise InvalidParameterError("pairs need a class with at least 2 items for positives; every class has one")


class PairSampler:
    """Balanced pairs for training a verifier, drawn afresh each epoch.

    Positives: an anchor drawn uniformly among items whose class has at least 2 items, paired with a
    different item of the same class (single-item classes never give positives). Negatives: an anchor
    drawn uniformly among all items, paired with an item of another class. About
    ``hard_negative_fraction`` of the negatives are *hard*: the partner is drawn among the anchor's
    ``neighbours`` (e.g. its k nearest items by embedding) that have another label; if none has, among
    the items sharing the anchor's ``secondary`` label (e.g. same style, other artist); if none does,
    at random.

    Args:
        labels: the class (e.g. artist) of each item, length ``N``.
        seed: random seed; :meth:`sample` is deterministic for ``(seed, epoch)``.
        hard_negative_fraction: share of negatives that are hard, in [0, 1].
        neighbours: ``(N, k)`` item indices, row ``i`` the neighbours of item ``i`` (``-1`` pads).
        secondary: a second label of each item (length ``N``) for hard negatives.

    Raises:
        InvalidParameterError: fewer than 2 classes, no class with 2 items, a fraction out of range, or
            ``neighbours`` / ``secondary`` of the wrong shape.
    """

    def __init__(self, labels: Sequence[Hashable], *, seed: int = 0, hard_negative_fraction: float = 0.5,
                 neighbours: np.ndarray | None = None, secondary: Sequence[Hashable] | None = None) -> None:
        codes = _encode(labels)
        _check_labels(codes)
        if not 0.0 <= hard_negative_fraction <= 1.0:
            raise InvalidParameterError(f"hard_negative_fraction must be in [0, 1], got {hard_negative_fraction}")
        n = codes.size
        self.seed = int(seed)
        self.hard_negative_fraction = float(hard_negative_fraction)
        self._codes = codes
        self._blocks = _Blocks(codes)
        self._eligible = np.flatnonzero(self._blocks.size[codes] >= 2)
        self._neighbours = None if neighbours is None else _check_neighbours(neighbours, n)
        self._secondary = None if secondary is None else _SecondaryIndex(secondary, codes)

    @property
    def n_items(self) -> int:
        """Number of items ``N``."""
        return int(self._codes.size)

    def sample(self, n_pairs: int, epoch: int = 0) -> np.ndarray:
        """Draw ``n_pairs`` pairs: ``n_pairs // 2`` positives (rounded down) and the rest negatives.

        Args:
            n_pairs: number of pairs (≥ 0); an odd number gives one more negative than positives.
            epoch: mixed into the seed, so each epoch sees other pairs.

        Returns:
            ``(n_pairs, 3)`` int64 rows ``(i, j, same)`` in random order.
        """
        if n_pairs < 0:
            raise InvalidParameterError(f"n_pairs must be >= 0, got {n_pairs}")
        rng = np.random.default_rng([self.seed, int(epoch)])
        n_pos = n_pairs // 2
        n_neg = n_pairs - n_pos
        pos_i = rng.choice(self._eligible, size=n_pos)
        pos_j = self._same_class_partner(pos_i, rng)
        neg_i = rng.integers(0, self.n_items, size=n_neg)
        n_hard = int(round(self.hard_negative_fraction * n_neg))
        hard_j = self._hard_partner(neg_i[:n_hard], rng)
        neg_j = np.concatenate([hard_j, self._other_class_partner(neg_i[n_hard:], rng)])
        pairs = np.empty((n_pairs, 3), dtype=np.int64)
        pairs[:, 0] = np.concatenate([pos_i, neg_i])
        pairs[:, 1] = np.concatenate([pos_j, neg_j])
        pairs[:, 2] = np.concatenate([np.ones(n_pos, np.int64), np.zeros(n_neg, np.int64)])
        return pairs[rng.permutation(n_pairs)]

    # partners -----------------------------------------------------------------------------------------
    def _same_class_partner(self, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        b = self._blocks
        c = self._codes[anchors]
        r = rng.integers(0, b.size[c] - 1) if anchors.size else np.zeros(0, np.int64)
        r = r + (r >= b.rank[anchors])  # skip the anchor itself
        return b.order[b.start[c] + r]

    def _other_class_partner(self, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        b = self._blocks
        c = self._codes[anchors]
        r = rng.integers(0, self.n_items - b.size[c]) if anchors.size else np.zeros(0, np.int64)
        r = r + np.where(r >= b.start[c], b.size[c], 0)  # skip the anchor's class block
        return b.order[r]

    def _hard_partner(self, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.full(anchors.size, -1, dtype=np.int64)
        if anchors.size == 0:
            return out
        if self._neighbours is not None:
            nb = self._neighbours[anchors]
            ok = (nb >= 0) & (self._codes[np.clip(nb, 0, None)] != self._codes[anchors][:, None])
            keys = np.where(ok, rng.random(nb.shape), -1.0)
            col = np.argmax(keys, axis=1)
            has = ok.any(axis=1)
            out[has] = nb[has, col[has]]
        if self._secondary is not None:
            todo = np.flatnonzero(out < 0)
            draws = rng.random(todo.size)
            for k, u in zip(todo, draws, strict=True):
                out[k] = self._secondary.partner(int(anchors[k]), float(u))
        rest = np.flatnonzero(out < 0)
        out[rest] = self._other_class_partner(anchors[rest], rng)
        return out


def _check_neighbours(neighbours: np.ndarray, n: int) -> np.ndarray:
    nb = np.asarray(neighbours)
    if nb.ndim != 2 or nb.shape[0] != n:
        raise InvalidParameterError(f"neighbours must have shape (N, k) = ({n}, k), got {nb.shape}")
    if not np.issubdtype(nb.dtype, np.integer):
        raise InvalidParameterError(f"neighbours must hold integer item indices, got {nb.dtype}")
    nb = nb.astype(np.int64)
    if nb.size and nb.max() >= n:
        raise InvalidParameterError(f"neighbours hold index {int(nb.max())}, beyond the {n} items")
    return nb


class _SecondaryIndex:
    """For each secondary value, its items sorted by primary class, to draw a same-secondary,
    other-class item in O(1)."""

    def __init__(self, secondary: Sequence[Hashable], codes: np.ndarray) -> None:
        sec = _encode(secondary)
        if sec.size != codes.size:
            raise InvalidParameterError(f"secondary has {sec.size} labels for {codes.size} items")
        self._sec = sec
        self._codes = codes
        order = np.lexsort((codes, sec))  # by secondary, then primary
        self._members: list[np.ndarray] = []
        self._block: list[dict[int, tuple[int, int]]] = []
        bounds = np.flatnonzero(np.diff(sec[order])) + 1
        for group in np.split(order, bounds) if order.size else []:
            gc = codes[group]
            cut = np.flatnonzero(np.diff(gc)) + 1
            starts = np.concatenate([[0], cut])
            ends = np.concatenate([cut, [gc.size]])
            self._members.append(group)
            self._block.append({int(gc[s]): (int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)})

    def partner(self, anchor: int, u: float) -> int:
        """An item with the anchor's secondary label and another primary label (``u`` uniform in [0, 1)),
        or -1 when there is none."""
        g = int(self._sec[anchor])
        members = self._members[g]
        start, size = self._block[g][int(self._codes[anchor])]
        others = members.size - size
        if others == 0:
            return -1
        r = min(int(u * others), others - 1)
        return int(members[r if r < start else r + size])


def _row_offsets(per_row: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(per_row)]).astype(np.int64)


def balanced_eval_pairs(labels: Sequence[Hashable], *, max_pairs: int | None = None, seed: int = 0) -> np.ndarray:
    """A balanced set of distinct evaluation pairs: positives and as many negatives.

    Every positive pair ``i < j`` is taken, or a seeded random subset of ``max_pairs // 2`` of them when
    there are more; as many distinct negative pairs ``i < j`` are drawn uniformly at random (fewer of
    both if the data hold fewer negatives). No pair appears twice.

    Args:
        labels: the class of each item.
        max_pairs: at most this many pairs in all.
        seed: random seed for the subsets.

    Returns:
        ``(2 n, 3)`` int64 rows ``(i, j, same)`` with ``i < j``: the ``n`` positives sorted by
        ``(i, j)``, then the ``n`` negatives sorted likewise.

    Raises:
        InvalidParameterError: fewer than 2 classes, no class with 2 items, or ``max_pairs < 2``.
    """
    codes = _encode(labels)
    _check_labels(codes)
    if max_pairs is not None and max_pairs < 2:
        raise InvalidParameterError(f"max_pairs must be at least 2, got {max_pairs}")
    b = _Blocks(codes)
    # Rows of the pair triangle over the class-sorted items: sorted item b pairs with sorted items a < b;
    # those of its own class are a in [start, b), the others a in [0, start).
    sorted_codes = codes[b.order]
    own_start = b.start[sorted_codes]
    pos_per_row = np.arange(codes.size) - own_start
    neg_per_row = own_start
    pos_off, neg_off = _row_offsets(pos_per_row), _row_offsets(neg_per_row)
    n_pos_all, n_neg_all = int(pos_off[-1]), int(neg_off[-1])
    n = min(n_pos_all, n_neg_all, n_pos_all if max_pairs is None else max_pairs // 2)
    rng = np.random.default_rng(seed)
    pos_rank = np.arange(n, dtype=np.int64) if n == n_pos_all else rng.choice(n_pos_all, size=n, replace=False)
    neg_rank = rng.choice(n_neg_all, size=n, replace=False)
    pos = _decode_ranks(pos_rank, pos_off, own_start, b.order)
    neg = _decode_ranks(neg_rank, neg_off, np.zeros_like(own_start), b.order)
    out = np.empty((2 * n, 3), dtype=np.int64)
    out[:n, :2], out[:n, 2] = pos, 1
    out[n:, :2], out[n:, 2] = neg, 0
    return out


def _decode_ranks(rank: np.ndarray, offsets: np.ndarray, first: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, sorted, for ranks in a row-wise enumeration of the pair triangle."""
    row = np.searchsorted(offsets, rank, side="right") - 1
    col = first[row] + (rank - offsets[row])
    i, j = order[col], order[row]
    pairs = np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1).astype(np.int64)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if pairs.size else pairs.reshape(0, 2)
