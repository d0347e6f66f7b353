"""Siamese fabric model: are two X-ray patches woven from the same roll of canvas?

A shared encoder maps each ``patch_cm``-wide patch (resampled to the model's px/cm and min-max
scaled like :func:`artlens.canvas.threads.preprocess.normalise_crops`) to an L2-normalised embedding; a
small head turns ``|e_a - e_b|`` (and ``e_a * e_b``) into one logit, "same roll" when positive. The
head is symmetric in the two patches. :meth:`SiameseFabric.embed` and
:meth:`SiameseFabric.score_embeddings` are separate so that a canvas is encoded once and any number
of patch pairs is scored from the cached embeddings (the head is a few hundred multiply-adds).

The encoder is a regVGG-style stack of :class:`~artlens.models.regression.MultiKernelBlock` stages
(Delgado et al. 2025) ending in global average pooling, or any timm backbone by name
(``backbone="timm:resnet18"``).

References:
    J. J. Murillo-Fuentes, P. M. Olmos, L. Alba-Carcelén, "Canvas comparison with Siamese networks on
    X-ray patches" (arXiv:2506.20272), 2025: Siamese network on X-ray patch pairs, canvas score by
    aggregating many patch pairs.

    A. Delgado, J. J. Murillo-Fuentes, L. Alba-Carcelén, "Thread Counting in Plain Weave for Old
    Paintings Using Regression Deep Learning Models", Int J Comput Vis, 2025 (regVGG blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from artlens.models.registry import register_model
from artlens.models.regression import MultiKernelBlock


class MultiKernelEncoder(nn.Module):
    """Stages of multi-kernel blocks, each ending in 2×2 max-pool, then global average pooling and a
    linear projection to ``embed_dim``.

    Shape:
        ``(B, 1, S, S)`` → ``(B, embed_dim)``.
    """

    def __init__(self, embed_dim: int = 128, blocks: Sequence[int] = (2, 2, 2, 2),
                 filters: Sequence[int] = (8, 16, 32, 32), dropout: float = 0.05):
        super().__init__()
        if len(blocks) != len(filters):
            raise ValueError("blocks and filters need one entry per stage")
        layers: list[nn.Module] = []
        ch = 1
        for n_blocks, f in zip(blocks, filters, strict=True):
            for _ in range(n_blocks):
                block = MultiKernelBlock(ch, f)
                layers.append(block)
                ch = block.out_channels
            layers += [nn.MaxPool2d(2), nn.Dropout(dropout)]
        self.features = nn.Sequential(*layers)
        # mean and max pooling: the mean keeps texture statistics, the max keeps rare features (slubs)
        self.proj = nn.Linear(2 * ch, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return self.proj(torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1))


class TimmEncoder(nn.Module):
    """Any timm backbone (1 input channel, pooled features) with a linear projection to ``embed_dim``."""

    def __init__(self, backbone: str = "resnet18", embed_dim: int = 128, pretrained: bool = False):
        super().__init__()
        import timm

        net: Any = timm.create_model(backbone, pretrained=pretrained, in_chans=1, num_classes=0)
        self.backbone = net
        self.proj = nn.Linear(int(net.num_features), embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.backbone(x))


class SiameseFabric(nn.Module):
    """Shared encoder + symmetric similarity head.

    Args:
        input_size: side of the square input patch, px (= ``patch_cm × input_px_per_cm``).
        backbone: ``"multikernel"`` (regVGG-style blocks) or ``"timm:NAME"`` for a timm backbone.
        embed_dim: embedding width.
        blocks, filters, dropout: the multi-kernel encoder's stages.
        head_hidden: width of the head's hidden layer.
        use_product: also feed ``e_a * e_b`` to the head (besides ``|e_a - e_b|``).
        pretrained: load timm's pretrained weights (needs them cached; artlens never downloads).
    Shape:
        ``forward(a, b)``: ``(B, 1, S, S)`` twice → ``(B,)`` logits; ``embed``: ``(B, 1, S, S)`` →
        ``(B, embed_dim)``; ``score_embeddings``: ``(P, D)`` twice → ``(P,)``.

    Example:
        >>> m = SiameseFabric(24, blocks=(1,), filters=(2,), embed_dim=8, head_hidden=8).eval()
        >>> x = torch.rand(3, 1, 24, 24)
        >>> e = m.embed(x)
        >>> tuple(e.shape), bool(torch.allclose(m.score_embeddings(e, e.flip(0)), m(x, x.flip(0))))
        ((3, 8), True)
    """

    def __init__(self, input_size: int = 100, backbone: str = "multikernel", embed_dim: int = 128,
                 blocks: Sequence[int] = (2, 2, 2, 2), filters: Sequence[int] = (8, 16, 32, 32),
                 dropout: float = 0.05, head_hidden: int = 64, use_product: bool = True, pretrained: bool = False):
        super().__init__()
        self.input_size = int(input_size)
        if backbone == "multikernel":
            self.encoder: nn.Module = MultiKernelEncoder(embed_dim, blocks, filters, dropout)
        elif backbone.startswith("timm:"):
            self.encoder = TimmEncoder(backbone.removeprefix("timm:"), embed_dim, pretrained)
        else:
            raise ValueError(f"backbone must be 'multikernel' or 'timm:NAME', got {backbone!r}")
        self.use_product = use_product
        width = embed_dim * (2 if use_product else 1)
        self.head = nn.Sequential(nn.Linear(width, head_hidden), nn.ReLU(inplace=True), nn.Linear(head_hidden, 1))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings of patches ``(B, 1, S, S)`` → ``(B, D)``."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected patches of shape (B, 1, S, S), got {tuple(x.shape)}")
        return nn.functional.normalize(self.encoder(x), dim=1)

    def score_embeddings(self, ea: torch.Tensor, eb: torch.Tensor) -> torch.Tensor:
        """Same-roll logits of embedding pairs ``(P, D)``, ``(P, D)`` → ``(P,)``; symmetric in a, b."""
        feats = [torch.abs(ea - eb)]
        if self.use_product:
            feats.append(ea * eb)
        return self.head(torch.cat(feats, dim=1)).squeeze(1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        n = a.shape[0]
        e = self.embed(torch.cat([a, b], dim=0))  # one pass, so BatchNorm sees both sides alike
        return self.score_embeddings(e[:n], e[n:])


@register_model(family="fabric")
def siamese_fabric(input_size: int = 100, **kwargs: Any) -> SiameseFabric:
    """Multi-kernel encoder of 4 stages (2 blocks each; 8, 16, 32, 32 filters per branch), 128-d embedding,
    head on ``|e_a − e_b|`` and ``e_a * e_b``; for 1 cm patches at 100 px/cm (about 1.0 M parameters).
    ``backbone="timm:resnet18"`` swaps in any timm backbone."""
    return SiameseFabric(input_size=input_size, **kwargs)


@register_model(family="fabric")
def siamese_fabric_test(input_size: int = 24, **kwargs: Any) -> SiameseFabric:
    """A tiny Siamese fabric model for tests (a few hundred parameters)."""
    cfg: dict[str, Any] = dict(blocks=(1, 1), filters=(2, 4), embed_dim=8, head_hidden=8, dropout=0.0)
    cfg.update(kwargs)
    return SiameseFabric(input_size=input_size, **cfg)
