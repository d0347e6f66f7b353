"""One split helper for every training task: :func:`holdout_split`.

Two kinds of split, both seeded (the same seed gives the same split) and leak-free:

- ``by="group"``: whole groups (X-ray plates, rolls, roll families, images) go to one side, so no
  group has items on both sides. The sorted distinct groups are shuffled with
  ``numpy.random.default_rng(seed)``; the first ``n_test`` go to test, the next ``n_val`` to
  validation, the rest to training.
- ``by="class"``: stratified: each class's items are shuffled and cut into test, validation and
  training, so every side keeps the class proportions.

scikit-learn's ``GroupShuffleSplit`` / ``StratifiedShuffleSplit`` draw with another generator and
other rounding, which would move items of existing runs to the other side (and change the figures
that their models were reported with); this helper keeps the assignment artlens has always made.

Two splits of :mod:`artlens.paintings.datasets` are not this one and stay there (the domains may not
import :mod:`artlens.train`): ``group_split`` hands out whole groups until each side holds a share of
the *items* (this helper counts groups), and ``seen_unseen_split`` (the verifier's open-set split,
:func:`artlens.train.verifier.split_indices`) holds some groups out whole and cuts every other group
with test before validation and ``min_per_group_split`` items each (this helper's ``by="class"``
fills validation first). Neither assignment can be had from this helper for the same seed.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np

from artlens.errors import InvalidParameterError

__all__ = ["holdout_split"]


def _n_held(n: int, fraction: float, least: int, keep: int) -> int:
    """How many of ``n`` groups a held-out side gets: ``round(fraction · n)`` raised to ``least``,
    lowered to leave ``keep`` groups; none when there is a single group."""
    if n <= 1:
        return 0
    return max(0, min(max(least, int(round(n * fraction))), n - keep))


def holdout_split(keys: Sequence[Hashable] | np.ndarray, *, val_fraction: float, test_fraction: float = 0.0,
                  seed: int, by: Literal["group", "class"] = "group", min_val: int = 1, min_test: int = 1,
                  min_train: int = 0) -> dict[str, np.ndarray]:
    """Train / validation / test indices of items keyed by group or class.

    Args:
        keys: one key per item: its group (``by="group"``) or its class (``by="class"``).
        val_fraction: share of the groups (or of each class's items) held out for validation.
        test_fraction: share held out for test (taken before validation).
        seed: the shuffle's seed.
        by: ``"group"``: whole groups on one side; ``"class"``: stratified by class.
        min_val: ``by="group"``: least number of validation groups when there are two groups or
            more (even with ``val_fraction`` 0: training needs a validation set; pass 0 for none).
        min_test: ``by="group"``: least number of test groups when ``test_fraction > 0``.
        min_train: ``by="group"``: groups always left for training.

    With ``by="class"`` a class of ``n`` items gives ``round(test_fraction · n)`` to test and
    ``round(val_fraction · n)`` to validation, raised to one each when the class has enough items
    (3 for test, 2 for validation); one item always stays in training, and a class too small for all
    three fills validation before test.

    Returns:
        ``{"train", "val", "test"}`` → sorted ``int64`` item indices, disjoint and covering every item.

    Raises:
        InvalidParameterError: fractions outside [0, 1) or summing to 1 or more.

    Example:
        >>> s = holdout_split(["a", "a", "b", "c", "c", "d"], val_fraction=0.25, seed=0)
        >>> sorted(s), len(s["val"]) > 0, set(s["train"]) & set(s["val"])
        (['test', 'train', 'val'], True, set())
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise InvalidParameterError("val_fraction and test_fraction must be in [0, 1) and sum below 1")
    rng = np.random.default_rng(seed)
    lab = np.asarray(keys)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    if by == "group":
        uniq = np.unique(lab)
        rng.shuffle(uniq)
        n_test = _n_held(len(uniq), test_fraction, min_test, min_train) if test_fraction > 0 else 0
        n_val = _n_held(len(uniq), val_fraction, min_val, min_train + n_test)
        side = {"test": uniq[:n_test], "val": uniq[n_test:n_test + n_val], "train": uniq[n_test + n_val:]}
        for name, groups in side.items():
            parts[name].append(np.flatnonzero(np.isin(lab, groups)))
    elif by == "class":
        for c in np.unique(lab):
            idx = rng.permutation(np.flatnonzero(lab == c))
            n = idx.size
            n_test = max(1 if n >= 3 else 0, round(test_fraction * n)) if test_fraction > 0 else 0
            n_val = max(1 if n >= 2 else 0, round(val_fraction * n)) if val_fraction > 0 else 0
            n_val = min(n_val, max(0, n - 1))  # validation first: early stopping needs every class
            n_test = min(n_test, max(0, n - 1 - n_val))
            parts["test"].append(idx[:n_test])
            parts["val"].append(idx[n_test:n_test + n_val])
            parts["train"].append(idx[n_test + n_val:])
    else:
        raise InvalidParameterError(f"unknown split kind {by!r}; use 'group' or 'class'")
    return {k: np.sort(np.concatenate(v)).astype(np.int64) if v else np.zeros(0, np.int64) for k, v in parts.items()}
