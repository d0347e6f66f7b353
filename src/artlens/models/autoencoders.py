"""The feature autoencoder network (denoising or sliced-Wasserstein) over standardised backbone feature
vectors, registered as ``feature_autoencoder``.

Part of the leaf :mod:`artlens.models` (torch and :mod:`artlens.models` only). The painting code
(:mod:`artlens.paintings.encoders`) keeps the full configuration (:class:`AutoencoderConfig
<artlens.paintings.encoders.AutoencoderConfig>`: kind, prior, backbone...), saves and loads the
weights, and turns codes into search vectors; the network only needs the sizes and the DAE
corruption of :class:`AutoencoderShape`.

References:
    P. Vincent et al., "Stacked denoising autoencoders", JMLR 2010.
    S. Kolouri et al., "Sliced-Wasserstein autoencoder: an embarrassingly simple generative model",
    ICLR 2019.

Example:
    >>> import torch
    >>> from artlens.models import create_model
    >>> net = create_model("feature_autoencoder", in_dim=12, code_dim=4, hidden=8).eval()
    >>> codes, recon = net(torch.zeros(3, 12))
    >>> tuple(codes.shape), tuple(recon.shape)
    ((3, 4), (3, 12))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from artlens.models.registry import register_model

__all__ = ["AutoencoderShape", "FeatureAutoencoder", "feature_autoencoder"]


class AutoencoderShape(Protocol):
    """What the network reads of a configuration (``AutoencoderConfig`` has these and more)."""

    @property
    def in_dim(self) -> int: ...
    @property
    def code_dim(self) -> int: ...
    @property
    def hidden(self) -> int: ...
    @property
    def noise_std(self) -> float: ...
    @property
    def mask_prob(self) -> float: ...


@dataclass(frozen=True)
class _Shape:
    in_dim: int
    code_dim: int
    hidden: int
    noise_std: float
    mask_prob: float


class FeatureAutoencoder(nn.Module):
    """Encoder and decoder MLPs over standardised feature vectors.

    ``encoder: in_dim → hidden → code_dim``, ``decoder: code_dim → hidden → in_dim`` (Linear,
    LayerNorm, GELU, Linear). The input is standardised with the training set's per-value mean
    and standard deviation (buffers ``mean`` and ``std``, saved with the weights); the decoder
    reconstructs the standardised vector.

    Shape:
        x: ``(B, in_dim)`` → codes ``(B, code_dim)``.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, config: AutoencoderShape) -> None:
        super().__init__()
        self.config = config
        d, h, c = config.in_dim, config.hidden, config.code_dim
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("std", torch.ones(d))
        self.encoder = nn.Sequential(nn.Linear(d, h), nn.LayerNorm(h), nn.GELU(), nn.Linear(h, c))
        self.decoder = nn.Sequential(nn.Linear(c, h), nn.LayerNorm(h), nn.GELU(), nn.Linear(h, d))

    def set_standardisation(self, x: torch.Tensor, eps: float = 1e-6) -> None:
        """Take the input mean and standard deviation from training vectors ``(n, in_dim)``."""
        x = torch.as_tensor(x, dtype=torch.float32)
        self.mean.copy_(x.mean(dim=0))
        self.std.copy_(x.std(dim=0, unbiased=False).clamp_min(eps) if len(x) > 1 else torch.ones_like(self.std))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def corrupt(self, xs: torch.Tensor) -> torch.Tensor:
        """DAE input corruption of standardised vectors: masking, then additive Gaussian noise."""
        cfg = self.config
        if cfg.mask_prob > 0:
            xs = xs * (torch.rand_like(xs) >= cfg.mask_prob)
        if cfg.noise_std > 0:
            xs = xs + cfg.noise_std * torch.randn_like(xs)
        return xs

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Raw (not normalised) codes of feature vectors."""
        return self.encoder(self.standardise(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(codes, reconstruction of the standardised input)``."""
        z = self.encode(x)
        return z, self.decoder(z)


@register_model(family="paintings")
def feature_autoencoder(in_dim: int = 2560, code_dim: int = 128, hidden: int = 512, noise_std: float = 0.2,
                        mask_prob: float = 0.5) -> FeatureAutoencoder:
    """A :class:`FeatureAutoencoder` of these sizes (a search encoder's network, without its backbone
    settings)."""
    return FeatureAutoencoder(_Shape(in_dim=in_dim, code_dim=code_dim, hidden=hidden, noise_std=noise_std,
                                     mask_prob=mask_prob))
