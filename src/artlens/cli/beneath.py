"""``artlens beneath ...``: compare a painting's visible image with its infrared / band / X-ray image."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from artlens.cli.choices import BeneathMethod, Engine, Modality, Polarity, Registration, Segmentation
from artlens.cli.common import (
    choice_option,
    ddp_strategy,
    device_option,
    devices_option,
    echo,
    echo_batch_summary,
    echo_json,
    parse_devices,
    show_progress,
)
from artlens.engine import BatchOptions

app = typer.Typer(help="Look beneath the surface: where a second view (IR, band, X-ray) differs from the visible "
                       "image.", no_args_is_help=True)


@app.command("compare")
def compare(
    visible: Path | None = typer.Argument(None, help="Visible RGB image (8-bit PNG, TIFF, JPEG, BMP)."),
    other: Path | None = typer.Argument(None, help="Other view: infrared, spectral band or X-ray (8/16-bit, one "
                                                   "band)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (heatmaps .npy/.png, summary.json, report.html; "
                                                      "with --pairs: one subfolder per pair, pairs.csv)."),
    pairs: Path | None = typer.Option(None, "--pairs", help="CSV with columns visible,other: compare every pair on "
                                                            "the batch engine, resumably (instead of VISIBLE OTHER)."),
    engine: str = choice_option("local", "--engine", choices=Engine, checked_by_library=True,
                                help="--pairs: local (this machine) or ray."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="--engine ray: auto, ray://HOST:PORT or HOST:PORT to join a running cluster "
                                    "(default: start a local one)."),
    workers: int = typer.Option(1, "--workers", help="--pairs: pairs compared at once (processes or Ray actors)."),
    retry_skipped: bool = typer.Option(False, "--retry-skipped", help="--pairs: compare the pairs of skipped.csv "
                                                                      "again."),
    method: str = choice_option("pixel", "--method", choices=BeneathMethod, checked_by_library=True,
                                help="pixel (default: per-pixel multi-scale colour→IR evidence, training-free), "
                                     "gat, gcn (superpixel graph models) or residual."),
    model: Path | None = typer.Option(None, "--model", help="Siamese graph model folder for gat/gcn "
                                                            "(default: the shipped one)."),
    modality: str = choice_option("ir", "--modality", choices=Modality, checked_by_library=True,
                                  help="What OTHER is: ir, xray, band or gray."),
    polarity: str | None = choice_option(None, "--polarity", choices=Polarity, checked_by_library=True,
                                         help="dark (hidden content darker in OTHER, IR) or bright (X-ray); "
                                              "default from --modality."),
    segmentation: str | None = choice_option(None, "--segmentation", choices=Segmentation, checked_by_library=True,
                                             help="Superpixels on: stacked (both views), visible or other."),
    region_px: float | None = typer.Option(None, "--region-px", help="Mean superpixel area, pixels."),
    registration: str = choice_option("auto", "--registration", choices=Registration, checked_by_library=True,
                                      help="auto, feature, intensity or none."),
    nonrigid: bool = typer.Option(False, "--nonrigid", help="Add a non-rigid (optical flow) registration step."),
    max_residual_px: float = typer.Option(2.0, "--max-residual-px", help="Largest accepted registration residual."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    catalog: str | None = typer.Option(None, "--catalog", help="Catalog: SQLite file or postgresql:// URL "
                                                             "(default $ARTLENS_CATALOG or ./artlens.db)."),
    no_catalog: bool = typer.Option(False, "--no-catalog", help="Do not record the analysis in the catalog."),
    seed: int = typer.Option(0, "--seed"),
    device: str = device_option("the gat and gcn graph models; the other methods run on the CPU"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Heatmaps of where OTHER shows what VISIBLE does not explain (hidden or different content).

    With --pairs, compares each visible,other row into its own subfolder of --out and lists them in
    OUT/pairs.csv as they finish (failures in OUT/skipped.csv); a second run resumes and skips what is done."""
    from artlens.beneath.compare import compare_views
    from artlens.errors import InvalidParameterError

    options = BatchOptions(engine=engine, workers=workers, ray_address=ray_address, retry_skipped=retry_skipped)
    if pairs is not None:
        if visible is not None or other is not None:
            raise InvalidParameterError("give VISIBLE OTHER, or --pairs PAIRS.csv, not both")
        _compare_batch(pairs, out, as_json=as_json, method=method, model=model, segmentation=segmentation,
                       region_px=region_px, polarity=polarity, other_modality=modality, registration=registration,
                       nonrigid=nonrigid, max_residual_px=max_residual_px, report=not no_report, seed=seed,
                       device=device, catalog=catalog, use_catalog=not no_catalog, options=options)
        return
    if visible is None or other is None:
        raise InvalidParameterError("give VISIBLE OTHER (two images), or --pairs PAIRS.csv")
    if not options.is_default():
        raise InvalidParameterError("--engine, --ray-address, --workers and --retry-skipped apply to --pairs")
    s = compare_views(visible, other, out, method=method, model=model, segmentation=segmentation, region_px=region_px,
                      polarity=polarity, other_modality=modality, registration=registration, nonrigid=nonrigid,
                      max_residual_px=max_residual_px, report=not no_report, catalog=catalog,
                      use_catalog=not no_catalog, seed=seed, device=device)
    if as_json:
        echo_json(s)
        return
    r = s["registration"]
    reg = "skipped (already aligned)" if r["skipped"] else f"{r['method_used']}, residual {r['residual_px']} px"
    echo(f"{visible.name} vs {other.name}: method {s['method']}, registration {reg}")
    if s.get("pixel") and any(s["pixel"]["shift_px"]):
        echo(f"  pixel map: residual shift removed {s['pixel']['shift_px']} px (dy, dx)")
    d = s["disagreement"]
    if d["n_flagged"]:
        echo(f"  check here: {d['methods'][0]} and {d['methods'][1]} disagree on {d['n_flagged']} of "
                   f"{d['cells_compared']} cells of {d['cell_px']} px: {d['figure']}")
    for name, files in s["heatmaps"].items():
        mark = " (this method's heatmap)" if name == s["heatmap_name"] else ""
        echo(f"  {name}{mark}: {files['npy']}")
    if "report_html" in s["files"]:
        echo(f"report: {s['files']['report_html']}")


def _compare_batch(pairs: Path, out: Path, *, options: BatchOptions, as_json: bool, **kwargs: Any) -> None:
    """``beneath compare --pairs``: :func:`artlens.beneath.batch.compare_pairs`."""
    from artlens.beneath.batch import compare_pairs

    def say(pair: str, row: dict | None, reason: str | None) -> None:
        if row is not None:
            echo(f"{pair}: {row['method']}, registration {row['registration']}, {row['cells_flagged']} cells "
                 "flagged", err=True)
        else:
            echo(f"{pair}: skipped: {reason}", err=True)

    report = compare_pairs(pairs, out, options=replace(options, on_outcome=None if as_json else say), **kwargs)
    if as_json:
        echo_json(report.to_dict())
        return
    echo_batch_summary(report, noun="pairs", again="compares them again", results=("pairs", report.pairs_csv),
                       duplicate="identical to another pair")


@app.command("train")
def train(
    out: Path = typer.Option(..., "--out", "-o", help="Run directory (config, metrics.csv, last.ckpt, model/)."),
    synthetic: int = typer.Option(200, "--synthetic", help="Synthetic training scenes (built-in pigments, jittered)."),
    val_synthetic: int = typer.Option(40, "--val-synthetic", help="Synthetic validation scenes."),
    pairs: Path | None = typer.Option(None, "--pairs", help="CSV visible,other of real band pairs (no masks)."),
    model: str = typer.Option("beneath_gat", "--model", help="Registered model: beneath_gat, beneath_gcn, ..."),
    size: int = typer.Option(256, "--size", help="Side of the synthetic scenes, px."),
    segmentation: str = choice_option("stacked", "--segmentation", choices=Segmentation, checked_by_library=True,
                                      help="Superpixels on: stacked (both views), visible or other."),
    region_px: float = typer.Option(32.0, "--region-px", help="Mean superpixel area, px."),
    head_weight: float = typer.Option(0.0, "--head-weight", help="Weight of a supervised head's BCE (0: none)."),
    epochs: int = typer.Option(40, "--epochs", help="Maximum epochs (early stopping on validation loss)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Scenes per step."),
    lr: float = typer.Option(3e-3, "--lr"),
    prep_workers: int = typer.Option(1, "--prep-workers", help="Processes rendering the synthetic scenes."),
    max_time: str | None = typer.Option(None, "--max-time", help="Stop after DD:HH:MM:SS."),
    devices: str = devices_option(),
    accelerator: str = typer.Option("auto", "--accelerator", help="cpu, gpu or auto."),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print the final metrics as JSON."),
) -> None:
    """Train a Siamese GCN/GAT encoder contrastively on synthetic hidden layers (and real band pairs)."""
    from artlens.errors import InvalidParameterError
    from artlens.train.beneath import BeneathTrainConfig, train_beneath_model
    from artlens.train.runs import TrainerConfig

    if not model.startswith("beneath_"):
        from artlens.models import list_models

        valid = ", ".join(list_models("beneath_*"))
        raise InvalidParameterError(f"--model must be a beneath model; valid models: {valid}")
    n_devices = parse_devices(devices)
    cfg = BeneathTrainConfig(
        model=model, synthetic=synthetic, val_synthetic=val_synthetic, pairs=str(pairs) if pairs else None, size=size,
        segmentation=segmentation, region_px=region_px, head_weight=head_weight,
        batch_size=batch_size, lr=lr, prep_workers=prep_workers, seed=seed,
        trainer=TrainerConfig(max_epochs=epochs, max_time=max_time, devices=n_devices, accelerator=accelerator,
                              strategy=ddp_strategy(n_devices)),
    )
    result = train_beneath_model(cfg, out, resume=resume, enable_progress_bar=show_progress(as_json))
    if as_json:
        echo_json(result)
        return
    m = result["metrics"]
    echo(f"trained {m['epochs']} epochs ({m['global_step']} steps); best validation loss {m['best_val_loss']}; "
               f"validation pixel AP (embedding distance) {m.get('val_pixel_ap')}")
    echo(f"model: {result['model']}  (use: artlens beneath compare VISIBLE OTHER --out DIR "
               f"--model {result['model']})")
