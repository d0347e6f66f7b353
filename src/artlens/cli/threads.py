"""``artlens threads ...``: thread counting in canvas X-rays."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from artlens.canvas.threads.cnn import CnnParams
from artlens.canvas.threads.grid import DEFAULT_STEP_CM, DEFAULT_WINDOW_CM
from artlens.canvas.threads.run import count_plate_file, summary_line
from artlens.canvas.threads.spectral import SpectralParams
from artlens.cli.choices import CountMethod, DensityLoss, Engine
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
from artlens.devices import check_device_spec, resolve_device
from artlens.engine import BatchOptions
from artlens.errors import InvalidParameterError

app = typer.Typer(help="Count threads in canvas X-rays.", no_args_is_help=True)


@app.command("count")
def count(
    plate: Path = typer.Argument(..., help="X-ray plate: TIFF (8/16-bit, BigTIFF, tiled), PNG, JPEG or BMP; or a "
                                           "folder of plates, or a CSV manifest (columns path, optional px_per_cm)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for summary.json, windows.csv, maps, report "
                                                      "(a folder or CSV: one subfolder per plate, plates.csv)."),
    px_per_cm: float | None = typer.Option(
        None, "--px-per-cm", help="Resolution in px/cm (overrides the file's tags)."
    ),
    window_cm: float | None = typer.Option(
        None, "--window-cm", help=f"Window side, cm (default {DEFAULT_WINDOW_CM:g}; a density regressor such as "
                                  "regVGG counts its own crop size only)."),
    step_cm: float = typer.Option(DEFAULT_STEP_CM, "--step-cm", help="Distance between window centres, cm."),
    band: tuple[float, float] = typer.Option((5.0, 40.0), "--band", help="Density search band MIN MAX, threads/cm."),
    max_angle: float = typer.Option(10.0, "--max-angle", help="Largest thread angle searched, degrees."),
    method: str = choice_option("spectral", "--method", choices=CountMethod,
                                help="spectral (windowed FFT), cnn (learned) or both."),
    model: Path | None = typer.Option(
        None, "--model", help="CNN checkpoint folder, or a shipped model by name "
                              "(threads_phase = phase CNN, the default; threads_regvgg = DL4ART's regVGG)."),
    page: int = typer.Option(0, "--page", help="TIFF page (0 = first)."),
    allow_huge: bool = typer.Option(False, "--allow-huge", help="Accept images with more than 2^31 pixels."),
    catalog: str | None = typer.Option(
        None, "--catalog", help="Catalog: SQLite file or postgresql:// URL (default $ARTLENS_CATALOG or ./artlens.db)."
    ),
    no_catalog: bool = typer.Option(False, "--no-catalog", help="Do not record the analysis in the catalog."),
    no_second_opinion: bool = typer.Option(
        False, "--no-second-opinion", help="--method spectral: skip the phase CNN's check of the plate densities "
                                           "on a central 4 x 4 cm sample (faster; then nothing flags a plate read "
                                           "wrong as a whole)."),
    device: str = device_option("--method cnn or both"),
    engine: str = choice_option("local", "--engine", choices=Engine, checked_by_library=True,
                                help="Folder or CSV: local (this machine) or ray."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="--engine ray: auto, ray://HOST:PORT or HOST:PORT to join a running cluster "
                                    "(default: start a local one)."),
    workers: int = typer.Option(1, "--workers",
                                help="Folder or CSV: plates counted at once (processes or Ray actors)."),
    retry_skipped: bool = typer.Option(False, "--retry-skipped", help="Folder or CSV: count the plates of "
                                                                      "skipped.csv again."),
    as_json: bool = typer.Option(False, "--json", help="Print summary.json on stdout instead of prose."),
) -> None:
    """Map thread densities (threads/cm) and angles (degrees) over a canvas X-ray by windowed 2-D FFT.

    Given a folder or a CSV of plates, counts each into its own subfolder of --out and lists them in
    OUT/plates.csv as they finish (failures in OUT/skipped.csv); a second run resumes and skips what is done."""
    if no_second_opinion and method != "spectral":
        raise InvalidParameterError("--no-second-opinion applies to --method spectral (cnn and both already run "
                                    "two counters and cross-check them)")
    params = SpectralParams(window_cm=DEFAULT_WINDOW_CM if window_cm is None else window_cm, step_cm=step_cm,
                            band=band, max_angle_deg=max_angle)
    check_device_spec(device)  # spectral counting runs on the CPU whatever --device says
    torch_device = resolve_device(device) if method != "spectral" else "cpu"
    cnn = CnnParams(model=model, window_cm=window_cm, step_cm=step_cm, device=torch_device)
    options = BatchOptions(engine=engine, workers=workers, ray_address=ray_address, retry_skipped=retry_skipped)
    if plate.is_dir() or plate.suffix.lower() == ".csv":
        _count_batch(plate, out, params, method=method, cnn=cnn, px_per_cm=px_per_cm, page=page,
                     allow_huge=allow_huge, catalog=catalog, use_catalog=not no_catalog, options=options,
                     as_json=as_json, second_opinion=not no_second_opinion)
        return
    if not options.is_default():
        raise InvalidParameterError("--engine, --ray-address, --workers and --retry-skipped apply to a folder or "
                                    "a CSV of plates")
    if show_progress(as_json):
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("counting", total=None)
            outputs = count_plate_file(
                plate, out, params, method=method, cnn=cnn, px_per_cm=px_per_cm, page=page, allow_huge=allow_huge,
                catalog=catalog, use_catalog=not no_catalog, second_opinion=not no_second_opinion,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    else:
        outputs = count_plate_file(plate, out, params, method=method, cnn=cnn, px_per_cm=px_per_cm, page=page,
                                   allow_huge=allow_huge, catalog=catalog, use_catalog=not no_catalog,
                                   second_opinion=not no_second_opinion)
    if as_json:
        echo_json(outputs.summary)
        return
    s = outputs.summary
    echo(f"{plate.name}: {s['plate_cm'][1]:.2f} cm wide x {s['plate_cm'][0]:.2f} cm high at {s['px_per_cm']:g}"
               f" px/cm, {s['windows']} windows of {s['window_cm']:g} cm every {s['step_cm']:g} cm")
    if s["method"] == "both":
        for name in ("spectral", "cnn"):
            echo(f"[{name}]")
            echo(summary_line(s[name]))
        for d, c in s["disagreement"].items():
            echo(f"{d}: cnn - spectral = {c['mean_difference']:+.2f} threads/cm on average, "
                       f"{c['mean_abs_difference']:.2f} mean absolute, {c['max_abs_difference']:.2f} largest")
    else:
        echo(summary_line(s))
    message = (s.get("cross_check") or s.get("disagreement") or s.get("second_opinion") or {}).get("message")
    if message:
        echo(message)
    if skipped := (s.get("second_opinion") or {}).get("skipped"):
        echo(skipped, err=True)
    echo(f"report: {outputs.files['report_html']}")


def _count_batch(source: Path, out: Path, params: SpectralParams, *, options: BatchOptions, as_json: bool,
                 **kwargs: Any) -> None:
    """``threads count`` on a folder or CSV: :func:`artlens.canvas.threads.batch.count_plates`."""
    from artlens.canvas.threads.batch import count_plates

    def say(plate: str, row: dict | None, reason: str | None) -> None:
        if row is not None:
            echo(f"{plate}: horizontal {float(row['horizontal_threads_per_cm']):.2f}, vertical "
                       f"{float(row['vertical_threads_per_cm']):.2f} threads/cm", err=True)
        else:
            echo(f"{plate}: skipped: {reason}", err=True)

    report = count_plates(source, out, params, options=replace(options, on_outcome=None if as_json else say),
                          **kwargs)
    if as_json:
        echo_json(report.to_dict())
        return
    echo_batch_summary(report, noun="plates", again="counts them again", results=("plates", report.plates_csv))


@app.command("train")
def train(
    out: Path = typer.Option(..., "--out", "-o", help="Run directory (config, metrics.csv, checkpoints, model/)."),
    data: Path | None = typer.Option(None, "--data", help="Labelled dataset folder (from 'threads import-labels')."),
    synthetic: int = typer.Option(0, "--synthetic", help="Also train on N generated synthetic plates."),
    model: str = typer.Option("weavephase", "--model",
                              help="Registered model name: weavephase (phase CNN, the shipped default's kind), "
                                   "regvgg_small (the shipped regVGG's kind), regvgg, timm_regressor, ... "
                                   "Ignored with --init-from (the starting model's architecture is kept)."),
    init_from: Path | None = typer.Option(None, "--init-from",
                                          help="Fine-tune from a checkpoint folder, 'shipped' (the default "
                                               "phase CNN) or a shipped model's name (threads_phase, "
                                               "threads_regvgg)."),
    epochs: int = typer.Option(20, "--epochs", help="Maximum epochs (early stopping on validation loss)."),
    batch_size: int = typer.Option(32, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    loss: str = choice_option("nmae", "--loss", choices=DensityLoss, checked_by_library=True,
                              help="Density regressors: nmae, mae or mse (phase CNNs: masked MSE)."),
    input_px_per_cm: float | None = typer.Option(
        None, "--input-px-per-cm",
        help="Resolution the model sees, px/cm (default: the --init-from model's; 200 for phase CNNs, "
             "100 for regVGG)."),
    crops_per_plate: int = typer.Option(8, "--crops-per-plate", help="Crops cut from each synthetic plate."),
    thread_balance: float = typer.Option(
        0.6, "--thread-balance",
        help="Synthetic plates: make one thread system fainter on half of them, up to this (0..0.9; 0: never)."),
    devices: str = devices_option(),
    accelerator: str = typer.Option("auto", "--accelerator", help="cpu, gpu or auto."),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print the final metrics as JSON."),
) -> None:
    """Train a thread-counting CNN (phase CNN or density regressor) on labelled crops and/or synthetic plates."""
    import logging

    from artlens.train.runs import TrainerConfig
    from artlens.train.threads import TrainConfig, input_defaults, train_thread_counter

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    if init_from is not None and not init_from.exists():
        from artlens.canvas.threads.cnn import DEFAULT_MODEL
        from artlens.models.pretrained import is_pretrained, pretrained_path

        name = DEFAULT_MODEL if str(init_from) == "shipped" else str(init_from)
        if is_pretrained(name, family="threads"):  # shipped weights by tag, e.g. threads_phase
            init_from = pretrained_path(name)
    if not 0 <= thread_balance <= 0.9:
        from artlens.errors import InvalidParameterError

        raise InvalidParameterError(f"--thread-balance must lie in [0, 0.9], not {thread_balance:g}")
    n_devices = parse_devices(devices)
    defaults = input_defaults(model, str(init_from) if init_from else None)
    phase = defaults["task"] == "thread_phase"
    cfg = TrainConfig(
        model=model, data=str(data) if data else None, synthetic=synthetic, batch_size=batch_size,
        lr=lr, loss="phase_mse" if phase else loss, crops_per_plate=crops_per_plate, seed=seed,
        input_px_per_cm=input_px_per_cm or defaults["input_px_per_cm"], crop_cm=defaults["crop_cm"],
        init_from=str(init_from) if init_from else None, thread_balance=thread_balance,
        trainer=TrainerConfig(max_epochs=epochs, devices=n_devices, accelerator=accelerator,
                              strategy=ddp_strategy(n_devices)),
    )
    result = train_thread_counter(cfg, out, resume=resume, enable_progress_bar=show_progress(as_json))
    if as_json:
        echo_json(result)
        return
    m = result["metrics"]
    line = f"trained {m['epochs']} epochs ({m['global_step']} steps); best validation {cfg.loss} {m['best_val_loss']}"
    if not phase:
        line += f"; validation MAE {m.get('val_mae', float('nan')):.3f} threads/cm"
    echo(line)
    echo(f"model: {result['model']}  (use: artlens threads count PLATE --method cnn --model {result['model']})")


from artlens.cli.threads_labels import import_labels, sample  # noqa: E402  (label pipeline, issue 3)

app.command("sample")(sample)
app.command("import-labels")(import_labels)
