"""Export one catalog table to CSV or Parquet (``artlens catalog export``).

Rows are written as stored, oldest first: JSON fields (``parameters``, ``summary``, ``outputs``,
``params``, ``result``) stay JSON text, times stay ISO 8601 text. Parquet columns are typed from the
schema (integers int64, reals float64, the rest strings), so an empty table still has its columns.
The file is written beside its final name and renamed into place: an interrupted export never leaves
a half-written file under that name.

Example:
    >>> from artlens.catalog import Catalog
    >>> from artlens.catalog.export import export_table
    >>> with Catalog("/tmp/doc.db") as cat:  # doctest: +SKIP
    ...     export_table(cat, "analyses", "/tmp/analyses.parquet")["rows"]
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from artlens.catalog import schema
from artlens.errors import InvalidParameterError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
BATCH_ROWS = 10_000


def _arrow_schema(table: sa.Table) -> Any:
    import pyarrow as pa

    def arrow_type(column: sa.Column) -> Any:
        if isinstance(column.type, sa.Integer):
            return pa.int64()
        if isinstance(column.type, sa.Float):
            return pa.float64()
        return pa.string()

    return pa.schema([pa.field(c.name, arrow_type(c)) for c in table.columns])


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_csv(rows: Iterator[dict[str, Any]], columns: list[str], path: Path) -> int:
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            n += 1
    return n


def _write_parquet(rows: Iterator[dict[str, Any]], table: sa.Table, path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow_schema = _arrow_schema(table)
    n = 0
    with pq.ParquetWriter(path, arrow_schema) as writer:
        for batch in _batches(rows):
            writer.write_table(pa.Table.from_pylist(batch, schema=arrow_schema))
            n += len(batch)
        if n == 0:
            writer.write_table(arrow_schema.empty_table())
    return n


def export_table(catalog: Any, table: str, out: str | os.PathLike[str], fmt: str | None = None) -> dict[str, Any]:
    """Write every row of ``table`` of an open :class:`~artlens.catalog.Catalog` to ``out``.

    Args:
        catalog: an open catalog.
        table: ``analyses``, ``images``, ``artworks`` or ``jobs``.
        out: the file to write; its folder is created. An existing file is replaced.
        fmt: ``csv`` or ``parquet``; ``None`` takes it from the suffix of ``out``.

    Returns:
        ``{"table", "rows", "format", "out", "catalog"}``.

    Raises:
        InvalidParameterError: unknown table or format, ``out`` is a folder or cannot be written.
    """
    if table not in schema.TABLES:
        raise InvalidParameterError(f"unknown catalog table {table!r}; choose one of {', '.join(schema.TABLES)}")
    out = Path(out).expanduser()
    if out.is_dir():
        raise InvalidParameterError(f"{out} is a folder; give a file name to export to")
    if fmt is None:
        fmt = FORMATS.get(out.suffix.lower())
        if fmt is None:
            raise InvalidParameterError(f"cannot tell the format of {out.name}: name it .csv or .parquet, "
                                        "or give the format (csv or parquet)")
    fmt = fmt.lower()
    if fmt not in ("csv", "parquet"):
        raise InvalidParameterError(f"unknown export format {fmt!r}; choose csv or parquet")
    tmp = out.with_name(f".{out.name}.partial")
    tbl = schema.TABLES[table]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = catalog.rows(table)
        if fmt == "csv":
            n = _write_csv(rows, [c.name for c in tbl.columns], tmp)
        else:
            n = _write_parquet(rows, tbl, tmp)
        tmp.replace(out)
    except OSError as exc:
        raise InvalidParameterError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
    return {"table": table, "rows": n, "format": fmt, "out": str(out), "catalog": catalog.location}
