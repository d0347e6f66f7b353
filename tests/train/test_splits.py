"""The one split helper (artlens.train.splits.holdout_split): seeded, leak-free, and the same
assignment as the split functions it replaced (their code is kept below as the reference)."""

from __future__ import annotations

import numpy as np
import pytest

from artlens.errors import InvalidParameterError
from artlens.train.splits import holdout_split


# -- the replaced functions, verbatim (threads.grouped_split, fabric.roll_split, yarn._family_split,
#    encoders' permutation split, classify.stratified_split) -------------------------------------------
def old_grouped_split(groups, val_fraction, seed):
    uniq = np.unique(groups)
    rng = np.random.default_rng(seed)
    rng.shuffle(uniq)
    n_val = max(1, int(round(len(uniq) * val_fraction))) if len(uniq) > 1 else 0
    val_groups = set(uniq[:n_val].tolist())
    is_val = np.array([g in val_groups for g in groups])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def old_roll_split(rolls, val_fraction, seed):
    uniq = np.unique(rolls)
    rng = np.random.default_rng(seed)
    rng.shuffle(uniq)
    n_val = max(2 if len(uniq) >= 4 else 1, int(round(len(uniq) * val_fraction))) if len(uniq) > 1 else 0
    return set(uniq[n_val:].tolist()), set(uniq[:n_val].tolist())


def old_family_split(families, fraction, seed):
    uniq = sorted(set(families))
    rng = np.random.default_rng(seed)
    rng.shuffle(uniq)
    n = max(1, int(round(len(uniq) * fraction))) if len(uniq) > 1 else 0
    return set(uniq[:n])


def old_encoder_split(n, val_fraction, seed):
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 2, max(2, round(val_fraction * n)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def old_stratified_split(labels, *, val_fraction, test_fraction, seed):
    rng = np.random.default_rng(seed)
    lab = np.asarray(labels)
    parts = {"train": [], "val": [], "test": []}
    for c in sorted(set(labels)):
        idx = rng.permutation(np.flatnonzero(lab == c))
        n = idx.size
        n_test = max(1 if n >= 3 else 0, round(test_fraction * n)) if test_fraction > 0 else 0
        n_val = max(1 if n >= 2 else 0, round(val_fraction * n)) if val_fraction > 0 else 0
        n_val = min(n_val, max(0, n - 1))
        n_test = min(n_test, max(0, n - 1 - n_val))
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test:n_test + n_val])
        parts["train"].append(idx[n_test + n_val:])
    return {k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in parts.items()}


@pytest.mark.parametrize("seed", [0, 1, 7, 42])
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.2, 0.25, 0.5])
def test_group_split_reproduces_the_replaced_grouped_splits(seed, fraction):
    rng = np.random.default_rng(100 + seed)
    for n_groups in (1, 2, 3, 4, 5, 9, 17):
        groups = rng.integers(0, n_groups, 60) + 1_000_000 * (rng.uniform(size=60) < 0.3)
        s = holdout_split(groups, val_fraction=fraction, seed=seed)
        tr, va = old_grouped_split(groups, fraction, seed)
        assert np.array_equal(s["train"], tr) and np.array_equal(s["val"], va) and s["test"].size == 0
        u = len(np.unique(groups))
        s = holdout_split(groups, val_fraction=fraction, seed=seed, min_val=2 if u >= 4 else 1)
        tr_rolls, va_rolls = old_roll_split(groups, fraction, seed)
        assert set(groups[s["train"]].tolist()) == tr_rolls and set(groups[s["val"]].tolist()) == va_rolls
        fams = [f"fam-{g}" for g in groups]
        s = holdout_split(fams, val_fraction=fraction, seed=seed)
        assert {fams[i] for i in s["val"]} == old_family_split(fams, fraction, seed)
    for n in (4, 5, 10, 33):
        if fraction > 0:
            s = holdout_split(np.arange(n), val_fraction=fraction, seed=seed, min_val=2, min_train=2)
            tr, va = old_encoder_split(n, fraction, seed)
            assert np.array_equal(s["train"], tr) and np.array_equal(s["val"], va)


@pytest.mark.parametrize("seed", [0, 3])
def test_class_split_reproduces_the_replaced_stratified_split(seed):
    rng = np.random.default_rng(seed)
    labels = [f"c{int(k)}" for k in rng.integers(0, 6, 80)] + ["rare"] * 2 + ["single"]
    for vf, tf in ((0.2, 0.3), (0.15, 0.15), (0.2, 0.0), (0.0, 0.25)):
        new = holdout_split(labels, val_fraction=vf, test_fraction=tf, seed=seed, by="class")
        old = old_stratified_split(labels, val_fraction=vf, test_fraction=tf, seed=seed)
        for k in ("train", "val", "test"):
            assert np.array_equal(new[k], old[k]), k


def test_groups_never_straddle_and_the_seed_decides():
    groups = np.repeat(np.arange(12), 5)
    s = holdout_split(groups, val_fraction=0.25, test_fraction=0.25, seed=4)
    sides = [set(groups[s[k]].tolist()) for k in ("train", "val", "test")]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert sum(len(s[k]) for k in s) == len(groups) and len(sides[1]) == 3 and len(sides[2]) == 3
    again = holdout_split(groups, val_fraction=0.25, test_fraction=0.25, seed=4)
    assert all(np.array_equal(s[k], again[k]) for k in s)
    other = holdout_split(groups, val_fraction=0.25, test_fraction=0.25, seed=5)
    assert any(not np.array_equal(s[k], other[k]) for k in s)


def test_bad_fractions_are_a_clear_error():
    with pytest.raises(InvalidParameterError, match="val_fraction"):
        holdout_split([1, 2, 3], val_fraction=0.6, test_fraction=0.5, seed=0)
    with pytest.raises(InvalidParameterError, match="split kind"):
        holdout_split([1, 2, 3], val_fraction=0.2, seed=0, by="rows")  # type: ignore[arg-type]
