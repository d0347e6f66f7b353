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
    """Area under the ROC curve (scikit-learn's ``roc_auc_score``; tied scores count half).

    ``labels`` are truth values (non-zero: positive). NaN when one class is missing or a score is
    NaN; infinite scores count by their order (scikit-learn refuses them).

    Example:
        >>> roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
        0.75
    """
    s, y = np.asarray(scores, float), np.asarray(labels).astype(bool)
    if y.all() or not y.any() or np.isnan(s).any():
        return float("nan")
    if not np.isfinite(s).all():
        s = np.unique(s, return_inverse=True)[1].reshape(s.shape).astype(float)  # same order, finite
    from sklearn.metrics import roc_auc_score

    # The area is a multiple of 1 / (2 · n1 · n0) (ties count half); snapping the trapezoid sum to it
    # removes its last-bit rounding, so equal areas compare equal (the verifier's blend choice) and
    # the value is U / (n1 · n0) to the last bit, as the Mann-Whitney count gave it before.
    grid = 2 * int(y.sum()) * int((~y).sum())
    return round(float(roc_auc_score(y, s)) * grid) / grid


def sigmoid(z: np.ndarray | float) -> np.ndarray | float:
    """Numerically stable logistic function."""
    z = np.asarray(z, float)
    out = np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))
    return float(out) if out.ndim == 0 else out
