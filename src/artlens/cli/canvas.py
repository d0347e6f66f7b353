"""``artlens canvas ...``: are canvases cut from the same roll? Density matching and the Siamese fabric model."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from artlens.canvas.clusters import CLUSTER_LINKAGE, CLUSTER_THRESHOLD
from artlens.canvas.threads.grid import DEFAULT_WINDOW_CM
from artlens.cli.choices import Aggregation, Engine, FabricMethod, Linkage, Randomisation
from artlens.cli.common import (
    choice_option,
    ddp_strategy,
    device_option,
    devices_option,
    echo,
    echo_json,
    error_message,
    notice,
    parse_devices,
    read_pairs_csv,
    show_progress,
)
from artlens.devices import resolve_device
from artlens.errors import ArtlensError, InputNotFoundError, InvalidParameterError

app = typer.Typer(help="Compare canvases: same roll of fabric or not.", no_args_is_help=True)


def _comparer(fabric_model: Path | None, px_per_cm: float | None, window_cm: float, step_cm: float,
              permutations: int, patches: int | None, aggregation: str | None, seed: int,
              density_only: bool = False, device: str = "cpu"):  # noqa: ANN202
    """The comparer: ``--fabric-model`` (a folder or a shipped model's name), else the shipped default fabric
    model, else (or with ``--density-only``) density matching alone."""
    from artlens.canvas.collection import CanvasComparer
    from artlens.canvas.threads import SpectralParams

    model = None
    if density_only and fabric_model is not None:
        raise InvalidParameterError("give --fabric-model or --density-only, not both")
    if density_only:
        pass
    elif fabric_model is not None:
        from artlens.canvas.fabric import load_fabric_model

        model = load_fabric_model(fabric_model, device=device)
    else:
        from artlens.canvas.fabric import load_fabric_model

        model = load_fabric_model(device=device)  # the shipped default, DEFAULT_FABRIC_MODEL
    params = SpectralParams(window_cm=window_cm, step_cm=step_cm)
    params.validate()
    return CanvasComparer(model, px_per_cm=px_per_cm, params=params, n_permutations=permutations,
                          n_patches=patches, aggregation=aggregation, seed=seed)


def _prose(r: dict) -> str:
    lines = [f"{Path(r['a']).name} vs {Path(r['b']).name}: same-roll probability {r['same_roll_probability']:.3f} "
             f"(evidence: {r['evidence']})"]
    d, s = r["density_match"], r["fabric"]
    if d is not None:
        lines.append(f"  density match: r = {d['correlation']}, p = {d['p_value']}, offset {d['offset_cm']} cm, "
                     f"orientation {d['orientation']}")
    if s is not None and s["method"] == "siamese":
        lines.append(f"  Siamese: score {s['score']:.3f} (95 % CI {s['ci95'][0]:.3f}-{s['ci95'][1]:.3f}, "
                     f"{s['pairs']} patch pairs, {s['aggregation']})")
    elif s is not None:
        diffs = ", ".join(x["feature"] for x in s.get("largest_differences", []))
        lines.append(f"  {s['method']}: score {s['score']:.3f}" + (f" (largest differences: {diffs})" if diffs else ""))
    lines += [f"  note: {n}" for n in r["notes"]]
    return "\n".join(lines)


@app.command("compare")
def compare(
    a: Path | None = typer.Argument(None, help="First X-ray plate."),
    b: Path | None = typer.Argument(None, help="Second X-ray plate."),
    pairs: Path | None = typer.Option(None, "--pairs", help="CSV with columns a,b: score many pairs in one process."),
    px_per_cm: float | None = typer.Option(None, "--px-per-cm", help="Resolution in px/cm (overrides the files)."),
    fabric_model: Path | None = typer.Option(None, "--fabric-model",
                                             help="Fabric model: RUN/model from 'canvas train' or a shipped model's "
                                                  "name (fabric_default, siamese_v1; default: fabric_default)."),
    density_only: bool = typer.Option(False, "--density-only", help="Density-map matching only, no fabric model."),
    window_cm: float = typer.Option(DEFAULT_WINDOW_CM, "--window-cm", help="Counting window for the density maps, cm."),
    step_cm: float = typer.Option(0.25, "--step-cm", help="Step of the density maps, cm."),
    permutations: int = typer.Option(999, "--permutations", help="Surrogates of the density-match p-value."),
    patches: int | None = typer.Option(None, "--patches",
                                       help="Siamese models: patches per plate (default: calibrated)."),
    aggregation: str | None = choice_option(None, "--aggregation", choices=Aggregation,
                                            help="Siamese models: mean, trimmed or median (default: calibrated)."),
    seed: int = typer.Option(0, "--seed"),
    device: str = device_option("Siamese fabric models"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per pair, one per line)."),
) -> None:
    """Same-roll probability of two plates (or of every pair in --pairs), from density-map matching and
    the fabric model's score (by default the yarn-statistics comparison)."""
    if pairs is None and (a is None or b is None):
        raise InvalidParameterError("give two plates A B, or --pairs PAIRS.csv")
    if pairs is not None and (a is not None or b is not None):
        raise InvalidParameterError("give either two plates or --pairs, not both")
    cmp = _comparer(fabric_model, px_per_cm, window_cm, step_cm, permutations, patches, aggregation, seed,
                    density_only, "cpu" if density_only else resolve_device(device))
    if pairs is None:
        r = cmp.compare(a, b)
        if as_json:
            echo_json(r)
        else:
            echo(_prose(r))
        return
    failed = 0
    for pa, pb in read_pairs_csv(pairs):
        try:
            r = cmp.compare(pa, pb)
        except ArtlensError as exc:
            failed += 1
            r = {"a": pa, "b": pb, "error": error_message(exc), "exit_code": exc.exit_code}
        if as_json:
            echo_json(r)
        elif "error" in r:
            echo(f"{Path(pa).name} vs {Path(pb).name}: error: {r['error']}")
        else:
            echo(_prose(r))
    if failed:
        notice(f"{failed} pair(s) could not be compared (see their 'error' field)")


@app.command("match")
def match(
    source: Path = typer.Argument(..., help="Folder of plates, or a catalog database (its X-ray images)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (pairs.csv, clusters.json, report)."),
    px_per_cm: float | None = typer.Option(None, "--px-per-cm", help="Resolution in px/cm for every plate."),
    fabric_model: Path | None = typer.Option(None, "--fabric-model",
                                             help="Fabric model folder or shipped name (default: fabric_default)."),
    density_only: bool = typer.Option(False, "--density-only", help="Density-map matching only, no fabric model."),
    threshold: float = typer.Option(CLUSTER_THRESHOLD, "--threshold",
                                    help="Same-roll probability above which plates are linked."),
    linkage: str = choice_option(CLUSTER_LINKAGE, "--linkage", choices=Linkage, checked_by_library=True,
                                 help="complete (every pair in a cluster above the threshold), average (the mean "
                                      "between merged groups) or single (a chain of pairs)."),
    window_cm: float = typer.Option(DEFAULT_WINDOW_CM, "--window-cm"),
    step_cm: float = typer.Option(0.25, "--step-cm"),
    permutations: int = typer.Option(199, "--permutations", help="Surrogates per density match (smallest p 1/(N+1))."),
    patches: int | None = typer.Option(None, "--patches"),
    aggregation: str | None = choice_option(None, "--aggregation", choices=Aggregation,
                                            help="Siamese models: patch scores combined how (default: calibrated)."),
    seed: int = typer.Option(0, "--seed"),
    catalog: str | None = typer.Option(None, "--catalog", help="Catalog: SQLite file or postgresql:// URL "
                                                             "(default $ARTLENS_CATALOG or ./artlens.db)."),
    no_catalog: bool = typer.Option(False, "--no-catalog", help="Do not record the results in the catalog."),
    prefilter: float = typer.Option(1.0, "--prefilter",
                                    help="Density-align only pairs whose median densities agree within this, "
                                         "threads/cm (the others: fabric score alone)."),
    no_prefilter: bool = typer.Option(False, "--no-prefilter", help="Density-align every pair."),
    engine: str = choice_option("local", "--engine", choices=Engine, checked_by_library=True,
                                help="local (this machine) or ray."),
    ray_address: str | None = typer.Option(None, "--ray-address",
                                           help="--engine ray: auto, ray://HOST:PORT or HOST:PORT (default: start "
                                                "a local cluster)."),
    workers: int = typer.Option(1, "--workers", help="Plates counted and pairs scored at once."),
    device: str = device_option("Siamese fabric models"),
    as_json: bool = typer.Option(False, "--json", help="Print clusters.json on stdout."),
) -> None:
    """All pairs of a collection: clusters of likely roll-mates, a similarity matrix and an HTML report.

    Each plate is counted and described once; pairs.csv grows as pairs are scored, so a killed match
    resumes where it stopped."""
    from artlens.canvas.collection import match_collection

    torch_device = "cpu" if density_only else resolve_device(device)
    cmp = _comparer(fabric_model, px_per_cm, window_cm, step_cm, permutations, patches, aggregation, seed,
                    density_only, torch_device)
    s = match_collection(source, out, cmp, threshold=threshold, linkage=linkage, catalog=catalog,
                         use_catalog=not no_catalog, prefilter=None if no_prefilter else prefilter, engine=engine,
                         workers=workers, ray_address=ray_address, device=torch_device)
    if as_json:
        echo_json(s)
        return
    echo(f"{len(s['plates'])} plates, {s['n_pairs']} pairs ({s['new_pairs']} new; {s['evidence']}); "
               f"{s['rule']}")
    if s["density_prefilter"]["threads_per_cm"] is not None:
        echo(f"density matching on {s['density_prefilter']['candidates']} candidate pairs "
                   f"({s['density_prefilter']['rule']})")
    for c in s["clusters"]:
        echo(f"cluster {c['id']}: {', '.join(c['members'])} (mean probability {c['mean_probability']:.2f})")
    if not s["clusters"]:
        echo("no likely roll-mates")
    if s["singletons"]:
        echo(f"on its own (linked to no other plate): {', '.join(s['singletons'])}")
    echo(f"report: {s['files']['report_html']}")


@app.command("train")
def train(
    out: Path = typer.Option(..., "--out", "-o", help="Run directory (config, metrics.csv, last.ckpt, model/)."),
    method: str = choice_option("siamese", "--method", choices=FabricMethod,
                                help="siamese (a Siamese network on patches) or yarn (fit the yarn-statistics "
                                     "comparison)."),
    synthetic: int = typer.Option(0, "--synthetic", help="Train on N synthetic rolls."),
    randomisation: str = choice_option("classic", "--randomisation", choices=Randomisation,
                                      help="Siamese: synthetic rolls 'classic' (issue 4) or 'wide' (every yarn "
                                           "factor and imaging condition drawn over wide ranges); yarn: always "
                                           "wide (see --imaging)."),
    l2: float = typer.Option(0.01, "--l2", help="Yarn: L2 penalty of the logistic weights."),
    imaging: str = typer.Option("wide", "--imaging",
                                help="Yarn: imaging of the synthetic cuts, 'wide' or 'wider' (adds interstice "
                                     "lattices, lining canvases and banding)."),
    density_drift: float = typer.Option(0.0, "--density-drift",
                                        help="Yarn: relative sd of each synthetic cut's density about its roll's "
                                             "(a bolt's density drifts along it; e.g. 0.01)."),
    workers: int = typer.Option(2, "--workers", help="Yarn: processes that render and describe the canvases."),
    recalibrate: str | None = typer.Option(
        None, "--recalibrate", help="Yarn: keep this fitted comparison (a model folder, or a shipped one such as "
                                    "fabric_default) and refit only its calibration on the canvases given "
                                    "(--synthetic, --imaging, --data)."),
    data: Path | None = typer.Option(None, "--data", help="CSV with columns plate,roll (optional px_per_cm; yarn: "
                                                          "optional family, rolls of similar density)."),
    model: str = typer.Option("siamese_fabric", "--model", help="Registered model name (siamese_fabric*)."),
    backbone: str | None = typer.Option(None, "--backbone", help="Encoder: multikernel or timm:NAME."),
    epochs: int = typer.Option(20, "--epochs", help="Maximum epochs (early stopping on validation loss)."),
    batch_size: int = typer.Option(32, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr"),
    input_px_per_cm: float = typer.Option(100.0, "--input-px-per-cm", help="Resolution the model sees, px/cm."),
    patch_cm: float = typer.Option(1.0, "--patch-cm", help="Patch side, cm (1-1.5)."),
    canvases_per_roll: int = typer.Option(4, "--canvases-per-roll"),
    canvas_cm: float = typer.Option(4.0, "--canvas-cm", help="Side of the synthetic canvases, cm."),
    patches_per_canvas: int = typer.Option(32, "--patches-per-canvas"),
    pairs_per_epoch: int = typer.Option(2048, "--pairs-per-epoch"),
    calib_patches: int = typer.Option(32, "--calib-patches", help="Patches per canvas for calibration (and default)."),
    devices: str = devices_option(),
    accelerator: str = typer.Option("auto", "--accelerator", help="cpu, gpu or auto."),
    seed: int = typer.Option(0, "--seed"),
    init_from: Path | None = typer.Option(None, "--init-from",
                                          help="Siamese model folder to fine-tune from ('shipped': artlens' own "
                                               "Siamese network, siamese_v1)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print the final metrics as JSON."),
) -> None:
    """Train a fabric model on synthetic rolls and/or a lab's canvases (CSV plate,roll): the Siamese network
    (--method siamese) or the yarn-statistics comparison (--method yarn)."""
    from artlens.train.fabric import FabricTrainConfig, train_fabric_model
    from artlens.train.runs import TrainerConfig

    if method == "yarn":
        from artlens.train.yarn import YarnTrainConfig, train_yarn_model

        if init_from is not None or randomisation != "classic":
            raise InvalidParameterError("--init-from and --randomisation apply to --method siamese (the yarn fit "
                                        "always uses wide randomisation and starts afresh)")

        ycfg = YarnTrainConfig(synthetic=synthetic, canvases_per_roll=canvases_per_roll,
                               data=str(data) if data else None, l2=l2, seed=seed, workers=workers,
                               imaging=imaging, density_drift=density_drift, recalibrate=recalibrate)
        say = (lambda m: print(m, file=sys.stderr)) if show_progress(as_json) else None
        result = train_yarn_model(ycfg, out, resume=resume, progress=say)
        if as_json:
            echo_json(result)
            return
        if recalibrate is not None:
            c, prev = result["calibration"], result["calibration"]["recalibration"]["previous"]
            echo(f"recalibrated on {c['n_pairs']} hard pairs ({c['n_canvases']} canvases): a={c['a']:.3g}, "
                 f"b={c['b']:.3g} (was a={prev.get('a', 1.0):.3g}, b={prev.get('b', 0.0):.3g}); comparison kept")
            echo(f"model: {result['model']}  (use: artlens canvas compare A B --fabric-model {result['model']})")
            return
        m, c = result["metrics"], result["calibration"]
        echo(f"fitted on {m['fit_pairs']} pairs ({m['fit_canvases']} canvases); held-out hard-pair AUC "
                   f"{m['heldout_auc_hard']}; calibration a={c['a']:.3g}, b={c['b']:.3g}")
        echo(f"model: {result['model']}  (use: artlens canvas compare A B --fabric-model {result['model']})")
        return

    if recalibrate is not None:
        raise InvalidParameterError("--recalibrate applies to --method yarn")
    if not model.startswith("siamese"):
        from artlens.models import list_models

        valid = ", ".join(list_models("siamese*"))
        raise InvalidParameterError(f"--model must be a fabric model; valid models: {valid}")
    if init_from is not None and not Path(init_from).exists():
        from artlens.models.pretrained import is_pretrained, pretrained_path

        name = "siamese_v1" if str(init_from) == "shipped" else str(init_from)  # the shipped Siamese network
        if is_pretrained(name, family="fabric"):  # shipped weights by tag
            init_from = pretrained_path(name)
    if init_from is not None and not (Path(init_from) / "config.json").is_file():
        raise InputNotFoundError(f"--init-from {init_from}: not a fabric model folder (no config.json)")
    n_devices = parse_devices(devices)
    cfg = FabricTrainConfig(
        model=model, model_kwargs={"backbone": backbone} if backbone else {}, data=str(data) if data else None,
        synthetic=synthetic, batch_size=batch_size, lr=lr, input_px_per_cm=input_px_per_cm,
        patch_cm=patch_cm, canvases_per_roll=canvases_per_roll, canvas_cm=canvas_cm,
        patches_per_canvas=patches_per_canvas, pairs_per_epoch=pairs_per_epoch, calib_patches=calib_patches,
        seed=seed, randomisation=randomisation, init_from=str(init_from) if init_from else None,
        trainer=TrainerConfig(max_epochs=epochs, devices=n_devices, accelerator=accelerator,
                              strategy=ddp_strategy(n_devices)),
    )
    result = train_fabric_model(cfg, out, resume=resume, enable_progress_bar=show_progress(as_json))
    if as_json:
        echo_json(result)
        return
    m, c = result["metrics"], result["calibration"]
    echo(f"trained {m['epochs']} epochs ({m['global_step']} steps); best validation loss {m['best_val_loss']}; "
               f"held-out canvas AUC {c.get('canvas_auc')}; calibration a={c['a']:.3g}, b={c['b']:.3g}")
    echo(f"model: {result['model']}  (use: artlens canvas compare A B --fabric-model {result['model']})")
