"""``artlens demo``: synthetic plates counted and reported, no external files needed."""

from __future__ import annotations

from pathlib import Path

import typer

from artlens.cli.common import echo, echo_json


def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", "-o", help="Output folder."),
    catalog: str | None = typer.Option(
        None, "--catalog", help="Catalog: SQLite file or postgresql:// URL (default $ARTLENS_CATALOG or ./artlens.db)."
    ),
    no_catalog: bool = typer.Option(False, "--no-catalog", help="Do not record the analyses in the catalog."),
    plates_only: bool = typer.Option(False, "--plates-only",
                                     help="Only count the plates (no canvas match, no hidden-layer comparison)."),
    as_json: bool = typer.Option(False, "--json", help="Print the demo manifest as JSON."),
) -> None:
    """Generate three synthetic canvas X-rays (two from one roll, one from another), count their
    threads and write one report; match them, and compare a simulated hidden-layer scene's visible and
    infrared views (serve the result with 'artlens serve --catalog ...')."""
    from artlens.demo import run_demo

    say = None if as_json else (lambda msg: echo(msg, err=True))
    manifest = run_demo(out, catalog=catalog, use_catalog=not no_catalog, progress=say, plates_only=plates_only)
    if as_json:
        echo_json(manifest)
        return
    echo("")
    echo(f"{'plate':<18} {'direction':<11} {'measured':>9} {'truth':>7} {'error':>7}   threads/cm")
    for p in manifest["plates"]:
        for d in ("horizontal", "vertical"):
            m = p["measured"][d]
            e = p["error"][d]
            echo(f"{p['name']:<18} {d:<11} {'-' if m is None else f'{m:.2f}':>9} {p['truth'][d]:>7.2f} "
                       f"{'-' if e is None else f'{e:+.2f}':>7}")
    echo("")
    for c in manifest.get("clusters", []):
        echo(f"roll cluster {c['id']}: {', '.join(c['members'])} (mean same-roll probability "
                   f"{c['mean_probability']:.2f})")
    for name in manifest.get("singletons", []):
        echo(f"on its own: {name} (linked to no other plate)")
    if "beneath" in manifest:
        echo(f"hidden layer: {Path(manifest['beneath']).parent.resolve()}")
    echo(f"report: {Path(manifest['report']).resolve()}")
