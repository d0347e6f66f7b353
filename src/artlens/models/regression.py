"""Thread-density regressors: DL4ART's regVGG and any timm backbone with a regression head.

Input: ``(B, 1, S, S)`` X-ray sub-crops, min-max scaled to 0..1 per crop; output ``(B,)`` the
density of the *horizontal* threads (threads/cm) at the model's ``px_per_cm``. The vertical density
is the same model on the crop rotated by 90°.

References:
    A. Delgado, J. J. Murillo-Fuentes, L. Alba-Carcelén, "Thread Counting in Plain Weave for Old
    Paintings Using Regression Deep Learning Models", Int J Comput Vis, 2025.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from artlens.models.registry import register_model


class MultiKernelBlock(nn.Module):
    """Three parallel convolutions (3×3, 5×5, 7×7), each with BatchNorm and ReLU, concatenated."""

    def __init__(self, in_ch: int, filters: int, kernels: Sequence[int] = (3, 5, 7)):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_ch, filters, k, padding=k // 2, bias=False), nn.BatchNorm2d(filters),
                          nn.ReLU(inplace=True))
            for k in kernels
        )
        self.out_channels = filters * len(kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)


class RegVGG(nn.Module):
    """regVGG (Delgado et al. 2025): stages of multi-kernel blocks, each stage ending in 2×2 max-pool
    and dropout, then dense layers to one linear output.

    Args:
        input_size: side of the square input, px.
        blocks: blocks per stage (paper: 2, 2, 3, 3, 3).
        filters: filters per branch in each stage (paper: 8, 16, 32, 64, 64).
        dense: widths of the hidden dense layers (paper: 512, 512).
        dropout: after each stage (paper: 0.05).
        global_pool: average-pool the last feature map instead of flattening it (fewer parameters,
            any input size).
    Shape:
        ``(B, 1, input_size, input_size)`` → ``(B,)``.
    """

    def __init__(self, input_size: int = 200, blocks: Sequence[int] = (2, 2, 3, 3, 3),
                 filters: Sequence[int] = (8, 16, 32, 64, 64), dense: Sequence[int] = (512, 512),
                 dropout: float = 0.05, global_pool: bool = False):
        super().__init__()
        if len(blocks) != len(filters):
            raise ValueError("blocks and filters need one entry per stage")
        layers: list[nn.Module] = []
        ch, size = 1, input_size
        for n_blocks, f in zip(blocks, filters, strict=True):
            for _ in range(n_blocks):
                block = MultiKernelBlock(ch, f)
                layers.append(block)
                ch = block.out_channels
            layers += [nn.MaxPool2d(2), nn.Dropout(dropout)]
            size //= 2
        self.features = nn.Sequential(*layers)
        self.global_pool = global_pool
        flat = ch if global_pool else ch * size * size
        head: list[nn.Module] = [nn.Flatten()]
        for width in dense:
            head += [nn.Linear(flat, width), nn.ReLU(inplace=True)]
            flat = width
        head.append(nn.Linear(flat, 1))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        if self.global_pool:
            x = x.mean(dim=(2, 3), keepdim=True)
        return self.head(x).squeeze(1)


class TimmRegressor(nn.Module):
    """Any timm backbone (1 input channel) with a linear regression head."""

    def __init__(self, backbone: str = "resnet18", pretrained: bool = False):
        super().__init__()
        import timm

        net: Any = timm.create_model(backbone, pretrained=pretrained, in_chans=1, num_classes=0)
        self.backbone = net
        self.head = nn.Linear(int(net.num_features), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)).squeeze(1)


@register_model(family="threads")
def regvgg(input_size: int = 200, **kwargs: Any) -> RegVGG:
    """The paper's regVGG: 5 stages (2, 2, 3, 3, 3 blocks; 8–64 filters per branch), dense 512-512-1;
    about 10.2 M parameters at 200 × 200 px."""
    return RegVGG(input_size=input_size, **kwargs)


@register_model(family="threads")
def regvgg_small(input_size: int = 100, **kwargs: Any) -> RegVGG:
    """A smaller regVGG for CPU training and inference: half the filters, 4 stages (2, 2, 2, 2 blocks),
    dense 256-1 over a flattened feature map."""
    cfg: dict[str, Any] = dict(blocks=(2, 2, 2, 2), filters=(8, 16, 32, 32), dense=(256,), dropout=0.05)
    cfg.update(kwargs)
    return RegVGG(input_size=input_size, **cfg)


@register_model(family="threads")
def regvgg_test(input_size: int = 32, **kwargs: Any) -> RegVGG:
    """A tiny regVGG for tests (a few thousand parameters)."""
    cfg: dict[str, Any] = dict(blocks=(1, 1), filters=(2, 4), dense=(8,), dropout=0.0)
    cfg.update(kwargs)
    return RegVGG(input_size=input_size, **cfg)


@register_model(family="threads")
def timm_regressor(backbone: str = "resnet18", pretrained: bool = False, input_size: int = 200) -> TimmRegressor:
    """Any timm backbone by name with a one-unit regression head (``backbone="resnet18"``)."""
    del input_size  # timm backbones pool globally; kept so configs are uniform
    return TimmRegressor(backbone, pretrained=pretrained)
