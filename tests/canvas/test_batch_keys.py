"""A batch folder written before the per-method parameters objects still resumes: the plates' keys
(``plates.csv`` ``key``) are what that version hashed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from artlens.canvas.threads import CnnParams, SpectralParams
from artlens.canvas.threads.batch import count_plates
from artlens.engine import item_key

# what count_plates hashed before CnnParams: asdict(SpectralParams(band=(5, 30))), page, model, allow_huge
OLD_SPECTRAL = {"window_cm": 1.0, "step_cm": 0.5, "band": [5.0, 30.0], "max_angle_deg": 10.0, "harmonic_ratio": 0.8,
                "outlier_threads_per_cm": 1.0, "min_confidence": 0.3, "resolve_fundamental": True,
                "min_prominence": 3.0, "workers": 2}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("plates")
    y = np.arange(200)[:, None] + np.zeros((1, 200))
    img = 127 + 60 * np.cos(2 * np.pi * 12 * y / 100) + 60 * np.cos(2 * np.pi * 15 * y.T / 100)
    tifffile.imwrite(d / "p.tif", img.astype(np.uint8), resolution=(100, 100), resolutionunit="CENTIMETER")
    return d


@pytest.mark.parametrize("method", ["spectral", "cnn"])
def test_keys_are_those_of_earlier_runs(folder, tmp_path, method):
    cnn = CnnParams(model="threads_regvgg") if method == "cnn" else None
    count_plates(folder, tmp_path / "o", SpectralParams(band=(5.0, 30.0)), method=method, cnn=cnn, use_catalog=False)
    (row,) = csv.DictReader(open(tmp_path / "o" / "plates.csv"))
    checksum = None
    if method == "cnn":
        folder = Path(CnnParams(model="threads_regvgg").load().path)
        checksum = json.loads((folder / "config.json").read_text())["sha256"]
    old = {"spectral": OLD_SPECTRAL, "page": 0, "model": "threads_regvgg" if method == "cnn" else None,
           "allow_huge": False, "px_per_cm": None}
    assert row["key"] == item_key(row["sha256"], f"threads.{method}", old, checksum)
    # measured on this plate before the change (figures do not change)
    expected = {"spectral": (12.0, 15.0), "cnn": (11.8914, 15.2244)}[method]
    got = (float(row["horizontal_threads_per_cm"]), float(row["vertical_threads_per_cm"]))
    assert got == pytest.approx(expected, abs=2e-4)
