"""End-to-end tests of `artlens canvas compare` and `artlens canvas match` on small synthetic plates."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from artlens.catalog import Catalog
from artlens.models import create_model
from artlens.models.checkpoint import save_checkpoint
from artlens.synth import Roll, write_plate_tiff

CONTRACT = {"correlation", "p_value", "offset_cm", "orientation"}




@pytest.fixture(scope="module")
def plates(tmp_path_factory) -> dict[str, Path]:
    """a, b: overlapping pieces of one roll; c, d: another roll of nearly the same densities (d at 80 px/cm)."""
    d = tmp_path_factory.mktemp("plates")
    r1 = Roll(12.0, 15.0, seed=1, length_cm=20, width_cm=15)
    r2 = Roll(12.1, 15.1, seed=2, length_cm=20, width_cm=15)
    return {
        "a": write_plate_tiff(d / "a.tif", r1.cut(2.0, 1.0, 3.5, 3.5, seed=1, px_per_cm=100)),
        "b": write_plate_tiff(d / "b.tif", r1.cut(2.5, 1.5, 3.5, 3.5, seed=2, px_per_cm=100)),
        "c": write_plate_tiff(d / "c.tif", r2.cut(2.0, 1.0, 3.5, 3.5, seed=3, px_per_cm=100)),
        "d": write_plate_tiff(d / "d.tif", r2.cut(8.0, 10.0, 3.5, 3.5, seed=4, px_per_cm=80)),
    }


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(create_model("siamese_fabric_test"), "siamese_fabric_test", {"input_size": 24},
                           tmp_path_factory.mktemp("m") / "model",
                           extra={"input_px_per_cm": 24.0, "patch_cm": 1.0,
                                  "calibration": {"a": 1.5, "b": 0.1, "fitted": True},
                                  "aggregation": {"method": "mean", "trim": 0.1, "n_patches": 6}})


def test_compare_density_only_says_so(cli, plates):
    code, out, err = cli("canvas", "compare", str(plates["a"]), str(plates["b"]), "--permutations", "199",
                         "--density-only", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert CONTRACT <= set(r["density_match"]) and len(r["density_match"]["offset_cm"]) == 2
    assert r["siamese"] is None and r["evidence"] == "density"
    assert any("no fabric model" in n for n in r["notes"])
    assert r["density_match"]["p_value"] <= 0.02 and r["same_roll_probability"] > 0.8  # overlapping pieces
    code, out, _ = cli("canvas", "compare", str(plates["a"]), str(plates["b"]), "--permutations", "99",
                       "--density-only")
    assert code == 0 and "same-roll probability" in out
    code, _, err = cli("canvas", "compare", str(plates["a"]), str(plates["b"]), "--density-only",
                       "--fabric-model", str(plates["a"]))
    assert code == 7 and "not both" in err


def test_compare_uses_the_shipped_fabric_model_by_default(cli, plates):
    from artlens.canvas.fabric import DEFAULT_FABRIC_MODEL
    from artlens.models import pretrained_path

    shipped = pretrained_path(DEFAULT_FABRIC_MODEL)
    assert shipped.is_dir(), "artlens ships a fabric model (canvas/fabric_weights/fabric_default)"
    code, out, err = cli("canvas", "compare", str(plates["a"]), str(plates["b"]), "--permutations", "49", "--json")
    assert code == 0, err
    r = json.loads(out)
    s = r["fabric"]
    assert r["evidence"] == "density+yarn" and r["methods"] == ["density", "yarn-statistics"]
    assert s["method"] == "yarn-statistics" and s["calibrated"] is True and 0 <= s["score"] <= 1
    assert s["model_checksum"] == json.loads((shipped / "config.json").read_text())["sha256"]
    assert r["siamese"] is None and set(r["agreement"]) == {"density", "fabric", "disagree", "note"}
    assert r["agreement"]["density"] == "shared threads"  # a and b overlap
    if r["agreement"]["disagree"]:  # never silent
        assert any("disagree" in n for n in r["notes"])
    code, out, _ = cli("canvas", "compare", str(plates["a"]), str(plates["c"]), "--permutations", "49")
    assert code == 0 and "yarn-statistics: score" in out


def test_the_previous_siamese_model_is_still_shipped_and_usable(cli, plates):
    code, out, err = cli("canvas", "compare", str(plates["a"]), str(plates["c"]), "--permutations", "19",
                         "--fabric-model", "siamese_v1", "--patches", "8", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["evidence"] == "density+siamese" and r["methods"] == ["density", "siamese"]
    assert r["siamese"] == r["fabric"] and r["fabric"]["pairs"] == 64 and r["fabric"]["calibrated"]
    assert any("calibration was fitted for" in n for n in r["notes"])  # 8 patches, calibrated for 32


def test_compare_with_fabric_model(cli, plates, tiny_model):
    code, out, err = cli("canvas", "compare", str(plates["a"]), str(plates["c"]), "--permutations", "49",
                         "--fabric-model", str(tiny_model), "--json")
    assert code == 0, err
    r = json.loads(out)
    s = r["siamese"]
    assert {"score", "ci95", "pairs"} <= set(s) and s["pairs"] == 36 and s["ci95"][0] <= s["score"] <= s["ci95"][1]
    assert r["evidence"] == "density+siamese" and 0 <= r["same_roll_probability"] <= 1
    assert s["model_checksum"] == json.loads((tiny_model / "config.json").read_text())["sha256"]


def test_pairs_with_an_unreadable_plate(cli, plates, tmp_path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00garbage")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"a,b\n{plates['a']},{plates['b']}\n{plates['a']},broken.tif\n{plates['c']},{plates['d']}\n")
    code, out, err = cli("canvas", "compare", "--pairs", str(pairs), "--permutations", "49", "--json")
    assert code == 0, err
    lines = [json.loads(ln) for ln in out.splitlines()]
    assert len(lines) == 3
    assert "error" in lines[1] and "broken.tif" in lines[1]["error"] and lines[1]["exit_code"] == 4
    assert all(CONTRACT <= set(x["density_match"]) for x in (lines[0], lines[2]))
    assert lines[0]["a"] == str(plates["a"]) and lines[0]["b"] == str(plates["b"])
    # c (100 px/cm) and d (80 px/cm): resampled, with a notice
    assert any("differ in resolution" in n for n in lines[2]["notes"])
    assert "notice:" in err and "80 px/cm" in err and "1 pair(s) could not be compared" in err


def test_bad_arguments_are_one_line_errors(cli, plates):
    code, _, err = cli("canvas", "compare", str(plates["a"]))
    assert code == 7 and err.startswith("error:")
    code, _, err = cli("canvas", "compare", str(plates["a"]), "/nope.tif")
    assert code == 3 and "no such file" in err and "Traceback" not in err


def test_match_four_plates(cli, plates, tiny_model, tmp_path, _isolated_catalog):
    folder = plates["a"].parent
    out = tmp_path / "match"
    code, stdout, err = cli("canvas", "match", str(folder), "--out", str(out), "--permutations", "49",
                            "--fabric-model", str(tiny_model), "--json")
    assert code == 0, err
    s = json.loads(stdout)
    for name in ("report.html", "pairs.csv", "clusters.json", "similarity.png"):
        assert (out / name).is_file(), name
    assert s["n_pairs"] == 6 and s["threshold"] == 0.7 and s["linkage"] == "complete" and "above 0.7" in s["rule"]
    assert json.loads((out / "clusters.json").read_text())["clusters"] == s["clusters"]
    rows = list(csv.DictReader((out / "pairs.csv").open()))
    assert len(rows) == 6 and {"a", "b", "same_roll_probability", "density_p_value", "siamese_score"} <= set(rows[0])
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "Clusters of likely roll-mates" in html and 'src="http' not in html
    assert "notice:" in err  # d.tif is at 80 px/cm
    with Catalog(_isolated_catalog) as cat:
        assert len(cat.images()) == 4 and len(cat.analyses(method="canvas_match")) == 4


def test_match_density_only_clusters_the_overlapping_pair(cli, plates, tmp_path):
    out = tmp_path / "m"
    code, stdout, err = cli("canvas", "match", str(plates["a"].parent), "--out", str(out),
                            "--permutations", "99", "--no-catalog", "--density-only", "--json")
    assert code == 0, err
    s = json.loads(stdout)
    assert s["evidence"] == "density" and s["fabric_model"] is None
    assert any({"a.tif", "b.tif"} <= set(c["members"]) for c in s["clusters"])


def test_window_default_is_the_library_one():
    import typer

    from artlens.canvas.threads.grid import DEFAULT_WINDOW_CM
    from artlens.cli.main import app

    canvas = typer.main.get_command(app).commands["canvas"]
    for name in ("compare", "match"):
        (opt,) = [p for p in canvas.commands[name].params if p.name == "window_cm"]
        assert opt.default == DEFAULT_WINDOW_CM, name  # written once, in canvas/threads/grid.py


def test_cluster_defaults_are_the_library_ones():
    import typer

    from artlens.canvas.clusters import CLUSTER_LINKAGE, CLUSTER_THRESHOLD
    from artlens.cli.main import app

    match = typer.main.get_command(app).commands["canvas"].commands["match"]
    defaults = {p.name: p.default for p in match.params}
    assert defaults["threshold"] == CLUSTER_THRESHOLD and defaults["linkage"] == CLUSTER_LINKAGE


def test_match_prints_the_plates_left_on_their_own(cli, plates, tmp_path):
    out = tmp_path / "m"
    code, stdout, err = cli("canvas", "match", str(plates["a"].parent), "--out", str(out),
                            "--permutations", "49", "--no-catalog", "--density-only")
    assert code == 0, err
    s = json.loads((out / "clusters.json").read_text())
    assert s["singletons"], s  # four plates, two of them overlapping cuts: the others stay on their own
    assert f"on its own (linked to no other plate): {', '.join(s['singletons'])}" in stdout
    assert "complete linkage" in stdout and "above 0.7" in stdout


def test_match_refuses_a_bad_threshold_before_scoring_any_pair(cli, plates, tmp_path):
    out = tmp_path / "m"
    code, _, err = cli("canvas", "match", str(plates["a"].parent), "--out", str(out), "--no-catalog",
                       "--density-only", "--threshold", "1")
    assert code != 0 and err.startswith("error:") and "--threshold" in err and "Traceback" not in err
    assert not out.exists()  # failed before anything was written
