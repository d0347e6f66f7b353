"""Kill ``artlens collect met`` with SIGKILL halfway, run it again: every good item exactly once, every bad one
in skipped.csv with its reason; a third run reports 0 new."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from collect_helpers import read_csv

from artlens.collect.testing import ReplayServer, ReplaySite, make_image

SRC = Path(__file__).resolve().parents[2] / "src"
N = 40
BAD = {7: "HTTP 404 (not found)", 19: "corrupt image", 31: "duplicate image of met:30"}


def _cmd(base_url: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "artlens.cli.main", "collect", "met", "--base-url", base_url, "--out", str(out),
            "--rate", "40", "--backoff", "0.01", "--json"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    return env


def test_kill_and_resume(tmp_path: Path) -> None:
    site = ReplaySite(met_count=N)
    site.fault("/public/collection/v1/objects/7", "404", times=None)
    site.fault("/public/collection/v1/objects/12", "500", times=1)
    site.fault("/public/collection/v1/objects/25", "429", times=1, retry_after="1")
    site.fault("/img/met-19.jpg", "corrupt", times=None)
    site.images["/img/met-31.jpg"] = make_image("/img/met-30.jpg")
    out = tmp_path / "coll"
    with ReplayServer(site) as server:
        proc = subprocess.Popen(_cmd(server.base_url, out), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        labels = out / "labels.csv"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if labels.exists() and len(labels.read_text().splitlines()) > 12:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        first = len(read_csv(labels))
        assert 0 < first < N - len(BAD)

        done = subprocess.run(_cmd(server.base_url, out), env=_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        res = json.loads(done.stdout)
        assert res["total"] == N - len(BAD) and res["already_done"] >= first

        again = subprocess.run(_cmd(server.base_url, out), env=_env(), capture_output=True, text=True, timeout=120)
        res3 = json.loads(again.stdout)
        assert again.returncode == 0 and res3["new"] == 0 and res3["already_done"] == N

    rows = read_csv(out / "labels.csv")
    ids = [int(r["source_id"]) for r in rows]
    assert sorted(ids) == sorted(set(range(1, N + 1)) - set(BAD))  # every good item exactly once
    assert len({r["sha256"] for r in rows}) == len(rows)
    files = sorted(p.name for p in (out / "images").iterdir())
    assert files == sorted(f"met-{i}.jpg" for i in ids)  # no stray or partial files
    skipped = {int(r["source_id"]): r["reason"] for r in read_csv(out / "skipped.csv")}
    assert set(skipped) == set(BAD)
    for i, reason in BAD.items():
        assert skipped[i].startswith(reason)
