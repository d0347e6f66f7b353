"""``artlens verify`` and ``artlens paintings train-verifier``: same-artist verification."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import typer

from artlens.cli.choices import Engine, FeaturePooling, ValidationArtistsFrom, VerifierKind
from artlens.cli.common import (
    choice_option,
    device_option,
    devices_option,
    echo,
    echo_batch_summary,
    echo_json,
    notice,
    parse_devices,
)
from artlens.devices import place_extractor, resolve_device
from artlens.engine import BatchOptions
from artlens.errors import InputNotFoundError, InvalidParameterError
from artlens.models.backbones import LITE2


def verify(
    a: Path | None = typer.Argument(None, help="First painting (with --reference: the questioned painting, or a "
                                                "folder of questioned paintings)."),
    b: Path | None = typer.Argument(None, help="Second painting."),
    reference: list[Path] | None = typer.Option(None, "--reference",
                                                help="Folder of an artist's reference works (3 or more; ideally 10+). "
                                                     "Repeat to rank candidate artists."),
    impostors: Path | None = typer.Option(None, "--impostors",
                                          help="With --reference: folder of works by other artists to calibrate "
                                               "against (default: the other --reference folders, or with one, the "
                                               "verifier's bank of training works)."),
    pairs: Path | None = typer.Option(None, "--pairs", help="CSV with columns a,b: score many pairs (in one process; "
                                                            "with --out on the batch engine, resumably)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="With --pairs: output folder for pairs.csv (appended as "
                                                            "pairs finish; a rerun resumes) and skipped.csv."),
    engine: str = choice_option("local", "--engine", choices=Engine, checked_by_library=True,
                                help="--pairs --out: local (this machine) or ray."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="--engine ray: auto, ray://HOST:PORT or HOST:PORT to join a running cluster "
                                    "(default: start a local one)."),
    workers: int = typer.Option(1, "--workers", help="--pairs --out: pairs scored at once (processes or Ray actors)."),
    retry_skipped: bool = typer.Option(False, "--retry-skipped", help="--pairs --out: score the pairs of "
                                                                      "skipped.csv again."),
    model: Path | None = typer.Option(None, "--model", help="Verifier folder (a run's model/); default: shipped."),
    heatmap: Path | None = typer.Option(None, "--heatmap", help="Write Grad-CAM overlays of A and B into this folder."),
    report: Path | None = typer.Option(None, "--report", help="Write an HTML report to this file."),
    top: int = typer.Option(5, "--top", help="Closest references to list with --reference."),
    k: int = typer.Option(3, "--k", help="With --reference: score = mean of the k highest similarities to the set."),
    seed: int = typer.Option(0, "--seed", help="With --reference: seed of the bootstrap interval."),
    background: Path | None = typer.Option(None, "--background",
                                           help="Folder or CSV of the collection the paintings come from (many "
                                                "images, many artists; no labels needed), or the --pairs file "
                                                "itself (its distinct images): features are centred on its mean "
                                                "instead of the training collection's."),
    adapt: bool = typer.Option(True, "--adapt/--no-adapt",
                               help="Without --background, centre on the images at hand when there are enough "
                                    "(the --pairs file's distinct images; the reference set and the query): "
                                    "the default. --no-adapt keeps the training collection's mean."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one object; one per line with --pairs or "
                                                       "with --reference)."),
    catalog: str | None = typer.Option(None, "--catalog", help="Catalog database (default $ARTLENS_CATALOG or "
                                                                "./artlens.db)."),
    no_catalog: bool = typer.Option(False, "--no-catalog", help="Do not record the results in the catalog."),
    device: str = device_option("two paintings or --pairs"),
) -> None:
    """Probability that two paintings are by the same artist (calibrated, even prior odds), or attribution of
    questioned paintings against artists' reference works (likelihood ratios calibrated on those works)."""
    from artlens.paintings.verify import load_verifier, verify_pairs

    reference = reference or None
    modes = sum(x is not None for x in (b, reference, pairs))
    if modes != 1 or (pairs is None and a is None) or (pairs is not None and a is not None):
        raise InvalidParameterError("give two paintings A B, or A --reference DIR, or --pairs PAIRS.csv")
    if impostors is not None and reference is None:
        raise InvalidParameterError("--impostors goes with --reference")
    for p in (a, b, *(reference or []), impostors):
        if p is not None and not p.exists():
            raise InputNotFoundError(f"{p}: no such file or folder")
    options = BatchOptions(engine=engine, workers=workers, ray_address=ray_address, retry_skipped=retry_skipped)
    if out is not None or not options.is_default():
        if pairs is None or out is None:
            raise InvalidParameterError("--out, --engine, --ray-address, --workers and --retry-skipped apply to "
                                        "--pairs PAIRS.csv --out OUT")
        if heatmap is not None or report is not None:
            raise InvalidParameterError("--heatmap and --report do not apply to --pairs --out (see OUT/pairs.csv)")
        _pairs_batch(pairs, out, model, background, adapt, device, as_json, None if no_catalog else catalog,
                     not no_catalog, options)
        return
    if reference is not None and a is not None:
        _attribution(a, reference, impostors, model, background, adapt, report, heatmap, top, k, seed, as_json,
                     None if no_catalog else catalog, not no_catalog)
        return
    torch_device = resolve_device(device)
    verifier = load_verifier(model)
    place_extractor(verifier, torch_device)
    if background is not None:
        if pairs is not None and background.resolve() == pairs.resolve():
            from artlens.cli.common import read_pairs_csv

            paths = list(dict.fromkeys(p for pair in read_pairs_csv(pairs) for p in pair))
        else:
            from artlens.paintings.search import load_collection

            paths = load_collection(background).paths
        _adapt_to_background(verifier, paths, background)
    elif adapt:
        _adapt_to_images_at_hand(verifier, a, None, pairs)
        if verifier.scores_unadapted():
            notice("no collection at hand to adapt to (20 or more images): the probability uses the calibration "
                   "for scores centred on the training collection; --background COLLECTION (the paintings' own "
                   "collection, no labels) sharpens it")
    record = verifier.record()
    if pairs is not None:
        from artlens.cli.common import read_pairs_csv

        rows = verify_pairs(verifier, read_pairs_csv(pairs))
        failed = sum("error" in r for r in rows)
        for r in rows:
            if as_json:
                echo_json(r)
            else:
                echo(_pair_prose(r))
        if failed:
            import warnings

            warnings.warn(f"{failed} of {len(rows)} pairs could not be scored (unreadable images)", stacklevel=1)
        if report is not None:
            _report(report, "pairs", rows, record)
        if not no_catalog:
            _record_in_catalog(catalog, [(r["a"], "verify.pair", {"pairs": str(pairs)}, r, [str(report)] if report
                                          else []) for r in rows if "error" not in r], record)
        return
    row = verify_pairs(verifier, [(str(a), str(b))])[0]
    if "error" in row:
        from artlens.errors import UnreadableInputError

        raise UnreadableInputError(row["error"])
    row["verifier"] = record
    if heatmap is not None or report is not None:
        row["heatmaps"] = _heatmaps(verifier, str(a), str(b), heatmap or (report.parent if report else Path(".")))
    if report is not None:
        _report(report, "pair", row, record)
        row["report"] = str(report)
    if not no_catalog:
        _record_in_catalog(catalog, [(str(a), "verify.pair", {}, row, [*row.get("heatmaps", {}).values(),
                                                                        *([str(report)] if report else [])])], record)
    if as_json:
        echo_json(row)
    else:
        echo(_pair_prose(row))
        for tag, png in row.get("heatmaps", {}).items():
            echo(f"  Grad-CAM of {tag}: {png}")


def _pairs_batch(pairs: Path, out: Path, model: Path | None, background: Path | None, adapt: bool, device: str,
                 as_json: bool, catalog: str | None, use_catalog: bool, options: BatchOptions) -> None:
    """``verify --pairs CSV --out OUT``: :func:`artlens.paintings.verify_batch.verify_pairs_batch`."""
    from artlens.cli.common import read_pairs_csv
    from artlens.paintings.verify_batch import verify_pairs_batch

    rows = read_pairs_csv(pairs)
    paths = None
    if background is not None:
        if background.resolve() == pairs.resolve():
            paths = list(dict.fromkeys(p for pair in rows for p in pair))
        else:
            from artlens.paintings.search import load_collection

            paths = load_collection(background).paths

    def say(pair: str, row: dict | None, reason: str | None) -> None:
        if row is not None:
            echo(f"{pair}: same-artist probability {float(row['same_artist_probability']):.3f}", err=True)
        else:
            echo(f"{pair}: skipped: {reason}", err=True)

    report = verify_pairs_batch(rows, out, model, background=paths, background_source=str(background or ""),
                                adapt=adapt, pairs_source=str(pairs), device=device, catalog=catalog,
                                use_catalog=use_catalog,
                                options=replace(options, on_outcome=None if as_json else say))
    if as_json:
        echo_json(report.to_dict())
        return
    notes = []
    c = report.centred_on
    if isinstance(c, dict):
        bg = c["background"]
        notes.append(f"features centred on {bg['images']} images: {bg['source']}"
                     + (" (kept in background.npz from the first run)" if report.background_reused else ""))
    echo_batch_summary(report, noun="pairs", again="scores them again", results=("pairs", report.results_csv),
                       duplicate="the same as another pair", notes=notes)


def _adapt_to_background(verifier, paths: list[str], background: Path) -> None:  # noqa: ANN001
    """Centre on the ``--background`` collection; the library's errors about its images are about that flag."""
    try:
        verifier.adapt(paths, source=str(background))
    except InvalidParameterError as exc:
        raise InvalidParameterError(str(exc), param="background") from None


def _adapt_to_images_at_hand(verifier, a: Path | None, reference: list[str] | None,  # noqa: ANN001
                             pairs: Path | None, source: str = "") -> None:
    """Centre on the collection at hand (issue: adapt by default): the distinct images of a pairs file,
    or the reference sets with the questioned works (and impostors), when at least ``MIN_BACKGROUND``
    of them can be read."""
    from artlens.paintings.verify import MIN_BACKGROUND

    if pairs is not None:
        from artlens.cli.common import read_pairs_csv

        paths = list(dict.fromkeys(p for pair in read_pairs_csv(pairs) for p in pair))
        source = f"{pairs} (its distinct images, automatic)"
    elif reference is not None:
        paths = list(dict.fromkeys(reference))
    else:
        return
    if len(paths) < MIN_BACKGROUND or not getattr(verifier.head, "centre", False):
        return
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = verifier.adapt(paths, source=source)
    except InvalidParameterError:  # too few readable images: keep the training mean, as the record says
        return
    notice(f"features centred on {info['images']} images at hand: {source} (--no-adapt: on the "
           "training collection)")


def _pair_prose(r: dict) -> str:
    if "error" in r:
        return f"{r['a']} vs {r['b']}: error: {r['error']}"
    line = f"{Path(r['a']).name} vs {Path(r['b']).name}: same-artist probability {r['same_artist_probability']:.3f}"
    t = r.get("typicality")
    if t and t["status"] != "typical":
        line += f" ({t['reason']}; {r['probability_as_calibrated']:.3f} as calibrated)"
    return line


def _attribution(q: Path, references: list[Path], impostors: Path | None, model: Path | None,  # noqa: PLR0913
                 background: Path | None, adapt: bool, report: Path | None, heatmap: Path | None, top: int, k: int,
                 seed: int, as_json: bool, catalog: str | None, use_catalog: bool) -> None:
    """``artlens verify Q --reference DIR [--reference DIR2 ...] [--impostors DIR]``."""
    from artlens.paintings.attribution import MIN_REFERENCES, attribute_paths, list_images
    from artlens.paintings.verify import load_verifier

    if k < 1:
        raise InvalidParameterError(f"--k must be 1 or more, got {k}")
    questioned = list_images(q) if q.is_dir() else [str(q)]
    if not questioned:
        raise InvalidParameterError(f"{q}: no images found")
    sets = []
    for ref in references:
        paths = list_images(ref)
        if len(paths) < MIN_REFERENCES:
            raise InvalidParameterError(f"{ref}: {len(paths)} reference images, need at least {MIN_REFERENCES} "
                                        "(ideally 10 or more securely attributed works)")
        sets.append((str(ref), paths))
    imp = list_images(impostors) if impostors is not None else None
    verifier = load_verifier(model)
    if background is not None:
        from artlens.paintings.search import load_collection

        _adapt_to_background(verifier, load_collection(background).paths, background)
    elif adapt:
        at_hand = [p for _, paths in sets for p in paths] + (imp or []) + questioned
        _adapt_to_images_at_hand(verifier, None, at_hand, None,
                                 source="the reference works" + (", impostors" if imp else "")
                                        + " and the questioned works (automatic)")
    results, info = attribute_paths(verifier, questioned, sets, imp, k=k, top=top, seed=seed)
    record = verifier.record()
    _typicality_of_questioned(verifier, results)
    if info["skipped"]:
        import warnings

        warnings.warn(f"{len(info['skipped'])} images could not be read and were left out (first: "
                      f"{info['skipped'][0]['reason']})", stacklevel=1)
    if heatmap is not None or report is not None:
        folder = heatmap or (report.parent if report else Path("."))
        for r in results[:MAX_HEATMAPS]:
            best = r["ranking"][0]["closest"][0]["path"]
            r["heatmaps"] = {**_heatmaps(verifier, r["image"], best, folder), "against": best}
    for r in results:
        r |= {"method": info["method"], "parameters": info["parameters"]}
    if report is not None:
        _report(report, "attribution", {"results": results, "skipped": info["skipped"]}, record)
    if use_catalog:
        params = {"references": [str(x) for x in references], "impostors": str(impostors) if impostors else None,
                  **info["parameters"]}
        _record_in_catalog(catalog, [(r["image"], "verify.attribution", params, r, [str(report)] if report else [])
                                     for r in results], record)
    for r in results:
        if as_json:
            echo_json({**r, "verifier": record})
            continue
        echo(f"{Path(r['image']).name}:")
        for c in r["ranking"]:
            lo, hi = c["interval"]
            echo(f"  LR {c['likelihood_ratio']:.3g} (95 % interval {lo:.3g}-{hi:.3g}), probability "
                       f"{c['probability']:.3f} at even prior odds  {c['reference']}  (closest: "
                       f"{Path(c['closest'][0]['path']).name})")
        t = r.get("typicality")
        if t and t["status"] != "typical":
            echo(f"  note: {t['reason']}")
    if not as_json:
        echo(f"impostors: {results[0]['ranking'][0]['impostors']}" if len(references) == 1 else
                   "impostors: each candidate's, the other candidates' references" if imp is None else
                   f"impostors: {impostors}")


MAX_HEATMAPS = 20
"""Grad-CAM overlays for at most this many questioned works per run (each is a backward pass)."""


def _typicality_of_questioned(verifier, results: list[dict]) -> None:  # noqa: ANN001
    """Typicality of each questioned work for the verifier (informational here: the likelihood ratio is
    calibrated on the reference works themselves)."""
    from artlens.paintings.typicality import assess, explain

    bank = verifier.bank
    if bank is None:
        for r in results:
            r["typicality"] = None
        return
    d = bank.distance(verifier.features_of([r["image"] for r in results]))
    for r, di in zip(results, d, strict=True):
        t = assess(bank, float(di))
        r["typicality"] = {**t, "reason": explain(t["status"], "the questioned work is")}


def _record_in_catalog(catalog: str | None, entries: list[tuple[str, str, dict, dict, list[str]]],
                       record: dict) -> None:
    """One analysis per result: (image path, method, parameters, result, output files)."""
    from artlens import __version__
    from artlens.catalog import Catalog
    from artlens.provenance import sha256_file

    if not entries:
        return
    ids: dict[str, int] = {}
    with Catalog(catalog) as cat:  # None: $ARTLENS_CATALOG or ./artlens.db; a path or a postgresql:// URL
        for image, method, params, result, outputs in entries:
            if image not in ids:
                ids[image] = cat.add_image(image, sha256_file(image), "rgb")
            image_id = ids[image]
            summary = {key: v for key, v in result.items() if key not in ("verifier", "method")}
            cat.add_analysis(image_id, method, {**params, "verifier": record}, __version__, summary, outputs,
                             model_checksum=record.get("model_checksum"))


def _heatmaps(verifier, a: str, b: str, folder: Path) -> dict[str, str]:  # noqa: ANN001
    import numpy as np

    from artlens.paintings.images import load_rgb
    from artlens.paintings.verify import grad_cam_pair
    from artlens.report.overlays import save_heatmap_overlay

    folder.mkdir(parents=True, exist_ok=True)
    cam_a, cam_b, _ = grad_cam_pair(verifier, a, b)
    out = {}
    for tag, path, cam in (("a", a, cam_a), ("b", b, cam_b)):
        img = np.asarray(load_rgb(path).resize((cam.shape[1], cam.shape[0])))
        png = folder / f"gradcam_{tag}_{Path(path).stem}.png"
        save_heatmap_overlay(img, cam, png, title=f"Grad-CAM ({Path(path).name})", label="contribution to score")
        np.save(png.with_suffix(".npy"), cam)
        out[tag] = str(png)
    return out


def _report(path: Path, mode: str, result: object, record: dict) -> None:
    from artlens.report.verification import write_verification_report

    write_verification_report(path, mode, result, record)


def train_verifier(
    data: Path = typer.Option(..., "--data", help="Folder of artist/ subfolders, or a CSV (path|file, artist...)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory."),
    label_column: str = typer.Option("artist", "--label-column", help="Column naming the artist (folder: label)."),
    extra_data: list[Path] | None = typer.Option(
        None, "--extra-data", help="A further artist-labelled collection (folder or CSV) to train on; repeat for "
                                   "several. Its artists already in --data are left out."),
    extra_label_column: str = typer.Option("artist", "--extra-label-column",
                                           help="Column naming the artist in the --extra-data collections."),
    extra_min_images: int = typer.Option(1, "--extra-min-images",
                                         help="Keep a further collection's artists with at least this many images."),
    extra_max_images: int | None = typer.Option(
        None, "--extra-max-images", help="... and at most this many (e.g. 12: an artist with more stays out of "
                                         "training, for measuring)."),
    val_from: str = choice_option("auto", "--val-from", choices=ValidationArtistsFrom,
                                  help="Where the --val-artists come from: extra (the --extra-data collections' "
                                       "artists), all, or auto (extra when --extra-data is given)."),
    adapt_validation: bool | None = typer.Option(
        None, "--adapt-validation/--no-adapt-validation",
        help="Score the validation artists' pairs centred on their own images' mean, as verify --pairs does by "
             "default, to choose the blend and calibrate (default: when they come from an --extra-data "
             "collection)."),
    calibrate_on: Path | None = typer.Option(
        None, "--calibrate-on",
        help="Refit the calibration on this artist-labelled collection (folder or CSV): its artists that the "
             "training collections do not have, scored as verify --pairs scores them. Calibrate on painters and "
             "a collection the verifier never saw."),
    calibrate_label_column: str = typer.Option("artist", "--calibrate-label-column",
                                               help="Column naming the artist in the --calibrate-on collection."),
    calibrate_min_images: int = typer.Option(1, "--calibrate-min-images",
                                             help="Keep the --calibrate-on collection's artists with at least this "
                                                  "many images..."),
    calibrate_max_images: int | None = typer.Option(
        None, "--calibrate-max-images", help="... and at most this many (its other artists stay out, for "
                                             "measuring)."),
    bank_per_artist: int = typer.Option(
        12, "--bank-per-artist",
        help="Typicality bank: at most this many training images per artist (features only; 0: no bank)."),
    kind: str = choice_option("metric", "--kind", choices=VerifierKind,
                              help="metric (contrastive, multi-crop) or siamese (seed recipe)."),
    backbone: str = typer.Option(LITE2, "--backbone",
                                 help="timm backbone (offline: tf_efficientnet_lite2, tf_efficientnet_lite0)."),
    n_patches: int = typer.Option(4, "--patches", help="Full-resolution patches per image (metric kind)."),
    epochs: int = typer.Option(8, "--epochs"),
    pairs_per_epoch: int = typer.Option(16384, "--pairs-per-epoch"),
    unseen_artists: int = typer.Option(0, "--unseen-artists", help="Hold out this many artists for the final test."),
    val_artists: int = typer.Option(5, "--val-artists",
                                    help="Hold out this many artists to choose the blend weight, calibrate and set "
                                         "the typicality thresholds (0: none; then on held-out images of the "
                                         "training artists)."),
    blend: float | None = typer.Option(None, "--blend", help="Fixed weight of the trained head (metric kind)."),
    lr: float = typer.Option(1e-3, "--lr"),
    self_supervised: float | None = typer.Option(
        None, "--self-supervised",
        help="Weight of a self-supervised patch-level loss (metric kind): two halves of a painting's patches are "
             "positives, other paintings negatives (InfoNCE; artist labels unused). 0: off. [default: 0.3 for the "
             "metric kind with 2 or more --patches, else 0]"),
    unlabelled: list[Path] | None = typer.Option(
        None, "--unlabelled",
        help="A collection without labels (folder or CSV) whose paintings join the self-supervised loss beside "
             "the training images; repeat for several. Needs --self-supervised."),
    nuisance_dims: int = typer.Option(
        0, "--nuisance-dims",
        help="Directions of photographic change (lighting, colour cast, varnish, blur, compression: training "
             "images photographed again at random) projected out of the features while a verifier has no "
             "collection to adapt to (metric kind with --centre; 0: none). Measured: no gain on held-out "
             "collections (BENCHMARKS.md)."),
    fine_tune_epochs: int = typer.Option(0, "--fine-tune-epochs",
                                         help="Stage 2: epochs of end-to-end fine-tuning (metric kind; slow on CPU)."),
    fine_tune_blocks: int = typer.Option(2, "--fine-tune-blocks", help="Backbone stages unfrozen in stage 2."),
    feature_cache: Path | None = typer.Option(None, "--feature-cache",
                                              help="Reuse frozen features from this .npz (default RUN/features.npz)."),
    centre: bool = typer.Option(True, "--centre/--no-centre",
                                help="Centre features on the training images' mean (metric kind); lets "
                                     "'verify --background' adapt the verifier to another collection."),
    pooling: str = choice_option("stats", "--pooling", choices=FeaturePooling,
                                help="Backbone features (metric kind): stats (channel mean and std of the last "
                                     "four stages) or avg (the pooled output)."),
    signed_sqrt: bool = typer.Option(True, "--signed-sqrt/--no-signed-sqrt",
                                     help="Power-normalise the features, sign(x)*sqrt(|x|) (metric kind)."),
    seed: int = typer.Option(0, "--seed"),
    accelerator: str = typer.Option("auto", "--accelerator"),
    devices: str = devices_option(),
    resume: bool = typer.Option(False, "--resume"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train a same-artist verifier on a labelled collection (frozen backbone, cached features)."""
    from artlens.paintings.verify import VerifierConfig
    from artlens.train.runs import TrainerConfig
    from artlens.train.verifier import ExtraCollection, VerifierTrainConfig
    from artlens.train.verifier import train_verifier as run_training

    if label_column == "artist" and data.is_dir():
        label_column = "label"
    model = VerifierConfig(kind=cast(Any, kind), backbone=backbone, n_patches=n_patches if kind == "metric" else 0,
                           centre=centre, pooling=pooling, signed_sqrt=signed_sqrt)
    if extra_min_images < 1 or (extra_max_images is not None and extra_max_images < extra_min_images):
        raise InvalidParameterError(f"--extra-min-images must be >= 1 and --extra-max-images at least as large, got "
                                    f"{extra_min_images} and {extra_max_images}")
    if calibrate_min_images < 1 or (calibrate_max_images is not None and calibrate_max_images < calibrate_min_images):
        raise InvalidParameterError(f"--calibrate-min-images must be >= 1 and --calibrate-max-images at least as "
                                    f"large, got {calibrate_min_images} and {calibrate_max_images}")
    if self_supervised is not None and self_supervised < 0:
        raise InvalidParameterError(f"--self-supervised must be >= 0, got {self_supervised}")
    if self_supervised and (kind != "metric" or n_patches < 2):
        raise InvalidParameterError(f"--self-supervised needs the metric kind with 2 or more --patches (two halves "
                                    f"of a painting to compare), got --kind {kind} with {n_patches}")
    if unlabelled and (self_supervised == 0 or kind != "metric" or n_patches < 2):
        raise InvalidParameterError("--unlabelled needs the self-supervised loss: --self-supervised W > 0, the "
                                    "metric kind and 2 or more --patches")
    if bank_per_artist < 0:
        raise InvalidParameterError(f"--bank-per-artist must be >= 0, got {bank_per_artist}")
    if nuisance_dims < 0:
        raise InvalidParameterError(f"--nuisance-dims must be >= 0, got {nuisance_dims}")
    if nuisance_dims and not (kind == "metric" and centre):
        raise InvalidParameterError(f"--nuisance-dims needs the metric kind with --centre (the projection acts on "
                                    f"centred features), got --kind {kind}" + ("" if centre else " --no-centre"))
    if val_from == "extra" and not extra_data:
        raise InvalidParameterError("--val-from extra needs --extra-data")
    for given in [*(extra_data or []), *([calibrate_on] if calibrate_on else []), *(unlabelled or [])]:
        if not given.exists():
            raise InputNotFoundError(f"{given}: no such collection (a folder or a CSV)")
    def column(collection: Path, name: str) -> str:  # a folder's artists are its subfolders: column "label"
        return "label" if name == "artist" and collection.is_dir() else name

    extras = [ExtraCollection(data=str(e), label_column=column(e, extra_label_column), min_images=extra_min_images,
                              max_images=extra_max_images) for e in extra_data or []]
    calibration = (ExtraCollection(data=str(calibrate_on), label_column=column(calibrate_on, calibrate_label_column),
                                   min_images=calibrate_min_images, max_images=calibrate_max_images)
                   if calibrate_on else None)
    cfg = VerifierTrainConfig(data=str(data), label_column=label_column, model=model, extra_data=extras,
                              val_from=cast(Any, val_from), adapt_validation=adapt_validation,
                              calibration_data=calibration, bank_per_artist=bank_per_artist,
                              pairs_per_epoch=pairs_per_epoch, unseen_artists=unseen_artists, val_artists=val_artists,
                              blend=blend, lr=lr, self_supervised=self_supervised, nuisance_dims=nuisance_dims,
                              unlabelled_data=[str(u) for u in unlabelled or []], seed=seed,
                              fine_tune_epochs=fine_tune_epochs, fine_tune_blocks=fine_tune_blocks,
                              feature_cache=str(feature_cache) if feature_cache else None,
                              trainer=TrainerConfig(max_epochs=epochs, accelerator=accelerator,
                                                    devices=parse_devices(devices)))
    result = run_training(cfg, out, resume=resume)
    if as_json:
        echo_json(result)
    else:
        echo(f"verifier saved in {result['model']}")
        ev = result["evaluation"]
        for name, m in ev.items():
            if isinstance(m, dict) and m.get("pairs") and "accuracy" in m:
                echo(f"  {name}: AUC {m['auc']:.3f}, accuracy {m['accuracy']:.3f} on {m['pairs']} pairs")
        config = json.loads((Path(result["model"]) / "config.json").read_text())["config"]
        if "blend_chosen_on" in ev:
            echo(f"  blend {config['blend']} (weight of the trained head) chosen on {ev['blend_chosen_on']}")
        if config.get("calibration"):
            echo(f"  calibrated on {ev['calibrated_on']}")
        bank = ev.get("typicality_bank")
        echo(f"  typicality bank: {bank['images']} training images, thresholds set on {bank['held_out_images']} "
             f"images of held-out artists" if isinstance(bank, dict) else f"  typicality bank: {bank}")
