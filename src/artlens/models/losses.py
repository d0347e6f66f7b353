"""Losses for thread counting: regression of densities (NMAE, MAE, MSE) and the phase network's masked
MSE.

References:
    A. Delgado, J. J. Murillo-Fuentes, L. Alba-Carcelén, "Thread Counting in Plain Weave for Old
    Paintings Using Regression Deep Learning Models", Int J Comput Vis, 2025 (NMAE loss).
"""

from __future__ import annotations

import torch
from torch import nn

from artlens.errors import InvalidParameterError


def nmae(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Normalised mean absolute error ``mean(|pred - target| / target)``: a 0.5 threads/cm error
    weighs twice as much on a 10 threads/cm canvas as on a 20 threads/cm one.

    >>> round(float(nmae(torch.tensor([11.0, 18.0]), torch.tensor([10.0, 20.0]))), 6)
    0.1
    """
    return (torch.abs(pred - target) / target.clamp_min(eps)).mean()


def phase_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Masked mean squared error of a phase network's ``(cos, sin)`` output.

    Args:
        pred: ``(B, 2, h, w)`` predicted ``(cos 2 pi phi, sin 2 pi phi)``.
        target: ``(B, 3, h, w)`` true cosine, sine and a 0/1 weight (0 where the phase is unknown).

    >>> t = torch.zeros(1, 3, 1, 2); t[0, 0] = 1.0; t[0, 2, 0, 0] = 1.0  # only the first pixel counts
    >>> float(phase_mse(torch.zeros(1, 2, 1, 2), t))
    0.5
    """
    w = target[:, 2:3]
    sq = ((pred - target[:, :2]) ** 2 * w).sum()
    return sq / (2 * w.sum()).clamp_min(1.0)


class NMAELoss(nn.Module):
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nmae(pred, target)


class PhaseMSELoss(nn.Module):
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return phase_mse(pred, target)


LOSSES = {"nmae": NMAELoss, "mae": nn.L1Loss, "mse": nn.MSELoss, "phase_mse": PhaseMSELoss}


def get_loss(name: str) -> nn.Module:
    """``"nmae"``, ``"mae"``, ``"mse"`` or ``"phase_mse"`` (for phase networks)."""
    try:
        return LOSSES[name.lower()]()
    except KeyError:
        raise InvalidParameterError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}") from None
