"""Catalog backends under concurrent load (issue 20): PostgreSQL vs SQLite, side by side in one run.

4 writer processes each add 500 analyses (one transaction each) while 2 reader processes list the
newest 50 again and again; every process opens the catalog itself. For each backend it reports the
writes per second (start signal to the last writer done), the reads completed meanwhile, and checks
that the rows are exact (as many as written, ids unique, every (writer, i) once).

``--pre-port REV`` also times one process adding analyses one by one to a SQLite catalog with the
SQLAlchemy store and with the raw-sqlite3 store of git revision REV (before the port; read with
``git show``), alternating, to show what the port costs per write.

PostgreSQL: a fresh database (unique name) is created on the server at ``--postgres`` (default
``$ARTLENS_TEST_POSTGRES``) and dropped afterwards. SQLite: a file in a temporary folder.

    python benchmarks/bench_catalog.py [--writers 4] [--per-writer 500] [--readers 2] [--rounds 2]
                                       [--pre-port 9dcc89b]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from artlens.catalog import Catalog
from artlens.catalog.loadtest import write_load


def _check_rows(location: str | Path, writers: int, per_writer: int, ids: list[int]) -> None:
    with Catalog(location) as cat:
        rows = cat.analyses(method="loadtest")
    keys = sorted((r["parameters"]["writer"], r["parameters"]["i"]) for r in rows)
    expected = sorted((f"w{k}", i) for k in range(writers) for i in range(per_writer))
    if len(rows) != writers * per_writer or keys != expected or sorted(r["id"] for r in rows) != sorted(ids) \
            or len(set(ids)) != len(ids):
        raise SystemExit(f"{location}: rows not exact ({len(rows)} rows, {len(set(ids))} distinct ids)")


def _postgres_round(server: str, args: argparse.Namespace) -> dict:
    url = sa.make_url(server)
    name = f"artlens_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        location = url.set(database=name).render_as_string(hide_password=False)
        Catalog(location).close()  # created and migrated before the clock starts, as for SQLite
        result = write_load(location, args.writers, args.per_writer, args.readers)
        _check_rows(location, args.writers, args.per_writer, result["ids"])
        return result
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _sqlite_round(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        location = Path(tmp) / "artlens.db"
        Catalog(location).close()
        result = write_load(location, args.writers, args.per_writer, args.readers)
        _check_rows(location, args.writers, args.per_writer, result["ids"])
        return result


def _sequential_writes(catalog_class: type, n: int) -> float:
    """Writes per second of one process adding ``n`` analyses to a fresh SQLite catalog."""
    with tempfile.TemporaryDirectory() as tmp, catalog_class(Path(tmp) / "artlens.db") as cat:
        image_id = cat.add_image("plate.tif", "0" * 64, "xray")
        t0 = time.perf_counter()
        for i in range(n):
            cat.add_analysis(image_id, "loadtest", {"i": i}, "bench", {"i": i}, [])
        seconds = time.perf_counter() - t0
        assert len(cat.analyses()) == n
    return n / seconds


def _pre_port_catalog(revision: str) -> type:
    """The ``Catalog`` class of ``src/artlens/catalog/store.py`` at git ``revision``."""
    source = subprocess.run(["git", "show", f"{revision}:src/artlens/catalog/store.py"], check=True,
                            capture_output=True, text=True, cwd=Path(__file__).parent).stdout
    path = Path(tempfile.mkdtemp()) / "artlens_pre_port_store.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("artlens_pre_port_store", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Catalog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("ARTLENS_TEST_POSTGRES"),
                        help="server URL (a database on it is created and dropped); default $ARTLENS_TEST_POSTGRES")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--per-writer", type=int, default=500)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="rounds per backend, alternating; medians reported")
    parser.add_argument("--pre-port", metavar="REV", help="also compare one-process SQLite writes with the store "
                                                          "of this git revision (e.g. 9dcc89b)")
    args = parser.parse_args()
    if not args.postgres:
        raise SystemExit("give --postgres URL or set ARTLENS_TEST_POSTGRES")

    results: dict[str, list[dict]] = {"sqlite": [], "postgresql": []}
    for r in range(args.rounds):
        for backend in ("postgresql", "sqlite") if r % 2 else ("sqlite", "postgresql"):
            res = _sqlite_round(args) if backend == "sqlite" else _postgres_round(args.postgres, args)
            results[backend].append(res)
            print(f"round {r + 1} {backend:<10}: {len(res['ids'])} rows exact, {res['seconds']:.2f} s, "
                  f"{res['writes_per_s']:.0f} writes/s, {res['reads']} reads", flush=True)
    summary = {}
    for backend, runs in results.items():
        summary[backend] = {"writes_per_s": statistics.median(r["writes_per_s"] for r in runs),
                            "seconds": statistics.median(r["seconds"] for r in runs),
                            "reads_per_s": statistics.median(r["reads"] / r["seconds"] for r in runs),
                            "rows": args.writers * args.per_writer}
    summary["postgresql_vs_sqlite_writes"] = summary["postgresql"]["writes_per_s"] / summary["sqlite"]["writes_per_s"]
    if args.pre_port:
        old, n = _pre_port_catalog(args.pre_port), args.per_writer * args.writers
        rates: dict[str, list[float]] = {"sqlalchemy": [], "pre_port": []}
        for _ in range(args.rounds):
            rates["pre_port"].append(_sequential_writes(old, n))
            rates["sqlalchemy"].append(_sequential_writes(Catalog, n))
        summary["one_process_sqlite_writes_per_s"] = {k: statistics.median(v) for k, v in rates.items()}
        summary["one_process_sqlite_writes_per_s"]["pre_port_revision"] = args.pre_port
    summary["setup"] = {"writers": args.writers, "per_writer": args.per_writer, "readers": args.readers,
                        "rounds": args.rounds, "cpus": os.cpu_count()}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
