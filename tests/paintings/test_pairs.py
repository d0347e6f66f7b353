"""Pair sampling for verification: exact balance, correct labels, hard negatives, determinism."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from artlens.errors import InvalidParameterError
from artlens.paintings.pairs import PairSampler, balanced_eval_pairs

# 4 artists of unequal size and one artist with a single painting (index 11)
LABELS = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] * 1 + ["e"] * 1)
ARTIST = list(LABELS)


def _check(pairs: np.ndarray, labels: np.ndarray) -> None:
    assert pairs.dtype == np.int64 and pairs.ndim == 2 and pairs.shape[1] == 3
    same = labels[pairs[:, 0]] == labels[pairs[:, 1]]
    np.testing.assert_array_equal(same.astype(np.int64), pairs[:, 2])
    assert np.all(pairs[:, 0] != pairs[:, 1])


@pytest.mark.parametrize("n_pairs", [0, 1, 2, 7, 100, 1001])
def test_exact_balance_and_correct_labels(n_pairs: int) -> None:
    pairs = PairSampler(ARTIST, seed=1).sample(n_pairs)
    assert pairs.shape == (n_pairs, 3)
    assert int(pairs[:, 2].sum()) == n_pairs // 2  # positives rounded down; an odd pair is a negative
    _check(pairs, LABELS)


def test_single_item_classes_never_give_positives() -> None:
    pairs = PairSampler(ARTIST, seed=0).sample(2000)
    pos = pairs[pairs[:, 2] == 1]
    assert not np.isin(pos[:, :2], [10, 11]).any()
    assert np.isin(pairs[pairs[:, 2] == 0][:, :2], [10, 11]).any()  # they do appear in negatives
    # every multi-item class shows up among the positives, with more than one partner
    assert set(LABELS[pos[:, 0]]) == {"a", "b", "c"}
    assert len({tuple(sorted(p)) for p in pos[:, :2].tolist()}) > 10


def test_deterministic_for_seed_and_epoch() -> None:
    s = PairSampler(ARTIST, seed=5)
    np.testing.assert_array_equal(s.sample(64, epoch=2), PairSampler(ARTIST, seed=5).sample(64, epoch=2))
    assert not np.array_equal(s.sample(64, epoch=2), s.sample(64, epoch=3))
    assert not np.array_equal(s.sample(64, epoch=0), PairSampler(ARTIST, seed=6).sample(64, epoch=0))


def test_hard_negatives_come_from_neighbours() -> None:
    n = LABELS.size
    rng = np.random.default_rng(0)
    neighbours = np.stack([rng.permutation(n)[:3] for _ in range(n)])
    neighbours[0] = [1, 2, 3]  # item 0 (artist a) has only same-artist neighbours: falls back to random
    pairs = PairSampler(ARTIST, seed=0, hard_negative_fraction=1.0, neighbours=neighbours).sample(400)
    _check(pairs, LABELS)
    neg = pairs[pairs[:, 2] == 0]
    for i, j, _ in neg:
        if i != 0:
            assert j in neighbours[i], (i, j)
    assert (neg[:, 0] == 0).any()
    # with no hard negatives the partners are spread over the other classes
    plain = PairSampler(ARTIST, seed=0, hard_negative_fraction=0.0, neighbours=neighbours).sample(400)
    hits = [j in neighbours[i] for i, j, same in plain if not same]
    assert np.mean(hits) < 0.6


def test_hard_negatives_fall_back_to_the_secondary_label() -> None:
    labels = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])
    style = ["x", "y", "x", "y", "x", "y", "z", "z"]  # artist d alone in style z: no hard partner
    neighbours = np.array([[1], [0], [3], [2], [5], [4], [7], [6]])  # only same-artist neighbours
    pairs = PairSampler(list(labels), seed=3, hard_negative_fraction=1.0, neighbours=neighbours,
                        secondary=style).sample(600)
    _check(pairs, labels)
    style = np.array(style)
    neg = pairs[pairs[:, 2] == 0]
    has_style_partner = neg[:, 0] < 6
    assert np.all(style[neg[has_style_partner, 0]] == style[neg[has_style_partner, 1]])
    assert np.all(neg[~has_style_partner, 1] < 6)  # artist d: a random other artist
    # half hard: about half the negatives of items 0..5 share the style, far more than by chance
    half = PairSampler(list(labels), seed=3, hard_negative_fraction=0.5, secondary=list(style)).sample(2000)
    neg = half[(half[:, 2] == 0) & (half[:, 0] < 6)]
    share = np.mean(style[neg[:, 0]] == style[neg[:, 1]])
    assert 0.55 < share < 0.8  # 0.5 hard + 0.5 × (2 of 6 random partners share the style) ≈ 0.67


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": ["a", "a", "a"]}, "at least 2 classes"),
        ({"labels": ["a", "b", "c"]}, "at least 2 items"),
        ({"labels": ["a", "a", "b"], "hard_negative_fraction": 1.5}, "hard_negative_fraction"),
        ({"labels": ["a", "a", "b"], "neighbours": np.zeros((2, 2), int)}, "shape"),
        ({"labels": ["a", "a", "b"], "neighbours": np.full((3, 1), 3)}, "beyond"),
        ({"labels": ["a", "a", "b"], "secondary": ["x"]}, "secondary has 1"),
    ],
)
def test_sampler_rejects_bad_input(kwargs: dict, match: str) -> None:
    labels = kwargs.pop("labels")
    with pytest.raises(InvalidParameterError, match=match):
        PairSampler(labels, **kwargs)


def test_balanced_eval_pairs_takes_every_positive() -> None:
    pairs = balanced_eval_pairs(ARTIST)
    n_pos = comb(5, 2) + comb(3, 2) + comb(2, 2)
    assert pairs.shape == (2 * n_pos, 3) and int(pairs[:, 2].sum()) == n_pos
    _check(pairs, LABELS)
    assert np.all(pairs[:, 0] < pairs[:, 1])
    assert len({(i, j) for i, j, _ in pairs.tolist()}) == pairs.shape[0]
    all_pos = {(i, j) for i in range(12) for j in range(i + 1, 12) if LABELS[i] == LABELS[j]}
    assert {(i, j) for i, j, s in pairs.tolist() if s} == all_pos


def test_balanced_eval_pairs_subset_and_shortage() -> None:
    labels = np.repeat(np.arange(6), 20)
    pairs = balanced_eval_pairs(labels, max_pairs=301, seed=2)
    assert pairs.shape == (300, 3) and int(pairs[:, 2].sum()) == 150
    _check(pairs, labels)
    assert len({(i, j) for i, j, _ in pairs.tolist()}) == 300
    np.testing.assert_array_equal(pairs, balanced_eval_pairs(labels, max_pairs=301, seed=2))
    assert not np.array_equal(pairs, balanced_eval_pairs(labels, max_pairs=301, seed=3))
    # two big classes, one tiny: fewer negatives than positives bounds both
    few = balanced_eval_pairs(["a"] * 6 + ["b"])
    assert few.shape == (12, 3) and int(few[:, 2].sum()) == 6
    with pytest.raises(InvalidParameterError):
        balanced_eval_pairs(["a", "b"])
