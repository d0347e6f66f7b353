"""Turning scores into probabilities, and measuring how well scores rank: Platt scaling and ROC AUC.

Shared by every verifier (fabric Siamese, same-artist verification) so their probabilities mean the
same thing: a calibrated logit is a log-likelihood ratio for even prior odds.

References:
    J. Platt, "Probabilistic outputs for support vector machines and comparisons to regularized
    likelihood methods", in *Advances in Large Margin Classifiers*, MIT Press, 1999.
"""

from __future__ import annotations

import numpy as np


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling ``p = sigmoid(a · logit + b)`` by maximum likelihood, ``a ≥ 0``.

    Platt's smoothed targets ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)`` keep ``a`` finite on
    separable data, and the two classes are weighted equally, so the probability is for even prior
    odds (the logit is then a log-likelihood ratio that other evidence can be added to) whatever the
    share of positive pairs among the calibration pairs. ``a`` is kept non-negative: a calibration
    never turns the model's ranking upside down (``a = 0`` means the scores carry no information).

    Example:
        >>> a, b = fit_platt(np.array([-2.0, -1.0, 1.0, 2.0]), np.array([0, 0, 1, 1]))
        >>> a > 0 and abs(b) < 1e-6
        True
    """
    from scipy.optimize import minimize

    x = np.asarray(logits, float)
    y = np.asarray(labels, float)
    n_pos, n_neg = y.sum(), (1 - y).sum()
    t = np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    w = np.where(y > 0, 0.5 / max(n_pos, 1), 0.5 / max(n_neg, 1))

    def nll(p: np.ndarray) -> float:
        z = p[0] * x + p[1]
        return float(np.sum(w * (np.logaddexp(0, z) - t * z)))

    res = minimize(nll, np.array([1.0, 0.0]), method="L-BFGS-B", bounds=[(0.0, None), (None, None)])
    return float(res.x[0]), float(res.x[1])


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with ties at half); NaN when one class is missing."""
    from scipy.stats import rankdata

    s, y = np.asarray(scores, float), np.asarray(labels).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def sigmoid(z: np.ndarray | float) -> np.ndarray | float:
    """Numerically stable logistic function."""
    z = np.asarray(z, float)
    out = np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))
    return float(out) if out.ndim == 0 else out
