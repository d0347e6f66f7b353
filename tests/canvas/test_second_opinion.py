"""The phase CNN's second opinion on the spectral counter's plate densities (``threads count`` default)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from artlens.canvas.threads import count_threads_spectral
from artlens.canvas.threads.cnn import CNNCounter, CnnParams
from artlens.canvas.threads.grid import WindowGrid
from artlens.canvas.threads.opinion import COARSE_BELOW, RELATIVE_TOLERANCE, SAMPLE_CM, second_opinion
from artlens.canvas.threads.phase import count_threads_phase
from artlens.canvas.threads.preprocess import plate_source
from artlens.canvas.threads.run import count_plate_file
from artlens.synth import make_plate
from artlens.synth.weave import write_plate_tiff


def _plate(h: float = 13.0, v: float = 16.0, size: float = 5.0, seed: int = 3):
    return make_plate(height_cm=size, width_cm=size, horizontal_density=h, vertical_density=v, seed=seed)


def test_agreeing_plate_is_not_flagged_and_the_record_says_what_ran(tmp_path):
    plate = _plate()
    path = write_plate_tiff(tmp_path / "p.tif", plate)
    out = count_plate_file(path, tmp_path / "out", use_catalog=False)
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    o = s["second_opinion"]
    assert o == out.summary["second_opinion"]
    assert not o["plate_flagged"] and o["message"] is None
    assert o["model_sha256"] == CNNCounter.load().config["sha256"]
    y0, x0, y1, x1 = o["sample_cm"]  # the central SAMPLE_CM square of a 5 cm plate
    assert abs((y1 - y0) - SAMPLE_CM) < 0.01 and abs(x0 - (5.0 - SAMPLE_CM) / 2) < 0.01
    for d, truth in (("horizontal", 13.0), ("vertical", 16.0)):
        assert abs(o[d]["cnn_threads_per_cm"] - truth) < 0.5
        assert abs(o[d]["spectral_threads_per_cm"] - truth) < 0.5
        assert o[d]["cnn_half_resolution_threads_per_cm"] is None  # not coarse, no disagreement
        assert "interval_90_note" not in s[d]
    report = (tmp_path / "out" / "report.html").read_text()
    assert "second reader disagrees" not in report and "A second reader, the phase CNN" in report


def test_a_plate_read_wrong_as_a_whole_is_flagged_and_its_interval_widened(tmp_path, cli):
    """A search band that leaves out the weave's density makes the spectral counter read something
    else over the whole plate; the CNN (no band) reads the weave, and the plate gets a check."""
    plate = _plate(h=13.0, v=16.0)
    path = write_plate_tiff(tmp_path / "p.tif", plate)
    code, out, err = cli("threads", "count", str(path), "--out", str(tmp_path / "out"), "--no-catalog",
                         "--band", "17", "40")
    assert code == 0, err
    assert "check here" in out and "second reader" in out
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    o = s["second_opinion"]
    assert o["plate_flagged"] and o["horizontal"]["flagged"]
    spectral, cnn = o["horizontal"]["spectral_threads_per_cm"], o["horizontal"]["cnn_threads_per_cm"]
    assert abs(cnn - 13.0) < 0.5 and abs(spectral - cnn) > RELATIVE_TOLERANCE * spectral
    lo, hi = s["horizontal"]["interval_90"]
    assert lo <= 13.0 <= hi and "second opinion" in s["horizontal"]["interval_90_note"]
    assert "check here: a second reader disagrees" in (tmp_path / "out" / "report.html").read_text()


def test_coarse_disagreement_reads_again_at_half_resolution_without_hiding_a_real_one():
    """Where spectral reads below COARSE_BELOW the CNN reads the sample again at half its resolution; a
    spectral reading that is simply wrong (here: halved by hand) stays flagged."""
    plate = _plate(h=14.0, v=14.0, size=4.0)
    src = plate_source(plate.image, plate.params.px_per_cm)
    spectral = count_threads_spectral(plate.image, px_per_cm=plate.params.px_per_cm)
    halved = replace(spectral, horizontal=replace(spectral.horizontal, density=spectral.horizontal.density / 2))
    o = second_opinion(src, halved)
    h = o["horizontal"]
    assert h["spectral_threads_per_cm"] < COARSE_BELOW
    assert h["cnn_half_resolution_threads_per_cm"] is not None  # the re-read was made ...
    assert abs(h["cnn_half_resolution_threads_per_cm"] - 14.0) < 1.0  # ... reads the weave ...
    assert h["flagged"] and o["plate_flagged"]  # ... and so keeps the flag
    assert not o["vertical"]["flagged"]
    assert halved.horizontal.disputed is not None and halved.vertical.disputed is None


def test_phase_cnn_reads_at_another_input_resolution():
    plate = _plate(h=12.0, v=12.0, size=3.0)
    src = plate_source(plate.image, plate.params.px_per_cm)
    counter = CNNCounter.load()
    grid = WindowGrid.over(src.shape, src.px_per_cm, 1.0, 0.5)
    r = count_threads_phase(src, counter, grid, input_px_per_cm=counter.px_per_cm / 2)
    assert r.parameters["input_px_per_cm"] == counter.px_per_cm / 2
    for d in ("horizontal", "vertical"):
        assert abs(r.direction(d).stats()["threads_per_cm"]["median"] - 12.0) < 0.5


def test_no_second_opinion_option(tmp_path, cli):
    path = write_plate_tiff(tmp_path / "p.tif", _plate(size=3.0))
    code, _, err = cli("threads", "count", str(path), "--out", str(tmp_path / "out"), "--no-catalog",
                       "--no-second-opinion")
    assert code == 0, err
    assert "second_opinion" not in json.loads((tmp_path / "out" / "summary.json").read_text())
    # a spectral count with CNN settings but no model: the opinion uses the shipped model on that device
    o = second_opinion(plate_source(_plate(size=3.0).image, 200.0),
                       count_threads_spectral(_plate(size=3.0).image, px_per_cm=200.0), CnnParams(device="cpu"))
    assert np.isfinite(o["horizontal"]["cnn_threads_per_cm"])


def test_no_second_opinion_with_another_method_is_a_clear_error(tmp_path, cli):
    path = write_plate_tiff(tmp_path / "p.tif", _plate(size=2.0))
    code, _, err = cli("threads", "count", str(path), "--out", str(tmp_path / "out"), "--no-catalog",
                       "--method", "cnn", "--no-second-opinion")
    assert code != 0 and "--no-second-opinion applies to --method spectral" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_second_opinion_refuses_a_density_regressor():
    import pytest

    from artlens.errors import InvalidParameterError

    image = _plate(size=2.0).image
    with pytest.raises(InvalidParameterError, match="phase network") as err:
        second_opinion(plate_source(image, 200.0), count_threads_spectral(image, px_per_cm=200.0),
                       CnnParams(model="threads_regvgg"))
    assert err.value.param == "model"
