"""Collectors (issue 8): throughput, politeness, memory and a fault run against a local replay server.

Nothing here touches the internet: `artlens.collect.testing.ReplayServer` serves synthetic Met records and
64 x 48 px JPEGs on 127.0.0.1, and `artlens collect met` runs against it in a fresh process each time.

  A. polite default (--rate 1): items/s, requests/s, smallest gap between two requests seen by the server;
  B. rate raised (--rate 1000): items/s over 2 000 items;
  C. memory: 10 000 items at --rate 1000, RSS of the collector sampled from /proc, growth from item 1 000
     to item 10 000;
  D. fault run: 300 objects with 404s, 500-then-OK, 429 + Retry-After, corrupt and duplicate images; kill -9
     halfway, resume; every good item exactly once, every bad one in skipped.csv with its reason.

    python benchmarks/bench_collect.py [--polite-items 10] [--fast-items 2000] [--memory-items 10000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from artlens.collect.testing import ReplayServer, ReplaySite, make_image

SRC = Path(__file__).resolve().parents[1] / "src"


def _env(catalog: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env["ARTLENS_CATALOG"] = str(catalog)
    return env


def _cmd(base: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "artlens.cli.main", "collect", "met", "--base-url", base, "--out", str(out),
            "--json", *extra]


def _rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run_collect(base: str, out: Path, tmp: Path, *extra: str, sample: bool = False) -> dict:
    """Run the CLI once; with ``sample``, record (items in labels.csv, RSS kB) every 0.1 s."""
    proc = subprocess.Popen(_cmd(base, out, *extra), env=_env(tmp / "catalog.db"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    samples: list[tuple[int, int]] = []
    labels, offset, lines = out / "labels.csv", 0, 0
    if sample:
        while proc.poll() is None:
            rss = _rss_kb(proc.pid)
            if labels.exists():
                with open(labels, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
                    offset += len(chunk)
                    lines += chunk.count(b"\n")
            if rss is not None:
                samples.append((max(0, lines - 1), rss))
            time.sleep(0.1)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"collect failed ({proc.returncode}): {stderr.strip()}")
    result = json.loads(stdout)
    result["samples"] = samples
    return result


def polite(n: int, tmp: Path) -> dict:
    site = ReplaySite(met_count=n)
    with ReplayServer(site) as server:
        r = run_collect(server.base_url, tmp / "polite", tmp)
    times = [t for t, p, _ in site.requests]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    span = times[-1] - times[0]
    return {"items": r["new"], "requests": len(times), "elapsed_s": r["elapsed_s"],
            "items_per_s": r["new"] / r["elapsed_s"], "requests_per_s": (len(times) - 1) / span,
            "min_gap_s": min(gaps), "user_agent": site.requests[0][2]}


def fast(n: int, tmp: Path, rate: str = "1000") -> dict:
    site = ReplaySite(met_count=n, log_requests=False)
    with ReplayServer(site) as server:
        r = run_collect(server.base_url, tmp / f"fast{n}", tmp, "--rate", rate)
    return {"items": r["new"], "requests": site.count, "elapsed_s": r["elapsed_s"],
            "items_per_s": r["new"] / r["elapsed_s"], "requests_per_s": site.count / r["elapsed_s"]}


def memory(n: int, tmp: Path) -> dict:
    site = ReplaySite(met_count=n, log_requests=False)
    with ReplayServer(site) as server:
        r = run_collect(server.base_url, tmp / "mem", tmp, "--rate", "1000", sample=True)
    s = r["samples"]
    at = lambda k: next((rss for items, rss in s if items >= k), s[-1][1])  # noqa: E731
    early = at(n // 10)
    return {"items": r["new"], "elapsed_s": r["elapsed_s"], "items_per_s": r["new"] / r["elapsed_s"],
            "rss_mb_at_10pct": early / 1024, "rss_mb_at_end": s[-1][1] / 1024,
            "rss_mb_peak": max(x for _, x in s) / 1024,
            "growth_mb": (s[-1][1] - early) / 1024, "samples": len(s)}


def faults(n: int, tmp: Path) -> dict:
    site = ReplaySite(met_count=n)
    bad: dict[int, str] = {}
    for i in range(1, n + 1):
        if i % 25 == 3:
            site.fault(f"/public/collection/v1/objects/{i}", "404", times=None)
            bad[i] = "HTTP 404"
        elif i % 25 == 8:
            site.fault(f"/public/collection/v1/objects/{i}", "500", times=1)
        elif i % 50 == 13:
            site.fault(f"/public/collection/v1/objects/{i}", "429", times=1, retry_after="1")
        elif i % 25 == 17:
            site.fault(f"/img/met-{i}.jpg", "corrupt", times=None)
            bad[i] = "corrupt image"
        elif i % 25 == 21:
            site.images[f"/img/met-{i}.jpg"] = make_image(f"/img/met-{i - 1}.jpg")
            bad[i] = f"duplicate image of met:{i - 1}"
    out = tmp / "faults"
    with ReplayServer(site) as server:
        t0 = time.perf_counter()
        proc = subprocess.Popen(_cmd(server.base_url, out, "--rate", "100", "--backoff", "0.05"),
                                env=_env(tmp / "catalog.db"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        labels = out / "labels.csv"
        while proc.poll() is None:
            if labels.exists() and len(labels.read_text().splitlines()) > (n - len(bad)) // 2:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait()
        killed_at = len(labels.read_text().splitlines()) - 1
        second = run_collect(server.base_url, out, tmp, "--rate", "100", "--backoff", "0.05")
        third = run_collect(server.base_url, out, tmp, "--rate", "100", "--backoff", "0.05")
        wall = time.perf_counter() - t0
    with open(out / "labels.csv", newline="") as fh:
        ids = [int(r["source_id"]) for r in csv.DictReader(fh)]
    with open(out / "skipped.csv", newline="") as fh:
        skipped = {int(r["source_id"]): r["reason"] for r in csv.DictReader(fh)}
    good = set(range(1, n + 1)) - set(bad)
    ok = (sorted(ids) == sorted(good) and set(skipped) == set(bad)
          and all(skipped[i].startswith(reason) for i, reason in bad.items()))
    return {"objects": n, "bad": len(bad), "killed_after_items": killed_at, "resumed_new": second["new"],
            "third_run_new": third["new"], "labels_rows": len(ids), "unique": len(set(ids)),
            "skipped_rows": len(skipped), "every_good_once_every_bad_listed": ok, "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--polite-items", type=int, default=10)
    ap.add_argument("--fast-items", type=int, default=2000)
    ap.add_argument("--memory-items", type=int, default=10000)
    ap.add_argument("--fault-items", type=int, default=300)
    args = ap.parse_args()
    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-collect-") as d:
        tmp = Path(d)
        for name, fn in (("polite", lambda: polite(args.polite_items, tmp)),
                         ("fast", lambda: fast(args.fast_items, tmp)),
                         ("memory", lambda: memory(args.memory_items, tmp)),
                         ("faults", lambda: faults(args.fault_items, tmp))):
            report[name] = fn()
            print(name, json.dumps(report[name], default=lambda x: round(x, 4)), flush=True)
    p, f, m, x = report["polite"], report["fast"], report["memory"], report["faults"]
    print(f"\npolite default: {p['items_per_s']:.2f} items/s, {p['requests_per_s']:.3f} requests/s, "
          f"smallest gap {p['min_gap_s']:.3f} s (target >= 1 s)")
    print(f"rate raised:    {f['items_per_s']:.0f} items/s ({f['requests_per_s']:.0f} requests/s) over {f['items']}")
    print(f"memory:         RSS {m['rss_mb_at_10pct']:.1f} MB at 10 % -> {m['rss_mb_at_end']:.1f} MB after "
          f"{m['items']} items (growth {m['growth_mb']:+.1f} MB)")
    print(f"faults:         {x['every_good_once_every_bad_listed']} ({x['labels_rows']} kept, {x['skipped_rows']} "
          f"skipped, killed after {x['killed_after_items']}, resumed {x['resumed_new']}, third run "
          f"{x['third_run_new']} new)")


if __name__ == "__main__":
    main()
