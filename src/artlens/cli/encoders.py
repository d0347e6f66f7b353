"""``artlens paintings train-encoder``: a denoising or sliced-Wasserstein autoencoder on frozen backbone features."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import typer

from artlens.cli.choices import EncoderKind, Prior
from artlens.cli.common import choice_option, devices_option, echo, echo_json, parse_devices
from artlens.errors import InvalidParameterError


def train_encoder(
    data: Path = typer.Option(..., "--data", help="Folder of images (class sub-folders optional) or a CSV "
                                                  "(path|file column)."),
    kind: str = choice_option("dae", "--kind", choices=EncoderKind,
                              help="dae (denoising) or swae (sliced-Wasserstein)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory."),
    epochs: int = typer.Option(60, "--epochs", help="Most epochs (early stopping on the validation loss)."),
    code_dim: int = typer.Option(128, "--code-dim", help="Length of the code (the search vector)."),
    hidden: int = typer.Option(512, "--hidden", help="Hidden layer width."),
    swd_weight: float = typer.Option(0.3, "--swd-weight", help="SWAE: weight of the sliced Wasserstein term."),
    prior: str = choice_option("gaussian", "--prior", choices=Prior,
                               help="SWAE prior: gaussian (N(0, I)) or sphere (uniform on it)."),
    label_column: str | None = typer.Option(None, "--label-column",
                                            help="Labels for the retrieval check only (default: label or artist)."),
    backbone: str = typer.Option("tf_efficientnet_lite0", "--backbone", help="timm backbone (frozen)."),
    random_backbone: bool = typer.Option(False, "--random-backbone",
                                         help="Random backbone weights (smoke tests; saved with the encoder)."),
    n_patches: int = typer.Option(4, "--patches", help="Full-resolution patches per image (0: global view only)."),
    feature_cache: Path | None = typer.Option(None, "--feature-cache",
                                              help="Frozen-feature cache (.npz; default RUN/features.npz)."),
    lr: float = typer.Option(1e-3, "--lr"),
    seed: int = typer.Option(0, "--seed"),
    accelerator: str = typer.Option("auto", "--accelerator"),
    devices: str = devices_option(),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Train an autoencoder on a collection's frozen backbone features; its codes become an embedder."""
    from artlens.paintings.encoders import AutoencoderConfig
    from artlens.train.encoders import EncoderTrainConfig
    from artlens.train.encoders import train_encoder as run_training
    from artlens.train.runs import TrainerConfig

    if epochs < 1 or code_dim < 1 or hidden < 1 or n_patches < 0 or swd_weight < 0:
        raise InvalidParameterError("--epochs, --code-dim and --hidden must be >= 1, --patches and --swd-weight >= 0")
    model = AutoencoderConfig(kind=cast(Any, kind), backbone=backbone, pretrained_backbone=not random_backbone,
                              n_patches=n_patches, code_dim=code_dim, hidden=hidden, swd_weight=swd_weight, prior=prior)
    cfg = EncoderTrainConfig(data=str(data), label_column=label_column, model=model, lr=lr, seed=seed,
                             feature_cache=None if feature_cache is None else str(feature_cache),
                             trainer=TrainerConfig(max_epochs=epochs, accelerator=accelerator,
                                                   devices=parse_devices(devices)))
    result = run_training(cfg, out, resume=resume)
    if as_json:
        echo_json(result)
        return
    ev = result["evaluation"]
    echo(f"{kind} encoder ({result['code_dim']}-d codes) saved in {result['model']}: trained on "
               f"{result['train']} images, validation loss {ev['val_loss']:.4f} after {ev['epochs'] + 1} epochs")
    r = ev.get("retrieval")
    if r and r["map_at_10_frozen"] is not None and r["map_at_10_codes"] is not None:
        echo(f"  same-{r['label_column']} mAP@10 over {r['images']} images: frozen features "
                   f"{r['map_at_10_frozen']:.3f}, codes {r['map_at_10_codes']:.3f}")
