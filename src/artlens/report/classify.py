"""Figures and self-contained HTML reports of painting classification: the confusion matrix,
per-class recall, the most confused pairs with example thumbnails, predictions with Grad-CAM.

Figures are built on an Agg canvas without ``pyplot`` (like :mod:`artlens.report.figures`).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from artlens import __version__
from artlens.report.figures import figure_to_png_bytes
from artlens.report.templating import render_template
from artlens.report.verification import thumbnail_uri


def confusion_matrix_figure(confusion: Sequence[Sequence[int]] | np.ndarray, classes: Sequence[str], *,
                            normalise: bool = True, title: str = "Confusion matrix") -> Figure:
    """The confusion matrix as a heatmap: rows are true classes, columns predicted ones.

    Args:
        confusion: ``(K, K)`` counts.
        classes: class names, in matrix order.
        normalise: colour by the fraction of each true class (row), so the diagonal reads as
            per-class recall; cells also print the counts.
        title: figure title.
    """
    cm = np.asarray(confusion, dtype=np.float64)
    k = len(classes)
    if cm.shape != (k, k):
        raise ValueError(f"confusion matrix {cm.shape} does not match {k} classes")
    rows = cm.sum(axis=1, keepdims=True)
    shown = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0) if normalise else cm
    side = min(16.0, max(4.5, 0.38 * k + 2.5))
    fig = Figure(figsize=(side + 1.2, side))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalise else max(1.0, float(cm.max())))
    names = [_short(c) for c in classes]
    ax.set_xticks(range(k), names, rotation=90, fontsize=7 if k > 12 else 8)
    ax.set_yticks(range(k), names, fontsize=7 if k > 12 else 8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if cm[i, j] > 0:
                    ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=6 if k > 12 else 8,
                            color="white" if shown[i, j] > 0.55 * (1 if normalise else cm.max()) else "#223")
    ax.set_title(title, fontsize=10)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    cb.set_label("fraction of the true class" if normalise else "images", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def per_class_recall_figure(per_class: dict[str, dict[str, float]], title: str = "Recall per class") -> Figure:
    """Horizontal bars of each class's recall (with its number of images)."""
    names = [c for c, v in per_class.items() if v.get("support")]
    rec = [per_class[c]["recall"] for c in names]
    fig = Figure(figsize=(6.2, max(2.2, 0.26 * len(names) + 1.0)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(names))
    ax.barh(y, rec, color="#4a78b5")
    ax.set_yticks(y, [f"{_short(c)} ({per_class[c]['support']})" for c in names], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("recall (fraction of the class's images predicted as the class)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def _short(name: str, n: int = 28) -> str:
    name = str(name).replace("_", " ")
    return name if len(name) <= n else name[: n - 1] + "…"


def _png_uri(fig: Figure) -> str:
    return "data:image/png;base64," + base64.b64encode(figure_to_png_bytes(fig)).decode("ascii")


def _pct(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * float(x):.1f} %"


def write_classification_report(path: str | Path, metrics: dict[str, Any], paths: Sequence[str],
                                true: Sequence[str], probs: np.ndarray, model: dict[str, Any], *,
                                title: str = "Classifier evaluation", split: str | None = None,
                                training: dict[str, Any] | None = None, n_examples: int = 4,
                                max_pairs: int = 10) -> Path:
    """Write the evaluation report of a classifier on labelled images.

    Args:
        path: the HTML file to write.
        metrics: :func:`artlens.paintings.evaluate.classification_metrics` of the images.
        paths, true, probs: the images, their true labels and predicted ``(n, K)`` probabilities.
        model: the classifier's :meth:`~artlens.paintings.classify.Classifier.record`.
        title: page title.
        split: name of the evaluated split, shown in the summary.
        training: stages, split sizes and epoch times of a training run (optional).
        n_examples: thumbnails per confused pair.
        max_pairs: confused pairs shown.
    """
    classes = metrics["classes"]
    ctx: dict[str, Any] = {"version": __version__, "created": datetime.now(UTC).isoformat(timespec="seconds"),
                           "title": title, "mode": "evaluation", "m": model, "split": split, "training": training}
    summary = [("images", str(metrics["n"]))]
    for key in ("top1", "top3", "top5"):
        if key in metrics:
            summary.append((f"top-{key[3:]} accuracy", _pct(metrics[key])))
    summary.append(("macro-F1", _pct(metrics.get("macro_f1"))))
    if metrics.get("unknown_labels"):
        summary.append(("labels the model does not know (counted wrong)", str(metrics["unknown_labels"])))
    ctx["summary"] = summary
    if metrics["n"]:
        ctx["confusion_uri"] = _png_uri(confusion_matrix_figure(metrics["confusion"], classes))
        ctx["recall_uri"] = _png_uri(per_class_recall_figure(metrics["per_class"]))
    ctx["per_class"] = [{"name": c, "recall": _pct(v["recall"]), "precision": _pct(v["precision"]),
                         "f1": _pct(v["f1"]), "support": v["support"]} for c, v in metrics["per_class"].items()]
    probs = np.asarray(probs)
    pairs = []
    for pair in metrics.get("most_confused", [])[:max_pairs]:
        j = classes.index(pair["predicted"])
        examples = [{"uri": thumbnail_uri(paths[i], 200), "path": paths[i], "p": f"{probs[i, j]:.2f}"}
                    for i in pair["examples"][:n_examples]]
        pairs.append({**pair, "examples": examples})
    ctx["pairs"] = pairs
    return _write(path, ctx)


def write_prediction_report(path: str | Path, predictions: Sequence[dict[str, Any]], model: dict[str, Any], *,
                            heatmaps: dict[str, list[dict[str, str]]] | None = None,
                            title: str = "Painting classification") -> Path:
    """Write the report of predictions for images: top-k classes and Grad-CAM overlays.

    Args:
        predictions: ``[{"path", "predictions": [{"label", "probability"}]}]`` (or ``{"path", "error"}``).
        model: the classifier's record.
        heatmaps: image path → ``[{"png", "caption"}]`` Grad-CAM overlay files.
    """
    rows = []
    for p in predictions:
        maps = [{"uri": thumbnail_uri(h["png"], 520), "caption": h["caption"]}
                for h in (heatmaps or {}).get(p["path"], [])]
        rows.append({"path": p["path"], "uri": thumbnail_uri(p["path"], 360), "error": p.get("error"),
                     "predictions": [{"label": q["label"], "p": f"{q['probability']:.3f}",
                                      "width": f"{100 * q['probability']:.1f}"} for q in p.get("predictions", [])],
                     "maps": maps})
    ctx = {"version": __version__, "created": datetime.now(UTC).isoformat(timespec="seconds"), "title": title,
           "mode": "predict", "m": model, "rows": rows}
    return _write(path, ctx)


def _write(path: str | Path, ctx: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_template("classify.html", ctx, strict=False), encoding="utf-8")
    return path
