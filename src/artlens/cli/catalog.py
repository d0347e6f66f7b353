"""``artlens catalog ...``: what has been analysed."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Inspect the embedded catalog of images and analyses.", no_args_is_help=True)


@app.command("list")
def list_(
    catalog: Path | None = typer.Option(
        None, "--catalog", help="Catalog database (default $ARTLENS_CATALOG or ./artlens.db)."
    ),
    limit: int = typer.Option(50, "--limit", help="Show at most this many analyses (newest first)."),
    as_json: bool = typer.Option(False, "--json", help="Print the analyses as JSON."),
) -> None:
    """List recorded analyses, newest first."""
    from artlens.catalog import Catalog, default_catalog_path
    from artlens.errors import InputNotFoundError

    path = default_catalog_path(None if catalog is None else str(catalog))
    if not path.exists():
        raise InputNotFoundError(f"{path}: no catalog yet (run 'artlens threads count' or 'artlens demo' first)")
    with Catalog(path) as cat:
        rows = cat.analyses(limit=limit)
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    typer.echo(f"catalog: {path}  ({len(rows)} analyses shown)")
    for r in rows:
        summ = r.get("summary") or {}
        dens = []
        for d in ("horizontal", "vertical"):
            mean = ((summ.get(d) or {}).get("threads_per_cm") or {}).get("mean")
            dens.append("-" if mean is None else f"{mean:.2f}")
        typer.echo(f"#{r['id']:<4} {r['created_utc']}  {r['method']:<18} H {dens[0]:>6}  V {dens[1]:>6} threads/cm"
                   f"  {Path(r.get('image_path') or '-').name}")
