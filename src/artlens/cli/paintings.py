"""``artlens paintings ...``: every command about paintings, assembled here.

``import`` is defined in this module; the others in the module of their subject, registered below:
``verify`` and ``train-verifier`` (:mod:`artlens.cli.verify`), ``index``, ``search`` and ``map``
(:mod:`artlens.cli.search`), ``classify train|evaluate|predict|blend`` (:mod:`artlens.cli.classify`)
and ``train-encoder`` (:mod:`artlens.cli.encoders`). :data:`ALIASES` and :data:`classify_app` are what
:mod:`artlens.cli.main` also mounts under the older top-level names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from artlens.cli import classify as classify_cmd
from artlens.cli import encoders as encoders_cmd
from artlens.cli import search as search_cmd
from artlens.cli import verify as verify_cmd
from artlens.cli.common import echo, echo_json

app = typer.Typer(help="Paintings: import collections, same-artist verification, similarity search and maps, "
                       "classification.", no_args_is_help=True)

LABEL_LIKE = ("label", "artist", "style", "genre", "split", "medium")
"""Columns whose per-value counts ``paintings import`` reports, when present."""


@app.command("import")
def import_cmd(
    source_path: Path = typer.Argument(..., metavar="DIR_OR_CSV",
                                       help="Folder tree <root>/<class>/<image> or a CSV listing images and labels."),
    label_column: str | None = typer.Option(
        None, "--label-column",
        help="Folder tree: column named after the class folders (default 'label'). CSV: a column that must exist.",
    ),
    images: Path | None = typer.Option(None, "--images", help="CSV only: folder that relative image paths start in."),
    source: str | None = typer.Option(None, "--source", help="Collection name in the catalog (default: folder name)."),
    no_catalog: bool = typer.Option(False, "--no-catalog", help="Do not record the images in the catalog."),
    catalog: str | None = typer.Option(
        None, "--catalog", help="Catalog: SQLite file or postgresql:// URL (default $ARTLENS_CATALOG or ./artlens.db)."
    ),
    artist_column: str | None = typer.Option(
        None, "--artist-column", help="Label column holding the artist, for the catalog (default 'artist')."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the counts."),
) -> None:
    """Load a labelled collection, report its classes and record it in the catalog."""
    from artlens.paintings.datasets import load_dataset

    ds = load_dataset(source_path, label_column=label_column or "label", images_dir=images)
    if label_column is not None:
        ds.labels(label_column)  # an unknown column fails here, naming the available ones
    name = source or _default_source_name(source_path)
    columns = [c for c in ds.columns() if c in LABEL_LIKE or c == label_column]
    summary = {
        "source": name,
        "path": ds.source,
        "images": len(ds),
        "columns": ds.columns(),
        "counts": {c: ds.counts(c) for c in columns},
        "missing": len(ds.missing),
        "catalog": None,
        "catalog_images": 0,
    }
    if not no_catalog:
        from artlens.catalog import Catalog

        with Catalog(catalog) as cat:
            ids = ds.to_catalog(cat, name, artist_column=artist_column or "artist")
            summary["catalog"] = cat.location
        summary["catalog_images"] = len(set(ids))
    if as_json:
        echo_json(summary)
        return
    echo(_describe(summary))


def _default_source_name(path: Path) -> str:
    """The collection folder's name (the CSV's folder for a CSV file)."""
    p = path.expanduser().absolute()
    return (p if p.is_dir() else p.parent).name or "collection"


def _describe(summary: dict) -> str:
    lines = [f"{summary['source']}: {summary['images']} images from {summary['path']}"
             + (f" ({summary['missing']} listed but missing)" if summary["missing"] else "")]
    lines.append(f"columns: {', '.join(summary['columns']) or '-'}")
    for column, counts in summary["counts"].items():
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{k or '(none)'} {v}" for k, v in ranked[:5]) + (", ..." if len(ranked) > 5 else "")
        lines.append(f"  {column}: {len(counts)} values: {shown}")
    if summary["catalog"] is not None:
        lines.append(f"catalog: {summary['catalog']} ({summary['catalog_images']} images recorded)")
    return "\n".join(lines)


ALIASES: dict[str, Callable[..., None]] = {
    "verify": verify_cmd.verify, "index": search_cmd.index, "search": search_cmd.search, "map": search_cmd.map_}
"""Commands that were top-level before the ``paintings`` group (``artlens verify`` ...)."""
classify_app = classify_cmd.app

for _name, _command in ALIASES.items():
    app.command(_name)(_command)
app.add_typer(classify_app, name="classify")
app.command("train-verifier")(verify_cmd.train_verifier)
app.command("train-encoder")(encoders_cmd.train_encoder)
