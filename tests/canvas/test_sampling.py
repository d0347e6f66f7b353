"""Random samples of a plate for labelling (:func:`sample_plate`, ``artlens threads sample``)."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from artlens.canvas.threads.labels import import_labels
from artlens.canvas.threads.sampling import SAMPLE_COLUMNS, sample_plate
from artlens.cli.main import main
from artlens.errors import InputNotFoundError, InvalidImageError, InvalidParameterError, MissingResolutionError
from artlens.io import open_plate

PPC = 200.0


def _plate(path: Path, shape=(700, 900), dtype=np.uint8, resolution: bool = True) -> np.ndarray:
    rng = np.random.default_rng(1)
    if dtype == np.uint8:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
    else:
        img = rng.integers(1000, 40000, shape).astype(np.uint16)
    kwargs = {"resolution": (PPC, PPC), "resolutionunit": "CENTIMETER"} if resolution else {}
    tifffile.imwrite(path, img, **kwargs)
    return img


def _overlaps(rows: list[dict]) -> bool:
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            if max(abs(a["x0_px"] - b["x0_px"]), abs(a["y0_px"] - b["y0_px"])) < a["size_px"]:
                return True
    return False


def test_samples_count_values_and_tags(tmp_path):
    img = _plate(tmp_path / "plateA.tif")
    rows = sample_plate(tmp_path / "plateA.tif", 6, tmp_path / "out", size_cm=1.0)
    assert [r["name"] for r in rows] == [f"plateA_{i:03d}" for i in range(1, 7)]
    assert not _overlaps(rows)
    for r in rows:
        assert r["size_px"] == 200 and r["plate"] == "plateA" and r["px_per_cm"] == PPC
        assert r["x_cm"] == pytest.approx((r["x0_px"] + 100) / PPC)
        path = tmp_path / "out" / f"{r['name']}.tif"
        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            assert page.dtype == np.uint8 and page.shape == (200, 200)
            assert page.tags["ResolutionUnit"].value == 3  # centimetre
            for tag in ("XResolution", "YResolution"):
                num, den = page.tags[tag].value
                assert num / den == pytest.approx(PPC)
            pixels = page.asarray()
            meta = json.loads(page.description)["artlens_sample"]
        # 8-bit plates keep their values.
        assert np.array_equal(pixels, img[r["y0_px"]:r["y0_px"] + 200, r["x0_px"]:r["x0_px"] + 200])
        assert meta["x0_px"] == r["x0_px"] and meta["plate_sha256"] == r["plate_sha256"]
        with open_plate(path) as p:
            assert p.px_per_cm == pytest.approx(PPC) and p.shape == (200, 200)
        with Image.open(path) as im:  # what labelme opens
            assert im.mode == "L" and im.size == (200, 200)
    with open(tmp_path / "out" / "samples.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0]) == SAMPLE_COLUMNS and len(table) == 6
    assert table[0]["name"] == "plateA_001" and float(table[0]["size_cm"]) == 1.0


def test_deterministic_by_seed(tmp_path):
    _plate(tmp_path / "p.tif")
    a = sample_plate(tmp_path / "p.tif", 5, tmp_path / "a", seed=4)
    b = sample_plate(tmp_path / "p.tif", 5, tmp_path / "b", seed=4)
    c = sample_plate(tmp_path / "p.tif", 5, tmp_path / "c", seed=5)
    strip = [{k: v for k, v in r.items() if k != "path"} for r in a]
    assert strip == [{k: v for k, v in r.items() if k != "path"} for r in b]
    assert [(r["x0_px"], r["y0_px"]) for r in a] != [(r["x0_px"], r["y0_px"]) for r in c]
    for r in a:
        assert (tmp_path / "a" / f"{r['name']}.tif").read_bytes() == (tmp_path / "b" / f"{r['name']}.tif").read_bytes()
    assert (tmp_path / "a" / "samples.csv").read_bytes() == (tmp_path / "b" / "samples.csv").read_bytes()


def test_tight_fit_without_overlap_uses_a_grid(tmp_path):
    _plate(tmp_path / "p.tif", shape=(600, 600))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 9 samples of 200 px fit a 600 px square exactly: no notice
        rows = sample_plate(tmp_path / "p.tif", 9, tmp_path / "out", size_cm=1.0)
    assert len(rows) == 9 and not _overlaps(rows)


def test_too_many_samples_overlap_with_a_notice(tmp_path):
    _plate(tmp_path / "p.tif", shape=(500, 500))
    with pytest.warns(UserWarning, match="only 4 of 7 samples"):
        rows = sample_plate(tmp_path / "p.tif", 7, tmp_path / "out", size_cm=1.0)
    assert len(rows) == 7 and _overlaps(rows)
    assert len({(r["x0_px"], r["y0_px"]) for r in rows}) >= 5


def test_min_distance(tmp_path):
    _plate(tmp_path / "p.tif", shape=(1000, 1000))
    rows = sample_plate(tmp_path / "p.tif", 4, tmp_path / "out", size_cm=0.5, min_distance_cm=2.0)
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            assert max(abs(a["x0_px"] - b["x0_px"]), abs(a["y0_px"] - b["y0_px"])) >= 400


def test_16_bit_plate_one_linear_map(tmp_path):
    img = _plate(tmp_path / "p.tif", dtype=np.uint16)
    lo, hi = float(img.min()), float(img.max())
    rows = sample_plate(tmp_path / "p.tif", 3, tmp_path / "out", size_cm=0.5)
    for r in rows:
        got = tifffile.imread(tmp_path / "out" / f"{r['name']}.tif")
        window = img[r["y0_px"]:r["y0_px"] + 100, r["x0_px"]:r["x0_px"] + 100].astype(float)
        assert np.array_equal(got, np.rint((window - lo) * 255 / (hi - lo)).astype(np.uint8))


def test_png_plate_with_override(tmp_path):
    Image.fromarray(np.full((300, 400), 77, np.uint8)).save(tmp_path / "p.png")
    rows = sample_plate(tmp_path / "p.png", 2, tmp_path / "out", size_cm=1.0, px_per_cm=100)
    assert rows[0]["size_px"] == 100 and (tifffile.imread(rows[0]["path"]) == 77).all()


def test_bad_parameters(tmp_path):
    _plate(tmp_path / "p.tif", shape=(300, 300))
    # the library names the parameter (the CLI shows it as --n / --size-cm: test_cli_sample)
    with pytest.raises(InvalidParameterError, match="^n must be") as exc:
        sample_plate(tmp_path / "p.tif", 0, tmp_path / "out")
    assert exc.value.param == "n"
    with pytest.raises(InvalidParameterError, match="size_cm") as exc:
        sample_plate(tmp_path / "p.tif", 1, tmp_path / "out", size_cm=-1)
    assert exc.value.param == "size_cm"
    with pytest.raises(InvalidImageError, match="smaller than one 2 cm sample"):
        sample_plate(tmp_path / "p.tif", 1, tmp_path / "out", size_cm=2.0)
    with pytest.raises(InputNotFoundError):
        sample_plate(tmp_path / "absent.tif", 1, tmp_path / "out")
    _plate(tmp_path / "nores.tif", resolution=False)
    with pytest.raises(MissingResolutionError):
        sample_plate(tmp_path / "nores.tif", 1, tmp_path / "out")


def test_samples_labelled_then_imported_keep_their_plate(tmp_path):
    """The plate of each labelled sample comes from samples.csv (names alone could be ambiguous)."""
    _plate(tmp_path / "plate_7.tif", shape=(400, 400))
    rows = sample_plate(tmp_path / "plate_7.tif", 2, tmp_path / "out", size_cm=0.5)
    for r in rows:  # a labeller draws one horizontal and one vertical thread on each sample
        doc = {"shapes": [{"label": "h", "points": [[0, 10], [99, 10], [99, 19], [0, 19]]},
                          {"label": "v", "points": [[10, 0], [19, 0], [19, 99], [10, 99]]}],
               "imagePath": f"{r['name']}.tif", "imageHeight": 100, "imageWidth": 100}
        (tmp_path / "out" / f"{r['name']}.json").write_text(json.dumps(doc))
    labels = import_labels(tmp_path / "out", tmp_path / "ds")
    assert [lab["plate"] for lab in labels] == ["plate_7", "plate_7"]  # not "plate" by the name prefix rule
    assert labels[0]["h_threads_per_cm"] == pytest.approx(2.0)  # one thread in 0.5 cm


def test_cli_sample(tmp_path, capsys):
    _plate(tmp_path / "p.tif")
    args = ["threads", "sample", str(tmp_path / "p.tif"), "--n", "3", "--out", str(tmp_path / "out"),
            "--size-cm", "0.5", "--seed", "2"]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--json"])
    assert exc.value.code == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in doc["samples"]] == ["p_001", "p_002", "p_003"]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 0 and "3 samples of 0.5 cm" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["threads", "sample", str(tmp_path / "p.tif"), "--n", "0", "--out", str(tmp_path / "o")])
    assert exc.value.code == 7
    assert capsys.readouterr().err.strip().startswith("error: --n must be")
    with pytest.raises(SystemExit) as exc:
        main(["threads", "sample", str(tmp_path / "p.tif"), "--n", "1", "--size-cm", "-1", "--out",
              str(tmp_path / "o")])
    assert exc.value.code == 7
    assert capsys.readouterr().err.strip().startswith("error: --size-cm must be")
