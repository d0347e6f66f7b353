"""``artlens threads ...``: thread counting in canvas X-rays."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from artlens.canvas.threads.run import count_plate_file, summary_line
from artlens.canvas.threads.spectral import SpectralParams

app = typer.Typer(help="Count threads in canvas X-rays.", no_args_is_help=True)


@app.command("count")
def count(
    plate: Path = typer.Argument(..., help="X-ray plate: TIFF (8/16-bit, BigTIFF, tiled), PNG, JPEG or BMP."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for summary.json, windows.csv, maps, report."),
    px_per_cm: float | None = typer.Option(
        None, "--px-per-cm", help="Resolution in px/cm (overrides the file's tags)."
    ),
    window_cm: float = typer.Option(1.0, "--window-cm", help="Window side, cm."),
    step_cm: float = typer.Option(0.5, "--step-cm", help="Distance between window centres, cm."),
    band: tuple[float, float] = typer.Option((5.0, 40.0), "--band", help="Density search band MIN MAX, threads/cm."),
    max_angle: float = typer.Option(10.0, "--max-angle", help="Largest thread angle searched, degrees."),
    method: str = typer.Option("spectral", "--method", help="Counting method (spectral)."),
    page: int = typer.Option(0, "--page", help="TIFF page (0 = first)."),
    allow_huge: bool = typer.Option(False, "--allow-huge", help="Accept images with more than 2^31 pixels."),
    catalog: Path | None = typer.Option(
        None, "--catalog", help="Catalog database (default $ARTLENS_CATALOG or ./artlens.db)."
    ),
    no_catalog: bool = typer.Option(False, "--no-catalog", help="Do not record the analysis in the catalog."),
    as_json: bool = typer.Option(False, "--json", help="Print summary.json on stdout instead of prose."),
) -> None:
    """Map thread densities (threads/cm) and angles (degrees) over a canvas X-ray by windowed 2-D FFT."""
    if method != "spectral":
        from artlens.errors import InvalidParameterError

        raise InvalidParameterError(f"--method {method!r} is not available yet; use --method spectral")
    params = SpectralParams(window_cm=window_cm, step_cm=step_cm, band=band, max_angle_deg=max_angle)
    show_progress = not as_json and sys.stderr.isatty()
    if show_progress:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("counting", total=None)
            outputs = count_plate_file(
                plate, out, params, px_per_cm=px_per_cm, page=page, allow_huge=allow_huge,
                catalog=catalog, use_catalog=not no_catalog,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    else:
        outputs = count_plate_file(plate, out, params, px_per_cm=px_per_cm, page=page, allow_huge=allow_huge,
                                   catalog=catalog, use_catalog=not no_catalog)
    if as_json:
        typer.echo(json.dumps(outputs.summary))
        return
    s = outputs.summary
    typer.echo(f"{plate.name}: {s['plate_cm'][0]:.2f} x {s['plate_cm'][1]:.2f} cm at {s['px_per_cm']:g} px/cm, "
               f"{s['windows']} windows of {s['window_cm']:g} cm every {s['step_cm']:g} cm")
    typer.echo(summary_line(s))
    typer.echo(f"report: {outputs.files['report_html']}")
