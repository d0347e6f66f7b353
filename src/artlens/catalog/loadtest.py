"""Several processes on one catalog at once: writers adding analyses, readers listing them, workers
claiming jobs. Used by the concurrency tests and ``benchmarks/bench_catalog.py``; also a quick check
of a lab's own PostgreSQL server.

Every process opens the catalog itself (after a common start signal, so a fresh catalog is migrated
under contention too) and reports what it did through a queue; nothing is shared but the database.

Example:
    >>> from artlens.catalog.loadtest import write_load
    >>> result = write_load("/tmp/load.db", writers=2, per_writer=10, readers=1)  # doctest: +SKIP
    >>> result["rows"]  # doctest: +SKIP
    20
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext, SpawnContext

# Children come from a fork server that has imported the catalog once: cheap to start, and never a copy of
# a parent that may hold threads (Ray, torch) or open connections. Spawn where there is no fork server.
_CTX: ForkServerContext | SpawnContext
if "forkserver" in mp.get_all_start_methods():
    _FORKSERVER = mp.get_context("forkserver")
    _FORKSERVER.set_forkserver_preload(["__main__", "artlens.catalog.store"])  # "__main__": as by default
    _CTX = _FORKSERVER
else:
    _CTX = mp.get_context("spawn")
_METHOD = "loadtest"


def _writer(location: str | Path, tag: str, n: int, start: Any, out: Any) -> None:
    from artlens.catalog import Catalog

    start.wait()
    try:
        with Catalog(location) as cat:
            image_id = cat.add_image(f"loadtest-{tag}.tif", "0" * 64, "xray")
            ids = [cat.add_analysis(image_id, _METHOD, {"writer": tag, "i": i}, "loadtest", {"i": i}, [])
                   for i in range(n)]
        out.put(("writer", tag, ids, None))
    except Exception as exc:  # reported to the parent, which raises it
        out.put(("writer", tag, [], f"{type(exc).__name__}: {exc}"))


def _reader(location: str | Path, tag: str, start: Any, stop: Any, out: Any) -> None:
    from artlens.catalog import Catalog

    start.wait()
    reads, error = 0, None
    try:
        with Catalog(location) as cat:
            while True:  # at least one read, even when the writers were done before this reader opened the catalog
                rows = cat.analyses(limit=50, method=_METHOD)
                ids = [r["id"] for r in rows]
                if ids != sorted(ids, reverse=True) or len(ids) > 50:
                    raise AssertionError(f"analyses() returned {ids[:5]}...: not newest first")
                reads += 1
                if stop.is_set():
                    break
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    out.put(("reader", tag, reads, error))


def _claimer(location: str | Path, tag: str, start: Any, out: Any) -> None:
    from artlens.catalog import Catalog

    start.wait()
    claimed, error = [], None
    try:
        with Catalog(location) as cat:
            while (job := cat.claim_job(tag)) is not None:
                claimed.append(int(job["id"]))
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    out.put(("claimer", tag, claimed, error))


def _collect(procs: list[Any], out: Any, expected: int, timeout_s: float) -> list[tuple]:
    """The ``expected`` reports from the queue; raises if a process failed or the time runs out."""
    reports: list[tuple] = []
    deadline = time.monotonic() + timeout_s
    while len(reports) < expected:
        try:
            reports.append(out.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            for p in procs:
                p.kill()
            raise TimeoutError(f"load test: {expected - len(reports)} processes did not report in {timeout_s:g} s") \
                from None
    for p in procs:
        p.join(timeout=30)
    errors = [f"{kind} {tag}: {err}" for kind, tag, _, err in reports if err]
    if errors:
        raise RuntimeError("; ".join(errors))
    return reports


def write_load(location: str | os.PathLike[str], writers: int = 4, per_writer: int = 500, readers: int = 2,
               timeout_s: float = 300.0) -> dict[str, Any]:
    """``writers`` processes each add ``per_writer`` analyses while ``readers`` processes list analyses.

    Returns:
        ``seconds`` (start signal to the last writer's report), ``writes_per_s``, ``ids`` (every id
        the writers got back, in their order), ``reads`` (list calls completed by the readers).
    """
    location = location if isinstance(location, str) else Path(location)
    start, stop, out = _CTX.Event(), _CTX.Event(), _CTX.Queue()
    writer_procs = [_CTX.Process(target=_writer, args=(location, f"w{k}", per_writer, start, out))
                    for k in range(writers)]
    reader_procs = [_CTX.Process(target=_reader, args=(location, f"r{k}", start, stop, out))
                    for k in range(readers)]
    procs = writer_procs + reader_procs
    for p in procs:
        p.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    start.set()
    reports = _collect(writer_procs, out, writers, timeout_s)
    seconds = time.perf_counter() - t0
    stop.set()
    reports += _collect(procs, out, readers, 60.0)
    ids = [i for kind, _, got, _ in reports if kind == "writer" for i in got]
    return {
        "seconds": seconds,
        "writes_per_s": len(ids) / seconds,
        "ids": ids,
        "reads": sum(got for kind, _, got, _ in reports if kind == "reader"),
    }


def claim_load(location: str | os.PathLike[str], workers: int = 4, timeout_s: float = 120.0) -> dict[str, list[int]]:
    """``workers`` processes claim queued jobs until none is left; returns the job ids each one got."""
    location = location if isinstance(location, str) else Path(location)
    start, out = _CTX.Event(), _CTX.Queue()
    procs = [_CTX.Process(target=_claimer, args=(location, f"c{k}", start, out)) for k in range(workers)]
    for p in procs:
        p.start()
    time.sleep(0.2)
    start.set()
    return {tag: got for _, tag, got, _ in _collect(procs, out, workers, timeout_s)}
