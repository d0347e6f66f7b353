"""Web app (issue 19): deep-zoom tile latency, first tile after ingest, memory, collection page.

Starts the real server (``artlens serve`` in a subprocess on a free loopback port, no job workers),
uploads a synthetic 10 000 x 10 000 px 16-bit plate (uncompressed TIFF, 200 px/cm) through the API, then:

- first tile: the overview tile the viewer asks for first (the whole plate in about 1 000 px) and the
  first full-resolution tile, each timed from the end of the upload;
- panning: ``--clients`` concurrent clients (threads, one HTTP connection each) pan over the plate at
  random zoom levels, each viewport 5 x 4 tiles, moving one tile per step (``--steps`` steps); every
  tile request is timed (made on demand the first time a client asks for it, else cached);
- cached tiles: the same tiles again ``--cached-rounds`` times from ``--clients`` concurrent clients
  (``--client processes``, the default: a process and a keep-alive connection each, started together;
  ``--client httpx``: the earlier harness of threads, see :func:`fetch_all`), with the server's CPU time
  per request (from /proc), the load generator's, and which HTTP parser / event loop the server runs;
- cached tiles once more from a single client (no queueing behind other clients);
- the server's resident memory (VmHWM, peak RSS) from /proc;
- the collection page with ``--collection`` images catalogued (server time of ``GET /``, page 1).

    python benchmarks/bench_web_tiles.py [--clients 20] [--steps 8] [--collection 10000] [--cached-rounds 3]
        [--client processes|httpx] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np


def make_plate(path: Path, side: int = 10_000, px_per_cm: float = 200.0) -> Path:
    """A fast synthetic weave: two sinusoidal thread systems (13 and 16 threads/cm) with noise, uint16."""
    import tifffile

    rng = np.random.default_rng(0)
    x = np.arange(side, dtype=np.float32) / px_per_cm
    cols = np.sin(2 * np.pi * 16.0 * x).astype(np.float32)
    out = np.empty((side, side), np.uint16)
    for y0 in range(0, side, 1000):
        y = np.arange(y0, min(y0 + 1000, side), dtype=np.float32)[:, None] / px_per_cm
        rows = np.sin(2 * np.pi * 13.0 * y)
        band = 30000 + 9000 * (rows + cols[None, :]) + rng.normal(0, 2500, (len(y), side))
        out[y0 : y0 + len(y)] = np.clip(band, 0, 65535).astype(np.uint16)
    tifffile.imwrite(path, out, resolution=(px_per_cm, px_per_cm), resolutionunit="CENTIMETER")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    vals = {line.split(":")[0]: float(line.split()[1]) / 1024 for line in status if line.startswith(("VmRSS", "VmHWM"))}
    return {"rss_mb": round(vals["VmRSS"], 1), "peak_rss_mb": round(vals["VmHWM"], 1)}


def cpu_s(pid: int) -> float:
    """The process's CPU time so far (user + system), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_http(pid: int) -> str:
    """Which HTTP parser and event loop the server process loaded (uvicorn picks httptools / uvloop when
    installed, else h11 / asyncio), from its memory map."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return ("httptools" if "httptools" in maps else "h11") + " + " + ("uvloop" if "uvloop" in maps else "asyncio")


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 1)


def pan(
    base: str,
    image_id: int,
    info: dict,
    steps: int,
    seed: int,
    urls: list[str],
    lat: list[float],
    first: list[float],
    seen: set[str],
) -> None:
    """One client panning: random zoom level near full resolution, a 5 x 4 tile viewport moving one tile a step."""
    import httpx

    rng = random.Random(seed)
    top = info["max_level"]
    with httpx.Client(base_url=base, timeout=60) as c:
        level = rng.choice([top, top - 1, top - 2, top - 3])
        scale = 2 ** (top - level)
        ncol = -(-info["width"] // (256 * scale))
        nrow = -(-info["height"] // (256 * scale))
        col, row = rng.randrange(max(1, ncol - 5)), rng.randrange(max(1, nrow - 4))
        dx, dy = rng.choice([(1, 0), (0, 1), (1, 1), (-1, 0)])
        for _ in range(steps):
            for j in range(row, min(row + 4, nrow)):
                for i in range(col, min(col + 5, ncol)):
                    url = f"/tiles/{image_id}_files/{level}/{i}_{j}.jpg"
                    new = url not in seen  # no client asked for it yet: the server makes it now
                    seen.add(url)
                    t = time.perf_counter()
                    r = c.get(url)
                    dt = time.perf_counter() - t
                    if r.status_code == 200:
                        urls.append(url)
                        lat.append(dt)
                        if new:
                            first.append(dt)
            col = min(max(0, col + dx), max(0, ncol - 5))
            row = min(max(0, row + dy), max(0, nrow - 4))


def _client_process(base: str, chunk: list[str], ready: Any, out: Any) -> None:
    """One client of :func:`fetch_all`: a keep-alive connection, opened before the common start."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(base)
    c = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=60)
    c.connect()
    ready.wait()
    lat, failed = [], []
    for u in chunk:
        t = time.perf_counter()
        c.request("GET", u)
        r = c.getresponse()
        r.read()
        lat.append(time.perf_counter() - t)
        if r.status != 200:
            failed.append(f"{u}: {r.status}")
    c.close()
    out.put((lat, failed))


def fetch_all(base: str, urls: list[str], clients: int, client: str = "processes") -> list[float]:
    """``clients`` concurrent clients fetch their shares of ``urls``, one keep-alive connection each; the
    latency of every request, seconds.

    ``client="processes"`` (the default): each client is a process of its own (as 20 browsers would be)
    with the standard library's ``http.client``; all connect first, then start together at a barrier, so a
    request's time is the server's answer and the queue in front of it. ``client="httpx"``: the harness of
    the 2026-12-05 rows: 20 threads of this one process, each building an ``httpx.Client`` when it starts
    (about 50 ms of CPU each: it loads an SSL context even for http) while the others already send, and
    every request costing this process milliseconds of CPU under one GIL, on the same cores as the server.
    """
    chunks = [urls[k::clients] for k in range(clients)]
    if client == "processes":
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        ready, out = ctx.Barrier(clients + 1), ctx.Queue()
        procs = [ctx.Process(target=_client_process, args=(base, ch, ready, out)) for ch in chunks]
        for pr in procs:
            pr.start()
        ready.wait()
        answers = [out.get() for _ in procs]
        for pr in procs:
            pr.join()
        failed = [f for _, fs in answers for f in fs]
        if failed:
            raise RuntimeError(f"{len(failed)} tile requests failed, first: {failed[0]}")
        return [x for lat, _ in answers for x in lat]
    import httpx

    lat: list[float] = []
    lock = threading.Lock()

    def work(chunk: list[str]) -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            for u in chunk:
                t = time.perf_counter()
                c.get(u)
                with lock:
                    lat.append(time.perf_counter() - t)

    threads = [threading.Thread(target=work, args=(ch,)) for ch in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat


def own_cpu_s() -> float:
    """CPU time of this process and its finished children (the client processes), seconds."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--side", type=int, default=10_000)
    ap.add_argument("--collection", type=int, default=10_000, help="images catalogued for the collection page")
    ap.add_argument("--cached-rounds", type=int, default=3, help="times the cached tiles are fetched again")
    ap.add_argument(
        "--client",
        choices=("processes", "httpx"),
        default="processes",
        help="load generator of the cached-tile measures (see fetch_all); httpx: the earlier harness",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import httpx

    work = Path(tempfile.mkdtemp(prefix="bench-web-"))
    plate = make_plate(work / "plate.tif", args.side)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, ARTLENS_CATALOG=str(work / "artlens.db"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "artlens.cli.main",
            "serve",
            "--catalog",
            str(work / "artlens.db"),
            "--port",
            str(port),
            "--workers",
            "0",
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        res: dict[str, object] = {"side_px": args.side, "clients": args.clients, "cpus": os.cpu_count()}
        t = time.perf_counter()
        with open(plate, "rb") as fh:
            up = httpx.post(base + "/api/images", files={"file": ("plate.tif", fh)}, timeout=600).json()
        res["upload_s"] = round(time.perf_counter() - t, 2)
        image_id = up["id"]
        info = httpx.get(f"{base}/api/images/{image_id}/tiles").json()
        view_level = info["max_level"] - 4  # about 625 px: the whole plate in the viewer
        t = time.perf_counter()
        assert httpx.get(f"{base}/tiles/{image_id}_files/{view_level}/0_0.jpg").status_code == 200
        res["first_overview_tile_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        assert httpx.get(f"{base}/tiles/{image_id}_files/{info['max_level']}/20_20.jpg").status_code == 200
        res["first_full_res_tile_s"] = round(time.perf_counter() - t, 3)

        urls: list[str] = []
        lat: list[float] = []
        first: list[float] = []
        seen: set[str] = set()
        threads = [
            threading.Thread(target=pan, args=(base, image_id, info, args.steps, k, urls, lat, first, seen))
            for k in range(args.clients)
        ]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        res["pan_wall_s"] = round(time.perf_counter() - t, 2)
        res["pan_requests"] = len(lat)
        res["pan_p50_ms"], res["pan_p95_ms"] = pct(lat, 50), pct(lat, 95)
        res["pan_made_on_demand"] = len(first)
        res["pan_made_p50_ms"], res["pan_made_p95_ms"] = pct(first, 50), pct(first, 95)
        cpu0, client_cpu0 = cpu_s(proc.pid), own_cpu_s()
        cached = [
            x for _ in range(args.cached_rounds) for x in fetch_all(base, sorted(set(urls)), args.clients, args.client)
        ]
        res["cached_client"] = args.client
        res["cached_requests"] = len(cached)
        res["cached_p50_ms"], res["cached_p95_ms"] = pct(cached, 50), pct(cached, 95)
        res["cached_server_cpu_ms_per_request"] = round((cpu_s(proc.pid) - cpu0) / len(cached) * 1000, 3)
        res["cached_client_cpu_ms_per_request"] = round((own_cpu_s() - client_cpu0) / len(cached) * 1000, 3)
        res["server_http"] = server_http(proc.pid)
        single = fetch_all(base, sorted(set(urls))[:200], 1, args.client)
        res["cached_1_client_p50_ms"], res["cached_1_client_p95_ms"] = pct(single, 50), pct(single, 95)
        res |= rss_mb(proc.pid)

        if args.collection:
            from artlens.catalog import Catalog

            with Catalog(work / "artlens.db") as cat:
                for k in range(args.collection):
                    cat.add_image(work / f"fake-{k}.tif", f"{k:064x}", "xray", 200.0, 1000, 1000)
            times = []
            for _ in range(5):
                t = time.perf_counter()
                assert httpx.get(base + "/?page=3", timeout=60).status_code == 200
                times.append(time.perf_counter() - t)
            res["collection_images"] = args.collection + 1
            res["collection_page_ms_median"] = round(float(np.median(times)) * 1000, 1)
    finally:
        proc.terminate()
        proc.wait(10)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:28s} {v}")


if __name__ == "__main__":
    main()
