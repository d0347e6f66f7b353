"""ROC AUC (artlens.models.calibration.roc_auc, scikit-learn's roc_auc_score underneath) against the
Mann-Whitney count it replaced: the same value to the last bit, the same NaN cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

pytest.importorskip("sklearn")

from artlens.models.calibration import roc_auc  # noqa: E402


def _old_roc_auc(scores, labels):
    # artlens.models.calibration.roc_auc before issue 22, verbatim
    s, y = np.asarray(scores, float), np.asarray(labels).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_is_the_mann_whitney_count_to_the_last_bit(seed):
    rng = np.random.default_rng(seed)
    for t in range(300):
        n = int(rng.integers(2, 300))
        y = (rng.uniform(size=n) < rng.uniform(0.05, 0.95)).astype(float) * rng.choice([1, 2, -1])
        s = rng.normal(size=n) + (y != 0) * rng.uniform(0, 2)
        if t % 3 == 0:
            s = np.round(s, 1)  # many ties
        if t % 7 == 0:
            s[rng.integers(0, n, 3)] = rng.choice([np.inf, -np.inf], 3)  # infinities count by order
        old, new = _old_roc_auc(s, y), roc_auc(s, y)
        assert (np.isnan(old) and np.isnan(new)) or old == new, (t, old, new)


def test_roc_auc_is_nan_for_one_class_or_a_nan_score():
    with np.errstate(all="ignore"):
        assert np.isnan(roc_auc(np.array([0.2, 0.4]), np.array([1, 1])))
        assert np.isnan(roc_auc(np.array([0.2, 0.4]), np.array([0, 0])))
        assert np.isnan(roc_auc(np.zeros(0), np.zeros(0)))
        assert np.isnan(roc_auc(np.array([np.nan, 0.1, 0.3]), np.array([0, 1, 1])))
    assert roc_auc(np.array([0.3, 0.3, 0.3]), np.array([0, 1, 1])) == 0.5
