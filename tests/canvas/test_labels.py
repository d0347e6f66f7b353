"""Thread labels: masks → threads/cm (:func:`mask_density`), labelme / DL4ART import, datasets."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from artlens.canvas.threads.labels import (
    LABEL_COLUMNS,
    LabelledCrop,
    crossing_count,
    direction_of_label,
    import_labels,
    load_dl4art_masks,
    load_labelled_crops,
    load_labelme,
    mask_density,
    plate_of,
)
from artlens.cli.main import main
from artlens.errors import (
    InputNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    MissingResolutionError,
    UnreadableInputError,
)

PPC = 200.0  # px/cm, as the DL4ART samples


def stripes(n_px: int = 300, starts=range(5, 300, 20), width: int = 10, length: int = 300) -> np.ndarray:
    """Horizontal-thread mask (n_px, length): rows [s, s + width) True for each start s (clipped)."""
    m = np.zeros((n_px, length), dtype=bool)
    for s in starts:
        m[max(s, 0):max(min(s + width, n_px), 0)] = True
    return m


# -- mask_density -------------------------------------------------------------------------------
def test_exact_stripes_both_directions():
    h = stripes()  # 15 threads of 10 px every 20 px over 300 px = 1.5 cm
    assert mask_density(h, "horizontal", PPC) == pytest.approx(15 / 1.5)
    assert mask_density(h.T, "vertical", PPC) == pytest.approx(15 / 1.5)
    # The wrong direction crosses no run boundary along a line: one run per line spanning it.
    assert mask_density(h, "vertical", PPC) == pytest.approx(1 / 1.5)


def test_subcrop_cutting_a_thread_in_half():
    h = stripes()
    # Rows 5..210: threads at 5, 25, ..., 185 whole (10) and 205..215 cut at 210 (half) -> 10.5 threads.
    assert mask_density(h, "horizontal", PPC, region=(5, 0, 205, 300)) == pytest.approx(10.5 / (205 / PPC))
    # Rows 10..210: half of 5..15, 9 whole (25..195), half of 205..215 -> 10 threads in 1 cm.
    assert mask_density(h, "horizontal", PPC, region=(10, 0, 200, 300)) == pytest.approx(10.0)
    # Narrow in the other axis: the number of lines does not matter.
    assert mask_density(h, "horizontal", PPC, region=(10, 37, 200, 3)) == pytest.approx(10.0)
    # Rows 7..207: 8/10 of 5..15, 9 whole, 2/10 of 205..215 -> 10 threads in 1 cm.
    assert mask_density(h, "horizontal", PPC, region=(7, 0, 200, 300)) == pytest.approx(10.0)
    # Rows 12..203: 3/10 of 5..15, 9 whole (25..195), 205.. not reached -> 9.3 threads.
    assert mask_density(h, "horizontal", PPC, region=(12, 0, 191, 300)) == pytest.approx(9.3 / (191 / PPC))


def test_thread_cut_by_the_mask_edge_uses_the_median_length():
    # First thread 0..5 is the lower half of a 10 px thread cut by the image edge: 0.5 thread.
    h = stripes(starts=range(-5, 300, 20))  # -5 (cut), 15, 35, ..., 295 (cut: 295..300)
    complete = sum(1 for s in range(15, 300, 20) if s + 10 <= 300)  # 14 complete threads
    expected = (0.5 + complete + 0.5) / 1.5
    assert mask_density(h, "horizontal", PPC) == pytest.approx(expected)
    # A thread cut by the edge but wider than the median counts 1, not more.
    wide = stripes(starts=[0, *range(25, 300, 20)])
    wide[:14] = True
    assert mask_density(wide, "horizontal", PPC) == pytest.approx((1 + 14) / 1.5)


def test_run_continuing_outside_subcrop_uses_its_true_length():
    h = np.zeros((300, 50), dtype=bool)
    h[0:40] = True  # a 40 px wide thread touching the top edge (its length is known: 40 > median 10)
    h[60:70] = True
    h[100:110] = True
    # Sub-crop rows 20..120: 20 of the 40 px thread -> 0.5, plus 2 whole threads.
    assert mask_density(h, "horizontal", PPC, region=(20, 0, 100, 50)) == pytest.approx(2.5 / 0.5)


def test_transpose_symmetry_on_irregular_masks():
    rng = np.random.default_rng(3)
    m = np.zeros((240, 260), dtype=bool)
    y = 2.0
    while y < 240:
        width = int(rng.integers(6, 12))
        for x in range(260):  # slightly wavy threads
            y0 = int(y + 2 * np.sin(x / 30))
            m[max(y0, 0):max(y0 + width, 0), x] = True
        y += rng.uniform(14, 20)
    for region in [None, (0, 0, 200, 200), (13, 41, 187, 150), (100, 7, 139, 253)]:
        a = mask_density(m, "horizontal", PPC, region)
        t_region = None if region is None else (region[1], region[0], region[3], region[2])
        b = mask_density(m.T, "vertical", PPC, t_region)
        assert a == pytest.approx(b)
        assert 9 < a < 15


def test_empty_lines_ignored_and_empty_mask_is_nan():
    h = stripes()
    h[:, 150:] = False  # threads labelled only in the left half: the right half's columns are ignored
    assert mask_density(h, "horizontal", PPC) == pytest.approx(10.0)
    assert math.isnan(mask_density(np.zeros((50, 50), bool), "vertical", PPC))
    assert math.isnan(mask_density(h, "horizontal", PPC, region=(0, 200, 300, 50)))


def test_median_over_lines_absorbs_a_merged_thread():
    h = stripes()
    h[15:25, :30] = True  # two threads touch in 30 of 300 columns
    assert mask_density(h, "horizontal", PPC) == pytest.approx(10.0)


def test_accepts_01_integer_masks():
    assert mask_density(stripes().astype(np.uint8), "horizontal", PPC) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"direction": "diagonal"}, "direction"),
        ({"px_per_cm": 0}, "px_per_cm"),
        ({"px_per_cm": float("nan")}, "px_per_cm"),
        ({"region": (0, 0, 301, 10)}, "inside"),
        ({"region": (-1, 0, 10, 10)}, "inside"),
        ({"region": (0, 0, 0, 10)}, "inside"),
        ({"region": (0, 0, 10.5, 10)}, "integers"),
        ({"region": (0, 0, 10)}, "y0, x0"),
        ({"mask": np.zeros((3, 4, 5), bool)}, "2-D"),
        ({"mask": np.full((4, 4), 2)}, "0/1"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"mask": stripes(), "direction": "horizontal", "px_per_cm": PPC, **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        mask_density(**args)


def test_crossing_count():
    h = stripes()  # 15 horizontal threads
    v = stripes(starts=range(3, 300, 25)).T  # 12 vertical threads
    assert crossing_count(h, v) == 15 * 12
    with pytest.raises(InvalidImageError):
        crossing_count(h, v[:, :10])


def test_direction_of_label():
    for label in ("h", "H", "horizontal", "Horizontal", "H_thread", "h12", " weft ", "WEFT"):
        assert direction_of_label(label) == "horizontal"
    for label in ("v", "V", "vertical", "V_thread", "warp", "Warp"):
        assert direction_of_label(label) == "vertical"
    with pytest.raises(UnreadableInputError, match=r"'crack'.*accepted.*horizontal.*vertical"):
        direction_of_label("crack")
    with pytest.raises(UnreadableInputError):
        direction_of_label(None)


def test_plate_of():
    assert plate_of("PlateA_007") == "PlateA"
    assert plate_of("P_12_003") == "P_12"
    assert plate_of("Crop0139") == "Crop0139"
    assert plate_of("PlateA_007", declared="X") == "X"
    assert plate_of("PlateA_007", {"PlateA_007": "T"}, declared="X") == "T"


# -- the real DL4ART sample ----------------------------------------------------------------------
@pytest.mark.shared_data
def test_crop0139_labels(shared_data, tmp_path):
    folder = shared_data / "canvas" / "dl4art_crop0139"
    crop = load_dl4art_masks(folder / "Crop0139.tif")
    assert crop.px_per_cm == pytest.approx(200.0) and crop.shape == (300, 300)
    d = crop.density()
    # Measured: horizontal 12.0, vertical 12.0 exactly (18 runs in every column; 18 runs in 299 of
    # 300 rows, the first row cuts polygon corners into 16 runs). The manifest's label: 18 / 1.5 cm.
    assert abs(d["horizontal"] - 12.0) <= 0.05
    assert abs(d["vertical"] - 12.0) <= 0.05
    assert crop.crossings() == 324  # 18 x 18, DL4ART's label image
    # 1 cm sub-crops as the CNN sees them: measured 12.0-13.0 (the vertical threads' centre spacing is
    # 16 px, i.e. 12.5 /cm, so 1 cm windows see 12.5 +- 0.5).
    for region in [(0, 0, 200, 200), (50, 50, 200, 200), (100, 100, 200, 200)]:
        sub = crop.density(region)
        assert 11.5 <= sub["horizontal"] <= 13.0 and 11.5 <= sub["vertical"] <= 13.5

    before = hashlib.sha256((folder / "Crop0139.tif").read_bytes()).hexdigest()
    rows = import_labels(folder, tmp_path / "ds")
    assert [r["name"] for r in rows] == ["Crop0139"]
    assert rows[0]["plate"] == "Crop0139" and rows[0]["source"] == "dl4art:Crop0139_H.npz"
    assert rows[0]["h_threads_per_cm"] == pytest.approx(12.0) and rows[0]["v_threads_per_cm"] == pytest.approx(12.0)
    copied = (tmp_path / "ds" / "images" / "Crop0139.tif").read_bytes()
    assert hashlib.sha256(copied).hexdigest() == before == hashlib.sha256(
        (folder / "Crop0139.tif").read_bytes()).hexdigest()
    (back,) = load_labelled_crops(tmp_path / "ds")
    assert np.array_equal(back.h_mask, crop.h_mask) and np.array_equal(back.v_mask, crop.v_mask)


# -- labelme import ------------------------------------------------------------------------------
H_STARTS = list(range(5, 300, 20))  # 15 horizontal threads, rows [s, s + 10)
V_STARTS = list(range(3, 300, 25))  # 12 vertical threads, columns [s, s + 12)


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    """A 4-point polygon covering pixels x0..x1, y0..y1 inclusive (PIL fills outline and inside)."""
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def _expected_masks(shape=(300, 300)):
    h = np.zeros(shape, bool)
    v = np.zeros(shape, bool)
    for s in H_STARTS:
        h[s:s + 10, :] = True
    for s in V_STARTS:
        v[:, s:s + 12] = True
    return h, v


def _image(shape=(300, 300)) -> np.ndarray:
    h, v = _expected_masks(shape)
    return (60 + 80 * h + 60 * v).astype(np.uint8)


def write_labelme(folder: Path, name: str, fmt: str = "tif", labels=("H", "v"), **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    img = _image()
    if fmt == "tif":
        tifffile.imwrite(folder / f"{name}.tif", img, resolution=(PPC, PPC), resolutionunit="CENTIMETER")
    else:
        Image.fromarray(img).save(folder / f"{name}.png", dpi=(PPC * 2.54, PPC * 2.54))
    shapes = [{"label": labels[0], "points": _rect(0, s, 299, s + 9), "group_id": None,
               "shape_type": "polygon", "flags": {}} for s in H_STARTS]
    shapes += [{"label": labels[1], "points": _rect(s, 0, s + 11, 299), "group_id": None,
                "shape_type": "polygon", "flags": {}} for s in V_STARTS]
    doc = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": f"{name}.{fmt}", "imageData": None,
           "imageHeight": 300, "imageWidth": 300, **extra}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def test_labelme_round_trip(tmp_path):
    src = tmp_path / "src"
    write_labelme(src, "PlateA_001", labels=("H_thread", "V_thread"))
    write_labelme(src / "sub", "PlateA_002", fmt="png", labels=("weft", "warp"))
    write_labelme(src, "loose", labels=("horizontal", "vertical"), flags={"plate": "PlateZ"})
    crop = load_labelme(src / "PlateA_001.json")
    h, v = _expected_masks()
    assert np.array_equal(crop.h_mask, h) and np.array_equal(crop.v_mask, v)
    assert crop.px_per_cm == pytest.approx(PPC)
    assert crop.density() == {"horizontal": pytest.approx(10.0), "vertical": pytest.approx(8.0)}
    assert crop.crossings() == 15 * 12

    png_before = (src / "sub" / "PlateA_002.png").read_bytes()
    rows = import_labels(src, tmp_path / "ds")
    assert [(r["name"], r["plate"]) for r in rows] == [("PlateA_001", "PlateA"), ("PlateA_002", "PlateA"),
                                                       ("loose", "PlateZ")]
    assert (src / "sub" / "PlateA_002.png").read_bytes() == png_before
    with open(tmp_path / "ds" / "labels.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0]) == LABEL_COLUMNS
    assert table[1]["image"] == "images/PlateA_002.tif" and table[1]["source"] == "labelme:sub/PlateA_002.json"
    assert float(table[1]["h_threads_per_cm"]) == pytest.approx(10.0)
    assert float(table[1]["v_threads_per_cm"]) == pytest.approx(8.0)
    assert (table[1]["height_px"], table[1]["width_px"], table[1]["px_per_cm"]) == ("300", "300", "200")
    # The PNG became an 8-bit gray TIFF with resolution tags in px/cm and the same pixels.
    with tifffile.TiffFile(tmp_path / "ds" / "images" / "PlateA_002.tif") as tf:
        page = tf.pages[0]
        assert page.dtype == np.uint8 and page.tags["ResolutionUnit"].value == 3
        num, den = page.tags["XResolution"].value
        assert num / den == pytest.approx(PPC)
        assert np.array_equal(page.asarray(), _image())
    for key, mask in (("H", h), ("V", v)):
        with np.load(tmp_path / "ds" / "masks" / f"PlateA_002_{key}.npz") as npz:
            assert npz.files == ["arr_0"] and npz["arr_0"].dtype == bool
            assert np.array_equal(npz["arr_0"], mask)
    crops = load_labelled_crops(tmp_path / "ds")
    assert [c.name for c in crops] == ["PlateA_001", "PlateA_002", "loose"]
    assert all(isinstance(c, LabelledCrop) and np.array_equal(c.h_mask, h) for c in crops)
    assert crops[2].plate == "PlateZ"
    assert crops[0].density(region=(10, 0, 200, 200))["horizontal"] == pytest.approx(10.0)


def test_plates_csv_wins(tmp_path):
    src = tmp_path / "src"
    write_labelme(src, "c_1", plate="FromJson")
    write_labelme(src, "c_2")
    (src / "plates.csv").write_text("name,plate\nc_1,P1\n")
    rows = import_labels(src, tmp_path / "ds")
    assert [r["plate"] for r in rows] == ["P1", "c"]


def test_labelme_and_npz_of_one_crop_prefers_json(tmp_path):
    src = tmp_path / "src"
    write_labelme(src, "c_1")
    np.savez(src / "c_1_H.npz", np.zeros((300, 300), bool))
    np.savez(src / "c_1_V.npz", np.zeros((300, 300), bool))
    with pytest.warns(UserWarning, match="using the JSON"):
        rows = import_labels(src, tmp_path / "ds")
    assert rows[0]["source"] == "labelme:c_1.json" and rows[0]["h_threads_per_cm"] == pytest.approx(10.0)


def test_image_path_from_another_machine(tmp_path):
    path = write_labelme(tmp_path, "c_1")
    doc = json.loads(path.read_text())
    doc["imagePath"] = "C:\\Users\\lab\\crops\\c_1.tif"
    path.write_text(json.dumps(doc))
    assert load_labelme(path).image_path == tmp_path / "c_1.tif"


# -- bad inputs ----------------------------------------------------------------------------------
def _edit(path: Path, **changes) -> Path:
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc))
    return path


def test_malformed_json(tmp_path):
    path = write_labelme(tmp_path, "c_1")
    path.write_text('{"shapes": [')
    with pytest.raises(UnreadableInputError, match="malformed JSON"):
        load_labelme(path)
    path.write_text("[1, 2]")
    with pytest.raises(UnreadableInputError, match="not a labelme file"):
        load_labelme(path)


def test_json_without_shapes(tmp_path):
    path = write_labelme(tmp_path, "c_1")
    with pytest.raises(UnreadableInputError, match="no 'shapes'"):
        load_labelme(_edit(path, shapes=[]))
    doc = json.loads(path.read_text())
    del doc["shapes"]
    path.write_text(json.dumps(doc))
    with pytest.raises(UnreadableInputError, match="no 'shapes'"):
        load_labelme(path)


def test_polygon_with_too_few_points(tmp_path):
    path = write_labelme(tmp_path, "c_1")
    doc = json.loads(path.read_text())
    doc["shapes"][3]["points"] = [[0, 0], [10, 10]]
    path.write_text(json.dumps(doc))
    with pytest.raises(UnreadableInputError, match="shape 3.*at least 3 points, got 2"):
        load_labelme(path)
    doc["shapes"][3]["points"] = "nonsense"
    path.write_text(json.dumps(doc))
    with pytest.raises(UnreadableInputError, match="shape 3.*points"):
        load_labelme(path)


def test_unknown_label_and_shape_type(tmp_path):
    path = write_labelme(tmp_path, "c_1")
    doc = json.loads(path.read_text())
    doc["shapes"][0]["label"] = "crack"
    path.write_text(json.dumps(doc))
    with pytest.raises(UnreadableInputError, match="'crack'.*accepted"):
        load_labelme(path)
    doc["shapes"][0].update(label="h", shape_type="line")
    path.write_text(json.dumps(doc))
    with pytest.raises(UnreadableInputError, match="'line' is not an area"):
        load_labelme(path)


def test_labelme_size_mismatch(tmp_path):
    path = _edit(write_labelme(tmp_path, "c_1"), imageHeight=301)
    with pytest.raises(InvalidImageError, match="301x300"):
        load_labelme(path)


def test_labelme_missing_image(tmp_path):
    path = write_labelme(tmp_path, "c_1")
    (tmp_path / "c_1.tif").unlink()
    with pytest.raises(InputNotFoundError, match="c_1.tif"):
        load_labelme(path)
    with pytest.raises(InputNotFoundError):
        load_labelme(tmp_path / "absent.json")


def test_missing_resolution(tmp_path):
    tifffile.imwrite(tmp_path / "c_1.tif", _image())  # no resolution tags
    np.savez(tmp_path / "c_1_H.npz", np.zeros((300, 300), bool))
    np.savez(tmp_path / "c_1_V.npz", np.zeros((300, 300), bool))
    with pytest.raises(MissingResolutionError):
        load_dl4art_masks(tmp_path / "c_1.tif")
    assert load_dl4art_masks(tmp_path / "c_1.tif", px_per_cm=100).px_per_cm == 100


def _dl4art(folder: Path, name: str = "Crop0001", h=None, v=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    hm, vm = _expected_masks()
    tifffile.imwrite(folder / f"{name}.tif", _image(), resolution=(PPC, PPC), resolutionunit="CENTIMETER")
    np.savez_compressed(folder / f"{name}_H.npz", hm if h is None else h)
    np.savez_compressed(folder / f"{name}_V.npz", vm if v is None else v)
    return folder / f"{name}.tif"


def test_npz_mask_size_mismatch(tmp_path):
    image = _dl4art(tmp_path, v=np.zeros((300, 299), bool))
    with pytest.raises(InvalidImageError, match="Crop0001_V.npz is 300x299 but Crop0001.tif is 300x300"):
        load_dl4art_masks(image)


def test_npz_without_arr_0(tmp_path):
    image = _dl4art(tmp_path)
    np.savez(tmp_path / "Crop0001_H.npz", mask=np.zeros((300, 300), bool))
    with pytest.raises(UnreadableInputError, match="no array 'arr_0' \\(found mask\\)"):
        load_dl4art_masks(image)
    (tmp_path / "Crop0001_H.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(UnreadableInputError, match="not a readable npz"):
        load_dl4art_masks(image)
    np.savez(tmp_path / "Crop0001_H.npz", np.zeros((2, 300, 300), bool))
    with pytest.raises(UnreadableInputError, match="not a 2-D mask"):
        load_dl4art_masks(image)


def test_npz_missing_image_or_partner(tmp_path):
    image = _dl4art(tmp_path / "a")
    (tmp_path / "a" / "Crop0001_V.npz").unlink()
    with pytest.raises(InputNotFoundError, match="Crop0001_V.npz not found"):
        load_dl4art_masks(image)
    with pytest.raises(InputNotFoundError):
        load_dl4art_masks(tmp_path / "a" / "nothing.tif")
    _dl4art(tmp_path / "b")
    (tmp_path / "b" / "Crop0001.tif").unlink()
    with pytest.raises(InputNotFoundError, match="no image Crop0001.tif"):
        import_labels(tmp_path / "b", tmp_path / "ds")
    _dl4art(tmp_path / "c")
    (tmp_path / "c" / "Crop0001_H.npz").unlink()
    with pytest.raises(InputNotFoundError, match="Crop0001_H.npz is missing"):
        import_labels(tmp_path / "c", tmp_path / "ds")


def test_import_folder_errors(tmp_path):
    with pytest.raises(InputNotFoundError, match="no such folder"):
        import_labels(tmp_path / "absent", tmp_path / "ds")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputNotFoundError, match="no labelme JSON"):
        import_labels(tmp_path / "empty", tmp_path / "ds")
    write_labelme(tmp_path / "dup" / "a", "c_1")
    _dl4art(tmp_path / "dup" / "b", name="c_1")
    with pytest.raises(InvalidParameterError, match="two crops named 'c_1'"):
        import_labels(tmp_path / "dup", tmp_path / "ds")
    assert not (tmp_path / "ds" / "labels.csv").exists()  # nothing written before every crop loads
    with pytest.raises(InvalidParameterError, match="must differ"):
        import_labels(tmp_path / "dup", tmp_path / "dup")
    with pytest.raises(InputNotFoundError, match="no labels.csv"):
        load_labelled_crops(tmp_path / "empty")


def test_load_dataset_mismatch(tmp_path):
    _dl4art(tmp_path / "src")
    import_labels(tmp_path / "src", tmp_path / "ds")
    np.savez(tmp_path / "ds" / "masks" / "Crop0001_V.npz", np.zeros((10, 10), bool))
    with pytest.raises(InvalidImageError, match="labels.csv says 300x300"):
        load_labelled_crops(tmp_path / "ds")


# -- CLI -----------------------------------------------------------------------------------------
def _cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_import_labels(tmp_path, capsys):
    _dl4art(tmp_path / "src", name="PlateB_003")
    write_labelme(tmp_path / "src", "PlateB_004")
    assert _cli(["threads", "import-labels", str(tmp_path / "src"), "--out", str(tmp_path / "ds"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(c["name"], c["plate"], c["h_threads_per_cm"], c["v_threads_per_cm"]) for c in doc["crops"]] == [
        ("PlateB_003", "PlateB", pytest.approx(10.0), pytest.approx(8.0)),
        ("PlateB_004", "PlateB", pytest.approx(10.0), pytest.approx(8.0)),
    ]
    assert _cli(["threads", "import-labels", str(tmp_path / "src"), "--out", str(tmp_path / "ds2")]) == 0
    out = capsys.readouterr().out
    assert "PlateB_003" in out and "10.00" in out and "8.00" in out and "labels.csv" in out


def test_cli_import_labels_bad_input(tmp_path, capsys):
    path = write_labelme(tmp_path / "src", "c_1")
    path.write_text("{not json")
    assert _cli(["threads", "import-labels", str(tmp_path / "src"), "--out", str(tmp_path / "ds")]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: c_1.json: malformed JSON")
