"""Issue 8's end-to-end story: collect a medium-labelled collection from the (replayed) Met, interrupt
nothing here (resume is tested in test_collect_resume.py), and train a classifier on the result."""

from __future__ import annotations

import json

import pytest
from collect_helpers import FAST, read_csv, run_cli

from artlens.collect.testing import ReplayServer, ReplaySite

pytest.importorskip("torch")

TINY = ["--backbone", "test_efficientnet", "--no-pretrained", "--tiles", "2", "--tiles-per-step", "1",
        "--max-side", "256", "--hidden", "16", "--workers", "0", "--accelerator", "cpu"]


def test_collect_met_then_train_and_evaluate_a_classifier(tmp_path, capsys):
    out = tmp_path / "met"
    with ReplayServer(ReplaySite(met_count=24)) as server:
        code, _, err = run_cli(["collect", "met", "--base-url", server.base_url, "--limit", "24", "--out", out,
                                *FAST], capsys)
    assert code == 0, err
    rows = read_csv(out / "labels.csv")
    assert len(rows) == 24 and {"file", "classification", "medium"} <= set(rows[0])
    assert len({r["classification"] for r in rows}) == 4

    run = tmp_path / "run"
    code, stdout, err = run_cli(["classify", "train", "--data", out / "labels.csv", "--label", "classification",
                                 "--out", run, "--epochs", "1", *TINY, "--json"], capsys)
    assert code == 0, err
    code, stdout, err = run_cli(["classify", "evaluate", "--model", run, "--data", out / "labels.csv", "--label",
                                 "classification", "--json"], capsys)
    assert code == 0, err
    metrics = json.loads(stdout)
    assert metrics["n"] > 0 and 0.0 <= metrics["top1"] <= 1.0 and "macro_f1" in metrics
    image = out / rows[0]["file"]
    code, stdout, err = run_cli(["classify", "predict", image, "--model", run, "--json"], capsys)
    assert code == 0, err
    preds = json.loads(stdout)["predictions"]
    assert abs(sum(p["probability"] for p in preds) - 1.0) < 1e-3 or len(preds) < 4
