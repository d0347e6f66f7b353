"""The fitted comparison of two canvases' yarn statistics, as a tiny torch module so that it is stored
like every other artlens model (``model.safetensors`` + ``config.json``, :mod:`artlens.models.checkpoint`).

:class:`YarnLogistic` maps the scaled absolute differences ``x`` of two yarn descriptors
(:func:`artlens.canvas.yarn.pair_features`) to a same-roll logit
``w · t(x) + b`` with ``t(x) = log(1 + x)``, weights ``w ≤ 0`` (a larger difference never makes
"same roll" more likely). Its buffers hold the per-feature scales (the typical within-roll
difference) and the values used for features that could not be measured. Inference in
:mod:`artlens.canvas.fabric` reads the tensors back as numpy arrays; nothing here runs per pixel.
"""

from __future__ import annotations

import torch
from torch import nn

from artlens.models.registry import register_model


class YarnLogistic(nn.Module):
    """Logistic regression on transformed, scaled feature differences.

    Buffers: ``scale`` (F,), ``impute`` (F,) in scaled units; parameters: ``weight`` (F,), ``bias`` (1,).
    """

    scale: torch.Tensor
    impute: torch.Tensor

    def __init__(self, n_features: int):
        super().__init__()
        self.register_buffer("scale", torch.ones(n_features, dtype=torch.float64))
        self.register_buffer("impute", torch.zeros(n_features, dtype=torch.float64))
        self.weight = nn.Parameter(torch.zeros(n_features, dtype=torch.float64))
        self.bias = nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """Logits ``(P,)`` of raw absolute differences ``(P, F)`` (NaN where not measured)."""
        x = raw / self.scale
        x = torch.where(torch.isnan(x), self.impute.expand_as(x), x)
        return torch.log1p(x) @ self.weight + self.bias


@register_model(family="fabric")
def yarn_logistic(n_features: int = 1) -> YarnLogistic:
    """Same-roll logit from the differences of two yarn descriptors (:mod:`artlens.canvas.yarn`)."""
    return YarnLogistic(n_features)
