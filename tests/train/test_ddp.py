"""Every Lightning trainer under two-process DDP on the CPU (gloo): ``accelerator="cpu"``, ``devices=2``,
``strategy="ddp"``, a few steps on tiny data.

Lightning's ``ddp`` starts the command again for rank 1 (``LOCAL_RANK=1``), so each run goes through a
script in a subprocess. The script notes every process that starts and every model file written
(``artlens.models.checkpoint.write_atomic``, which every model save goes through) in a log; the tests
check that both ranks ran, that only rank 0 wrote the model folder and wrote each file once, that the
command printed its result once, that the weights load and the metrics are finite.

The yarn fabric model (``canvas train --method yarn``) is not a Lightning model: it fits a logistic
regression on yarn statistics with ``--workers`` processes, and takes no ``--devices``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch.distributed")

SRC = Path(__file__).resolve().parents[2] / "src"
TINY_BACKBONE = "test_efficientnet"  # timm's tiny test model: random weights, no download
DDP = ["--accelerator", "cpu", "--devices", "2"]

PRELUDE = """
import json, os, sys
LOG = os.environ["ARTLENS_DDP_LOG"]
RANK = os.environ.get("LOCAL_RANK", "0")
def note(line):
    with open(LOG, "a") as fh:
        fh.write(f"{RANK} {line}\\n")
note("start")
import artlens.models.checkpoint as _ck
_write_atomic = _ck.write_atomic
def _noted_write(path, data):
    note(f"write {os.path.abspath(path)}")
    return _write_atomic(path, data)
_ck.write_atomic = _noted_write
from artlens.devices import is_rank_zero
"""

CLI = "from artlens.cli.main import main\nmain(sys.argv[1:])\n"


def run_ddp(tmp_path: Path, body: str, *args: object, name: str = "ddp") -> tuple[dict, list[tuple[str, str]]]:
    """Run PRELUDE + ``body`` as a script with ``args``; returns (the JSON it printed, the log's lines)."""
    script = tmp_path / f"{name}.py"
    script.write_text(PRELUDE + body)
    log = tmp_path / f"{name}.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(SRC), "ARTLENS_DDP_LOG": str(log), "OMP_NUM_THREADS": "1"}
    for key in ("LOCAL_RANK", "RANK", "NODE_RANK", "WORLD_SIZE"):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, str(script), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, f"the result should be printed once (by rank 0), got: {proc.stdout[-2000:]}"
    entries = [tuple(ln.split(" ", 1)) for ln in log.read_text().splitlines()]
    return json.loads(lines[0]), entries  # type: ignore[misc]


def check_ranks(entries: list[tuple[str, str]], model: Path) -> list[str]:
    """Both ranks started once; every model file was written by rank 0, once; returns the files written."""
    starts = sorted(rank for rank, what in entries if what == "start")
    assert starts == ["0", "1"], f"expected one process per rank, got {starts}"
    writes = [(rank, what.removeprefix("write ")) for rank, what in entries if what.startswith("write ")]
    assert writes, "no model file was written"
    assert {rank for rank, _ in writes} == {"0"}, f"a further rank wrote model files: {writes}"
    paths = [p for _, p in writes]
    assert len(paths) == len(set(paths)), f"a file was written twice: {paths}"
    assert all(Path(p).resolve().is_relative_to(model.resolve()) for p in paths), paths
    return paths


def check_run(run: Path) -> None:
    """A run folder after DDP: no temporary feature cache left, one config, a resumable last.ckpt."""
    assert not list(run.rglob("*.tmp.npz")) and not list(run.rglob("*.tmp"))
    assert json.loads((run / "config.json").read_text())["config"]
    assert (run / "last.ckpt").is_file() or list(run.glob("stage-*/last.ckpt"))


def finite(values: dict) -> None:
    nums = {k: v for k, v in values.items() if isinstance(v, float | int) and not isinstance(v, bool)}
    assert nums and all(math.isfinite(v) for v in nums.values()), values


def _painting(path: Path, hue: int, seed: int, size: tuple[int, int] = (96, 80)) -> None:
    rng = np.random.default_rng(seed)
    base = np.zeros((size[1], size[0], 3), np.float32)
    base[..., hue % 3] = 180
    stripes = (np.sin(np.arange(size[0]) / (2 + hue)) * 40)[None, :, None]
    Image.fromarray(np.clip(base + stripes + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)).save(path)


def _artists(root: Path, artists: int, per_artist: int) -> Path:
    for a in range(artists):
        (root / f"artist{a}").mkdir(parents=True)
        for k in range(per_artist):
            _painting(root / f"artist{a}" / f"p{k}.png", a, 10 * a + k)
    return root


@pytest.mark.slow
def test_threads_train_under_ddp_then_resume(tmp_path):
    run = tmp_path / "run"
    args = ["threads", "train", "--out", run, "--synthetic", "4", "--model", "regvgg_test", "--input-px-per-cm", "40",
            "--epochs", "1", "--batch-size", "8", *DDP, "--json"]
    result, log = run_ddp(tmp_path, CLI, *args)
    written = check_ranks(log, run / "model")
    assert any(p.endswith("model.safetensors") for p in written)
    check_run(run)
    m = result["metrics"]
    assert m["epochs"] == 1 and m["global_step"] > 0
    finite({k: v for k, v in m.items() if v is not None})
    from artlens.canvas.threads.cnn import CNNCounter

    assert CNNCounter.load(run / "model") is not None

    # --resume: rank 1 reads the run's config back instead of refusing the folder; the model is written once again
    result, log = run_ddp(tmp_path, CLI, "threads", "train", "--out", run, "--resume", *DDP, "--json",
                          name="resume")
    check_ranks(log, run / "model")
    assert result["metrics"]["epochs"] >= 1 and list(run.glob("metrics.attempt-*.csv"))


@pytest.mark.slow
def test_canvas_train_siamese_under_ddp(tmp_path):
    run = tmp_path / "run"
    result, log = run_ddp(tmp_path, CLI, "canvas", "train", "--out", run, "--synthetic", "4", "--epochs", "1",
                          "--model", "siamese_fabric_test", "--input-px-per-cm", "24", "--canvases-per-roll", "2",
                          "--canvas-cm", "2.5", "--patches-per-canvas", "8", "--pairs-per-epoch", "64",
                          "--calib-patches", "6", "--batch-size", "16", *DDP, "--json")
    check_ranks(log, run / "model")
    check_run(run)
    assert result["metrics"]["global_step"] > 0 and (run / "calibration.csv").is_file()
    finite({k: v for k, v in result["metrics"].items() if v is not None})
    from artlens.canvas.fabric import FabricModel

    assert FabricModel.load(run / "model") is not None


@pytest.mark.slow
def test_beneath_train_under_ddp(tmp_path):
    import warnings

    import artlens.train.beneath as tb

    cfg = tb.BeneathTrainConfig(size=64, region_px=24.0, model="beneath_gcn_test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train, val = tb.prepare_scenes(cfg, 4, 0), tb.prepare_scenes(cfg, 2, 99)
    run = tmp_path / "run"
    tb._save_records(run / "data" / "train.npz", train)  # prepared graphs, as a run caches them
    tb._save_records(run / "data" / "val.npz", val)
    result, log = run_ddp(tmp_path, CLI, "beneath", "train", "--out", run, "--synthetic", 4, "--val-synthetic", 2,
                          "--size", 64, "--region-px", 24, "--model", "beneath_gcn_test", "--epochs", 1,
                          "--batch-size", 2, *DDP, "--json")
    check_ranks(log, run / "model")
    check_run(run)
    m = result["metrics"]
    assert m["global_step"] == 1 and m["val_loss"] is not None  # 4 scenes, batches of 2, split over 2 ranks
    finite({k: v for k, v in m.items() if v is not None})
    from artlens.beneath.compare import load_beneath_model

    assert load_beneath_model(run / "model", "gcn")[0] is not None


@pytest.mark.slow
def test_train_encoder_under_ddp(tmp_path):
    data = _artists(tmp_path / "c", 3, 4)
    run = tmp_path / "run"
    result, log = run_ddp(tmp_path, CLI, "paintings", "train-encoder", "--data", data, "--kind", "swae", "--out", run,
                          "--epochs", "1", "--code-dim", "6", "--hidden", "32", "--backbone", TINY_BACKBONE,
                          "--random-backbone", "--patches", "1", *DDP, "--json")
    check_ranks(log, run / "model")
    check_run(run)
    assert result["kind"] == "swae" and result["images"] == 12
    finite({k: v for k, v in result["evaluation"].items() if k.startswith("val_")})
    from artlens.paintings.encoders import load_autoencoder

    assert load_autoencoder(run / "model") is not None


VERIFIER = """
from artlens.train.verifier import VerifierTrainConfig, train_verifier
cfg = VerifierTrainConfig(data=sys.argv[1], label_column="label",
                          model={"backbone": "test_efficientnet", "pretrained_backbone": False, "n_patches": 1,
                                 "max_side": 128, "hidden": 32, "embed_dim": 16},
                          batch_size=16, pairs_per_epoch=64, val_pairs=40, val_fraction=0.25, test_fraction=0.25,
                          unseen_artists=1, val_artists=1, workers=0,
                          trainer={"max_epochs": 1, "accelerator": "cpu", "devices": 2, "strategy": "ddp"})
result = train_verifier(cfg, sys.argv[2])
if is_rank_zero():
    print(json.dumps(result, default=float))
"""


@pytest.mark.slow
def test_train_verifier_under_ddp(tmp_path):
    data = _artists(tmp_path / "c", 5, 8)
    run = tmp_path / "run"
    result, log = run_ddp(tmp_path, VERIFIER, data, run)
    check_ranks(log, run / "model")
    check_run(run)
    finite({k: v for k, v in result["evaluation"]["val"].items() if v is not None})
    from artlens.paintings.verify import load_verifier

    assert load_verifier(run / "model") is not None


CLASSIFIER = """
from artlens.train.classify import ClassifierTrainConfig, Stage, train_classifier
cfg = ClassifierTrainConfig(data=sys.argv[1], label_column="label",
                            model={"backbone": "test_efficientnet", "pretrained_backbone": False, "n_tiles": 2,
                                   "max_side": 256, "hidden": 16},
                            tiles_per_step=1, batch_size=4, image_batch_size=3, workers=0, warmup_epochs=0,
                            stages=[Stage(unfreeze=0, epochs=1, lr=1e-3), Stage(unfreeze=1, epochs=1, lr=1e-4)],
                            trainer={"accelerator": "cpu", "devices": 2, "strategy": "ddp"})
result = train_classifier(cfg, sys.argv[2], report=None)
if is_rank_zero():
    print(json.dumps(result, default=float))
"""


@pytest.mark.slow
def test_classify_train_under_ddp_both_stage_kinds(tmp_path):
    data = _artists(tmp_path / "c", 3, 6)
    run = tmp_path / "run"
    result, log = run_ddp(tmp_path, CLASSIFIER, data, run)
    check_ranks(log, run / "model")
    check_run(run)
    assert [s["stage"] for s in result["stages"]] == [1, 2]
    for s in result["stages"]:
        assert s["best_val_loss"] is not None and math.isfinite(s["best_val_loss"])
        assert (run / f"stage-{s['stage']}" / "done.json").is_file()
    finite({k: v for k, v in result["evaluation"]["val"].items() if isinstance(v, float)})
    from artlens.paintings.classify import load_classifier

    assert load_classifier(run / "model") is not None
