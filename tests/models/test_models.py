"""Model registry, losses and safetensors checkpoints (artlens.models)."""

from __future__ import annotations

import json

import pytest
import torch

from artlens.errors import InputNotFoundError, InvalidParameterError, UnreadableInputError
from artlens.models import create_model, list_models, load_checkpoint, save_checkpoint
from artlens.models.losses import get_loss, nmae


def test_registry_lists_and_builds():
    assert {"regvgg", "regvgg_small", "regvgg_test", "timm_regressor"} <= set(list_models())
    assert list_models("regvgg_t*") == ["regvgg_test"]
    m = create_model("regvgg_test")
    assert m(torch.rand(3, 1, 32, 32)).shape == (3,)


def test_regvgg_matches_the_paper_size():
    # Delgado et al. 2025 report about 10.2 M parameters for 200 x 200 inputs
    n = sum(p.numel() for p in create_model("regvgg").parameters())
    assert 10.0e6 < n < 10.4e6


def test_timm_backbone_regressor():
    m = create_model("timm_regressor", backbone="resnet18")
    assert m(torch.rand(2, 1, 64, 64)).shape == (2,)


def test_unknown_model_lists_valid_ones():
    with pytest.raises(InvalidParameterError, match="valid models: .*regvgg"):
        create_model("vgg_does_not_exist")


def test_losses_against_hand_computed_values():
    pred, target = torch.tensor([11.0, 18.0, 12.0]), torch.tensor([10.0, 20.0, 12.0])
    # |1|/10 = 0.1, |2|/20 = 0.1, 0 -> mean 0.0667
    assert float(nmae(pred, target)) == pytest.approx(0.2 / 3)
    assert float(get_loss("nmae")(pred, target)) == pytest.approx(0.2 / 3)
    assert float(get_loss("mae")(pred, target)) == pytest.approx(1.0)  # (1 + 2 + 0) / 3
    assert float(get_loss("mse")(pred, target)) == pytest.approx(5.0 / 3)  # (1 + 4 + 0) / 3
    with pytest.raises(InvalidParameterError, match="valid losses"):
        get_loss("huber")


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    m = create_model("regvgg_test").eval()
    folder = save_checkpoint(m, "regvgg_test", {"input_size": 32}, tmp_path / "ck", extra={"crop_cm": 1.0})
    assert (folder / "model.safetensors").is_file()
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model"] == "regvgg_test" and len(cfg["sha256"]) == 64 and cfg["crop_cm"] == 1.0
    m2, cfg2 = load_checkpoint(folder)
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))
    assert create_model("regvgg_test", checkpoint=str(folder)) is not None


def test_checkpoint_bad_inputs(tmp_path):
    with pytest.raises(InputNotFoundError):
        load_checkpoint(tmp_path)
    m = create_model("regvgg_test")
    folder = save_checkpoint(m, "regvgg_test", {}, tmp_path / "ck")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(UnreadableInputError, match="malformed"):
        load_checkpoint(folder)
    folder = save_checkpoint(m, "regvgg_test", {}, tmp_path / "ck2")
    (folder / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(UnreadableInputError, match="checksum"):
        load_checkpoint(folder)
    folder = save_checkpoint(m, "regvgg_test", {}, tmp_path / "ck3")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["kwargs"] = {"filters": [3, 5]}  # a different architecture: weights do not fit
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnreadableInputError, match="do not fit"):
        load_checkpoint(folder)
