"""The job runner: a few worker threads in the server process that take queued jobs from the catalog.

Jobs live in the catalog (:meth:`artlens.catalog.Catalog.add_job` and friends), so the queue survives a
killed server: on start the runner calls :meth:`~artlens.catalog.Catalog.recover_jobs`, which queues a job
left ``running`` again (or fails it after repeated tries); finished jobs are never touched. Each worker
opens its own catalog connection. A job's files go to ``DATA/jobs/<id>/``.
"""

from __future__ import annotations

import logging
import threading
import traceback
from pathlib import Path
from typing import Any

from artlens.catalog import Catalog
from artlens.errors import ArtlensError
from artlens.web.analyses import KINDS, JobCancelled, JobContext

log = logging.getLogger(__name__)
POLL_S = 1.0


class JobRunner:
    """``workers`` threads running jobs of :data:`~artlens.web.analyses.KINDS` from ``catalog_path``."""

    def __init__(self, catalog_path: Path | str, data_dir: Path, workers: int = 1) -> None:
        self.catalog_path = catalog_path
        self.data_dir = data_dir
        self.workers = max(0, int(workers))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.recovered: dict[str, int] = {}

    def start(self) -> None:
        """Recover jobs a dead server left running, then start the workers."""
        with Catalog(self.catalog_path) as cat:
            self.recovered = cat.recover_jobs()
        if any(self.recovered.values()):
            log.warning("jobs recovered after a restart: %s", self.recovered)
        for k in range(self.workers):
            t = threading.Thread(target=self._loop, name=f"artlens-job-{k}", daemon=True)
            t.start()
            self._threads.append(t)

    def notify(self) -> None:
        """A job was queued: wake an idle worker."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the workers to stop after their current job (a job still running stays ``running`` and is
        recovered at the next start)."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def _loop(self) -> None:
        name = f"{threading.current_thread().name}"
        while not self._stop.is_set():
            try:
                with Catalog(self.catalog_path) as cat:
                    job = cat.claim_job(name)
                    if job is not None:
                        self.run_one(cat, job)
                        continue
            except Exception:  # a catalog hiccup must not kill the worker
                log.exception("job worker %s", name)
            self._wake.wait(POLL_S)
            self._wake.clear()

    def run_one(self, cat: Catalog, job: dict[str, Any]) -> None:
        """Run one claimed job to its end state (done, failed or cancelled)."""
        kind = KINDS.get(job["kind"])
        if kind is None:
            cat.finish_job(job["id"], "failed", error=f"unknown job kind {job['kind']!r}")
            return
        out_dir = self.data_dir / "jobs" / str(job["id"])
        out_dir.mkdir(parents=True, exist_ok=True)
        ctx = JobContext(job, cat, self.catalog_path, out_dir,
                         lambda f, m: cat.update_job(job["id"], progress=f, message=m))
        try:
            result, analysis_id = kind.run(ctx)
        except JobCancelled:
            cat.finish_job(job["id"], "cancelled", error="cancelled by the user")
        except ArtlensError as exc:
            cat.finish_job(job["id"], "failed", error=str(exc))
        except Exception as exc:
            log.error("job %s (%s) failed:\n%s", job["id"], job["kind"], traceback.format_exc())
            cat.finish_job(job["id"], "failed", error=f"internal error ({type(exc).__name__}: {exc})")
        else:
            cat.finish_job(job["id"], "done", result=_jsonable(result), analysis_id=analysis_id)


def _jsonable(value: Any) -> Any:
    """Paths and numpy values as plain JSON."""
    import json

    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
