"""The shared training scaffold (artlens.train.runs): one TrainerConfig nested in every training
config, old flat run configs still load, one make_trainer, and inference never imports Lightning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from artlens.train.runs import LEGACY_TRAINER_KEYS, TrainerConfig, make_trainer, nest_trainer_settings, open_run

SRC = Path(__file__).resolve().parents[2] / "src"

# the resolved config.json of a thread-counter run written before the trainer settings were nested
OLD_THREADS_CONFIG = {
    "model": "regvgg_test", "model_kwargs": {}, "input_px_per_cm": 40.0, "crop_cm": 1.0, "loss": "nmae", "lr": 0.001,
    "lr_schedule": "constant", "batch_size": 8, "max_epochs": 4, "patience": 100, "seed": 0, "data": None,
    "synthetic": 6, "yarn_texture": True, "thread_balance": 0.0, "wider": 0.0, "crops_per_plate": 8,
    "subcrops_per_sample": 8, "val_fraction": 0.2, "accelerator": "cpu", "devices": 1, "strategy": "auto",
    "num_workers": 0, "checkpoint_every_n_steps": 3, "init_from": None, "max_steps": -1, "max_time": None,
}


def test_an_old_flat_config_loads_with_its_trainer_settings_nested():
    from artlens.train.threads import TrainConfig

    cfg = TrainConfig.model_validate(OLD_THREADS_CONFIG)
    assert cfg.trainer.max_epochs == 4 and cfg.trainer.patience == 100 and cfg.trainer.accelerator == "cpu"
    assert cfg.trainer.checkpoint_every_n_steps == 3 and cfg.trainer.precision == "32-true"
    assert cfg.synthetic == 6 and cfg.size == 40
    dumped = cfg.model_dump()
    assert not set(LEGACY_TRAINER_KEYS) & set(dumped)  # written back nested
    assert TrainConfig.model_validate(dumped) == cfg


def test_each_config_keeps_its_own_trainer_defaults_and_a_partial_trainer_changes_only_its_fields():
    from artlens.train.beneath import BeneathTrainConfig
    from artlens.train.fabric import FabricTrainConfig
    from artlens.train.threads import TrainConfig

    assert (TrainConfig().trainer.max_epochs, TrainConfig().trainer.checkpoint_every_n_steps) == (20, 20)
    assert (BeneathTrainConfig().trainer.max_epochs, BeneathTrainConfig().trainer.patience) == (40, 8)
    cfg = FabricTrainConfig(trainer=TrainerConfig(max_epochs=2, accelerator="cpu"))
    assert cfg.trainer.max_epochs == 2 and cfg.trainer.accelerator == "cpu"
    assert cfg.trainer.patience == 4 and cfg.trainer.checkpoint_every_n_steps == 50  # the fabric defaults
    assert BeneathTrainConfig(trainer={"devices": 2}).trainer.max_epochs == 40
    with pytest.raises(ValueError, match="nope"):
        TrainConfig(trainer={"nope": 1})


def test_nest_trainer_settings_passes_other_values_through():
    assert nest_trainer_settings(TrainerConfig(), "not a dict") == "not a dict"
    out = nest_trainer_settings(TrainerConfig(patience=9), {"lr": 0.5})
    assert out["lr"] == 0.5 and out["trainer"]["patience"] == 9


def test_an_old_run_folder_is_resumed_with_its_settings(tmp_path):
    from artlens.train.threads import TrainConfig

    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": OLD_THREADS_CONFIG, "artlens_version": "0.1"}))
    (run / "metrics.csv").write_text("epoch\n0\n")
    folder, cfg = open_run(run, TrainConfig(), resume=True)
    assert folder == run and cfg.trainer.max_epochs == 4 and cfg.synthetic == 6
    assert (run / "metrics.attempt-1.csv").is_file()


def test_make_trainer_builds_the_trainer_from_the_config(tmp_path):
    trainer, best = make_trainer(TrainerConfig(max_epochs=3, patience=2, accelerator="cpu",
                                               checkpoint_every_n_steps=7), tmp_path)
    assert trainer.max_epochs == 3 and best is not None and best.monitor == "val_loss"
    stops = [c for c in trainer.callbacks if type(c).__name__ == "EarlyStopping"]
    assert len(stops) == 1 and stops[0].patience == 2
    trainer, best = make_trainer(TrainerConfig(max_epochs=1, accelerator="cpu"), tmp_path, validation=False)
    assert best is None and not [c for c in trainer.callbacks if type(c).__name__ == "EarlyStopping"]


def test_inference_packages_never_import_lightning_or_train():
    code = ("import sys\nimport artlens.canvas, artlens.paintings, artlens.beneath\n"
            "import artlens.canvas.threads.cnn, artlens.canvas.fabric, artlens.paintings.classify\n"
            "import artlens.paintings.verify, artlens.paintings.evaluate\n"
            "assert 'lightning' not in sys.modules, 'lightning was imported'\n"
            "assert not [m for m in sys.modules if m.startswith('artlens.train')], 'artlens.train was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
