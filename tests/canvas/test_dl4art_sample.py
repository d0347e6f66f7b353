"""The real DL4ART sample (../shared/data/canvas/dl4art_crop0139), labelled 12.0 / 12.0 threads/cm."""

from __future__ import annotations

import pytest

from artlens.canvas.threads import SpectralParams, count_threads_spectral
from artlens.io import open_plate

pytestmark = pytest.mark.shared_data


def test_crop0139_spectral_counts(shared_data):
    path = shared_data / "canvas" / "dl4art_crop0139" / "Crop0139.tif"
    with open_plate(path) as plate:
        assert plate.px_per_cm == pytest.approx(200.0)  # 508 dpi in its TIFF tags
        r = count_threads_spectral(plate, SpectralParams(window_cm=1.5, step_cm=0.5))
    s = r.summary()
    h = s["horizontal"]["threads_per_cm"]["mean"]
    v = s["vertical"]["threads_per_cm"]["mean"]
    # Measured 2026-11-22: horizontal 12.34, vertical 12.94 threads/cm. The label counts 18 thread
    # masks per direction in 1.5 cm (12.0); the vertical masks' own centre spacing is 16.0 px
    # (12.49 threads/cm) and the image's periodicity is stronger at ~12.9 (see BENCHMARKS.md).
    assert abs(h - 12.0) <= 0.5
    assert abs(v - 12.0) <= 1.0
    assert abs(s["horizontal"]["angle_deg"]["mean"]) < 3 and abs(s["vertical"]["angle_deg"]["mean"]) < 3


@pytest.mark.parametrize("model", [None, "threads_regvgg"])  # the default (phase CNN) and the regVGG
def test_crop0139_shipped_cnn_counts(shared_data, model):
    from artlens.canvas.threads.cnn import CNNCounter, CnnParams, count_threads_cnn

    path = shared_data / "canvas" / "dl4art_crop0139" / "Crop0139.tif"
    with open_plate(path) as plate:  # 1 cm windows every 0.5 cm: 2 x 2 on the 1.5 cm crop
        r = count_threads_cnn(plate, CnnParams(model=CNNCounter.load(model), window_cm=1.0, step_cm=0.5))
    s = r.summary()
    assert r.n_windows == 4
    assert abs(s["horizontal"]["threads_per_cm"]["mean"] - 12.0) <= 0.5
    assert abs(s["vertical"]["threads_per_cm"]["mean"] - 12.0) <= 0.5
