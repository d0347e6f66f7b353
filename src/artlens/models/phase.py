"""Weave-phase networks: a small fully convolutional net that maps an X-ray crop to the phase of its
horizontal threads.

Where regVGG (:mod:`artlens.models.regression`) regresses one number per crop, this network predicts,
for every output pixel, ``(cos 2πφ, sin 2πφ)`` of the *thread phase* ``φ``: ``φ = k`` on the centre
line of the ``k``-th horizontal thread, increasing downwards. Density and angle then follow from the
phase gradient averaged over a window (:mod:`artlens.canvas.threads.phase`): the window's count of
threads per cm, the same quantity a person counts, with the precision of a fit over every pixel. The
vertical threads are the same network on the crop rotated by 90°.

Layout (widths ``a, b, c``; default 16, 32, 64; about 0.18 M parameters): two 3×3 conv-BN-ReLU at
the input resolution, a stride-2 stage (``b``), a stride-2 stage (``c``) with dilated 3×3
convolutions (dilation 2 and 4) for context, then bilinear upsampling to half the input resolution,
concatenation with the stride-2 features, two 3×3 convolutions and a 1×1 head. Output: ``(B, 2,
H/2, W/2)``, pixel ``(i, j)`` centred on input position ``(2i + 0.5, 2j + 0.5)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from artlens.models.registry import register_model


def _cbr(i: int, o: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(o), nn.ReLU(inplace=True))


class WeavePhaseNet(nn.Module):
    """Fully convolutional thread-phase regressor (see the module docstring).

    Args:
        widths: channels of the full-, half- and quarter-resolution stages.
    Shape:
        ``(B, 1, H, W)`` with even ``H, W`` → ``(B, 2, H/2, W/2)``.
    """

    task = "thread_phase"
    output_stride = 2

    def __init__(self, widths: Sequence[int] = (16, 32, 64)):
        super().__init__()
        a, b, c = (int(w) for w in widths)
        self.enc0 = nn.Sequential(_cbr(1, a), _cbr(a, a))
        self.enc1 = nn.Sequential(_cbr(a, b, stride=2), _cbr(b, b))
        self.enc2 = nn.Sequential(_cbr(b, c, stride=2), _cbr(c, c), _cbr(c, c, dilation=2), _cbr(c, c, dilation=4))
        self.dec = nn.Sequential(_cbr(b + c, b), _cbr(b, b))
        self.head = nn.Conv2d(b, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(self.enc0(x))
        e2 = self.enc2(e1)
        up = nn.functional.interpolate(e2, size=e1.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.dec(torch.cat([e1, up], dim=1)))


@register_model(family="threads")
def weavephase(widths: Sequence[int] = (16, 32, 64), input_size: int | None = None) -> WeavePhaseNet:
    """The thread-phase network (about 0.18 M parameters); any even input size."""
    del input_size  # fully convolutional; accepted so that training configs are uniform
    return WeavePhaseNet(widths)


@register_model(family="threads")
def weavephase_test(widths: Sequence[int] = (2, 4, 4), input_size: int | None = None) -> WeavePhaseNet:
    """A tiny thread-phase network for tests."""
    del input_size
    return WeavePhaseNet(widths)
