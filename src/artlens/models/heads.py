"""Heads of the painting models: the classifier's two-branch head (and backbone + head end to end),
the verifier's metric and pair heads. Registered in the model registry, so
``create_model("two_branch_head", in_dim=..., n_classes=...)`` builds one.

This module is part of the leaf :mod:`artlens.models`: it imports torch, timm (through
:mod:`artlens.models.backbones`) and :mod:`artlens.models` only. The painting code
(:mod:`artlens.paintings.classify`, :mod:`artlens.paintings.verify`) builds these heads from its
saved configs and runs them on features of :mod:`artlens.paintings.features`.

References:
    M. Ilse, J. M. Tomczak, M. Welling, "Attention-based deep multiple instance learning", ICML 2018
    (gated attention pooling of tiles).
    R. Hadsell, S. Chopra, Y. LeCun, "Dimensionality reduction by learning an invariant mapping",
    CVPR 2006 (the metric head's contrastive training).

Example:
    >>> import torch
    >>> from artlens.models import create_model
    >>> head = create_model("two_branch_head", in_dim=8, n_classes=3, hidden=4, attention_dim=2).eval()
    >>> head(torch.zeros(2, 8), torch.zeros(2, 5, 8)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from artlens.errors import InvalidParameterError
from artlens.models.pooling import forward_pooled
from artlens.models.registry import register_model

__all__ = ["POOLINGS", "VARIANTS", "ImageClassifier", "MetricHead", "PairHead", "TwoBranchHead", "image_classifier",
           "metric_head", "pair_head", "two_branch_head"]

VARIANTS = ("two_branch", "global", "patch")
"""Classifier variants: both branches fused, the global view only, the full-resolution tiles only."""

POOLINGS = ("attention", "mean")
"""How the classifier's patch branch pools its tiles."""


# -- classification ------------------------------------------------------------------------------------


class TwoBranchHead(nn.Module):
    """Classifier head over pooled backbone features of the global view and of tiles.

    Each input is standardised with statistics of the training set (buffers, set by
    :meth:`set_normalisation`). The global branch is ``dropout → linear → GELU`` (identity with
    ``hidden = 0``); the patch branch projects every tile the same way and pools them by gated
    attention (Ilse et al. 2018) or by their mean. The branch vectors are concatenated and a linear
    layer gives the class logits.

    Args:
        in_dim: backbone feature size ``D``.
        n_classes: ``K``.
        variant: ``"two_branch"``, ``"global"`` or ``"patch"``.
        hidden: branch width (0: no hidden layer, the standardised features themselves).
        dropout: dropout on the inputs and on the fused vector.
        pooling: ``"attention"`` or ``"mean"`` over tiles.
        attention_dim: width of the attention scorer.

    Shape:
        global_: ``(B, D)``; tiles: ``(B, T, D)`` (``T ≥ 1``); mask: ``(B, T)`` bool, True for real
        tiles (optional) → logits ``(B, K)``.
    """

    g_mean: torch.Tensor
    g_std: torch.Tensor
    t_mean: torch.Tensor
    t_std: torch.Tensor

    def __init__(self, in_dim: int, n_classes: int, *, variant: str = "two_branch", hidden: int = 512,
                 dropout: float = 0.3, pooling: str = "attention", attention_dim: int = 128) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise InvalidParameterError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
        if pooling not in POOLINGS:
            raise InvalidParameterError(f"unknown pooling {pooling!r}; use attention or mean")
        if n_classes < 2:
            raise InvalidParameterError(f"a classifier needs at least 2 classes, got {n_classes}")
        self.variant, self.pooling = variant, pooling
        self.use_global = variant in ("two_branch", "global")
        self.use_tiles = variant in ("two_branch", "patch")
        width = hidden if hidden > 0 else in_dim
        for name in ("g", "t"):
            self.register_buffer(f"{name}_mean", torch.zeros(in_dim))
            self.register_buffer(f"{name}_std", torch.ones(in_dim))
        self.drop_in = nn.Dropout(dropout)
        if self.use_global:
            self.global_branch = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU()) if hidden > 0 else nn.Identity()
        if self.use_tiles:
            self.tile_branch = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU()) if hidden > 0 else nn.Identity()
            if pooling == "attention":
                self.attn_v = nn.Linear(width, attention_dim)
                self.attn_u = nn.Linear(width, attention_dim)
                self.attn_w = nn.Linear(attention_dim, 1)
        self.drop_fused = nn.Dropout(dropout)
        self.classifier = nn.Linear(width * (self.use_global + self.use_tiles), n_classes)

    @torch.no_grad()
    def set_normalisation(self, global_: np.ndarray | torch.Tensor, tiles: np.ndarray | torch.Tensor | None) -> None:
        """Standardise inputs with the mean and std of training features ``(n, D)`` and ``(n, T, D)``."""
        g = torch.as_tensor(np.asarray(global_), dtype=torch.float32)
        self.g_mean.copy_(g.mean(0))
        self.g_std.copy_(g.std(0).clamp_min(1e-3))
        if tiles is not None and np.asarray(tiles).size:
            t = torch.as_tensor(np.asarray(tiles), dtype=torch.float32).reshape(-1, g.shape[1])
            self.t_mean.copy_(t.mean(0))
            self.t_std.copy_(t.std(0).clamp_min(1e-3))

    def tile_weights(self, tiles: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pooling weight of each tile, ``(B, T)``, summing to 1 over the real tiles."""
        h = self._tile_codes(tiles)
        return self._weights(h, mask)

    def _tile_codes(self, tiles: torch.Tensor) -> torch.Tensor:
        return self.tile_branch(self.drop_in((tiles - self.t_mean) / self.t_std))

    def _weights(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.pooling == "attention":
            score = self.attn_w(torch.tanh(self.attn_v(h)) * torch.sigmoid(self.attn_u(h))).squeeze(-1)
        else:
            score = torch.zeros(h.shape[:2], dtype=h.dtype, device=h.device)
        if mask is not None:
            score = score.masked_fill(~mask, float("-inf"))
        return torch.softmax(score, dim=1)

    def forward(self, global_: torch.Tensor | None = None, tiles: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        parts = []
        if self.use_global:
            if global_ is None:
                raise InvalidParameterError("this classifier needs the global view's features")
            parts.append(self.global_branch(self.drop_in((global_ - self.g_mean) / self.g_std)))
        if self.use_tiles:
            if tiles is None or tiles.shape[1] == 0:
                raise InvalidParameterError("this classifier needs tile features (n_tiles >= 1)")
            h = self._tile_codes(tiles)
            parts.append((self._weights(h, mask).unsqueeze(-1) * h).sum(1))
        return self.classifier(self.drop_fused(torch.cat(parts, dim=1)))


class ImageClassifier(nn.Module):
    """Backbone + :class:`TwoBranchHead` end to end on image views.

    Shape:
        views: ``(B, 1 + T, 3, S, S)`` — the global view first, then ``T`` tiles → logits ``(B, K)``.
    """

    def __init__(self, backbone: nn.Module, head: TwoBranchHead, *, pooling: str = "avg",
                 levels: Sequence[str] = ()) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.pooling, self.levels = pooling, list(levels)

    def pooled(self, views: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features ``(B, 1 + T, D)`` of ``(B, 1 + T, 3, S, S)`` views."""
        b, v = views.shape[:2]
        feats, _ = forward_pooled(self.backbone, views.flatten(0, 1), self.pooling, self.levels)
        return feats.reshape(b, v, -1)

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        f = self.pooled(views)
        return self.head(f[:, 0], f[:, 1:] if f.shape[1] > 1 else None)

    def train(self, mode: bool = True) -> ImageClassifier:
        """Train mode, except batch-norm layers whose parameters are all frozen stay in eval mode
        (their running statistics are not updated)."""
        super().train(mode)
        if mode:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    params = list(m.parameters(recurse=False))
                    if params and not any(p.requires_grad for p in params):
                        m.eval()
        return self


# -- verification ----------------------------------------------------------------------------------------


class MetricHead(nn.Module):
    """Projection of multi-crop features to a unit embedding.

    With ``centre`` the features are first centred on a collection's mean feature (buffers
    ``mean_global`` and ``mean_patch``, saved with the weights): the training collection's by
    default, or the collection being examined (:meth:`Verifier.adapt`). Backbone features of paintings
    share a large common component (ReLU outputs, the look of a photographed painting); cosines of
    centred features compare what differs between paintings instead.

    With ``nuisance_dims`` > 0 (needs ``centre``) the head also holds ``(D, k)`` orthonormal bases
    ``nuisance_global`` and ``nuisance_patch`` (:mod:`artlens.paintings.nuisance`): while ``project``
    is true, the centred features lose their components along them (directions in which photography
    moves features). :meth:`Verifier.centre_on <artlens.paintings.verify.Verifier.centre_on>` turns
    ``project`` off when it centres on a background collection, whose own mean removes its photography.

    Shape:
        global_: ``(B, D)``; patch_mean: ``(B, D)`` or ``None`` → ``(B, embed_dim)``, L2-normalised.
    """

    mean_global: torch.Tensor
    mean_patch: torch.Tensor
    nuisance_global: torch.Tensor
    nuisance_patch: torch.Tensor

    def __init__(self, in_dim: int, *, use_patches: bool = True, hidden: int = 512, embed_dim: int = 256,
                 dropout: float = 0.2, centre: bool = False, nuisance_dims: int = 0) -> None:
        super().__init__()
        if nuisance_dims and not centre:
            raise ValueError("a nuisance projection needs centred features (centre=True)")
        self.use_patches = use_patches
        self.centre = centre
        self.nuisance_dims = nuisance_dims
        self.project = nuisance_dims > 0
        if centre:
            self.register_buffer("mean_global", torch.zeros(in_dim))
            self.register_buffer("mean_patch", torch.zeros(in_dim))
        if nuisance_dims:
            self.register_buffer("nuisance_global", torch.zeros(in_dim, nuisance_dims))
            self.register_buffer("nuisance_patch", torch.zeros(in_dim, nuisance_dims))
        d_in = in_dim * (2 if use_patches else 1)
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, embed_dim))

    def set_means(self, mean_global: np.ndarray | torch.Tensor, mean_patch: np.ndarray | torch.Tensor | None) -> None:
        """Centre on these mean features from now on (``mean_patch`` ``None``: no patches, zeros)."""
        if not self.centre:
            raise ValueError("this head was built without centring")
        self.mean_global.copy_(torch.as_tensor(np.asarray(mean_global, np.float32)))
        self.mean_patch.copy_(torch.zeros_like(self.mean_patch) if mean_patch is None
                              else torch.as_tensor(np.asarray(mean_patch, np.float32)))

    def set_nuisance(self, basis_global: np.ndarray | torch.Tensor, basis_patch: np.ndarray | torch.Tensor) -> None:
        """Project these ``(D, nuisance_dims)`` orthonormal bases out of the centred features."""
        if not self.nuisance_dims:
            raise ValueError("this head was built without a nuisance projection")
        self.nuisance_global.copy_(torch.as_tensor(np.asarray(basis_global, np.float32)))
        self.nuisance_patch.copy_(torch.as_tensor(np.asarray(basis_patch, np.float32)))

    def remove_nuisance(self, centred: torch.Tensor, which: str) -> torch.Tensor:
        """Centred ``global`` or ``patch`` features without their nuisance components (as they are while
        ``project`` is off or there is no basis)."""
        if not (self.project and self.nuisance_dims):
            return centred
        basis = self.nuisance_global if which == "global" else self.nuisance_patch
        return centred - (centred @ basis) @ basis.T

    def forward(self, global_: torch.Tensor, patch_mean: torch.Tensor | None = None) -> torch.Tensor:
        if self.centre:
            global_ = self.remove_nuisance(global_ - self.mean_global, "global")
        x = nn.functional.normalize(global_, dim=-1)
        if self.use_patches:
            if patch_mean is None:
                raise ValueError("this head needs patch features")
            if self.centre:
                patch_mean = self.remove_nuisance(patch_mean - self.mean_patch, "patch")
            x = torch.cat([x, nn.functional.normalize(patch_mean, dim=-1)], dim=-1)
        return nn.functional.normalize(self.net(x), dim=-1)


class PairHead(nn.Module):
    """The seed recipe: ``|maps_a − maps_b|`` → global max pooling → dropout → one logit.

    Shape:
        maps_a, maps_b: ``(B, D, h, w)`` → ``(B,)`` logits.
    """

    def __init__(self, in_dim: int, *, dropout: float = 0.3) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_dim, 1)

    def forward(self, maps_a: torch.Tensor, maps_b: torch.Tensor) -> torch.Tensor:
        d = (maps_a - maps_b).abs().amax(dim=(2, 3))
        return self.fc(self.drop(d)).squeeze(-1)


# -- registered builders ------------------------------------------------------------------------------


@register_model(family="paintings")
def two_branch_head(in_dim: int, n_classes: int, **kwargs: Any) -> TwoBranchHead:
    """The painting classifier's head (:class:`TwoBranchHead`) on ``in_dim``-d features."""
    return TwoBranchHead(in_dim, n_classes, **kwargs)


@register_model(family="paintings")
def image_classifier(backbone: str = "test_efficientnet", n_classes: int = 2, *, pretrained: bool = False,
                     pooling: str = "avg", checkpoint: str | None = None, **head_kwargs: Any) -> ImageClassifier:
    """A timm backbone (:func:`~artlens.models.backbones.create_backbone`) and a :class:`TwoBranchHead`
    end to end (:class:`ImageClassifier`); ``pooling`` ``"avg"`` or ``"stats"``."""
    from artlens.models.backbones import create_backbone
    from artlens.models.pooling import feature_levels

    model, prep = create_backbone(backbone, pretrained=pretrained, checkpoint=checkpoint)
    levels = feature_levels(model, pooling)
    with torch.no_grad():
        model.eval()
        dim = int(forward_pooled(model, torch.zeros(1, 3, prep.input_size, prep.input_size), pooling,
                                 levels)[0].shape[1])
    return ImageClassifier(model, TwoBranchHead(dim, n_classes, **head_kwargs), pooling=pooling, levels=levels)


@register_model(family="paintings")
def metric_head(in_dim: int, **kwargs: Any) -> MetricHead:
    """The metric verifier's head (:class:`MetricHead`) on ``in_dim``-d features."""
    return MetricHead(in_dim, **kwargs)


@register_model(family="paintings")
def pair_head(in_dim: int, **kwargs: Any) -> PairHead:
    """The seed Siamese verifier's head (:class:`PairHead`) on ``in_dim``-channel feature maps."""
    return PairHead(in_dim, **kwargs)
