"""``artlens threads sample`` and ``artlens threads import-labels``: samples for labelling, and
labelled crops into a training dataset. Registered on the ``threads`` app in :mod:`artlens.cli.threads`."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from artlens.cli.common import echo, echo_json


def sample(
    plate: Path = typer.Argument(..., help="X-ray plate: TIFF (8/16-bit, BigTIFF, tiled), PNG, JPEG or BMP."),
    n: int = typer.Option(40, "--n", help="Number of samples."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for the sample TIFFs and samples.csv."),
    size_cm: float = typer.Option(1.5, "--size-cm", help="Side of each square sample, cm."),
    seed: int = typer.Option(0, "--seed", help="Random seed (the same seed gives the same samples)."),
    px_per_cm: float | None = typer.Option(
        None, "--px-per-cm", help="Resolution in px/cm (overrides the file's tags)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the samples as one JSON object on stdout."),
) -> None:
    """Cut N random non-overlapping square samples from a plate, as 8-bit TIFFs for labelme."""
    from artlens.canvas.threads.sampling import sample_plate

    rows = sample_plate(plate, n, out, size_cm=size_cm, seed=seed, px_per_cm=px_per_cm)
    if as_json:
        echo_json({"plate": str(plate), "out": str(out), "samples": rows})
        return
    r0 = rows[0]
    echo(f"{len(rows)} samples of {r0['size_cm']:g} cm ({r0['size_px']} px at {r0['px_per_cm']:g} px/cm) "
               f"from {plate.name} in {out}")
    echo(f"list: {out / 'samples.csv'}")


def _cell(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.2f}"


def import_labels(
    src: Path = typer.Argument(..., help="Folder of labelme JSONs and/or DL4ART <name>_H.npz/_V.npz pairs."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to write (images/, masks/, labels.csv)."),
    px_per_cm: float | None = typer.Option(
        None, "--px-per-cm", help="Resolution in px/cm for every crop (overrides the images' tags)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the labels as one JSON object on stdout."),
) -> None:
    """Import labelled crops into a dataset with thread masks and density labels (threads/cm)."""
    from artlens.canvas.threads.labels import import_labels as run_import

    rows = run_import(src, out, px_per_cm=px_per_cm)
    if as_json:
        clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                 for r in rows]
        echo_json({"dataset": str(out), "crops": clean})
        return
    width = max(4, *(len(r["name"]) for r in rows))
    pwidth = max(5, *(len(str(r["plate"])) for r in rows))
    echo(f"{'name':<{width}}  {'plate':<{pwidth}}  {'H /cm':>6}  {'V /cm':>6}")
    for r in rows:
        echo(f"{r['name']:<{width}}  {r['plate']:<{pwidth}}  {_cell(r['h_threads_per_cm']):>6}  "
                   f"{_cell(r['v_threads_per_cm']):>6}")
    echo(f"{len(rows)} crops from {len({r['plate'] for r in rows})} plate(s) -> {out / 'labels.csv'}")
