"""``canvas match`` at scale: plates described once, density alignment only on prefilter candidates,
pairs.csv keyed and resumable. (The engine itself, local pool and Ray, is tested in test_engine.py.)"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import tifffile

from artlens.canvas.collection import density_prefilter


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    from artlens.train.fabric import synthetic_collection

    folder = tmp_path_factory.mktemp("canvases")
    rolls = {}
    # 3 rolls of unrelated densities (families of 1), 2 canvases each: 15 pairs, 3 same-roll
    for k, c in enumerate(synthetic_collection(3, 2, canvas_cm=3.0, family_size=1, seed=11)):
        name = f"c{k}.tif"
        img = c.image
        img = ((img - img.min()) / max(float(img.max() - img.min()), 1e-12) * 65535).astype("uint16")
        tifffile.imwrite(folder / name, img, resolution=(c.px_per_cm, c.px_per_cm), resolutionunit="CENTIMETER")
        rolls[name] = c.roll
    return folder, rolls


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_prefilter_rule():
    assert density_prefilter((12.0, 15.0), (15.5, 12.2), 0.75) == (True, 0.5)  # the plate turned by 90 degrees
    assert density_prefilter((12.0, 15.0), (12.0, 16.0), 0.75) == (False, 1.0)
    assert density_prefilter((12.0, 15.0), None, 0.75) == (True, None)
    assert density_prefilter((12.0, 15.0), (20.0, 9.0), None)[0] is True


@pytest.mark.slow
def test_match_prefilter_resume_and_rerun(cli, collection, tmp_path):
    folder, rolls = collection
    out = tmp_path / "m"
    args = ("canvas", "match", folder, "--out", out, "--permutations", "19", "--no-catalog")
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert "6 plates, 15 pairs (15 new" in stdout
    first = (out / "pairs.csv").read_text()
    rows = read_rows(out / "pairs.csv")
    assert len(rows) == 15 and len({r["key"] for r in rows}) == 15
    kinds = {r["density_prefilter"] for r in rows}
    assert kinds == {"candidate", "skipped"}  # unrelated rolls are left out, some pairs are aligned
    for r in rows:
        if rolls[r["a"]] == rolls[r["b"]]:
            assert r["density_prefilter"] == "candidate", r  # the prefilter keeps every same-roll pair
        if r["density_prefilter"] == "skipped":
            assert r["density_p_value"] == "" and "prefilter: median densities differ" in r["notes"]
        else:
            assert r["density_p_value"] != ""
    summary = json.loads((out / "clusters.json").read_text())
    assert summary["density_prefilter"]["candidates"] == sum(r["density_prefilter"] == "candidate" for r in rows)

    # a match killed after 10 pairs: the next run scores only the 5 missing ones, to the same file
    with (out / "pairs.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[:10])
    code, stdout, _ = cli(*args)
    assert code == 0 and "(5 new" in stdout
    assert (out / "pairs.csv").read_text() == first
    code, stdout, _ = cli(*args)
    assert code == 0 and "(0 new" in stdout

    # every pair aligned: the candidates score the same; a skipped pair never scores higher than aligned
    code, _, err = cli(*args[:4], tmp_path / "all", *args[5:], "--no-prefilter")
    assert code == 0, err
    full = {(r["a"], r["b"]): r for r in read_rows(tmp_path / "all" / "pairs.csv")}
    for r in rows:
        f = full[r["a"], r["b"]]
        assert f["density_prefilter"] == "off"
        if r["density_prefilter"] == "candidate":
            assert r["same_roll_probability"] == f["same_roll_probability"]
        else:
            assert float(r["same_roll_probability"]) <= float(f["same_roll_probability"])
