"""Training the thread CNN: a one-epoch --synthetic run through the CLI, and resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"




def test_one_epoch_synthetic_training_then_count(cli, tmp_path):
    run = tmp_path / "run"
    code, out, err = cli("threads", "train", "--out", str(run), "--synthetic", "4", "--model",
                             "regvgg_test", "--input-px-per-cm", "40", "--epochs", "1", "--batch-size", "8",
                             "--accelerator", "cpu", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["metrics"]["epochs"] == 1 and result["metrics"]["global_step"] > 0
    for name in ("config.json", "metrics.csv", "last.ckpt", "model/model.safetensors", "model/config.json"):
        assert (run / name).is_file(), name
    cfg = json.loads((run / "model" / "config.json").read_text())
    assert cfg["input_px_per_cm"] == 40 and cfg["crop_cm"] == 1.0 and cfg["training"]["sources"] == ["synthetic"]
    # a second run into the same folder is refused (no silent overwrite)
    code, _, err = cli("threads", "train", "--out", str(run), "--synthetic", "2", "--model",
                           "regvgg_test", "--epochs", "1")
    assert code == 7 and "--resume" in err

    from artlens.synth import make_plate, write_plate_tiff

    plate = write_plate_tiff(tmp_path / "p.tif", make_plate(height_cm=2.0, width_cm=2.0, seed=1))
    code, out, err = cli("threads", "count", str(plate), "--out", str(tmp_path / "o"), "--method",
                             "cnn", "--model", str(run / "model"), "--no-catalog", "--json")
    assert code == 0, err
    s = json.loads(out)
    assert s["method"] == "cnn" and s["windows"] == 9 and s["model_checksum"] == cfg["sha256"]


def test_one_epoch_phase_cnn_training(cli, tmp_path):
    run = tmp_path / "run"
    code, out, err = cli("threads", "train", "--out", str(run), "--synthetic", "4", "--model", "weavephase_test",
                         "--epochs", "1", "--batch-size", "8", "--crops-per-plate", "2", "--accelerator", "cpu",
                         "--json")
    assert code == 0, err
    cfg = json.loads((run / "model" / "config.json").read_text())
    assert cfg["task"] == "thread_phase" and cfg["input_px_per_cm"] == 200.0 and cfg["crop_cm"] == 0.64
    assert cfg["training"]["config"]["loss"] == "phase_mse"


def test_unknown_model_name_is_a_clear_error(cli, tmp_path):
    code, _, err = cli("threads", "train", "--out", str(tmp_path / "r"), "--synthetic", "1",
                           "--model", "nope")
    assert code == 7 and "valid models" in err and "Traceback" not in err


def test_thread_balance_out_of_range_is_a_clear_error(cli, tmp_path):
    code, _, err = cli("threads", "train", "--out", str(tmp_path / "r"), "--synthetic", "1",
                       "--thread-balance", "1.5")
    assert code != 0 and "--thread-balance" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


TRAIN = """
import sys
from artlens.train.threads import TrainConfig, train_thread_counter
cfg = TrainConfig(model="regvgg_test", input_px_per_cm=40, synthetic=6, crops_per_plate=8, batch_size=8,
                  val_fraction=0.2,
                  trainer=dict(max_epochs=4, patience=100, accelerator="cpu", checkpoint_every_n_steps=3))
r = train_thread_counter(cfg, sys.argv[1], resume=len(sys.argv) > 2)
print("GLOBAL_STEP", r["metrics"]["global_step"])
"""


@pytest.mark.slow
def test_resume_after_kill_mid_run(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    full = subprocess.run([sys.executable, "-c", TRAIN, str(tmp_path / "ref")], env=env, capture_output=True,
                          text=True, timeout=600)
    assert full.returncode == 0, full.stderr
    total = int(full.stdout.split("GLOBAL_STEP")[1])

    proc = subprocess.Popen([sys.executable, "-c", TRAIN, str(run)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (run / "last.ckpt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    import torch

    state = torch.load(run / "last.ckpt", map_location="cpu", weights_only=True)
    killed_at = state["global_step"]
    assert 0 < killed_at < total

    resumed = subprocess.run([sys.executable, "-c", TRAIN, str(run), "resume"], env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert int(resumed.stdout.split("GLOBAL_STEP")[1]) == total
    assert list(run.glob("metrics.attempt-*.csv")) or killed_at < 10  # the first attempt's log is kept
    assert (run / "model" / "model.safetensors").is_file()


@pytest.mark.parametrize("kind", ["regvgg_test", "weavephase_test"])
def test_fine_tune_on_labelled_crops_end_to_end(cli, tmp_path, kind):
    """labelled samples (DL4ART-style masks) -> import-labels -> train --init-from -> count --model,
    for a density regressor and for a phase CNN (whose targets come from the masks' thread centres)."""
    import numpy as np

    from artlens.models import create_model, save_checkpoint
    from artlens.synth import make_plate, write_plate_tiff

    samples = tmp_path / "samples"
    samples.mkdir()
    rows = ["name,plate"]
    for i in range(4):
        plate = make_plate(height_cm=1.5, width_cm=1.5, horizontal_density=10 + i, vertical_density=14 - i, seed=i)
        name = f"Crop{i:04d}"
        write_plate_tiff(samples / f"{name}.tif", plate)
        for d, key in (("horizontal", "H"), ("vertical", "V")):
            phase = plate.thread_phase[d]
            mask = np.abs(phase - np.round(phase)) < 0.25  # a thread's central half
            np.savez_compressed(samples / f"{name}_{key}.npz", arr_0=mask)
        rows.append(f"{name},plate-{i // 2}")
    (samples / "plates.csv").write_text("\n".join(rows) + "\n")

    code, out, err = cli("threads", "import-labels", str(samples), "--out", str(tmp_path / "ds"), "--json")
    assert code == 0, err

    if kind == "regvgg_test":
        base = save_checkpoint(create_model(kind, input_size=40), kind, {"input_size": 40},
                               tmp_path / "base", extra={"input_px_per_cm": 40.0, "crop_cm": 1.0})
    else:
        base = save_checkpoint(create_model(kind), kind, {}, tmp_path / "base",
                               extra={"input_px_per_cm": 200.0, "crop_cm": 0.64, "task": "thread_phase"})
    run = tmp_path / "ft"
    code, out, err = cli("threads", "train", "--out", str(run), "--data", str(tmp_path / "ds"),
                             "--init-from", str(base), "--epochs", "1",
                             "--batch-size", "8", "--accelerator", "cpu", "--json")
    assert code == 0, err
    cfg = json.loads((run / "model" / "config.json").read_text())
    assert cfg["model"] == kind and cfg["training"]["sources"] == ["labelled"]
    assert cfg["input_px_per_cm"] == (40.0 if kind == "regvgg_test" else 200.0)  # taken from the base model
    assert cfg["task"] == ("thread_density" if kind == "regvgg_test" else "thread_phase")
    assert cfg["training"]["n_val"] > 0  # one of the two plates is held out whole
    code, out, err = cli("threads", "count", str(samples / "Crop0000.tif"), "--out", str(tmp_path / "o"),
                             "--method", "cnn", "--model", str(run / "model"), "--no-catalog", "--json")
    assert code == 0, err
