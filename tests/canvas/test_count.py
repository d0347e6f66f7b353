"""``count_threads(plate, method, params)``: one entry point, one parameters object per method."""

from __future__ import annotations

import numpy as np
import pytest

import artlens.canvas
from artlens.canvas.threads import CnnParams, SpectralParams, count_threads, count_threads_spectral
from artlens.canvas.threads.cnn import CNNCounter
from artlens.errors import InvalidParameterError


def _grating(h: int = 400, w: int = 500, ppc: float = 200.0, f: float = 12.0) -> np.ndarray:
    y = np.arange(h)[:, None] + np.zeros((1, w))
    return np.cos(2 * np.pi * f * y / ppc)


def test_spectral_through_the_dispatcher_is_the_spectral_counter():
    img, p = _grating(), SpectralParams(window_cm=1.0, step_cm=0.25)
    a = count_threads(img, "spectral", p, px_per_cm=200.0)
    b = count_threads_spectral(img, p, px_per_cm=200.0)
    assert a.method == "spectral" and a.parameters == b.parameters
    assert np.array_equal(a.horizontal.density, b.horizontal.density, equal_nan=True)
    assert artlens.canvas.count_threads is count_threads and artlens.canvas.CnnParams is CnnParams


def test_unknown_method_and_foreign_params_are_clear_errors():
    with pytest.raises(InvalidParameterError, match="method must be one of spectral, cnn") as exc:
        count_threads(_grating(), "fft", px_per_cm=200.0)
    assert exc.value.param == "method"
    with pytest.raises(InvalidParameterError, match="method 'cnn' takes CnnParams, got SpectralParams"):
        count_threads(_grating(), "cnn", SpectralParams(), px_per_cm=200.0)
    with pytest.raises(InvalidParameterError, match="method 'spectral' takes SpectralParams, got CnnParams"):
        count_threads(_grating(), "spectral", CnnParams(), px_per_cm=200.0)


def test_cnn_params_are_checked():
    with pytest.raises(InvalidParameterError, match="step_cm must be a positive number"):
        CnnParams(step_cm=0).validate()
    with pytest.raises(InvalidParameterError, match="batch_size must be a positive integer"):
        CnnParams(batch_size=0).validate()
    CnnParams().validate()  # window_cm None: the model decides


@pytest.fixture(scope="module")
def regvgg() -> CNNCounter:
    return CNNCounter.load("threads_regvgg")


def test_a_density_regressor_counts_its_own_window_or_says_so(regvgg):
    assert regvgg.fixed_window_cm == 1.0
    p = CnnParams(model=regvgg)
    assert p.window_for(regvgg) == 1.0 and CnnParams(model=regvgg, window_cm=1.0).window_for(regvgg) == 1.0
    with pytest.raises(InvalidParameterError, match=r"counts 1 cm windows only; use window_cm 1") as exc:
        count_threads(_grating(), "cnn", CnnParams(model=regvgg, window_cm=1.5), px_per_cm=200.0)
    assert exc.value.param == "window_cm"
    r = count_threads(_grating(), "cnn", p, px_per_cm=200.0)
    assert r.method == "cnn" and r.window_cm == 1.0 and r.horizontal.density.shape == (3, 4)
    assert r.parameters["batch_size"] == 64 and CnnParams(device="cuda:0").batch_for(regvgg) == 256


def test_cli_refuses_another_window_for_the_regressor(tmp_path, capsys):
    from artlens.cli.main import main
    from artlens.synth import make_plate, write_plate_tiff

    path = write_plate_tiff(tmp_path / "p.tif", make_plate(height_cm=2.0, width_cm=2.0, seed=1))
    with pytest.raises(SystemExit) as exc:
        main(["threads", "count", str(path), "--out", str(tmp_path / "o"), "--method", "both", "--model",
              "threads_regvgg", "--window-cm", "1.5", "--no-catalog", "--device", "cpu"])
    assert exc.value.code == 7
    err = capsys.readouterr().err
    assert "error: this CNN (regvgg_small) counts 1 cm windows only; use --window-cm 1" in err
    assert not (tmp_path / "o" / "summary.json").exists()
