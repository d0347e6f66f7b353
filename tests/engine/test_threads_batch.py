"""``artlens threads count DIR_OR_CSV``: many plates on the batch engine, resumable, with failures set aside.

Plates are tiny (2 x 2 cm at 100 px/cm) so the whole file runs in well under a minute on 2 cores."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from artlens.synth import make_plate, write_plate_tiff

N_PLATES = 3


@pytest.fixture(scope="module")
def plates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plates")
    for k in range(N_PLATES):
        p = make_plate(height_cm=2.0, width_cm=2.0, px_per_cm=100, horizontal_density=11.0 + k,
                       vertical_density=14.0, seed=k)
        write_plate_tiff(folder / f"p{k}.tif", p)
    (folder / "corrupt.tif").write_bytes(b"II*\x00 this is not a TIFF")
    return folder


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def catalog_analyses(db: Path) -> list[dict]:
    from artlens.catalog import Catalog

    with Catalog(db) as cat:
        return cat.analyses(method="threads.spectral")


def check_complete(out: Path, db: Path) -> None:
    """Every good plate exactly once in plates.csv and in the catalog; the corrupt one in skipped.csv."""
    rows = read_csv(out / "plates.csv")
    assert sorted(r["plate"] for r in rows) == [f"p{k}" for k in range(N_PLATES)]
    for k, r in enumerate(sorted(rows, key=lambda r: r["plate"])):
        assert r["status"] == "ok" and r["method"] == "spectral" and len(r["sha256"]) == 64
        assert abs(float(r["horizontal_threads_per_cm"]) - (11.0 + k)) < 0.3
        assert abs(float(r["vertical_threads_per_cm"]) - 14.0) < 0.3
        assert r["check"] == ""  # clean synthetic plates: nothing to look at again
        summary = json.loads((out / r["plate"] / "summary.json").read_text())  # what the single-plate command writes
        assert summary["horizontal"]["threads_per_cm"]["mean"] == pytest.approx(float(r["horizontal_threads_per_cm"]))
        assert (out / r["plate"] / "report.html").is_file() and (out / r["plate"] / "windows.csv").is_file()
    skipped = read_csv(out / "skipped.csv")
    assert [s["plate"] for s in skipped] == ["corrupt"] and "TIF" in skipped[0]["reason"]
    analyses = catalog_analyses(db)
    assert sorted(Path(a["image_path"]).name for a in analyses) == [f"p{k}.tif" for k in range(N_PLATES)]


def test_folder_then_rerun_then_lost_row(cli, plates, tmp_path, _isolated_catalog):
    out = tmp_path / "out"
    before = {p.name: p.read_bytes() for p in plates.iterdir()}
    code, stdout, err = cli("threads", "count", plates, "--out", out)
    assert code == 0, err
    assert f"{N_PLATES + 1} plates: {N_PLATES} new, 0 done before, 1 skipped" in stdout
    assert "corrupt: skipped:" in err
    check_complete(out, _isolated_catalog)
    assert {p.name: p.read_bytes() for p in plates.iterdir()} == before  # inputs never written

    code, stdout, _ = cli("threads", "count", plates, "--out", out)
    assert code == 0 and "0 new" in stdout and f"{N_PLATES} done before" in stdout
    check_complete(out, _isolated_catalog)

    # a kill between a plate's catalog record and its plates.csv row: the plate is redone, recorded once
    rows = read_csv(out / "plates.csv")
    with (out / "plates.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[1:])
    code, stdout, _ = cli("threads", "count", plates, "--out", out)
    assert code == 0 and "1 new" in stdout
    check_complete(out, _isolated_catalog)


def test_csv_manifest_with_resolution(cli, plates, tmp_path):
    manifest = tmp_path / "plates.csv"
    manifest.write_text("path,px_per_cm\n" + f"{plates / 'p0.tif'},50\n" + "missing.tif,\n")
    out = tmp_path / "out"
    code, stdout, err = cli("threads", "count", manifest, "--out", out, "--band", "3", "20", "--no-catalog")
    assert code == 0, err
    rows = read_csv(out / "plates.csv")
    assert len(rows) == 1 and float(rows[0]["px_per_cm"]) == 50.0  # the manifest's resolution overrides the tags
    assert abs(float(rows[0]["horizontal_threads_per_cm"]) - 5.5) < 0.3  # 11 threads/cm read at half the px/cm
    skipped = read_csv(out / "skipped.csv")
    assert skipped[0]["plate"] == "missing" and "no such file" in skipped[0]["reason"]


def test_batch_errors_are_one_line(cli, plates, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("file\nx.tif\n")
    code, _, err = cli("threads", "count", bad, "--out", tmp_path / "o")
    assert code == 7 and "needs a 'path' column" in err and "Traceback" not in err
    code, _, err = cli("threads", "count", plates / "p0.tif", "--out", tmp_path / "o", "--engine", "ray")
    assert code == 7 and "apply to a folder" in err
    code, _, err = cli("threads", "count", plates, "--out", tmp_path / "o", "--engine", "spark")
    assert code == 7 and "--engine must be one of local, ray" in err


def test_device_cuda_is_refused_without_a_gpu(cli, plates, tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for args in ((plates / "p0.tif",), (plates,)):
        code, _, err = cli("threads", "count", *args, "--out", tmp_path / "o", "--method", "cnn", "--device", "cuda")
        assert code == 7 and "no CUDA GPU is available" in err and "Traceback" not in err
    code, _, err = cli("threads", "count", plates / "p0.tif", "--out", tmp_path / "o", "--device", "tpu")
    assert code == 7 and "--device must be auto, cpu, cuda or cuda:N" in err


def test_kill_9_mid_run_then_resume(plates, tmp_path, _isolated_catalog):
    """The driver is killed (SIGKILL) once the first plate has landed; the next run finishes the rest."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "artlens.cli.main", "threads", "count", str(plates), "--out", str(out)]
    env = dict(os.environ, ARTLENS_CATALOG=str(_isolated_catalog))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    try:
        while time.time() < deadline and proc.poll() is None:
            if (out / "plates.csv").is_file() and len(read_csv(out / "plates.csv")) >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    landed = len(read_csv(out / "plates.csv"))
    assert 1 <= landed < N_PLATES
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{N_PLATES - landed} new, {landed} done before" in done.stdout
    check_complete(out, _isolated_catalog)


def test_ray_engine_on_the_running_head(cli, plates, tmp_path, _isolated_catalog):
    pytest.importorskip("ray")
    address = os.environ.get("ARTLENS_TEST_RAY_ADDRESS")
    if not address:
        if os.environ.get("ARTLENS_REQUIRE_SERVICES") == "1":
            pytest.fail("ARTLENS_TEST_RAY_ADDRESS is not set but ARTLENS_REQUIRE_SERVICES=1")
        pytest.skip("no Ray head: set ARTLENS_TEST_RAY_ADDRESS (eval \"$(bash .ci/services.sh start)\")")
    out = tmp_path / "out"
    code, stdout, err = cli("threads", "count", plates, "--out", out, "--engine", "ray", "--ray-address", address,
                            "--workers", "2")
    assert code == 0, err
    assert f"{N_PLATES} new" in stdout, (out / "skipped.csv").read_text()
    check_complete(out, _isolated_catalog)
    code, stdout, _ = cli("threads", "count", plates, "--out", out)  # the same keys whatever the engine
    assert code == 0 and "0 new" in stdout


@pytest.mark.slow
def test_ray_engine_starts_its_own_local_cluster(plates, tmp_path):
    """No --ray-address: a private local cluster (num_cpus = --workers), in its own process as users run it
    (Ray cannot join a second cluster in a process that has shut one down)."""
    pytest.importorskip("ray")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "artlens.cli.main", "threads", "count", str(plates), "--out", str(out),
           "--engine", "ray", "--workers", "2", "--no-catalog"]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{N_PLATES} new" in done.stdout
    assert len(read_csv(out / "plates.csv")) == N_PLATES
    assert time.perf_counter() - t < 90  # about 20 s on 2 shared cores, most of it starting Ray
