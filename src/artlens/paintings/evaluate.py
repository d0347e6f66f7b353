"""Evaluating painting classifiers (``artlens classify evaluate``): metrics of predicted probabilities
against true labels, and a saved classifier (or blend) run over a labelled collection.

This module needs the inference side only (:mod:`artlens.paintings.classify`, the dataset loader);
it never imports :mod:`artlens.train` nor Lightning (a test checks it).

Metrics (:func:`classification_metrics`): top-1/top-k accuracy, macro-F1, per-class recall and
precision, the confusion matrix and the most confused pairs with example images.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from artlens.errors import InvalidParameterError


def classification_metrics(y_true: Sequence[str], probs: np.ndarray, classes: Sequence[str], *,
                           ks: Sequence[int] = (1, 3, 5), n_pairs: int = 10, n_examples: int = 4) -> dict[str, Any]:
    """Accuracy, top-k, macro-F1, per-class recall / precision / F1, confusion matrix, most confused pairs.

    Args:
        y_true: true labels (strings); a label the model does not know counts as an error.
        probs: ``(n, K)`` predicted probabilities, columns in ``classes`` order.
        classes: the model's classes.
        ks: top-k accuracies to report (``k`` above ``K`` is skipped).
        n_pairs: most confused (true, predicted) pairs to list.
        n_examples: example item indices per confused pair.

    Returns:
        ``{"n", "top1", "top3", ..., "macro_f1", "per_class": {c: {"recall", "precision", "f1",
        "support"}}, "confusion": K × K counts (rows: true, columns: predicted), "classes",
        "most_confused": [{"true", "predicted", "count", "examples": [item indices]}],
        "unknown_labels": n}``. Macro-F1 averages the F1 of the classes present in ``y_true``.
    """
    classes = list(classes)
    probs = np.asarray(probs, dtype=np.float64)
    n, k = probs.shape[0], len(classes)
    if probs.ndim != 2 or probs.shape[1] != k or len(y_true) != n:
        raise InvalidParameterError(f"probabilities {probs.shape} do not match {len(y_true)} labels and {k} classes")
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index.get(str(v), -1) for v in y_true], dtype=np.int64)
    out: dict[str, Any] = {"n": int(n), "classes": classes, "unknown_labels": int((y < 0).sum())}
    if n == 0:
        return {**out, "top1": float("nan"), "macro_f1": float("nan"), "per_class": {}, "confusion": [],
                "most_confused": []}
    order = np.argsort(-probs, axis=1, kind="stable")
    for kk in ks:
        if kk <= k:
            out[f"top{kk}"] = float((order[:, :kk] == y[:, None]).any(axis=1).mean())
    pred = order[:, 0]
    cm = _confusion(y, pred, k)
    per_class, f1s = {}, []
    for i, c in enumerate(classes):
        support = int((y == i).sum())
        tp = int(cm[i, i])
        predicted = int((pred == i).sum())
        recall = tp / support if support else float("nan")
        precision = tp / predicted if predicted else 0.0
        f1 = 2 * tp / (support + predicted) if support + predicted else 0.0
        per_class[c] = {"recall": recall, "precision": precision, "f1": f1, "support": support}
        if support:
            f1s.append(f1)
    out["macro_f1"] = float(np.mean(f1s)) if f1s else float("nan")
    out["per_class"] = per_class
    out["confusion"] = cm.tolist()
    pairs = [(int(cm[i, j]), i, j) for i in range(k) for j in range(k) if i != j and cm[i, j] > 0]
    pairs.sort(key=lambda t: (-t[0], classes[t[1]], classes[t[2]]))
    out["most_confused"] = [
        {"true": classes[i], "predicted": classes[j], "count": c,
         "examples": [int(e) for e in np.flatnonzero((y == i) & (pred == j))[:n_examples]]}
        for c, i, j in pairs[:n_pairs]]
    return out


def _confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """``(k, k)`` counts of (true, predicted) class indices; items whose true label is unknown (-1) are
    left out (scikit-learn's ``confusion_matrix``, which refuses an empty input: then all zeros)."""
    known = y >= 0
    if not known.any():
        return np.zeros((k, k), dtype=np.int64)
    from sklearn.metrics import confusion_matrix

    with warnings.catch_warnings():  # a one-class model's 1 × 1 matrix is no mistake
        warnings.filterwarnings("ignore", "A single label was found", UserWarning)
        cm = confusion_matrix(y[known], pred[known], labels=np.arange(k))
    return cm.astype(np.int64, copy=False)


def evaluate_classifier(model: Any, data: str | os.PathLike[str], *, label_column: str | None = None,
                        split: str | None = None, split_column: str = "split", tta: bool | None = None,
                        tiles: int | str | None = None, images_dir: str | None = None
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Evaluate a classifier (or blend) on a labelled collection.

    Args:
        model: a :class:`~artlens.paintings.classify.Classifier` / blend, or its folder.
        data: CSV or folder of ``<label>/`` subfolders.
        label_column: the true labels (default: the column the model was trained on; ``label`` for
            a folder).
        split: keep the images whose ``split_column`` has this value (``None``: all images).
        tta: test-time augmentation (mirrored global view; ``None``: as saved with the model).
        tiles: tiles per image (``None``: as trained; ``"all"``: covering tiles).

    Returns:
        ``(metrics, items)``: :func:`classification_metrics` and ``{"paths", "true", "probs",
        "failures"}``.
    """
    from artlens.paintings.classify import load_classifier
    from artlens.paintings.datasets import load_dataset

    clf = load_classifier(model) if isinstance(model, str | os.PathLike) else model
    column = label_column or (clf.members[0].config.label_column if hasattr(clf, "members")
                              else clf.config.label_column)
    folder = Path(data).is_dir()
    ds = load_dataset(data, label_column=column, images_dir=images_dir)
    if folder and column not in ds.columns():
        ds = load_dataset(data, label_column=column)
    if split is not None:
        ds = ds.split(split, column=split_column)
    truth_all = dict(zip(ds.paths(), ds.labels(column), strict=True))
    ok, probs, failures = clf.predict_proba(ds.paths(), tta=tta, tiles=tiles)
    if failures:
        warnings.warn(f"{len(failures)} images could not be read and were left out (first: {failures[0][1]})",
                      stacklevel=2)
    truth = [truth_all[p] for p in ok]
    metrics = classification_metrics(truth, probs, clf.classes)
    return metrics, {"paths": ok, "true": truth, "probs": probs, "failures": failures}
