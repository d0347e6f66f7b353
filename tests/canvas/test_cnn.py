"""The shipped thread CNNs (artlens/canvas/threads/weights/): the default phase CNN ``threads_phase`` and
DL4ART's regVGG ``threads_regvgg``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from artlens.canvas.threads.cnn import DEFAULT_MODEL, CNNCounter, CnnParams, count_threads_cnn
from artlens.models import pretrained_path
from artlens.synth import make_plate

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def counter() -> CNNCounter:
    return CNNCounter.load("threads_regvgg")


def test_the_default_model_is_the_phase_cnn():
    default = CNNCounter.load()
    assert default.path == pretrained_path("weavephase.threads_phase") == pretrained_path(DEFAULT_MODEL)
    assert default.task == "thread_phase"


def test_shipped_regvgg_is_small_and_described(counter):
    folder = pretrained_path("regvgg_small.threads_regvgg")
    assert (folder / "model.safetensors").stat().st_size < 25 * 2**20
    assert (folder / "MODEL_CARD.md").is_file()
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["sha256"] == counter.config["sha256"] and cfg["crop_cm"] == counter.crop_cm


@pytest.mark.parametrize(("h", "v", "seed"), [(11.0, 15.5, 1), (18.0, 13.0, 2), (24.5, 21.0, 3)])
def test_shipped_regvgg_counts_a_synthetic_plate(counter, h, v, seed):
    plate = make_plate(height_cm=3.0, width_cm=3.0, horizontal_density=h, vertical_density=v, paint=0.3,
                       craquelure=0.3, seed=seed)
    r = count_threads_cnn(plate.image, CnnParams(model=counter), px_per_cm=plate.px_per_cm)
    s = r.summary()
    truth = plate.mean_truth()
    assert r.method == "cnn" and r.model_checksum == counter.config["sha256"]
    assert abs(s["horizontal"]["threads_per_cm"]["mean"] - truth["horizontal_density"]) < 0.5
    assert abs(s["vertical"]["threads_per_cm"]["mean"] - truth["vertical_density"]) < 0.5
    assert np.isnan(r.horizontal.angle).all()  # a density regressor does not estimate angles


def test_cnn_inference_imports_no_lightning(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "from artlens.canvas.threads.cnn import count_threads_cnn\n"
        "count_threads_cnn(np.random.default_rng(0).random((250, 250)), px_per_cm=200.0)\n"
        "assert 'lightning' not in sys.modules, 'lightning was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def phase_counter() -> CNNCounter:
    return CNNCounter.load("threads_phase")  # a shipped model by name (also the default)


def test_shipped_phase_model_is_described(phase_counter):
    folder = pretrained_path("weavephase.threads_phase")
    assert phase_counter.path == folder and phase_counter.task == "thread_phase"
    assert phase_counter.fixed_window_cm is None
    assert (folder / "MODEL_CARD.md").is_file() and (folder / "model.safetensors").stat().st_size < 2**20


@pytest.mark.parametrize(("h", "v", "ah", "av", "seed"), [(13.0, 21.0, 2.0, -1.0, 4), (25.0, 9.5, -1.5, 2.5, 5)])
def test_shipped_phase_model_counts_a_synthetic_plate_with_angles(phase_counter, h, v, ah, av, seed):
    plate = make_plate(height_cm=3.0, width_cm=3.0, horizontal_density=h, vertical_density=v,
                       horizontal_angle_deg=ah, vertical_angle_deg=av, paint=0.3, craquelure=0.3, seed=seed)
    r = count_threads_cnn(plate.image, CnnParams(model=phase_counter, window_cm=1.0), px_per_cm=plate.px_per_cm)
    s = r.summary()
    truth = plate.mean_truth()
    assert r.model_checksum == phase_counter.config["sha256"] and r.horizontal.density.shape == (5, 5)
    for d, angle in (("horizontal", ah), ("vertical", av)):
        assert abs(s[d]["threads_per_cm"]["mean"] - truth[f"{d}_density"]) < 0.2
        assert abs(s[d]["angle_deg"]["mean"] - angle) < 0.5


def test_shipped_phase_model_counts_two_ply_threads_once(phase_counter):
    # A groove along each thread (two-ply yarn) made the first phase model draw extra thread lines
    # (+1.4 threads/cm here); the shipped model is trained on such plates and must count threads.
    plate = make_plate(height_cm=2.0, width_cm=2.0, horizontal_density=12.0, vertical_density=12.0,
                       ply_groove=0.8, twist=0.3, grain=0.5, blur_px=1.0, noise=0.03, seed=1)
    s = count_threads_cnn(plate.image, CnnParams(model=phase_counter, window_cm=1.0),
                          px_per_cm=plate.px_per_cm).summary()
    truth = plate.mean_truth()
    for d in ("horizontal", "vertical"):
        assert abs(s[d]["threads_per_cm"]["mean"] - truth[f"{d}_density"]) < 0.25


def test_shipped_phase_model_counts_the_faint_thread_system(phase_counter):
    # Horizontal threads three times fainter than the vertical ones: the phase model of stage 3 lost
    # horizontal threads here (-0.85 threads/cm); the shipped one is trained on such plates.
    plate = make_plate(height_cm=2.0, width_cm=2.0, horizontal_density=13.0, vertical_density=15.0, thread_balance=0.5,
                       craquelure=0.4, cell_variation=0.5, noise=0.04, blur_px=1.0, seed=1)
    s = count_threads_cnn(plate.image, CnnParams(model=phase_counter, window_cm=1.0),
                          px_per_cm=plate.px_per_cm).summary()
    truth = plate.mean_truth()
    for d in ("horizontal", "vertical"):
        assert abs(s[d]["threads_per_cm"]["mean"] - truth[f"{d}_density"]) < 0.25
