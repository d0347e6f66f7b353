"""Feature extraction inside training follows the trainer's accelerator (artlens.train.runs.feature_device):
the verifier, encoder and classifier trainers extract their cached backbone features there."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from artlens.errors import InvalidParameterError
from artlens.train.runs import TrainerConfig, feature_device


def test_cpu_and_other_accelerators_extract_on_the_cpu():
    assert feature_device(TrainerConfig(accelerator="cpu")) == "cpu"
    assert feature_device(TrainerConfig(accelerator="mps")) == "cpu"


def test_auto_takes_the_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setattr("artlens.devices.cuda_available", lambda: (False, 0))
    assert feature_device(TrainerConfig(accelerator="auto")) == "cpu"


@pytest.mark.parametrize("accelerator", ["gpu", "cuda", "GPU"])
def test_a_gpu_asked_for_without_one_is_one_clear_line(monkeypatch, accelerator):
    monkeypatch.setattr("artlens.devices.cuda_available", lambda: (False, 0))
    with pytest.raises(InvalidParameterError) as exc:
        feature_device(TrainerConfig(accelerator=accelerator))
    msg = str(exc.value)
    assert "\n" not in msg and "no CUDA GPU" in msg and f"accelerator {accelerator}" in msg


def test_with_gpus_each_ddp_rank_takes_its_own(monkeypatch):
    monkeypatch.setattr("artlens.devices.cuda_available", lambda: (True, 4))
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert feature_device(TrainerConfig(accelerator="gpu")) == "cuda:0"
    assert feature_device(TrainerConfig(accelerator="auto", devices=2)) == "cuda:0"
    assert feature_device(TrainerConfig(accelerator="gpu", devices=[2, 3])) == "cuda:2"
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert feature_device(TrainerConfig(accelerator="cuda", devices=2)) == "cuda:1"
    assert feature_device(TrainerConfig(accelerator="gpu", devices=[2, 3])) == "cuda:3"
    assert feature_device(TrainerConfig(accelerator="gpu", devices="1,3")) == "cuda:3"
    with pytest.raises(InvalidParameterError, match="cuda:0 to cuda:3"):
        feature_device(TrainerConfig(accelerator="gpu", devices=[5, 7]))


def test_no_gpu_without_one_on_this_machine():
    """The real check (no monkeypatch): this machine's answer agrees with torch."""
    import torch

    if torch.cuda.is_available():
        assert feature_device(TrainerConfig(accelerator="gpu")).startswith("cuda:")
    else:
        with pytest.raises(InvalidParameterError, match="no CUDA GPU"):
            feature_device(TrainerConfig(accelerator="gpu"))


def _collection(root):
    for a in range(3):
        (root / f"artist{a}").mkdir(parents=True)
        for k in range(4):
            rng = np.random.default_rng(10 * a + k)
            img = np.clip(rng.normal(120 + 30 * a, 30, (64, 72, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / f"artist{a}" / f"p{k}.png")
    return root


def _encoder_cfg(data, accelerator):
    from artlens.train.encoders import EncoderTrainConfig

    return EncoderTrainConfig(data=str(data), model={"kind": "dae", "code_dim": 4, "hidden": 16,
                                                     "backbone": "test_efficientnet", "pretrained_backbone": False,
                                                     "n_patches": 0, "max_side": 128},
                              trainer={"max_epochs": 1, "accelerator": accelerator}, workers=0)


def test_the_encoder_trainer_extracts_on_the_device_its_accelerator_names(tmp_path, monkeypatch):
    import artlens.train.encoders as te

    data = _collection(tmp_path / "c")
    seen: list[str] = []

    def record(ex, device, *a, **k):
        seen.append(device)
        return False  # leave it on the CPU: this machine has no GPU to move it to

    monkeypatch.setattr(te, "move_extractor", record)
    te.train_encoder(_encoder_cfg(data, "cpu"), tmp_path / "cpu")
    # a GPU that torch sees: `auto` extracts there (Lightning itself still trains on what torch really has)
    monkeypatch.setattr("artlens.devices.cuda_available", lambda: (True, 1))
    te.train_encoder(_encoder_cfg(data, "auto"), tmp_path / "auto", extractor=None)
    assert seen == ["cpu", "cuda:0"]


def test_a_trainer_asked_for_a_missing_gpu_refuses_before_making_the_run(tmp_path, monkeypatch):
    from artlens.train.encoders import train_encoder

    monkeypatch.setattr("artlens.devices.cuda_available", lambda: (False, 0))
    data = _collection(tmp_path / "c")
    with pytest.raises(InvalidParameterError, match="no CUDA GPU"):
        train_encoder(_encoder_cfg(data, "gpu"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_cli_says_it_in_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setattr("artlens.devices.cuda_available", lambda: (False, 0))
    data = _collection(tmp_path / "c")
    code, _, err = cli("paintings", "train-encoder", "--data", data, "--kind", "dae", "--out", tmp_path / "run",
                       "--epochs", "1", "--backbone", "test_efficientnet", "--random-backbone",
                       "--accelerator", "gpu")
    assert code == 7 and "no CUDA GPU" in err and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1
    assert not (tmp_path / "run").exists()
