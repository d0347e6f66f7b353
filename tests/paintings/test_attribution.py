"""Attribution against reference sets (``artlens verify Q --reference ...``) and the typicality rule of
the shipped verifier: likelihood ratios, ranking JSON, bad input, catalog records, atypical pairs."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")

from artlens.paintings.attribution import ScoreModel, effective_k, loo_scores, reference_self_scores  # noqa: E402


def _painting(path, artist: int, seed: int, size=(200, 170)) -> None:
    """Synthetic 'artists': each its own palette and stroke orientation and frequency."""
    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = artist * 1.1
    freq = 0.08 + 0.07 * artist
    wave = np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy) + rng.uniform(0, 6))
    palette = np.array([[200, 60, 40], [40, 90, 190], [60, 160, 70], [220, 200, 60]], np.float32)[artist % 4]
    img = palette[None, None] * (0.6 + 0.4 * wave[..., None]) + rng.normal(0, 12, (h, w, 3))
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def works(tmp_path_factory):
    root = tmp_path_factory.mktemp("works")
    for a in range(3):
        (root / f"artist{a}").mkdir()
        for k in range(4):
            _painting(root / f"artist{a}" / f"w{k}.png", a, 100 * a + k)
    (root / "questioned").mkdir()
    _painting(root / "questioned" / "q0.png", 1, 999)
    _painting(root / "questioned" / "q1.png", 2, 998)
    return root


def _digest(folder) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_leave_one_out_score_matches_brute_force():
    rng = np.random.default_rng(0)
    sim = rng.uniform(-1, 1, (6, 7))
    for k in (1, 2, 3):
        brute = [np.mean([np.sort(np.delete(row, j))[::-1][:k].mean() for j in range(7)]) for row in sim]
        assert np.allclose(loo_scores(sim, k), brute)
    rr = rng.uniform(-1, 1, (5, 5))
    assert np.allclose(reference_self_scores(rr, 2)[0], np.sort(rr[0, 1:])[::-1][:2].mean())
    assert effective_k(3) == 1 and effective_k(10) == 3


def test_likelihood_ratio_interval_ordering_monotonicity_and_bound():
    rng = np.random.default_rng(1)
    model = ScoreModel.fit(rng.normal(0.6, 0.08, 12), rng.normal(0.3, 0.1, 60), bootstrap=100, seed=0)
    out = [model.likelihood_ratio(s) for s in (0.2, 0.45, 0.6, 0.75)]
    for r in out:
        lo, hi = r["interval"]
        assert lo <= r["likelihood_ratio"] <= hi
        assert r["probability"] == pytest.approx(r["likelihood_ratio"] / (1 + r["likelihood_ratio"]))
    lrs = [r["likelihood_ratio"] for r in out]
    assert lrs == sorted(lrs) and lrs[0] < 1 < lrs[-1]
    # no LR stronger than the sample sizes support: 12 references, 60 impostors
    far = model.likelihood_ratio(5.0)
    assert far["likelihood_ratio"] == pytest.approx(61.0) and far["bounded"]
    assert model.likelihood_ratio(-5.0)["likelihood_ratio"] == pytest.approx(1 / 13)
    # same seed, same interval
    again = ScoreModel.fit(model.same, model.impostor, bootstrap=100, seed=0).likelihood_ratio(0.45)
    assert again["interval"] == out[1]["interval"]


@pytest.mark.slow
def test_cli_ranks_candidates_one_json_line_per_questioned_work(works, cli, tmp_path):
    before = _digest(works)
    refs = [works / f"artist{a}" for a in range(3)]
    db = tmp_path / "cat.db"
    args = ["verify", works / "questioned"]
    for r in refs:
        args += ["--reference", r]
    code, out, err = cli(*args, "--json", "--catalog", db, "--report", tmp_path / "r.html")
    assert code == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["image"] for x in lines] == [str(works / "questioned" / "q0.png"), str(works / "questioned" / "q1.png")]
    for line in lines:
        ranking = line["ranking"]
        assert sorted(c["reference"] for c in ranking) == sorted(str(r) for r in refs)  # as given
        lrs = [c["likelihood_ratio"] for c in ranking]
        assert lrs == sorted(lrs, reverse=True)  # best first
        for c in ranking:
            lo, hi = c["interval"]
            assert lo <= c["likelihood_ratio"] <= hi and 0 <= c["probability"] <= 1
            assert "other references" in c["impostors"] and c["references"] == 4
        assert line["verifier"]["model_checksum"] and line["method"].startswith("mean of the k highest")
    assert (tmp_path / "r.html").stat().st_size > 5000
    assert "likelihood ratio" in (tmp_path / "r.html").read_text()
    assert _digest(works) == before  # inputs untouched

    from artlens.catalog import Catalog

    with Catalog(db) as cat:
        rows = cat.analyses(method="verify.attribution")
    assert len(rows) == 2 and rows[0]["model_checksum"] == lines[0]["verifier"]["model_checksum"]
    assert {r["image_path"] for r in rows} == {x["image"] for x in lines}
    assert rows[0]["summary"]["ranking"][0]["likelihood_ratio"] > 0


def test_cli_single_reference_uses_the_bank_and_says_so(works, cli):
    code, out, err = cli("verify", works / "questioned" / "q0.png", "--reference", works / "artist1", "--json",
                         "--no-catalog")
    assert code == 0, err
    line = json.loads(out)
    (c,) = line["ranking"]
    assert "bank of training works" in c["impostors"] and c["interval"][0] <= c["likelihood_ratio"]
    assert line["typicality"]["status"] in ("typical", "atypical", "outside")
    code, out, err = cli("verify", works / "questioned" / "q0.png", "--reference", works / "artist1", "--impostors",
                         works / "artist0", "--json", "--no-catalog")
    assert code == 0, err
    assert json.loads(out)["ranking"][0]["impostors"] == "--impostors (4 works)"


def test_cli_too_few_references_and_unreadable_input(works, cli, tmp_path):
    few = tmp_path / "few"
    few.mkdir()
    for k in range(2):
        _painting(few / f"w{k}.png", 0, k)
    code, out, err = cli("verify", works / "questioned" / "q0.png", "--reference", few, "--reference",
                         works / "artist0")
    assert code != 0 and "need at least 3" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    code, _, err = cli("verify", bad, "--reference", works / "artist0", "--reference", works / "artist1")
    assert code != 0 and "Traceback" not in err
    code, _, err = cli("verify", works / "questioned" / "q0.png", "--impostors", works / "artist0")
    assert code != 0 and "Traceback" not in err
    unread = tmp_path / "unreadable_impostors"
    unread.mkdir()
    _painting(unread / "ok.png", 0, 0)
    for k in range(2):
        (unread / f"broken{k}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    code, _, err = cli("verify", works / "questioned" / "q0.png", "--reference", works / "artist0", "--impostors",
                       unread)
    assert code == 7 and "error: --impostors: 1 readable works, need at least 3" in err  # the library: `impostors`


def test_atypical_pair_is_flagged_and_moved_towards_one_half(tmp_path, cli):
    from artlens.paintings.verify import load_verifier, verify_pairs

    rng = np.random.default_rng(0)
    grey, noise = tmp_path / "grey.png", tmp_path / "noise.png"
    Image.fromarray(np.full((300, 260, 3), 128, np.uint8)).save(grey)
    Image.fromarray((rng.random((300, 260, 3)) * 255).astype(np.uint8)).save(noise)
    v = load_verifier()
    assert v.bank is not None and v.bank.threshold < v.bank.limit
    (row,) = verify_pairs(v, [(str(grey), str(noise))])
    # a flat grey image and noise are no paintings: far beyond the held-out works' distances
    assert row["typicality"]["status"] == "outside" and row["abstained"]
    assert row["same_artist_probability"] == 0.5 and "outside what this verifier was trained on" in \
        row["typicality"]["reason"]
    # the rule itself: between the thresholds the probability moves linearly towards 0.5
    d = row["typicality"]["distance"]
    v.bank.threshold, v.bank.limit = d - 1.0, d + 1.0
    (half,) = verify_pairs(v, [(str(grey), str(noise))])
    p = half["probability_as_calibrated"]
    assert half["typicality"]["status"] == "atypical" and not half["abstained"]
    assert half["same_artist_probability"] == pytest.approx(0.5 + 0.5 * (p - 0.5))
    code, out, err = cli("verify", grey, noise, "--json", "--no-catalog")
    assert code == 0 and json.loads(out)["abstained"] is True and json.loads(out)["verifier"]["background_bank"]


def test_pair_result_recorded_in_catalog(works, cli, tmp_path):
    db = tmp_path / "c.db"
    a, b = works / "artist0" / "w0.png", works / "artist0" / "w1.png"
    code, out, err = cli("verify", a, b, "--json", "--catalog", db)
    assert code == 0, err
    from artlens.catalog import Catalog

    with Catalog(db) as cat:
        (row,) = cat.analyses(method="verify.pair")
    assert row["summary"]["b"] == str(b) and row["model_checksum"] == json.loads(out)["verifier"]["model_checksum"]
    assert row["parameters"]["verifier"]["background_bank"]["images"] > 0
    code, _, _ = cli("verify", a, b, "--no-catalog", "--catalog", tmp_path / "other.db")
    assert code == 0 and not (tmp_path / "other.db").exists()


@pytest.mark.shared_data
def test_real_paintings_are_typical(shared_data):
    from artlens.paintings.verify import load_verifier, verify_pairs

    folder = shared_data / "paintings" / "shazam_7artists" / "images"
    monet = sorted((folder / "monet").iterdir())[:2]
    rows = verify_pairs(load_verifier(), [(str(monet[0]), str(monet[1]))])
    assert rows[0]["typicality"]["status"] == "typical" and not rows[0]["abstained"]
