"""``artlens verify`` and ``artlens paintings train-verifier``: same-artist verification."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from artlens.errors import InputNotFoundError, InvalidParameterError


def _echo_json(obj: object) -> None:
    typer.echo(json.dumps(obj))


def verify(
    a: Path | None = typer.Argument(None, help="First painting (or the query with --reference)."),
    b: Path | None = typer.Argument(None, help="Second painting."),
    reference: Path | None = typer.Option(None, "--reference", help="Folder of an artist's reference images."),
    pairs: Path | None = typer.Option(None, "--pairs", help="CSV with columns a,b: score many pairs in one process."),
    model: Path | None = typer.Option(None, "--model", help="Verifier folder (a run's model/); default: shipped."),
    heatmap: Path | None = typer.Option(None, "--heatmap", help="Write Grad-CAM overlays of A and B into this folder."),
    report: Path | None = typer.Option(None, "--report", help="Write an HTML report to this file."),
    top: int = typer.Option(5, "--top", help="Closest references to list with --reference."),
    background: Path | None = typer.Option(None, "--background",
                                           help="Folder or CSV of the collection the paintings come from (many "
                                                "images, many artists; no labels needed), or the --pairs file "
                                                "itself (its distinct images): features are centred on its mean "
                                                "instead of the training collection's."),
    adapt: bool = typer.Option(True, "--adapt/--no-adapt",
                               help="Without --background, centre on the images at hand when there are enough "
                                    "(the --pairs file's distinct images; the reference set and the query): "
                                    "the default. --no-adapt keeps the training collection's mean."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one object; one per line with --pairs)."),
) -> None:
    """Probability that two paintings are by the same artist (calibrated, even prior odds)."""
    from artlens.paintings.verify import load_verifier, verify_against_reference, verify_pairs

    modes = sum(x is not None for x in (b, reference, pairs))
    if modes != 1 or (pairs is None and a is None) or (pairs is not None and a is not None):
        raise InvalidParameterError("give two paintings A B, or A --reference DIR, or --pairs PAIRS.csv")
    for p in (a, b):
        if p is not None and not p.exists():
            raise InputNotFoundError(f"{p}: no such file")
    verifier = load_verifier(model)
    if background is not None:
        if pairs is not None and background.resolve() == pairs.resolve():
            from artlens.cli.common import read_pairs_csv

            paths = list(dict.fromkeys(p for pair in read_pairs_csv(pairs) for p in pair))
        else:
            from artlens.paintings.search import load_collection

            paths = load_collection(background).paths
        verifier.adapt(paths, source=str(background))
    elif adapt:
        _adapt_to_images_at_hand(verifier, a, reference, pairs)
    record = verifier.record()
    if pairs is not None:
        from artlens.cli.common import read_pairs_csv

        rows = verify_pairs(verifier, read_pairs_csv(pairs))
        failed = sum("error" in r for r in rows)
        for r in rows:
            typer.echo(json.dumps(r) if as_json else _pair_prose(r))
        if failed:
            import warnings

            warnings.warn(f"{failed} of {len(rows)} pairs could not be scored (unreadable images)", stacklevel=1)
        if report is not None:
            _report(report, "pairs", rows, record)
        return
    if reference is not None:
        from artlens.paintings.images import is_image_file

        if not reference.is_dir():
            raise InvalidParameterError(f"{reference}: --reference must be a folder of images")
        refs = sorted(str(p) for p in reference.rglob("*") if p.is_file() and is_image_file(p))
        if not refs:
            raise InvalidParameterError(f"{reference}: no images found")
        result = verify_against_reference(verifier, str(a), refs, top=top)
        result["verifier"] = record
        if report is not None:
            _report(report, "reference", result, record)
        if as_json:
            _echo_json(result)
        else:
            pr = result["probabilities"]
            typer.echo(f"{Path(str(a)).name} vs {result['references']} references: median probability "
                       f"{pr['median']:.3f} (min {pr['min']:.3f}, max {pr['max']:.3f}); "
                       f"{100 * result['fraction_above_0.5']:.0f} % above 0.5")
            for c in result["closest"]:
                typer.echo(f"  {c['probability']:.3f}  {c['path']}")
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
    if as_json:
        _echo_json(row)
    else:
        typer.echo(_pair_prose(row))
        for k, v in row.get("heatmaps", {}).items():
            typer.echo(f"  Grad-CAM of {k}: {v}")


def _adapt_to_images_at_hand(verifier, a: Path | None, reference: Path | None,  # noqa: ANN001
                             pairs: Path | None) -> None:
    """Centre on the collection at hand (issue: adapt by default): the distinct images of a pairs file,
    or a reference set with its query, when at least ``MIN_BACKGROUND`` of them can be read."""
    from artlens.paintings.verify import MIN_BACKGROUND

    if pairs is not None:
        from artlens.cli.common import read_pairs_csv

        paths = list(dict.fromkeys(p for pair in read_pairs_csv(pairs) for p in pair))
        source = f"{pairs} (its distinct images, automatic)"
    elif reference is not None and reference.is_dir():
        from artlens.paintings.images import is_image_file

        paths = sorted(str(p) for p in reference.rglob("*") if p.is_file() and is_image_file(p)) + [str(a)]
        source = f"{reference} and the query (automatic)"
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
    typer.echo(f"notice: features centred on {info['images']} images at hand: {source} (--no-adapt: on the "
               "training collection)", err=True)


def _pair_prose(r: dict) -> str:
    if "error" in r:
        return f"{r['a']} vs {r['b']}: error: {r['error']}"
    return f"{Path(r['a']).name} vs {Path(r['b']).name}: same-artist probability {r['same_artist_probability']:.3f}"


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
    kind: str = typer.Option("metric", "--kind", help="metric (contrastive, multi-crop) or siamese (seed recipe)."),
    backbone: str = typer.Option("tf_efficientnet_lite0", "--backbone"),
    n_patches: int = typer.Option(4, "--patches", help="Full-resolution patches per image (metric kind)."),
    epochs: int = typer.Option(40, "--epochs"),
    pairs_per_epoch: int = typer.Option(16384, "--pairs-per-epoch"),
    unseen_artists: int = typer.Option(0, "--unseen-artists", help="Hold out this many artists for the final test."),
    val_artists: int = typer.Option(0, "--val-artists",
                                    help="Hold out this many artists to choose the blend weight and calibrate."),
    blend: float | None = typer.Option(None, "--blend", help="Fixed weight of the trained head (metric kind)."),
    lr: float = typer.Option(1e-3, "--lr"),
    fine_tune_epochs: int = typer.Option(0, "--fine-tune-epochs",
                                         help="Stage 2: epochs of end-to-end fine-tuning (metric kind; slow on CPU)."),
    fine_tune_blocks: int = typer.Option(2, "--fine-tune-blocks", help="Backbone stages unfrozen in stage 2."),
    feature_cache: Path | None = typer.Option(None, "--feature-cache",
                                              help="Reuse frozen features from this .npz (default RUN/features.npz)."),
    centre: bool = typer.Option(True, "--centre/--no-centre",
                                help="Centre features on the training images' mean (metric kind); lets "
                                     "'verify --background' adapt the verifier to another collection."),
    pooling: str = typer.Option("stats", "--pooling",
                                help="Backbone features (metric kind): stats (channel mean and std of the last "
                                     "four stages) or avg (the pooled output)."),
    signed_sqrt: bool = typer.Option(True, "--signed-sqrt/--no-signed-sqrt",
                                     help="Power-normalise the features, sign(x)*sqrt(|x|) (metric kind)."),
    seed: int = typer.Option(0, "--seed"),
    accelerator: str = typer.Option("auto", "--accelerator"),
    devices: str = typer.Option("1", "--devices"),
    resume: bool = typer.Option(False, "--resume"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train a same-artist verifier on a labelled collection (frozen backbone, cached features)."""
    from artlens.train.verifier import VerifierTrainConfig
    from artlens.train.verifier import train_verifier as run_training

    if kind not in ("metric", "siamese"):
        raise InvalidParameterError(f"--kind must be metric or siamese, got {kind!r}")
    if pooling not in ("avg", "stats"):
        raise InvalidParameterError(f"--pooling must be avg or stats, got {pooling!r}")
    if label_column == "artist" and data.is_dir():
        label_column = "label"
    cfg = VerifierTrainConfig(data=str(data), label_column=label_column, kind=kind, backbone=backbone,
                              n_patches=n_patches if kind == "metric" else 0, max_epochs=epochs,
                              pairs_per_epoch=pairs_per_epoch, unseen_artists=unseen_artists, val_artists=val_artists,
                              blend=blend, lr=lr, seed=seed, fine_tune_epochs=fine_tune_epochs,
                              fine_tune_blocks=fine_tune_blocks, centre=centre, pooling=pooling,
                              signed_sqrt=signed_sqrt,
                              feature_cache=str(feature_cache) if feature_cache else None,
                              accelerator=accelerator, devices=int(devices) if devices.isdigit() else devices)
    result = run_training(cfg, out, resume=resume)
    if as_json:
        _echo_json(result)
    else:
        typer.echo(f"verifier saved in {result['model']}")
        ev = result["evaluation"]
        for name, m in ev.items():
            if isinstance(m, dict) and m.get("pairs"):
                typer.echo(f"  {name}: AUC {m['auc']:.3f}, accuracy {m['accuracy']:.3f} on {m['pairs']} pairs")
        if "blend_chosen_on" in ev:
            blend = json.loads((Path(result["model"]) / "config.json").read_text())["config"]["blend"]
            typer.echo(f"  blend {blend} (weight of the trained head) chosen on {ev['blend_chosen_on']}")
