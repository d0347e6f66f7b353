"""``artlens synth ...``: synthetic canvas X-ray plates with ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from artlens.cli.common import echo, echo_json

app = typer.Typer(help="Generate synthetic data with ground truth.", no_args_is_help=True)


@app.command("plate")
def plate(
    out: Path = typer.Argument(..., help="Output TIFF file (written with resolution tags)."),
    height_cm: float = typer.Option(3.0, "--height-cm", help="Plate height, cm."),
    width_cm: float = typer.Option(3.0, "--width-cm", help="Plate width, cm."),
    px_per_cm: float = typer.Option(200.0, "--px-per-cm", help="Resolution, px/cm."),
    horizontal: float = typer.Option(12.0, "--horizontal", help="Density of horizontal threads, threads/cm."),
    vertical: float = typer.Option(15.0, "--vertical", help="Density of vertical threads, threads/cm."),
    horizontal_angle: float = typer.Option(0.0, "--horizontal-angle", help="Angle of horizontal threads, degrees."),
    vertical_angle: float = typer.Option(0.0, "--vertical-angle", help="Angle of vertical threads, degrees."),
    paint: float = typer.Option(0.0, "--paint", help="Strength of the paint layer, 0..1."),
    craquelure: float = typer.Option(0.0, "--craquelure", help="Strength of cracks, 0..1."),
    noise: float = typer.Option(0.02, "--noise", help="Gaussian noise, fraction of full range."),
    bit_depth: int = typer.Option(8, "--bit-depth", help="8 or 16."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same plate)."),
    as_json: bool = typer.Option(False, "--json", help="Print the truth as JSON."),
) -> None:
    """Write a synthetic plain-weave X-ray plate as a TIFF, and its ground truth as JSON beside it."""
    from artlens.errors import InvalidParameterError
    from artlens.synth import WeaveParams, make_plate, write_plate_tiff

    if bit_depth not in (8, 16):
        raise InvalidParameterError(f"--bit-depth must be 8 or 16, got {bit_depth}")
    if min(height_cm, width_cm, px_per_cm, horizontal, vertical) <= 0:
        raise InvalidParameterError("sizes, resolution and densities must be positive")
    params = WeaveParams(
        height_cm=height_cm, width_cm=width_cm, px_per_cm=px_per_cm,
        horizontal_density=horizontal, vertical_density=vertical,
        horizontal_angle_deg=horizontal_angle, vertical_angle_deg=vertical_angle,
        paint=paint, craquelure=craquelure, noise=noise, bit_depth=bit_depth, seed=seed,
    )
    synthetic = make_plate(params)
    path = write_plate_tiff(out, synthetic)
    truth = {k: round(v, 4) for k, v in synthetic.mean_truth().items()}
    truth_path = path.with_suffix(".truth.json")
    truth_path.write_text(json.dumps({"plate": str(path), "mean_truth": truth}, indent=2) + "\n")
    if as_json:
        echo_json({"plate": str(path), "truth": str(truth_path), "mean_truth": truth})
    else:
        h, w = synthetic.image.shape
        echo(f"wrote {path} ({h}x{w} px, {px_per_cm:g} px/cm, {bit_depth}-bit); truth: {truth_path}")
