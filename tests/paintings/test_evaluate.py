"""Classification evaluation (artlens.paintings.evaluate) is separate from training: running it never
imports artlens.train nor Lightning."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

TINY = "test_efficientnet"  # timm's tiny test model: random weights, no download

CHECK = """
import sys
import artlens.cli.classify
from artlens.paintings.evaluate import evaluate_classifier
metrics, items = evaluate_classifier(sys.argv[1], sys.argv[2])
assert metrics["n"] == 4, metrics
bad = sorted(m for m in sys.modules if m.startswith(("artlens.train", "lightning", "pytorch_lightning")))
print("IMPORTED:" + ",".join(bad))
"""


def test_evaluate_runs_without_importing_train_or_lightning(tmp_path):
    from artlens.models.backbones import create_backbone
    from artlens.paintings.classify import Classifier, ClassifierConfig, save_classifier

    torch.manual_seed(0)
    backbone, prep = create_backbone(TINY, pretrained=False)
    cfg = ClassifierConfig(classes=["a", "b"], backbone=TINY, pretrained_backbone=False, n_tiles=2, max_side=400,
                           hidden=8, attention_dim=4)
    clf = Classifier(cfg, backbone=backbone, preprocess=prep)
    save_classifier(clf.head, clf.config, tmp_path / "model", backbone=clf.backbone)
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(2):
            px = rng.integers(0, 255, (170, 200, 3)).astype(np.uint8)
            Image.fromarray(px).save(tmp_path / "data" / label / f"{i}.png")
    out = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path / "model"), str(tmp_path / "data")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "IMPORTED:"


def test_confusion_matrix_counts_known_labels_only():
    """The confusion matrix (scikit-learn's) equals counting (true, predicted) pairs by hand; unknown
    labels are left out, a one-class model gets a 1 × 1 matrix without a warning."""
    import warnings

    from artlens.paintings.evaluate import classification_metrics

    rng = np.random.default_rng(3)
    classes = ["a", "b", "c", "d"]
    truth = [str(v) for v in rng.choice(classes + ["zebra"], 60)]
    probs = rng.dirichlet(np.ones(4), 60)
    by_hand = np.zeros((4, 4), dtype=int)
    for t, p in zip(truth, probs.argmax(axis=1), strict=True):
        if t in classes:
            by_hand[classes.index(t), p] += 1
    assert classification_metrics(truth, probs, classes)["confusion"] == by_hand.tolist()
    assert classification_metrics(["zebra"] * 3, probs[:3], classes)["confusion"] == [[0] * 4] * 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert classification_metrics(["a", "a"], np.ones((2, 1)), ["a"])["confusion"] == [[2]]
