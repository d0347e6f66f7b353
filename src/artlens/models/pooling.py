"""Pooling of backbone feature maps into one vector per view (the part of the feature API that
models need; :mod:`artlens.paintings.features` builds the views and extractors on it).

Pooling kinds (:data:`FEATURE_POOLINGS`):

- ``"avg"`` — the backbone's own pooled features (global average of the last feature maps, 1280-d
  for EfficientNet-Lite0);
- ``"stats"`` — the mean and standard deviation over space of every channel of several
  intermediate stages (for Lite0 the last four block stages, 80 + 112 + 192 + 320 channels →
  1408-d). Channel statistics of mid-level maps describe texture and colour handling rather than
  objects, which is what style is about.

:func:`forward_pooled` also returns the feature maps the vector was pooled from, so Grad-CAM can
weight them by the gradient of a score; :func:`signed_sqrt` is the power normalisation applied on top
when asked.

References:
    L. A. Gatys, A. S. Ecker, M. Bethge, "Image style transfer using convolutional neural networks",
    CVPR 2016 (Gram statistics of feature maps as style).
    X. Huang, S. Belongie, "Arbitrary style transfer in real-time with adaptive instance
    normalization", ICCV 2017 (channel mean and standard deviation as style statistics).
    F. Perronnin, J. Sánchez, T. Mensink, "Improving the Fisher kernel for large-scale image
    classification", ECCV 2010 (power normalisation).

Example:
    >>> import torch
    >>> signed_sqrt(torch.tensor([-4.0, 0.0, 9.0])).round(decimals=4).tolist()
    [-2.0, 0.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from artlens.errors import InvalidParameterError

__all__ = ["FEATURE_POOLINGS", "feature_levels", "forward_pooled", "signed_sqrt"]

FEATURE_POOLINGS = ("avg", "stats")
"""How backbone feature maps become one vector per view: ``"avg"`` (the backbone's pooled output)
or ``"stats"`` (channel means and standard deviations of the last block stages)."""


def feature_levels(backbone: nn.Module, pooling: str = "stats", n: int = 4) -> list[str]:
    """Names of the backbone modules whose outputs ``"stats"`` pooling summarises: the last ``n``
    stages of ``backbone.blocks`` (EfficientNet, MobileNet... in timm), otherwise the last ``n``
    modules of timm's ``feature_info``; ``[]`` for ``"avg"`` pooling.

    Raises:
        InvalidParameterError: unknown pooling, or a backbone without stages for ``"stats"``.
    """
    if pooling not in FEATURE_POOLINGS:
        raise InvalidParameterError(f"unknown feature pooling {pooling!r}; use avg or stats")
    if pooling == "avg":
        return []
    blocks = getattr(backbone, "blocks", None)
    if isinstance(blocks, nn.Sequential) and len(blocks) >= 2:
        return [f"blocks.{i}" for i in range(max(0, len(blocks) - n), len(blocks))]
    info = getattr(backbone, "feature_info", None)
    names: list[str] = []
    if info is not None:
        names = list(info.module_name()) if hasattr(info, "module_name") else [f["module"] for f in info]
    modules = dict(backbone.named_modules())
    names = [name for name in names if name in modules]
    if not names:
        raise InvalidParameterError("this backbone exposes no stages for 'stats' pooling; use avg")
    return names[-n:]


def forward_pooled(backbone: nn.Module, x: torch.Tensor, pooling: str = "avg", levels: Sequence[str] = ()
                   ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One feature vector per view and the feature maps it was pooled from (differentiable).

    Args:
        backbone: a timm model (``forward_features`` / ``forward_head``).
        x: normalised views.
        pooling: ``"avg"`` or ``"stats"`` (:data:`FEATURE_POOLINGS`).
        levels: for ``"stats"``, the modules to summarise (:func:`feature_levels`).

    Shape:
        x: ``(B, 3, S, S)`` → ``(B, D)`` and a list of ``(B, C_l, h_l, w_l)`` maps (the last feature
        maps for ``"avg"``; the outputs of ``levels`` for ``"stats"``, whose per-channel mean and
        standard deviation are concatenated level by level).
    """
    if pooling == "avg":
        maps = backbone.forward_features(x)  # type: ignore[operator]
        pooled: torch.Tensor = backbone.forward_head(maps, pre_logits=True)  # type: ignore[operator]
        return pooled, [maps]
    if pooling != "stats":
        raise InvalidParameterError(f"unknown feature pooling {pooling!r}; use avg or stats")
    modules = dict(backbone.named_modules())
    missing = [n for n in levels if n not in modules]
    if missing or not levels:
        raise InvalidParameterError(f"backbone has no module(s) {missing or 'given'} for 'stats' pooling")
    outs: list[torch.Tensor] = []
    handles = [modules[n].register_forward_hook(lambda _m, _i, o: outs.append(o)) for n in levels]
    try:
        backbone.forward_features(x)  # type: ignore[operator]
    finally:
        for h in handles:
            h.remove()
    stats = [torch.cat([o.mean(dim=(2, 3)), o.flatten(2).std(dim=2, correction=0)], dim=1) for o in outs]
    return torch.cat(stats, dim=1), outs


def signed_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sign(x)·√|x|`` elementwise (power normalisation), with a finite gradient at 0."""
    return x.sign() * (x.abs() + 1e-12).sqrt()
