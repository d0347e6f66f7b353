"""``artlens classify``: train, evaluate, apply and blend style / genre / medium classifiers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import typer

from artlens.cli.choices import Balance, BlendMethod, ClassifierVariant, Engine, FeaturePooling, TilePooling
from artlens.cli.common import (
    choice_option,
    device_option,
    devices_option,
    echo,
    echo_batch_summary,
    echo_json,
    parse_devices,
)
from artlens.engine import BatchOptions
from artlens.errors import InputNotFoundError, InvalidParameterError
from artlens.models.backbones import LITE2

app = typer.Typer(help="Classify paintings by style, genre, medium... (two-branch model: composition + brushwork).",
                  no_args_is_help=True)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


@app.command("train")
def train(
    data: Path = typer.Option(..., "--data", help="CSV (path|file + label columns) or folder of <label>/ subfolders."),
    label: str = typer.Option(..., "--label", help="Label column to learn (style, genre, medium...)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory; the model goes to RUN/model."),
    split_column: str = typer.Option("split", "--split-column",
                                     help="CSV column with train/val/test; without it: a seeded stratified split."),
    images: Path | None = typer.Option(None, "--images", help="Folder that the CSV's relative paths resolve against."),
    variant: str = choice_option("two_branch", "--variant", choices=ClassifierVariant,
                                 help="two_branch, global (whole image) or patch (tiles)."),
    backbone: str = typer.Option(LITE2, "--backbone",
                                 help="timm backbone (offline: tf_efficientnet_lite2, tf_efficientnet_lite0)."),
    pretrained: bool = typer.Option(True, "--pretrained/--no-pretrained",
                                    help="ImageNet weights (offline for Lite0 and Lite2); --no-pretrained for tests."),
    feature_pooling: str = choice_option("stats", "--features", choices=FeaturePooling,
                                        help="stats (channel mean/std of mid-level stages) or avg (pooled output)."),
    tiles: int = typer.Option(4, "--tiles", help="Full-resolution tiles per image (cached; all used at evaluation)."),
    tiles_per_step: int = typer.Option(2, "--tiles-per-step", help="Random tiles per image in each training step."),
    crops: int = typer.Option(8, "--crops", help="Crops of the whole image (35-100 % of its area, cached) seen as "
                                                 "the global view in training and averaged by test-time "
                                                 "augmentation; 0: the mirrored view only."),
    max_side: int = typer.Option(1024, "--max-side", help="Long side (px) that images are reduced to before tiling."),
    hidden: int = typer.Option(512, "--hidden", help="Branch width (0: linear on the features)."),
    dropout: float = typer.Option(0.3, "--dropout"),
    pooling: str = choice_option("attention", "--pooling", choices=TilePooling,
                                 help="attention or mean pooling of tiles."),
    epochs: int = typer.Option(60, "--epochs", help="Epochs of the frozen-backbone stage."),
    lr: float = typer.Option(1e-3, "--lr", help="Learning rate of the frozen-backbone stage."),
    stages: str | None = typer.Option(None, "--stages",
                                      help="All stages as UNFREEZE:EPOCHS:LR,... e.g. 0:60:1e-3,2:4:1e-4 "
                                           "(overrides --epochs/--lr)."),
    balance: str = choice_option("loss", "--balance", choices=Balance,
                                 help="loss (class-weighted), sampler (balanced batches) or none."),
    label_smoothing: float = typer.Option(0.1, "--label-smoothing"),
    color_jitter: float = typer.Option(0.0, "--color-jitter",
                                       help="Colour jitter in end-to-end stages (off by default: colour is evidence)."),
    batch_size: int = typer.Option(32, "--batch-size"),
    patience: int = typer.Option(10, "--patience", help="Early stopping: epochs without a better val loss."),
    heads: int = typer.Option(5, "--heads", help="Heads trained with seeds SEED, SEED+1, ... (frozen backbone); "
                                                 "more than one: RUN/model is their average blend."),
    blend_variants: str = typer.Option(
        "auto", "--blend-variants",
        help="Further head variants trained --heads times each on the same features and blended in: a comma "
             "list (global,patch), none, or auto (global and patch beside two_branch heads, else none)."),
    refit: bool = typer.Option(True, "--refit-train-val/--no-refit-train-val",
                               help="Finally retrain each head on train + val for the epochs chosen on val."),
    drop_rare: bool = typer.Option(False, "--drop-rare", help="Leave out classes with fewer than 2 images."),
    tta: bool = typer.Option(True, "--tta/--no-tta", help="Test-time augmentation (mirrored view, crops) in the "
                                                          "evaluation, and saved as the model's default."),
    feature_cache: Path | None = typer.Option(None, "--feature-cache",
                                              help="Folder for the frozen-backbone feature caches (default: RUN)."),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(2, "--workers", help="Image decoding threads / data-loader workers."),
    accelerator: str = typer.Option("auto", "--accelerator"),
    devices: str = devices_option(),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
    report: str = typer.Option("report.html", "--report", help="HTML report, relative to RUN."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Train a classifier for a label column (frozen backbone on cached features, then optional
    end-to-end stages), evaluate it on the test split and write RUN/model and RUN/report.html."""
    from pydantic import ValidationError

    from artlens.paintings.classify import ClassifierConfig
    from artlens.train.classify import ClassifierTrainConfig, Stage, parse_stages, train_classifier
    from artlens.train.runs import TrainerConfig

    if not data.exists():
        raise InputNotFoundError(f"{data}: no such file or folder")
    if epochs < 1 or tiles < 0 or tiles_per_step < 1 or batch_size < 1 or heads < 1 or crops < 0:
        raise InvalidParameterError("--epochs, --heads, --tiles-per-step and --batch-size must be >= 1, --tiles and "
                                    "--crops >= 0")
    try:
        model = ClassifierConfig(classes=[], variant=variant, backbone=backbone, pretrained_backbone=pretrained,
                                 feature_pooling=feature_pooling, n_tiles=tiles, crops=crops, max_side=max_side,
                                 hidden=hidden, dropout=dropout, pooling=pooling)
        cfg = ClassifierTrainConfig(
            data=str(data), label_column=label, split_column=split_column or None,
            images_dir=str(images) if images else None, model=model, tiles_per_step=tiles_per_step,
            balance=cast(Any, balance),
            label_smoothing=label_smoothing,
            color_jitter=color_jitter, batch_size=batch_size, refit_train_val=refit, heads=heads,
            blend_variants=_blend_variants(blend_variants, variant, tiles),
            drop_rare=drop_rare, tta=tta, feature_cache=str(feature_cache) if feature_cache else None, seed=seed,
            workers=workers, trainer=TrainerConfig(patience=patience, accelerator=accelerator,
                                                   devices=parse_devices(devices)),
            stages=parse_stages(stages) if stages else [Stage(unfreeze=0, epochs=epochs, lr=lr)])
    except ValidationError as exc:  # pydantic's range checks and the model's own
        first = exc.errors()[0]
        where = ".".join(str(k) for k in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        raise InvalidParameterError(f"{where}: {msg}" if where else msg) from None
    result = train_classifier(cfg, out, resume=resume, report=report)
    if as_json:
        echo_json(result, default=float)
        return
    what = f"blend of {result['heads']} heads" if result.get("heads", 1) > 1 else "classifier"
    echo(f"{what} saved in {result['model']} ({len(result['classes'])} classes)")
    for name, m in result["evaluation"].items():
        echo(f"  {name}: top-1 {_pct(m.get('top1'))}, top-3 {_pct(m.get('top3'))}, "
                   f"macro-F1 {_pct(m.get('macro_f1'))} on {m['n']} images")
    if result.get("report"):
        echo(f"  report: {result['report']}")


def _blend_variants(text: str, variant: str, tiles: int) -> list[str]:
    """``--blend-variants``: ``auto`` → global and patch heads beside two-branch ones (the measured
    default, ``BENCHMARKS.md``), ``none`` → none, else the comma list as given."""
    if text.strip() == "auto":
        return ["global", "patch"] if variant == "two_branch" and tiles >= 1 else []
    if text.strip() in ("", "none"):
        return []
    return [v.strip() for v in text.split(",") if v.strip()]


@app.command("evaluate")
def evaluate(
    model: Path = typer.Option(..., "--model", help="Training run, its model/ folder, or a blend folder."),
    data: Path = typer.Option(..., "--data", help="CSV or folder of <label>/ subfolders."),
    label: str | None = typer.Option(None, "--label", help="Column with the true labels (default: the trained one)."),
    split: str | None = typer.Option(None, "--split", help="Only the images of this split (e.g. test)."),
    split_column: str = typer.Option("split", "--split-column"),
    images: Path | None = typer.Option(None, "--images", help="Folder that the CSV's relative paths resolve against."),
    tta: bool | None = typer.Option(None, "--tta/--no-tta", help="Test-time augmentation: average over the mirrored "
                                                                 "view and the crops trained with (default: as "
                                                                 "saved with the model)."),
    tiles: str | None = typer.Option(None, "--tiles", help="Tiles per image: a number or 'all' (default: as trained)."),
    report: Path | None = typer.Option(None, "--report", help="HTML report (default: RUN/evaluation-<split>.html)."),
    no_report: bool = typer.Option(False, "--no-report", help="Write no HTML report."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
) -> None:
    """Accuracy, top-k, macro-F1, per-class recall, confusion matrix and most confused pairs."""
    from artlens.paintings.classify import load_classifier
    from artlens.paintings.evaluate import evaluate_classifier

    if not data.exists():
        raise InputNotFoundError(f"{data}: no such file or folder")
    clf = load_classifier(model)
    metrics, items = evaluate_classifier(clf, data, label_column=label, split=split, split_column=split_column,
                                         tta=tta, tiles=tiles, images_dir=str(images) if images else None)
    summary: dict[str, object] = {k: metrics[k] for k in ("top1", "top3", "top5", "macro_f1", "n", "unknown_labels")
                                  if k in metrics}
    summary.update({"split": split, "tta": clf.default_tta if tta is None else tta,
                    "per_class_recall": {c: v["recall"] for c, v in metrics["per_class"].items()},
                    "most_confused": [{k: p[k] for k in ("true", "predicted", "count")}
                                      for p in metrics["most_confused"]],
                    "skipped": len(items["failures"])})
    if not no_report:
        from artlens.report.classify import write_classification_report

        if report is None:
            folder = model if model.is_dir() else model.parent
            report = folder / f"evaluation-{split or 'all'}.html"
        write_classification_report(report, metrics, items["paths"], items["true"], items["probs"], clf.record(),
                                    title="Classifier evaluation", split=split)
        summary["report"] = str(report)
    if as_json:
        echo_json(summary, default=float)
        return
    echo(f"{metrics['n']} images{f' ({split})' if split else ''}: top-1 {_pct(metrics.get('top1'))}, "
               f"top-3 {_pct(metrics.get('top3'))}, macro-F1 {_pct(metrics.get('macro_f1'))}")
    for p in metrics["most_confused"][:5]:
        echo(f"  {p['true']} -> {p['predicted']}: {p['count']}")
    if "report" in summary:
        echo(f"  report: {summary['report']}")


@app.command("predict")
def predict(
    images: list[Path] = typer.Argument(..., help="Painting image(s), or one folder of images (with --out)."),
    model: Path = typer.Option(..., "--model", help="Training run, its model/ folder, or a blend folder."),
    top_k: int = typer.Option(5, "--top-k", help="Classes to list per image."),
    tta: bool | None = typer.Option(None, "--tta/--no-tta", help="Test-time augmentation: average over the mirrored "
                                                                 "view and the crops trained with (default: as "
                                                                 "saved with the model)."),
    tiles: str | None = typer.Option(None, "--tiles", help="Tiles per image: a number or 'all' (default: as trained)."),
    heatmap: Path | None = typer.Option(None, "--heatmap", help="Write Grad-CAM overlays (whole image, tiles) here."),
    report: Path | None = typer.Option(None, "--report", help="Write an HTML report (with Grad-CAM) to this file."),
    out: Path | None = typer.Option(None, "--out", "-o", help="A folder of images: output folder for predictions.csv "
                                                            "(appended as images finish) and skipped.csv."),
    device: str = device_option("the classifier's backbone"),
    engine: str = choice_option("local", "--engine", choices=Engine, checked_by_library=True,
                                help="A folder: local (this machine) or ray."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="--engine ray: auto, ray://HOST:PORT or HOST:PORT to join a running cluster "
                                    "(default: start a local one)."),
    workers: int = typer.Option(1, "--workers", help="A folder: images classified at once (processes or Ray actors)."),
    retry_skipped: bool = typer.Option(False, "--retry-skipped",
                                       help="A folder: classify the images of skipped.csv again."),
    as_json: bool = typer.Option(False, "--json",
                                 help="Print JSON: {path, predictions} for one image, {images: [...]} for several."),
    catalog: str | None = typer.Option(None, "--catalog", help="Catalog: SQLite file or postgresql:// URL "
                                                               "(default $ARTLENS_CATALOG or ./artlens.db)."),
    no_catalog: bool = typer.Option(False, "--no-catalog", help="Do not record the predictions in the catalog."),
) -> None:
    """The most probable classes of each painting, with Grad-CAM explanations on request.

    Given one folder, classifies every image in it (subfolders included) on the batch engine into
    OUT/predictions.csv as they finish (failures in OUT/skipped.csv); a second run resumes and skips
    what is done."""
    from artlens.devices import resolve_device

    options = BatchOptions(engine=engine, workers=workers, ray_address=ray_address, retry_skipped=retry_skipped)
    if len(images) == 1 and images[0].is_dir():
        if out is None:
            raise InvalidParameterError("a folder of images needs --out (the folder for predictions.csv)")
        if heatmap is not None or report is not None:
            raise InvalidParameterError("--heatmap and --report apply to images named one by one, not to a folder")
        _predict_folder(images[0], out, model, top_k=top_k, tta=tta, tiles=tiles, device=device, catalog=catalog,
                        use_catalog=not no_catalog, options=options, as_json=as_json)
        return
    if out is not None or not options.is_default():
        raise InvalidParameterError("--out, --engine, --ray-address, --workers and --retry-skipped apply to a "
                                    "folder of images")
    from artlens.paintings.classify import load_classifier

    for p in images:
        if p.is_dir():
            raise InvalidParameterError(f"{p} is a folder: give one folder alone (with --out), or image files")
        if not p.exists():
            raise InputNotFoundError(f"{p}: no such file")
    if top_k < 1:
        raise InvalidParameterError(f"--top-k must be at least 1, got {top_k}")
    torch_device = resolve_device(device)
    clf = load_classifier(model).to(torch_device)
    rows = clf.predict([str(p) for p in images], top_k=top_k, tta=tta, tiles=tiles)
    if len(rows) == 1 and "error" in rows[0]:
        from artlens.errors import UnreadableInputError

        raise UnreadableInputError(rows[0]["error"])
    maps: dict[str, list[dict[str, str]]] = {}
    if heatmap is not None or report is not None:
        folder = heatmap if heatmap is not None else report.parent / (report.stem + "_gradcam")  # type: ignore[union-attr]
        for r in rows:
            if "error" not in r:
                maps[r["path"]] = _heatmaps(clf, r["path"], folder, tiles)
                r["heatmaps"] = [m["png"] for m in maps[r["path"]]]
    if report is not None:
        from artlens.report.classify import write_prediction_report

        write_prediction_report(report, rows, clf.record(), heatmaps=maps)
    if not no_catalog:
        _record_predictions(catalog, rows, clf.record(), model,
                            {"top_k": top_k, "tta": tta, "tiles": tiles}, report)
    if as_json:
        if len(rows) == 1:
            echo_json({**rows[0], "model": str(model), **({"report": str(report)} if report else {})},
                      default=float)
        else:
            echo_json({"images": rows, "model": str(model), **({"report": str(report)} if report else {})},
                      default=float)
        return
    for r in rows:
        if "error" in r:
            echo(f"{r['path']}: error: {r['error']}")
            continue
        echo(f"{Path(r['path']).name}:")
        for q in r["predictions"]:
            echo(f"  {q['probability']:.3f}  {q['label']}")
        for h in r.get("heatmaps", []):
            echo(f"  Grad-CAM: {h}")
    if report is not None:
        echo(f"report: {report}")


def _predict_folder(source: Path, out: Path, model: Path, *, options: BatchOptions, as_json: bool,
                    **kwargs: Any) -> None:
    """``classify predict`` on a folder: :func:`artlens.paintings.batch.predict_folder`."""
    from artlens.paintings.batch import predict_folder

    def say(image: str, row: dict | None, reason: str | None) -> None:
        if row is not None:
            echo(f"{image}: {row['label']} ({float(row['probability']):.3f})", err=True)
        else:
            echo(f"{image}: skipped: {reason}", err=True)

    report = predict_folder(source, out, model, options=replace(options, on_outcome=None if as_json else say),
                            **kwargs)
    if as_json:
        echo_json(report.to_dict())
        return
    echo_batch_summary(report, noun="images", again="classifies them again",
                       results=("predictions", report.results_csv), duplicate="identical to another image")


def _record_predictions(catalog: str | None, rows: list[dict], model_record: dict, model: Path,
                        settings: dict, report: Path | None) -> None:
    """One catalog analysis per classified image (``catalog_analysis_id`` is added to its row)."""
    import hashlib

    from artlens.catalog.record import Analysis, record

    checksum = model_record.get("model_checksum")
    if checksum is None and model_record.get("members"):  # a blend: its members' weights and how they mix
        key = json.dumps([[m.get("model_checksum") for m in model_record["members"]],
                          model_record.get("method"), model_record.get("weights")])
        checksum = hashlib.sha256(key.encode()).hexdigest()
    done = [r for r in rows if "error" not in r]
    parameters = {"model": str(model.resolve()), "label_column": model_record.get("label_column"),
                  "variant": model_record.get("variant"), "backbone": model_record.get("backbone"), **settings}
    ids = record(catalog, [Analysis("paintings.classify", parameters, dict(r),
                                    [*r.get("heatmaps", []), *([str(report)] if report else [])],
                                    image=r["path"], model_checksum=checksum) for r in done])
    for r, analysis_id in zip(done, ids, strict=True):
        r["catalog_analysis_id"] = analysis_id


def _heatmaps(clf, path: str, folder: Path, tiles: str | None) -> list[dict[str, str]]:  # noqa: ANN001
    import numpy as np

    from artlens.report.overlays import save_heatmap_overlay

    cam = clf.grad_cam(path, n_tiles=tiles)
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    out = []
    for tag, m, what in (("global", cam.global_map, "whole image (global view)"),
                         ("tiles", cam.tile_map, "full-resolution tiles")):
        if m is None:
            continue
        png = folder / f"gradcam_{tag}_{stem}.png"
        save_heatmap_overlay(cam.image, m, png, title=f"Grad-CAM for {cam.label} ({cam.probability:.2f}), {what}",
                             label="contribution to the class score", vmin=0.0, vmax=1.0)
        np.save(png.with_suffix(".npy"), m)
        out.append({"png": str(png), "caption": f"Grad-CAM of {cam.label}, {what}: {png.name}"})
    return out


@app.command("blend")
def blend(
    models: list[Path] = typer.Option(..., "--model", help="Member classifiers (repeat --model)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the blend."),
    method: str = choice_option("average", "--method", choices=BlendMethod,
                                help="average or stacked (fitted on --data --split)."),
    weights: str | None = typer.Option(None, "--weights", help="Comma-separated member weights (average)."),
    data: Path | None = typer.Option(None, "--data", help="Held-out images to fit a stacked blend on."),
    label: str | None = typer.Option(None, "--label"),
    split: str | None = typer.Option("val", "--split", help="Split of --data used to fit the stacked blend."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Combine trained classifiers: average of probabilities, or a stacked logistic regression."""
    from artlens.train.classify import blend_classifiers

    w = None
    if weights:
        try:
            w = [float(v) for v in weights.split(",")]
        except ValueError:
            raise InvalidParameterError(f"--weights must be numbers separated by commas, got {weights!r}") from None
    result = blend_classifiers([str(m) for m in models], out, method=method, weights=w,
                               data=str(data) if data else None, label_column=label, split=split)
    if as_json:
        echo_json(result, default=float)
    else:
        echo(f"blend ({method}) of {len(models)} classifiers saved in {out}")
