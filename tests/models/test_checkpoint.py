"""The one save/load module (artlens.models.checkpoint): atomic writes, checksums of every file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError
from artlens.models import create_model, load_checkpoint, save_checkpoint
from artlens.models.checkpoint import load_weights, read_document, save_weights, verify_files, write_atomic
from artlens.provenance import sha256_file


def test_save_weights_records_a_checksum_for_every_file(tmp_path):
    head = torch.nn.Linear(3, 2)
    backbone = torch.nn.Conv2d(1, 2, 3)
    folder = save_weights(tmp_path / "m", head, {"model": "demo", "config": {"dim": 3}},
                          weights_name="head.safetensors",
                          extra_files={"backbone.safetensors": backbone, "bank.npy": np.arange(4.0),
                                       "notes.txt": "hi\n", "raw.bin": b"\x00\x01"},
                          metadata={"artlens_model": "demo"})
    doc = json.loads((folder / "config.json").read_text())
    assert set(doc["files"]) == {"head.safetensors", "backbone.safetensors", "bank.npy", "notes.txt", "raw.bin"}
    for name, digest in doc["files"].items():
        assert sha256_file(folder / name) == digest
    assert doc["sha256"] == doc["files"]["head.safetensors"]
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # temporary files moved into place
    assert np.load(folder / "bank.npy").tolist() == [0.0, 1.0, 2.0, 3.0]
    tensors, doc2 = load_weights(folder, weights_name="head.safetensors")
    assert torch.equal(tensors["weight"], head.weight.detach())
    assert doc2["config"] == {"dim": 3}
    # a changed extra file is caught, with the file named
    (folder / "notes.txt").write_text("changed\n")
    with pytest.raises(UnreadableInputError, match="notes.txt: checksum"):
        load_weights(folder, weights_name="head.safetensors")
    (folder / "notes.txt").unlink()
    with pytest.raises(UnreadableInputError, match="notes.txt: listed in config.json but missing"):
        verify_files(folder, doc, weights_name="head.safetensors")


def test_numpy_weights_round_trip(tmp_path):
    folder = save_weights(tmp_path, {"a": np.ones((2, 2), np.float32)}, {"model": "np"})
    tensors, _ = load_weights(folder, framework="numpy")
    assert isinstance(tensors["a"], np.ndarray) and tensors["a"].sum() == 4.0
    with pytest.raises(InvalidParameterError, match="framework"):
        load_weights(folder, framework="jax")


def test_old_folders_without_files_still_load(tmp_path):
    # the layout written before "files" existed: only "sha256" of the weights
    m = create_model("regvgg_test").eval()
    folder = save_checkpoint(m, "regvgg_test", {}, tmp_path / "ck")
    doc = json.loads((folder / "config.json").read_text())
    del doc["files"]
    (folder / "config.json").write_text(json.dumps(doc))
    m2, cfg = load_checkpoint(folder)
    assert cfg["sha256"] == sha256_file(folder / "model.safetensors")
    doc["sha256"] = ""  # and older still: no checksum at all
    (folder / "config.json").write_text(json.dumps(doc))
    load_checkpoint(folder)


def test_bad_names_and_contents_are_refused(tmp_path):
    with pytest.raises(InvalidParameterError, match="plain file name"):
        save_weights(tmp_path, {"a": torch.ones(1)}, {}, extra_files={"../x.txt": "no"})
    with pytest.raises(InvalidParameterError, match="config.json"):
        save_weights(tmp_path, {"a": torch.ones(1)}, {}, extra_files={"config.json": "no"})
    with pytest.raises(InvalidParameterError, match="cannot write"):
        save_weights(tmp_path, {"a": torch.ones(1)}, {}, extra_files={"x": 3.0})
    with pytest.raises(InvalidParameterError, match="safetensors"):
        save_weights(tmp_path, {"a": torch.ones(1)}, {}, extra_files={"x.pt": {"a": torch.ones(1)}})
    with pytest.raises(InputNotFoundError):
        read_document(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(UnreadableInputError, match="not a JSON object"):
        read_document(tmp_path)


def test_write_atomic_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    write_atomic(target, "old")

    def fail(path: str) -> None:
        with open(path, "w") as fh:
            fh.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
