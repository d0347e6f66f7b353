"""``artlens paintings verify --pairs CSV --out OUT``: many painting pairs on the batch engine, resumable, with
failures set aside, centred on a background computed once in the driver.

The verifier is a fresh centring metric head on timm's tiny random ``test_efficientnet`` backbone, saved with its
backbone (so every worker loads the same weights); the images are 22 small synthetic paintings, enough for the
automatic background (20 or more)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sigkill import kill_after

pytest.importorskip("torch")

N_IMAGES = 22
N_GOOD = 11  # pairs of readable images


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from artlens.paintings.verify import Verifier, VerifierConfig, save_verifier

    torch.manual_seed(0)
    cfg = VerifierConfig(backbone="test_efficientnet", pretrained_backbone=False, n_patches=1, max_side=128,
                         hidden=16, embed_dim=8, centre=True, calibration={"a": 4.0, "b": -0.5})
    v = Verifier(cfg)
    folder = tmp_path_factory.mktemp("verifier") / "model"
    save_verifier(v.head, cfg, folder, backbone=v.extractor.model)
    return folder


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("paintings")
    rng = np.random.default_rng(0)
    for k in range(N_IMAGES):
        base = np.zeros((72, 88, 3), np.float32)
        base[..., k % 3] = 60 + 8 * k
        img = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / f"p{k:02d}.png")
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8 truncated")
    lines = [f"p{2 * k:02d}.png,p{2 * k + 1:02d}.png" for k in range(N_GOOD)]
    lines += ["p00.png,corrupt.jpg", "p01.png,gone.png"]
    path = d / "pairs.csv"
    path.write_text("a,b\n" + "\n".join(lines) + "\n")
    return path


def single_path(cli, model: Path, pairs_csv: Path, *extra: str) -> dict[tuple[str, str], float]:
    """What ``verify --pairs`` without --out (one process, today's path) says for each readable pair."""
    code, out, err = cli("paintings", "verify", "--pairs", pairs_csv, "--model", model, "--json", "--no-catalog",
                         *extra)
    assert code == 0, err
    rows = [json.loads(x) for x in out.splitlines()]
    return {(Path(r["a"]).name, Path(r["b"]).name): r["same_artist_probability"] for r in rows if "error" not in r}


def probabilities(out: Path) -> dict[tuple[str, str], str]:
    return {(Path(r["a"]).name, Path(r["b"]).name): r["same_artist_probability"] for r in read_csv(out / "pairs.csv")}


def check_complete(out: Path, db: Path | None, want: dict[tuple[str, str], float]) -> None:
    rows = read_csv(out / "pairs.csv")
    got = probabilities(out)
    assert len(rows) == len(got) == N_GOOD and set(got) == set(want)
    for pair, p in got.items():
        assert float(p) == pytest.approx(want[pair], abs=1e-5)
    for r in rows:
        assert len(r["a_sha256"]) == 64 and len(r["b_sha256"]) == 64 and len(r["model_checksum"]) == 64
        assert len(r["centring"]) == 64 and r["artlens_version"] and r["status"] == "ok"
        assert json.loads(r["parameters"])["kind"] == "metric"
    skipped = read_csv(out / "skipped.csv")
    assert sorted(Path(s["b"]).name for s in skipped) == ["corrupt.jpg", "gone.png"]
    assert all(s["reason"] for s in skipped)
    if db is not None:
        from artlens.catalog import Catalog

        with Catalog(db) as cat:
            analyses = cat.analyses(method="verify.pair")
        assert sorted(a["summary"]["item_key"] for a in analyses) == sorted(r["key"] for r in rows)


def test_pairs_out_then_rerun_then_torn_row(cli, model, pairs_csv, tmp_path, _isolated_catalog):
    out = tmp_path / "out"
    want = single_path(cli, model, pairs_csv)
    code, stdout, err = cli("paintings", "verify", "--pairs", pairs_csv, "--model", model, "--out", out)
    assert code == 0, err
    assert f"{N_GOOD + 2} pairs: {N_GOOD} new, 0 done before, 2 skipped" in stdout
    assert f"features centred on {N_IMAGES} images" in stdout and "corrupt.jpg: skipped:" in err
    assert (out / "background.npz").is_file()
    check_complete(out, _isolated_catalog, want)
    uninterrupted = probabilities(out)

    code, stdout, _ = cli("paintings", "verify", "--pairs", pairs_csv, "--model", model, "--out", out)
    assert code == 0 and "0 new" in stdout and f"{N_GOOD} done before" in stdout and "2 skipped before" in stdout
    assert "kept in background.npz" in stdout

    # a kill after two rows, while the third was being written: the rest is redone, centred on the same means
    # (background.npz), so the probabilities are exactly those of the uninterrupted run; none recorded twice
    text = (out / "pairs.csv").read_text().splitlines(keepends=True)
    (out / "pairs.csv").write_text("".join(text[:3]) + text[3][: len(text[3]) // 2])
    code, stdout, err = cli("paintings", "verify", "--pairs", pairs_csv, "--model", model, "--out", out)
    assert code == 0, err
    assert f"{N_GOOD - 2} new, 2 done before" in stdout
    check_complete(out, _isolated_catalog, want)
    assert probabilities(out) == uninterrupted  # the same strings: bit for bit

    # the background is part of the key: without adaptation every pair is new, with other probabilities
    code, stdout, _ = cli("paintings", "verify", "--pairs", pairs_csv, "--model", model, "--out", out, "--no-adapt",
                          "--no-catalog", "--json")
    report = json.loads(stdout)
    assert code == 0 and report["new"] == N_GOOD and report["centred_on"] == "training collection"
    plain = single_path(cli, model, pairs_csv, "--no-adapt")
    rows = read_csv(out / "pairs.csv")
    assert len(rows) == 2 * N_GOOD
    assert len({r["centring"] for r in rows}) == 2
    assert any(abs(plain[k] - want[k]) > 1e-6 for k in want)


def test_kill_9_mid_run_then_resume(cli, model, pairs_csv, tmp_path, _isolated_catalog):
    """The driver is SIGKILLed right after its third pairs.csv row (the background already in background.npz);
    the next run scores only the other pairs, centred on the same means, so the rows are those of an
    uninterrupted run; a third run has nothing to do."""
    full = tmp_path / "full"
    code, _, err = cli("paintings", "verify", "--pairs", pairs_csv, "--model", model, "--out", full, "--no-catalog")
    assert code == 0, err
    want = {k: float(v) for k, v in probabilities(full).items()}
    out = tmp_path / "out"
    args = ("paintings", "verify", "--pairs", pairs_csv, "--model", model, "--out", out)
    kill_after(args, writer="artlens.engine:ResultLedger.append", marker="/pairs.csv", after=3,
               catalog=_isolated_catalog, log=tmp_path / "killed.log")
    assert len(read_csv(out / "pairs.csv")) == 3 and (out / "background.npz").is_file()
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert f"{N_GOOD - 3} new, 3 done before" in stdout and "kept in background.npz" in stdout
    check_complete(out, _isolated_catalog, want)  # every pair once in pairs.csv and in the catalog
    assert read_csv(out / "pairs.csv") == read_csv(full / "pairs.csv")
    code, stdout, _ = cli(*args)
    assert code == 0 and f"0 new, {N_GOOD} done before" in stdout


def test_each_image_extracted_once_in_batches_and_kept(cli, model, pairs_csv, tmp_path, monkeypatch):
    """Issue 20: the driver extracts each distinct image once, in batches (not once for the background and again,
    one image per call, in the worker), keeps the features in OUT/features/, and a resumed run (or one that has
    lost background.npz) extracts nothing; the probabilities are the one-process path's."""
    from artlens.cli.common import read_pairs_csv
    from artlens.paintings.features import FeatureExtractor
    from artlens.paintings.verify_batch import verify_pairs_batch

    want = single_path(cli, model, pairs_csv)
    extracted: list[int] = []  # images read per extract() call (the unreadable ones not counted)
    original = FeatureExtractor.extract

    def counting(self, paths, progress=None):  # noqa: ANN001, ANN202
        f = original(self, paths, progress)
        if f.paths:
            extracted.append(len(f.paths))
        return f

    monkeypatch.setattr(FeatureExtractor, "extract", counting)
    pairs = read_pairs_csv(pairs_csv)
    out = tmp_path / "out"
    report = verify_pairs_batch(pairs, out, model, use_catalog=False)
    assert report.new == N_GOOD and isinstance(report.centred_on, dict)
    assert sum(extracted) == N_IMAGES and max(extracted) > 1, extracted  # each image once, in batches
    assert list((out / "features").glob("part-*.npz"))
    got = probabilities(out)
    for pair, p in got.items():
        assert float(p) == pytest.approx(want[pair], abs=1e-6)

    extracted.clear()  # a torn run: the rest is scored from the kept features, bit for bit
    text = (out / "pairs.csv").read_text().splitlines(keepends=True)
    (out / "pairs.csv").write_text("".join(text[:3]) + text[3][: len(text[3]) // 2])
    report = verify_pairs_batch(pairs, out, model, use_catalog=False)
    assert report.new == N_GOOD - 2 and report.background_reused and extracted == []
    assert probabilities(out) == got

    extracted.clear()  # background.npz lost: the centring is computed again from the kept features, the same
    (out / "background.npz").unlink()
    (out / "pairs.csv").unlink()
    report = verify_pairs_batch(pairs, out, model, use_catalog=False)
    assert report.new == N_GOOD and not report.background_reused and extracted == []
    assert probabilities(out) == got


def test_two_local_workers_give_the_same_rows(cli, model, pairs_csv, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    code, _, err = cli("paintings", "verify", "--pairs", pairs_csv, "--model", model, "--out", one, "--no-catalog")
    assert code == 0, err
    code, stdout, err = cli("paintings", "verify", "--pairs", pairs_csv, "--model", model, "--out", two,
                            "--workers", "2", "--no-catalog")
    assert code == 0, err
    assert f"{N_GOOD} new" in stdout
    # the pool's processes run torch on their share of the cores (1 thread here, 2 in this process): the same
    # rows, the scores equal to float rounding rather than bit for bit
    numbers = ("same_artist_probability", "score", "probability_as_calibrated")
    strip = ("artlens_version", *numbers)
    rows_one, rows_two = read_csv(one / "pairs.csv"), read_csv(two / "pairs.csv")
    assert [{k: v for k, v in r.items() if k not in strip} for r in rows_one] == \
        [{k: v for k, v in r.items() if k not in strip} for r in rows_two]
    for r1, r2 in zip(rows_one, rows_two, strict=True):
        assert [float(r2[k]) for k in numbers] == pytest.approx([float(r1[k]) for k in numbers], abs=1e-6)


def test_an_explicit_background_and_retry_skipped(cli, model, pairs_csv, tmp_path):
    import shutil

    src = tmp_path / "src"
    shutil.copytree(pairs_csv.parent, src)
    out = tmp_path / "out"
    want = single_path(cli, model, src / "pairs.csv", "--background", src)
    code, stdout, err = cli("paintings", "verify", "--pairs", src / "pairs.csv", "--model", model, "--out", out,
                            "--background", src, "--no-catalog", "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["centred_on"]["background"]["images"] == N_IMAGES and report["skipped"] == 2
    for pair, p in probabilities(out).items():
        assert float(p) == pytest.approx(want[pair], abs=1e-5)
    code, stdout, _ = cli("paintings", "verify", "--pairs", src / "pairs.csv", "--model", model, "--out", out,
                          "--background", src, "--no-catalog", "--retry-skipped")
    assert code == 0 and "0 new" in stdout and "2 skipped" in stdout
    shutil.copy(src / "p05.png", src / "gone.png")  # the missing image appears: that pair is done now
    # (the background folder now holds one more image: other means, so every pair is new)
    code, stdout, _ = cli("paintings", "verify", "--pairs", src / "pairs.csv", "--model", model, "--out", out,
                          "--no-catalog")
    assert code == 0 and f"{N_GOOD + 1} new" in stdout and "1 skipped" in stdout


def test_verify_batch_errors_are_one_line(cli, model, pairs_csv, tmp_path):
    few = tmp_path / "few"
    few.mkdir()
    for k in range(3):
        Image.new("RGB", (40, 30), (k * 40, 10, 10)).save(few / f"x{k}.png")
    a = pairs_csv.parent / "p00.png"
    cases = [
        (("--pairs", pairs_csv, "--engine", "ray"), 7, "apply to --pairs PAIRS.csv --out OUT"),
        ((a, a, "--out", tmp_path / "o"), 7, "apply to --pairs PAIRS.csv --out OUT"),
        (("--pairs", pairs_csv, "--out", tmp_path / "o", "--report", tmp_path / "r.html"), 7, "do not apply"),
        (("--pairs", pairs_csv, "--out", tmp_path / "o", "--engine", "spark"), 7, "--engine must be one of local"),
        (("--pairs", pairs_csv, "--out", tmp_path / "o", "--workers", "0"), 7, "workers must be at least 1"),
        (("--pairs", pairs_csv, "--out", a), 7, "not a folder"),
        (("--pairs", pairs_csv, "--out", tmp_path / "o", "--background", few), 7, "at least 20"),
        (("--pairs", tmp_path / "nopairs.csv", "--out", tmp_path / "o"), 3, "no such file"),
    ]
    for args, want_code, text in cases:
        code, _, err = cli("paintings", "verify", *args, "--model", model)
        assert code == want_code and text in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o" / "pairs.csv").exists()


def test_device_cuda_is_refused_without_a_gpu(cli, model, pairs_csv, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = cli("paintings", "verify", "--pairs", pairs_csv, "--model", model, "--out", tmp_path / "o",
                       "--device", "cuda")
    assert code == 7 and "no CUDA GPU is available" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_ray_engine_on_the_running_head(cli, model, pairs_csv, tmp_path, _isolated_catalog):
    pytest.importorskip("ray")
    address = os.environ.get("ARTLENS_TEST_RAY_ADDRESS")
    if not address:
        if os.environ.get("ARTLENS_REQUIRE_SERVICES") == "1":
            pytest.fail("ARTLENS_TEST_RAY_ADDRESS is not set but ARTLENS_REQUIRE_SERVICES=1")
        pytest.skip("no Ray head: set ARTLENS_TEST_RAY_ADDRESS (eval \"$(bash .ci/services.sh start)\")")
    local = tmp_path / "local"
    code, _, err = cli("paintings", "verify", "--pairs", pairs_csv, "--model", model, "--out", local, "--no-catalog")
    assert code == 0, err
    out = tmp_path / "out"
    code, stdout, err = cli("paintings", "verify", "--pairs", pairs_csv, "--model", model, "--out", out,
                            "--engine", "ray", "--ray-address", address, "--workers", "2")
    assert code == 0, err
    assert f"{N_GOOD} new" in stdout
    check_complete(out, _isolated_catalog, {k: float(v) for k, v in probabilities(local).items()})
    # (Ray actors run torch with another thread count than this process: equal to float rounding, not bit for bit)
    code, stdout, _ = cli("paintings", "verify", "--pairs", pairs_csv, "--model", model, "--out", out)
    assert code == 0 and "0 new" in stdout  # the same keys whatever the engine
