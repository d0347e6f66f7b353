"""Painting model folders (classifier, verifier, autoencoder) are written with the one checkpoint
module (artlens.models.checkpoint): every file's SHA-256 in config.json, the backbone's SHA-256 recorded
and checked whenever a backbone file is saved, and folders written before the "files" key still load."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from artlens.errors import UnreadableInputError  # noqa: E402
from artlens.provenance import sha256_file  # noqa: E402

TINY = "test_efficientnet"  # timm's tiny test model: random weights, no download


def _backbone():
    from artlens.models.backbones import create_backbone

    torch.manual_seed(0)
    return create_backbone(TINY, pretrained=False)


def _check_folder(folder, weights: str) -> dict:
    doc = json.loads((folder / "config.json").read_text())
    assert doc["sha256"] == sha256_file(folder / weights) == doc["files"][weights]
    assert doc["backbone_sha256"] == sha256_file(folder / "backbone.safetensors")
    assert doc["files"]["backbone.safetensors"] == doc["backbone_sha256"]
    assert not list(folder.glob("*.tmp"))  # written atomically, nothing left behind
    return doc


def _tamper(path) -> None:
    with open(path, "ab") as fh:
        fh.write(b"\0")


def _drop_files_key(folder) -> None:
    """What the code before the checkpoint module wrote: no "files" entry."""
    doc = json.loads((folder / "config.json").read_text())
    del doc["files"]
    (folder / "config.json").write_text(json.dumps(doc, indent=2) + "\n")


def test_classifier_folder_records_and_checks_every_file(tmp_path):
    from artlens.paintings.classify import Classifier, ClassifierConfig, load_classifier, save_classifier

    backbone, prep = _backbone()
    cfg = ClassifierConfig(classes=["a", "b"], backbone=TINY, pretrained_backbone=False, n_tiles=2, hidden=8,
                           attention_dim=4)
    clf = Classifier(cfg, backbone=backbone, preprocess=prep)
    save_classifier(clf.head, clf.config, tmp_path / "m", backbone=clf.backbone)
    doc = _check_folder(tmp_path / "m", "head.safetensors")
    loaded = load_classifier(tmp_path / "m")
    assert loaded.checksum == doc["sha256"]
    _drop_files_key(tmp_path / "m")  # an older folder: backbone_sha256 is still checked
    load_classifier(tmp_path / "m")
    _tamper(tmp_path / "m" / "backbone.safetensors")
    with pytest.raises(UnreadableInputError, match="backbone.safetensors: checksum"):
        load_classifier(tmp_path / "m")


def test_verifier_folder_records_the_backbone_checksum(tmp_path):
    from artlens.paintings.verify import Verifier, VerifierConfig, load_verifier, save_verifier

    backbone, prep = _backbone()
    cfg = VerifierConfig(backbone=TINY, pretrained_backbone=False, n_patches=1, max_side=128, hidden=8,
                         embed_dim=4)
    v = Verifier(cfg)
    save_verifier(v.head, cfg, tmp_path / "v", backbone=v.extractor.model)
    doc = _check_folder(tmp_path / "v", "head.safetensors")
    assert doc["config"]["backbone_checkpoint"] == "backbone.safetensors"
    again = load_verifier(tmp_path / "v")
    assert again.checksum == doc["sha256"]
    for k, t in v.head.state_dict().items():
        assert torch.equal(t, again.head.state_dict()[k])
    _tamper(tmp_path / "v" / "backbone.safetensors")
    with pytest.raises(UnreadableInputError, match="checksum"):
        load_verifier(tmp_path / "v")


def test_autoencoder_folder_records_the_backbone_checksum(tmp_path):
    from artlens.paintings.encoders import AutoencoderConfig, load_autoencoder, make_autoencoder, save_autoencoder

    backbone, _ = _backbone()
    model = make_autoencoder(AutoencoderConfig(in_dim=12, code_dim=4, hidden=8, backbone=TINY, n_patches=0))
    save_autoencoder(model, tmp_path / "e", backbone=backbone)
    doc = _check_folder(tmp_path / "e", "encoder.safetensors")
    assert doc["backbone_checksum"] == doc["backbone_sha256"]  # the key the embedder checks, as before
    again, loaded = load_autoencoder(tmp_path / "e")
    x = np.random.default_rng(0).normal(size=(3, 12)).astype(np.float32)
    with torch.no_grad():
        assert torch.equal(again.encode(torch.from_numpy(x)), model.eval().encode(torch.from_numpy(x)))
    _tamper(tmp_path / "e" / "backbone.safetensors")
    with pytest.raises(UnreadableInputError, match="checksum"):
        load_autoencoder(tmp_path / "e")


def test_the_shipped_verifier_folder_still_loads():
    from artlens.paintings.verify import load_verifier

    v = load_verifier()
    assert v.checksum == "a95a06c0bf2817d4d618f994383b3c05de6ab2b318b4cec6b32b619a07d46330"
