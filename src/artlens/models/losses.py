"""Losses: for thread counting, regression of densities (NMAE, MAE, MSE) and the phase network's masked
MSE; for Siamese embeddings (graph encoders, painting verifiers), the one contrastive loss.

References:
    A. Delgado, J. J. Murillo-Fuentes, L. Alba-Carcelén, "Thread Counting in Plain Weave for Old
    Paintings Using Regression Deep Learning Models", Int J Comput Vis, 2025 (NMAE loss).
    R. Hadsell, S. Chopra, Y. LeCun, "Dimensionality reduction by learning an invariant mapping",
    CVPR 2006 (contrastive loss).
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


DISTANCES = ("euclidean", "cosine", "precomputed")
"""Distances :func:`contrastive_loss` can compare embeddings with."""


def pair_distance(a: torch.Tensor, b: torch.Tensor, distance: str = "euclidean") -> torch.Tensor:
    """Distance of paired embeddings ``(P, D), (P, D) -> (P,)``.

    Args:
        a, b: paired embeddings (any leading shape; the last axis is the embedding).
        distance: ``"euclidean"`` (``||a - b||``, in ``[0, 2]`` for unit-length embeddings) or
            ``"cosine"`` (``1 - a . b``: the cosine distance of unit-length embeddings, in ``[0, 2]``;
            the inputs are not normalised again).

    >>> a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    >>> round(float(pair_distance(a, b)), 4), float(pair_distance(a, b, "cosine"))
    (1.4142, 1.0)
    """
    if distance == "euclidean":
        return torch.linalg.vector_norm(a - b, dim=-1)
    if distance == "cosine":
        return 1.0 - (a * b).sum(-1)
    raise InvalidParameterError(f"unknown distance {distance!r}; expected 'euclidean' or 'cosine'")


def contrastive_loss(
    a: torch.Tensor,
    b: torch.Tensor | None,
    same: torch.Tensor,
    *,
    margin: float,
    distance: str = "euclidean",
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Contrastive loss of Hadsell et al. (2006):
    ``same * d^2 + (1 - same) * max(0, margin - d)^2``, averaged (weighted by ``weight`` when given).

    Args:
        a: ``(P, D)`` embeddings, or ``(P,)`` distances with ``distance="precomputed"``.
        b: ``(P, D)`` embeddings paired with ``a``; ``None`` with ``distance="precomputed"``.
        same: ``(P,)`` 1 for pairs that should agree, 0 for pairs that should differ.
        margin: distance beyond which differing pairs cost nothing (the graph encoders train with 1.0
            on euclidean distances, the painting verifier with 0.5 on cosine distances).
        distance: ``"euclidean"``, ``"cosine"`` (see :func:`pair_distance`) or ``"precomputed"``.
        weight: ``(P,)`` pair weights; the loss is then ``sum(weight * per_pair) / sum(weight)``.

    Returns:
        The scalar loss, computed in at least float32.

    >>> d, same = torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0])
    >>> float(contrastive_loss(d, None, same, margin=1.0, distance="precomputed"))
    0.25
    >>> z = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    >>> float(contrastive_loss(z, z, torch.zeros(2), margin=0.5, distance="cosine"))  # identical, yet 'differ'
    0.25
    """
    if distance == "precomputed":
        if b is not None:
            raise InvalidParameterError("distance='precomputed' takes the distances as `a` and no `b`")
        d = a
    elif b is None:
        raise InvalidParameterError(f"distance={distance!r} needs two sets of embeddings (`b` is None)")
    elif distance in DISTANCES:
        d = pair_distance(a, b, distance)
    else:
        raise InvalidParameterError(f"unknown distance {distance!r}; expected one of {', '.join(DISTANCES)}")
    same = same.to(torch.promote_types(d.dtype, torch.float32))
    per = same * d**2 + (1.0 - same) * torch.clamp(margin - d, min=0.0) ** 2
    if weight is None:
        return per.mean()
    return (per * weight).sum() / weight.sum().clamp_min(1e-12)


def info_nce(a: torch.Tensor, b: torch.Tensor, *, temperature: float = 0.1) -> torch.Tensor:
    """Symmetric InfoNCE (NT-Xent) of two views of the same items (Chen et al., SimCLR, 2020): row
    ``i`` of ``a`` should be nearest to row ``i`` of ``b`` among all rows of ``b``, and the reverse.

    Args:
        a, b: ``(B, D)`` L2-normalised embeddings of two views of ``B`` items.
        temperature: divides the cosines before the softmax (smaller: sharper).

    >>> z = torch.eye(3)
    >>> float(info_nce(z, z, temperature=0.1)) < float(info_nce(z, z.roll(1, 0), temperature=0.1))
    True
    """
    if a.shape != b.shape or a.dim() != 2:
        raise InvalidParameterError(
            f"info_nce needs two (B, D) views of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if temperature <= 0:
        raise InvalidParameterError(f"temperature must be positive, got {temperature}", param="temperature")
    logits = (a @ b.T).float() / temperature
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target))


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
