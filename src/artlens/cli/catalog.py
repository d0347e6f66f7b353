"""``artlens catalog ...``: what has been analysed, and exports of the catalog's tables."""

from __future__ import annotations

from pathlib import Path

import typer

from artlens.cli.choices import CatalogTable, ExportFormat
from artlens.cli.common import choice_option, echo, echo_json

app = typer.Typer(help="Inspect and export the catalog of images and analyses (SQLite file or PostgreSQL).",
                  no_args_is_help=True)

CATALOG = typer.Option(None, "--catalog",
                       help="Catalog: SQLite file or postgresql:// URL (default $ARTLENS_CATALOG or ./artlens.db).")


def _open(catalog: str | None):
    """The catalog, refusing to create a new SQLite file just to show that it is empty."""
    from artlens.catalog import Catalog, catalog_location
    from artlens.errors import InputNotFoundError

    location = catalog_location(catalog)
    if isinstance(location, Path) and not location.exists():
        raise InputNotFoundError(f"{location}: no catalog yet (run 'artlens threads count' or 'artlens demo' first)")
    return Catalog(location)


@app.command("list")
def list_(
    catalog: str | None = CATALOG,
    limit: int = typer.Option(50, "--limit", help="Show at most this many analyses (newest first)."),
    as_json: bool = typer.Option(False, "--json", help="Print the analyses as JSON."),
) -> None:
    """List recorded analyses, newest first."""
    with _open(catalog) as cat:
        rows = cat.analyses(limit=limit)
        where = cat.location
    if as_json:
        echo_json(rows, default=str)
        return
    echo(f"catalog: {where}  ({len(rows)} analyses shown)")
    for r in rows:
        summ = r.get("summary") or {}
        dens = []
        for d in ("horizontal", "vertical"):
            mean = ((summ.get(d) or {}).get("threads_per_cm") or {}).get("mean")
            dens.append("-" if mean is None else f"{mean:.2f}")
        echo(f"#{r['id']:<4} {r['created_utc']}  {r['method']:<18} H {dens[0]:>6}  V {dens[1]:>6} threads/cm"
                   f"  {Path(r.get('image_path') or '-').name}")


@app.command("export")
def export(
    out: Path = typer.Option(..., "--out", "-o", help="File to write (.csv or .parquet)."),
    fmt: str | None = choice_option(None, "--format", "-f", choices=ExportFormat, checked_by_library=True,
                                    help="csv or parquet (default: from --out's suffix)."),
    table: str = choice_option("analyses", "--table", "-t", choices=CatalogTable, checked_by_library=True,
                               help="analyses, images, artworks or jobs."),
    catalog: str | None = CATALOG,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Write one table of the catalog, every row as stored (JSON fields as text), to CSV or Parquet."""
    from artlens.catalog.export import export_table

    with _open(catalog) as cat:
        summary = export_table(cat, table, out, fmt)
    if as_json:
        echo_json(summary)
    else:
        echo(f"{summary['rows']} {table} rows from {summary['catalog']} -> {summary['out']} "
                   f"({summary['format']})")
