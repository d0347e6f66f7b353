"""``artlens beneath compare --pairs CSV --out OUT``: many visible / other pairs on the batch engine, resumable,
with failures set aside. Small synthetic Kubelka-Munk scenes (96 px) keep it to seconds."""

from __future__ import annotations

import csv
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sigkill import kill_after

from artlens.synth.hidden import builtin_pigments, make_hidden_scene

N = 96


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("views")
    for k in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = make_hidden_scene((N, N), kind="mixed", seed=5 + k, pigments=builtin_pigments())
        Image.fromarray(s.visible_rgb).save(d / f"vis{k}.png")
        Image.fromarray(s.ir).save(d / f"ir{k}.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    path = d / "pairs.csv"
    path.write_text("visible,other\nvis0.png,ir0.png\nvis1.png,ir1.png\nvis0.png,broken.png\nvis1.png,gone.png\n")
    return path


def check_complete(out: Path, db: Path | None) -> None:
    rows = read_csv(out / "pairs.csv")
    assert [r["pair"] for r in rows] == ["vis0--ir0", "vis1--ir1"]
    for r in rows:
        summary = json.loads((out / r["pair"] / "summary.json").read_text())  # what the one-pair command writes
        assert summary["method"] == r["method"] == "pixel" and Path(r["heatmap"]).is_file()
        assert summary["heatmap"] == r["heatmap"] and float(r["valid_fraction"]) > 0.9
        assert len(r["visible_sha256"]) == 64 and len(r["other_sha256"]) == 64 and r["artlens_version"]
        assert summary["provenance"]["parameters"]["seed"] == json.loads(r["parameters"])["seed"] == 0
    skipped = read_csv(out / "skipped.csv")
    assert [s["pair"] for s in skipped] == ["vis0--broken", "vis1--gone"]
    assert "no such file" in skipped[1]["reason"] and skipped[0]["reason"]
    if db is not None:
        from artlens.catalog import Catalog

        with Catalog(db) as cat:
            analyses = cat.analyses(method="beneath.pixel")
        assert sorted(Path(a["image_path"]).name for a in analyses) == ["vis0.png", "vis1.png"]
        assert {a["summary"]["item_key"] for a in analyses} == {r["key"] for r in rows}


def test_pairs_then_rerun_then_torn_row(cli, pairs_csv, tmp_path, _isolated_catalog):
    out = tmp_path / "out"
    code, stdout, err = cli("beneath", "compare", "--pairs", pairs_csv, "--out", out)
    assert code == 0, err
    assert "4 pairs: 2 new, 0 done before, 2 skipped" in stdout
    assert "vis0--broken: skipped:" in err
    check_complete(out, _isolated_catalog)
    heat = {r["pair"]: np.load(r["heatmap"]) for r in read_csv(out / "pairs.csv")}

    code, stdout, _ = cli("beneath", "compare", "--pairs", pairs_csv, "--out", out)
    assert code == 0 and "0 new, 2 done before" in stdout and "2 skipped before" in stdout
    check_complete(out, _isolated_catalog)

    # a kill while the second row was being written: that pair is redone (same seed, same map), recorded once
    text = (out / "pairs.csv").read_text().splitlines(keepends=True)
    (out / "pairs.csv").write_text("".join(text[:2]) + text[2][:20])
    code, stdout, err = cli("beneath", "compare", "--pairs", pairs_csv, "--out", out)
    assert code == 0, err
    assert "1 new, 1 done before" in stdout
    check_complete(out, _isolated_catalog)
    for r in read_csv(out / "pairs.csv"):
        np.testing.assert_array_equal(np.load(r["heatmap"]), heat[r["pair"]])


def test_kill_9_mid_run_then_resume(cli, pairs_csv, tmp_path, _isolated_catalog):
    """The driver is SIGKILLed right after its first pairs.csv row; the next run compares only the other pair,
    the rows and maps are those of an uninterrupted run, and a third run has nothing to do."""
    full = tmp_path / "full"
    code, _, err = cli("beneath", "compare", "--pairs", pairs_csv, "--out", full, "--no-catalog")
    assert code == 0, err
    out = tmp_path / "out"
    args = ("beneath", "compare", "--pairs", pairs_csv, "--out", out)
    kill_after(args, writer="artlens.engine:ResultLedger.append", marker="/pairs.csv", after=1,
               catalog=_isolated_catalog, log=tmp_path / "killed.log")
    assert len(read_csv(out / "pairs.csv")) == 1
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert "1 new, 1 done before" in stdout
    check_complete(out, _isolated_catalog)  # every pair once in pairs.csv and in the catalog

    def moved(rows: list[dict[str, str]], folder: Path) -> list[dict[str, str]]:
        return [{k: v.replace(str(folder), "OUT") for k, v in r.items()} for r in rows]

    assert moved(read_csv(out / "pairs.csv"), out) == moved(read_csv(full / "pairs.csv"), full)
    for r in read_csv(out / "pairs.csv"):
        np.testing.assert_array_equal(np.load(r["heatmap"]), np.load(r["heatmap"].replace(str(out), str(full))))
    code, stdout, _ = cli(*args)
    assert code == 0 and "0 new, 2 done before" in stdout


def test_two_local_workers(cli, pairs_csv, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = cli("beneath", "compare", "--pairs", pairs_csv, "--out", out, "--workers", "2",
                            "--no-catalog", "--no-report", "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["new"] == 2 and report["skipped"] == 2 and report["workers"] == 2
    check_complete(out, None)


def test_pairs_errors_are_one_line(cli, pairs_csv, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\nx.png,y.png\n")
    vis = pairs_csv.parent / "vis0.png"
    cases = [
        (("--pairs", bad, "--out", tmp_path / "o"), 7, "needs columns 'visible' and 'other'"),
        (("--pairs", tmp_path / "none.csv", "--out", tmp_path / "o"), 3, "no such file"),
        ((vis, "--pairs", pairs_csv, "--out", tmp_path / "o"), 7, "not both"),
        ((vis, "--out", tmp_path / "o"), 7, "give VISIBLE OTHER"),
        ((vis, pairs_csv.parent / "ir0.png", "--out", tmp_path / "o", "--workers", "2"), 7, "apply to --pairs"),
        (("--pairs", pairs_csv, "--out", tmp_path / "o", "--engine", "spark"), 7, "--engine must be one of"),
        (("--pairs", pairs_csv, "--out", tmp_path / "o", "--model", tmp_path), 7, "--model"),
    ]
    for args, want_code, text in cases:
        code, _, err = cli("beneath", "compare", *args)
        assert code == want_code and text in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o" / "pairs.csv").exists()


def test_ray_engine_on_the_running_head(cli, pairs_csv, tmp_path, _isolated_catalog):
    pytest.importorskip("ray")
    address = os.environ.get("ARTLENS_TEST_RAY_ADDRESS")
    if not address:
        if os.environ.get("ARTLENS_REQUIRE_SERVICES") == "1":
            pytest.fail("ARTLENS_TEST_RAY_ADDRESS is not set but ARTLENS_REQUIRE_SERVICES=1")
        pytest.skip("no Ray head: set ARTLENS_TEST_RAY_ADDRESS (eval \"$(bash .ci/services.sh start)\")")
    out = tmp_path / "out"
    code, stdout, err = cli("beneath", "compare", "--pairs", pairs_csv, "--out", out, "--engine", "ray",
                            "--ray-address", address, "--workers", "2")
    assert code == 0, err
    assert "2 new" in stdout
    check_complete(out, _isolated_catalog)
    code, stdout, _ = cli("beneath", "compare", "--pairs", pairs_csv, "--out", out)
    assert code == 0 and "0 new" in stdout  # the same keys whatever the engine
