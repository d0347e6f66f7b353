"""Batch engine: run one per-item function over many inputs, in this process or on a Ray cluster.

A batch command (``artlens threads count FOLDER``, ``canvas match``, ...) describes its work as
:class:`Item` s, each with a *content key* (:func:`item_key`: the input's SHA-256, the method, its
parameters and the model checksum), and a *worker factory*: a picklable callable that builds the
per-item function once per worker (loading a model once), e.g.::

    def make_counter(params):            # runs once in each worker
        model = load(...)
        return lambda payload: count(payload, model, params)

:func:`run_items` yields one :class:`Outcome` per item *as it finishes*, in completion order, so the
caller can write each result to disk at once (a killed run keeps everything that finished). The
caller skips the items whose key it already holds: that is how a run resumes and how a rerun does
nothing. :class:`Batch` is that bookkeeping, shared by the batch commands (a results CSV and a
``skipped.csv``, both :class:`ResultLedger` s). Engines:

- ``"local"`` (default): one worker in this process (``workers=1``), or a pool of ``workers``
  processes (spawned, each building its function once);
- ``"ray"``: a pool of ``workers`` Ray actors, each building its function once and taking
  ``num_gpus`` GPUs. ``ray_address=None`` starts a private local cluster with ``num_cpus=workers``;
  ``"auto"`` joins the cluster this machine belongs to; ``"ray://host:port"`` (Ray Client) or
  ``"host:port"`` (a head's GCS address) joins a running one.

The local pool *spawns* its processes (a forked child could inherit half-made FFT / BLAS thread
pools), so a script that calls a batch function with ``workers > 1`` needs the usual
``if __name__ == "__main__":`` guard. Each of its processes gets its share of the cores for torch, OpenMP
and BLAS threads (usable cores // processes, at least 1), as Ray gives an actor its ``num_cpus``; an
``OMP_NUM_THREADS`` set by the user is left as it is. (Without the share, 2 workers on 2 cores ran torch
inference 2.2x slower: BENCHMARKS.md.)

Both engines go through the same loop and the same failure rule: an exception raised by the
function on one item becomes ``Outcome(ok=False, error=...)`` for that item and the others go on;
a worker process that dies takes only its in-flight items with it (they are reported as failed).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from artlens.errors import ArtlensError, InvalidParameterError

__all__ = ["ENGINES", "Batch", "BatchOptions", "Item", "Outcome", "ResultLedger", "check_engine", "input_digest",
           "is_unreadable", "item_key", "resolve_workers", "run_items", "unreadable_reason"]

ENGINES = ("local", "ray")

WorkerFactory = Callable[[], Callable[[Any], Any]]
"""Builds the per-item function in a worker; must be picklable (a top-level function or a
``functools.partial`` of one)."""


@dataclass(frozen=True)
class Item:
    """One unit of work.

    Attributes:
        key: content key (:func:`item_key`); equal keys mean equal results.
        label: short name for messages (a plate's file name).
        payload: what the worker function receives (picklable, small: paths and numbers).
    """

    key: str
    label: str
    payload: Any


@dataclass(frozen=True)
class Outcome:
    """What became of one item: ``ok`` with the function's ``result``, or not, with ``error``."""

    item: Item
    ok: bool
    result: Any = None
    error: str | None = None


def item_key(sha256: str, method: str, parameters: dict[str, Any], model_checksum: str | None = None) -> str:
    """Hex SHA-256 of an item's identity: input digest, method, parameters (key order ignored) and model checksum.

    Example:
        >>> item_key("ab", "spectral", {"b": 1, "a": 2}) == item_key("ab", "spectral", {"a": 2, "b": 1})
        True
    """
    record = json.dumps({"sha256": sha256, "method": method, "parameters": parameters,
                         "model_checksum": model_checksum}, sort_keys=True, default=str)
    return hashlib.sha256(record.encode()).hexdigest()


def _usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resolve_workers(workers: int | None) -> int:
    """``workers`` if given (must be >= 1), else the usable CPU count capped at 4."""
    if workers is None:
        return max(1, min(4, _usable_cpus()))
    if workers < 1:
        raise InvalidParameterError(f"workers must be at least 1, got {workers}", param="workers")
    return int(workers)


def _describe(exc: BaseException) -> str:
    """A one-line reason: the message of an artlens error, else the exception type and message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, ArtlensError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _call(fn: Callable[[Any], Any], payload: Any) -> tuple[bool, Any]:
    """``(True, result)`` or ``(False, reason)``: a failing item never stops the worker."""
    try:
        return True, fn(payload)
    except Exception as exc:  # noqa: BLE001 -- one bad item must not stop the batch; the reason is kept
        return False, _describe(exc)


def check_engine(engine: str, workers: int, ray_address: str | None) -> None:
    """Refuse an unknown engine, a worker count below 1 or an address without engine ``ray``: what
    :func:`run_items` checks, for a command to check before it writes anything."""
    if engine not in ENGINES:
        raise InvalidParameterError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}", param="engine")
    if ray_address is not None and engine != "ray":
        raise InvalidParameterError("ray_address is used with engine 'ray'", param="ray_address")
    resolve_workers(workers)


OnOutcome = Callable[[str, "dict[str, Any] | None", "str | None"], None]
"""``on_outcome(label, row | None, reason | None)``: called after each item of a batch (progress)."""


@dataclass(frozen=True)
class BatchOptions:
    """How a resumable batch command runs: the options every batch command shares (``threads count``
    on a folder, ``classify predict`` on a folder, ``beneath compare --pairs``, ``verify --pairs``).

    Attributes:
        engine, workers, ray_address: :func:`run_items`.
        retry_skipped: run again the items that ``skipped.csv`` lists.
        on_outcome: called after each item (for progress); not part of any result.
    """

    engine: str = "local"
    workers: int = 1
    ray_address: str | None = None
    retry_skipped: bool = False
    on_outcome: OnOutcome | None = None

    def check(self) -> None:
        """:func:`check_engine` on these options, for a command to call before it writes anything."""
        check_engine(self.engine, self.workers, self.ray_address)

    def gpus_per_worker(self, device: str) -> float:
        """GPUs a Ray actor asks for when the work runs on ``device``: one each on CUDA, else none."""
        return 1.0 if device.startswith("cuda") and self.engine == "ray" else 0.0

    def is_default(self) -> bool:
        """Whether these are the options of a plain local run (``on_outcome`` aside): what a command that
        takes one input accepts."""
        return (self.engine, self.workers, self.ray_address, self.retry_skipped) == ("local", 1, None, False)


def run_items(items: Iterable[Item], factory: WorkerFactory, *, engine: str = "local", workers: int = 1,
              ray_address: str | None = None, num_gpus: float = 0.0) -> Iterator[Outcome]:
    """Run ``factory()``'s function over ``items``; yield each :class:`Outcome` as soon as it is known.

    Args:
        items: the work (the caller has already left out what is done).
        factory: builds the per-item function once per worker (:data:`WorkerFactory`).
        engine: ``"local"`` or ``"ray"``.
        workers: worker processes / actors (``local`` with 1 runs in this process).
        ray_address: ``None`` (start a local Ray cluster), ``"auto"``, ``"ray://host:port"`` or ``"host:port"``.
        num_gpus: GPUs per Ray actor (0 on a CPU-only machine).
    """
    check_engine(engine, workers, ray_address)
    todo = list(items)
    if not todo:
        return
    workers = resolve_workers(workers)
    if engine == "ray":
        yield from _run_ray(todo, factory, workers, ray_address, num_gpus)
    elif workers == 1:
        fn = factory()
        for item in todo:
            ok, value = _call(fn, item.payload)
            yield Outcome(item, ok, value if ok else None, None if ok else value)
    else:
        yield from _run_pool(todo, factory, workers)


class ResultLedger:
    """A CSV file of finished results, one row per item keyed by its ``key`` column: read back on
    resume (a row cut short by a kill is dropped), appended row by row (flushed and fsync'ed, so a
    killed run keeps every finished row), rewritten atomically (sorted by ``sort_key``) by :meth:`rewrite`.
    """

    def __init__(self, path: Path, columns: list[str],
                 sort_key: Callable[[dict[str, str]], Any] = lambda r: (r.get("plate", ""), r["key"])):
        self.path, self.columns, self.sort_key = Path(path), columns, sort_key
        self.rows: dict[str, dict[str, str]] = {}
        if path.is_file():
            with path.open(newline="", encoding="utf-8") as fh:
                for r in csv.DictReader(fh):
                    # a row cut short by a kill has missing fields (None): drop it, the plate is redone
                    if r.get("key") and all(r.get(c) is not None for c in columns):
                        self.rows[r["key"]] = {c: r[c] for c in columns}
        self.rewrite()
        self._fh: TextIO | None = None

    def rewrite(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns)
            w.writeheader()
            rows: list[dict[str, str]] = sorted(self.rows.values(), key=self.sort_key)
            w.writerows(rows)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def append(self, row: dict[str, Any]) -> None:
        if self._fh is None:
            self._fh = self.path.open("a", newline="", encoding="utf-8")
        row = {c: "" if row.get(c) is None else str(row[c]) for c in self.columns}
        csv.DictWriter(self._fh, fieldnames=self.columns).writerow(row)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.rows[row["key"]] = row

    def remove(self, key: str) -> None:
        self.rows.pop(key, None)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def input_digest(path: str | os.PathLike[str]) -> str:
    """The file's SHA-256, or ``"unreadable:<absolute path>:<error type>"`` when it cannot be read (a key for an
    input that :meth:`Batch.add` then sets aside with its reason, see :func:`is_unreadable`)."""
    from artlens.provenance import sha256_file

    try:
        return sha256_file(path)
    except OSError as exc:
        return "unreadable:" + str(Path(path).resolve()) + ":" + type(exc).__name__


def is_unreadable(digest: str) -> bool:
    """Whether ``digest`` is :func:`input_digest`'s mark of a file it could not read."""
    return digest.startswith("unreadable:")


def unreadable_reason(path: str | os.PathLike[str]) -> str:
    """The one-line reason for a file that :func:`input_digest` could not read."""
    return f"cannot read {path}" if Path(path).exists() else f"{path}: no such file"


class Batch:
    """The bookkeeping that every resumable batch command shares, around :func:`run_items`.

    A results ledger (``plates.csv``, ``predictions.csv``, ...) holds one row per finished item and a
    skipped ledger (``skipped.csv``) one row per item that failed, with its reason. :meth:`add` sorts
    each planned item: done before (its key is in the results), skipped before (in ``skipped.csv``,
    unless ``retry_skipped``), failed before it could run (``reason``: a file that cannot be read), or
    to do; an item with the key of one planned before it (an identical file) is only counted, in
    ``duplicates``. :meth:`run` runs what is to do on the engine and writes each outcome as it arrives: a
    result through ``on_result`` (which records what it must, e.g. in the catalog, and returns the
    row), a failure as a ``skipped.csv`` row; at the end both files are rewritten sorted, and an
    empty ``skipped.csv`` is removed.

    Args:
        results, skipped: the two ledgers (their ``key`` column is the item's key).
        label_column: the name of an item's label in ``failures`` (``"plate"``, ``"image"``...).
        options: where the items run, whether skipped ones run again, the progress callback.
    """

    def __init__(self, results: ResultLedger, skipped: ResultLedger, *, label_column: str = "item",
                 options: BatchOptions | None = None) -> None:
        self.results, self.skipped = results, skipped
        self.label_column, self.options = label_column, options or BatchOptions()
        self.total = self.new = self.done_before = self.failed = self.skipped_before = self.duplicates = 0
        self.failures: list[dict[str, str]] = []
        self._planned: set[str] = set()
        self.todo: list[Item] = []
        self._unrunnable: list[tuple[Item, str]] = []

    def add(self, item: Item, reason: str | None = None) -> None:
        """Plan one item; ``reason``: it cannot run (it goes to ``skipped.csv`` with this reason)."""
        self.total += 1
        if item.key in self._planned:  # the same content as an item before it: one result serves both
            self.duplicates += 1
            return
        self._planned.add(item.key)
        if item.key in self.results.rows:
            self.done_before += 1
        elif item.key in self.skipped.rows and not self.options.retry_skipped:
            self.skipped_before += 1
        elif reason is not None:
            self._unrunnable.append((item, reason))
        else:
            self.todo.append(item)

    @property
    def skipped_csv(self) -> str | None:
        """The ``skipped.csv`` path when it lists any item."""
        return str(self.skipped.path) if self.skipped.rows else None

    def run(self, factory: WorkerFactory, *, on_result: Callable[[Item, Any], dict[str, Any]],
            skipped_row: Callable[[Item, str], dict[str, Any]], send: Callable[[Item], Any] = lambda i: i.payload,
            num_gpus: float = 0.0) -> None:
        """Run the planned items; write each result / failure as it arrives (see the class docstring).

        Args:
            factory, num_gpus: :func:`run_items` (with the engine, workers and address of ``options``).
            on_result: ``on_result(item, result)`` -> the item's results row (its ``key`` is set here).
            skipped_row: ``skipped_row(item, reason)`` -> its ``skipped.csv`` row.
            send: what a worker receives of an item (default its payload; keep it small).
        """
        opts = self.options
        on_outcome = opts.on_outcome

        def fail(item: Item, reason: str) -> None:
            self.skipped.append(skipped_row(item, reason) | {"key": item.key, "reason": reason})
            self.failed += 1
            self.failures.append({self.label_column: item.label, "reason": reason})
            if on_outcome is not None:
                on_outcome(item.label, None, reason)

        try:
            for item, reason in self._unrunnable:
                fail(item, reason)
            by_key = {i.key: i for i in self.todo}
            sent = [Item(i.key, i.label, send(i)) for i in self.todo]
            for outcome in run_items(sent, factory, engine=opts.engine, workers=opts.workers,
                                     ray_address=opts.ray_address, num_gpus=num_gpus):
                item = by_key[outcome.item.key]
                if not outcome.ok:
                    fail(item, outcome.error or "unknown error")
                    continue
                row = on_result(item, outcome.result) | {"key": item.key}
                self.results.append(row)
                self.skipped.remove(item.key)
                self.new += 1
                if on_outcome is not None:
                    on_outcome(item.label, row, None)
        finally:
            self.results.close()
            self.skipped.close()
        self.results.rewrite()
        self.skipped.rewrite()
        if not self.skipped.rows:
            self.skipped.path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# local process pool
# --------------------------------------------------------------------------------------------------

_LOCAL_FN: Callable[[Any], Any] | None = None

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""What a pool process sets to its share of the cores (unless ``OMP_NUM_THREADS`` is set already)."""


def _share_cores(threads: int) -> None:
    """In a pool process, before the worker factory loads anything: ``threads`` torch / OpenMP / BLAS threads."""
    if "OMP_NUM_THREADS" in os.environ:  # the user's choice
        return
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    torch = sys.modules.get("torch")  # already imported while unpickling the factory: tell it directly
    if torch is not None:
        torch.set_num_threads(threads)


def _pool_init(factory: WorkerFactory, threads: int) -> None:
    global _LOCAL_FN
    _share_cores(threads)
    _LOCAL_FN = factory()


def _pool_call(payload: Any) -> tuple[bool, Any]:
    assert _LOCAL_FN is not None
    return _call(_LOCAL_FN, payload)


def _run_pool(todo: list[Item], factory: WorkerFactory, workers: int) -> Iterator[Outcome]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # spawn, not fork: the parent may hold FFT / BLAS thread pools that a forked child would inherit half-made
    processes = min(workers, len(todo))
    with ProcessPoolExecutor(max_workers=processes, mp_context=mp.get_context("spawn"),
                             initializer=_pool_init, initargs=(factory, max(1, _usable_cpus() // processes))) as pool:
        pending = {pool.submit(_pool_call, item.payload): item for item in todo}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                item = pending.pop(fut)
                try:
                    ok, value = fut.result()
                except BrokenProcessPool:
                    ok, value = False, "the worker process died (out of memory or a crash in native code)"
                yield Outcome(item, ok, value if ok else None, None if ok else value)


# --------------------------------------------------------------------------------------------------
# Ray actor pool
# --------------------------------------------------------------------------------------------------


class _Actor:
    """A Ray actor holding one built function (the model is loaded once, in ``__init__``)."""

    def __init__(self, factory: WorkerFactory) -> None:
        self.fn = factory()

    def run(self, payload: Any) -> tuple[bool, Any]:
        return _call(self.fn, payload)


def ray_connect(ray_address: str | None, workers: int, num_gpus: float = 0.0) -> bool:
    """Connect to (or start) a Ray cluster; returns True when this call started the connection
    (so the caller shuts it down)."""
    try:
        import ray
    except ImportError:
        raise InvalidParameterError("engine 'ray' needs the 'ray' package (pip install 'ray[default]')",
                                    param="engine") from None
    if ray.is_initialized():
        return False
    common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if ray_address is None:
            # "local": a private cluster even when RAY_ADDRESS or a running head would otherwise be joined
            ray.init(address="local", num_cpus=workers, num_gpus=int(num_gpus * workers) or None, **common)
        else:
            addr = ray_address
            _probe(addr)
            ray.init(address=addr, **({} if addr.startswith("ray://") else common))
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "start a local Ray cluster" if ray_address is None else f"join the Ray cluster at {ray_address}"
        raise InvalidParameterError(f"could not {where}: {_describe(exc)}") from None
    return True


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast when nothing listens at ``host:port`` (Ray itself keeps retrying for minutes)."""
    import socket

    hostport = address.removeprefix("ray://")
    if address == "auto" or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        raise ConnectionError(f"nothing answers at {hostport} ({_describe(exc)})") from None


def _run_ray(todo: list[Item], factory: WorkerFactory, workers: int, ray_address: str | None,
             num_gpus: float) -> Iterator[Outcome]:
    import ray
    from ray.exceptions import RayActorError, RayTaskError

    ray_env = {k: v for k, v in os.environ.items() if k.startswith("RAY_")}
    started = ray_connect(ray_address, workers, num_gpus)
    remote_cls = ray.remote(num_cpus=1, num_gpus=num_gpus or 0, max_restarts=1)(_Actor)
    try:
        actors = [remote_cls.remote(factory) for _ in range(min(workers, len(todo)))]
        queue = list(reversed(todo))
        in_flight: dict[Any, tuple[Item, Any]] = {}
        depth = 2  # two items queued per actor hide the round trip

        def feed(actor: Any) -> None:
            if queue:
                item = queue.pop()
                in_flight[actor.run.remote(item.payload)] = (item, actor)

        for actor in actors:
            for _ in range(depth):
                feed(actor)
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            item, actor = in_flight.pop(ready[0])
            try:
                ok, value = ray.get(ready[0])
            except RayActorError:
                ok, value = False, "the Ray worker died (out of memory or a crash in native code)"
            except RayTaskError as exc:  # pragma: no cover -- _call catches everything inside the actor
                ok, value = False, _describe(exc)
            yield Outcome(item, ok, value if ok else None, None if ok else value)
            feed(actor)
    finally:
        if started:
            ray.shutdown()
            # a private cluster leaves settings (RAY_AUTH_MODE=token) in os.environ, where child processes
            # would inherit them. (Ray 2.60 cannot run actors on a second cluster joined in the same
            # process after a private one was shut down: one cluster per process, as the CLI does.)
            for k in [k for k in os.environ if k.startswith("RAY_") and k not in ray_env]:
                del os.environ[k]
            os.environ.update(ray_env)
