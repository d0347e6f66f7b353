"""End-to-end tests of `artlens threads count`, `artlens synth plate`, `artlens demo` and
`artlens catalog list`, run in-process through the real entry point."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from artlens import __version__
from artlens.synth import make_plate, write_plate_tiff


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"artlens {__version__}"


def test_help_everywhere(cli):
    for args in ([], ["threads"], ["threads", "count"], ["synth", "plate"], ["catalog", "list"], ["demo"]):
        code, out, _ = cli(*args, "--help")
        assert code == 0 and "Usage" in out, args


@pytest.fixture(scope="module")
def small_plate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    plate = make_plate(height_cm=2.5, width_cm=3.0, horizontal_density=11.0, vertical_density=14.5,
                       paint=0.3, craquelure=0.3, seed=3)
    path = write_plate_tiff(tmp_path_factory.mktemp("plates") / "small.tif", plate)
    return path, plate.mean_truth()


def test_threads_count_writes_the_contract(cli, tmp_path, small_plate, _isolated_catalog):
    path, truth = small_plate
    before = path.read_bytes()
    out_dir = tmp_path / "out"
    code, out, err = cli("threads", "count", str(path), "--out", str(out_dir), "--window-cm", "1.0",
                         "--step-cm", "0.5", "--json")
    assert code == 0, err
    printed = json.loads(out)
    summary = json.loads((out_dir / "summary.json").read_text())
    assert printed["windows"] == summary["windows"] == 4 * 5
    for key in ("method", "artlens_version", "px_per_cm", "window_cm", "step_cm", "windows", "horizontal",
                "vertical"):
        assert key in summary
    assert summary["method"] == "spectral" and summary["artlens_version"] == __version__
    assert summary["px_per_cm"] == 200.0 and summary["source"]["px_per_cm_source"] == "file"
    assert summary["provenance"]["parameters"]["window_cm"] == 1.0
    assert abs(summary["horizontal"]["threads_per_cm"]["mean"] - truth["horizontal_density"]) < 0.15
    assert abs(summary["vertical"]["threads_per_cm"]["mean"] - truth["vertical_density"]) < 0.15

    rows = list(csv.DictReader(open(out_dir / "windows.csv")))
    assert len(rows) == 20
    assert {"x_cm", "y_cm", "h_threads_per_cm", "v_threads_per_cm", "h_angle_deg", "v_confidence",
            "h_outlier"} <= set(rows[0])
    assert float(rows[0]["x_cm"]) == pytest.approx(0.5) and float(rows[0]["y_cm"]) == pytest.approx(0.5)
    for name in ("density_horizontal", "density_vertical", "angle_horizontal", "angle_vertical"):
        assert (out_dir / f"{name}.png").stat().st_size > 1000
    html = (out_dir / "report.html").read_text()
    assert "threads/cm" in html and __version__ in html
    assert path.read_bytes() == before  # the input is never written

    code, out, _ = cli("catalog", "list", "--json")
    assert code == 0
    analyses = json.loads(out)
    assert len(analyses) == 1 and analyses[0]["method"] == "threads.spectral"
    assert analyses[0]["image_path"] == str(path.resolve())


def test_px_per_cm_override_changes_the_units(cli, tmp_path, small_plate):
    path, truth = small_plate
    code, out, err = cli("threads", "count", str(path), "--out", str(tmp_path / "o"), "--px-per-cm", "100",
                         "--band", "3", "20", "--no-catalog", "--json")
    assert code == 0, err
    s = json.loads(out)
    assert s["source"]["px_per_cm_source"] == "override"
    # the same pixels at half the resolution: half the threads per cm
    assert abs(s["horizontal"]["threads_per_cm"]["median"] - truth["horizontal_density"] / 2) < 0.15


def test_prose_output_and_report_path(cli, tmp_path, small_plate):
    path, _ = small_plate
    code, out, err = cli("threads", "count", str(path), "--out", str(tmp_path / "o"), "--no-catalog")
    assert code == 0, err
    assert "threads/cm" in out and "report:" in out and out.count("\n") >= 3


def test_synth_plate_command(cli, tmp_path):
    target = tmp_path / "s.tif"
    code, out, err = cli("synth", "plate", str(target), "--height-cm", "1.5", "--width-cm", "2",
                         "--horizontal", "9.5", "--vertical", "17", "--bit-depth", "16", "--seed", "4", "--json")
    assert code == 0, err
    info = json.loads(out)
    with tifffile.TiffFile(target) as tf:
        page = tf.pages[0]
        assert page.dtype == np.uint16 and page.shape == (300, 400)
        assert page.get_resolution("CENTIMETER") == pytest.approx((200.0, 200.0))
    assert info["mean_truth"]["horizontal_density"] == pytest.approx(9.5, rel=0.02)
    assert json.loads(Path(info["truth"]).read_text())["mean_truth"] == info["mean_truth"]


def test_demo_small(cli, tmp_path, monkeypatch):
    import artlens.demo as demo

    monkeypatch.setattr(demo, "SIZE_CM", (2.0, 2.5))  # the real demo uses larger plates
    code, out, err = cli("demo", "--out", str(tmp_path / "demo"), "--json", "--plates-only")
    assert code == 0, err
    manifest = json.loads(out)
    assert Path(manifest["report"]).is_file()
    rolls = [p["name"] for p in manifest["plates"]]
    assert len(rolls) == 3 and sum("roll A" in r for r in rolls) == 2
    for p in manifest["plates"]:
        for d in ("horizontal", "vertical"):
            assert abs(p["error"][d]) < 0.3, p
    code, out, _ = cli("catalog", "list", "--json")
    assert len(json.loads(out)) == 3


@pytest.mark.slow
def test_full_demo_matches_the_two_cuts_of_one_roll_and_checks_each_count(cli, tmp_path):
    """What `make demo` builds: roll A's two cuts score higher than either against roll B's cut and form the one
    cluster, and every count carries its second opinion (agreeing on these plates)."""
    import csv

    code, out, err = cli("demo", "--out", str(tmp_path / "demo"), "--no-catalog", "--json")
    assert code == 0, err
    manifest = json.loads(out)
    with open(Path(manifest["match"]).parent / "pairs.csv") as fh:
        p = {(r["a"], r["b"]): float(r["same_roll_probability"]) for r in csv.DictReader(fh)}
    same = p[("plate-1.tif", "plate-2.tif")]
    assert same > p[("plate-1.tif", "plate-3.tif")] and same > p[("plate-2.tif", "plate-3.tif")]
    # the clusters as `canvas match` makes them by default (complete linkage at 0.7): roll A's cuts, plate 3 alone
    assert [sorted(c["members"]) for c in manifest["clusters"]] == [["plate-1.tif", "plate-2.tif"]]
    assert manifest["singletons"] == ["plate-3.tif"]
    for p in manifest["plates"]:
        opinion = json.loads(Path(p["summary"]).read_text())["second_opinion"]
        assert opinion["plate_flagged"] is False and opinion["model_sha256"]
