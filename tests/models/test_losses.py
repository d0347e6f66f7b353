"""The one contrastive loss (artlens.models.losses.contrastive_loss) against the two it replaced."""

from __future__ import annotations

import pytest
import torch

from artlens.errors import InvalidParameterError
from artlens.models.losses import contrastive_loss, pair_distance


def _old_beneath(d, same, margin=1.0, weight=None):
    # artlens.beneath.models.contrastive_loss before issue 22, verbatim
    same = same.to(d.dtype)
    per = same * d**2 + (1.0 - same) * torch.clamp(margin - d, min=0.0) ** 2
    if weight is None:
        return per.mean()
    return (per * weight).sum() / weight.sum().clamp_min(1e-12)


def _old_verify(za, zb, same, margin=0.5):
    # artlens.paintings.verify.contrastive_loss before issue 22, verbatim
    d = 1.0 - (za * zb).sum(-1)
    same = same.float()
    return (same * d.pow(2) + (1 - same) * torch.clamp(margin - d, min=0).pow(2)).mean()


@pytest.mark.parametrize("seed", range(5))
def test_reproduces_both_old_losses_exactly(seed):
    g = torch.Generator().manual_seed(seed)
    za = torch.nn.functional.normalize(torch.randn(64, 16, generator=g), dim=-1)
    zb = torch.nn.functional.normalize(torch.randn(64, 16, generator=g), dim=-1)
    same = (torch.rand(64, generator=g) > 0.5).float()
    weight = torch.rand(64, generator=g)
    d = torch.linalg.vector_norm(za - zb, dim=-1)  # what BeneathEncoder.distance gives
    for margin in (0.3, 1.0, 1.7):
        assert torch.equal(contrastive_loss(d, None, same, margin=margin, distance="precomputed"),
                           _old_beneath(d, same, margin))
        assert torch.equal(contrastive_loss(d, None, same, margin=margin, distance="precomputed", weight=weight),
                           _old_beneath(d, same, margin, weight))
        assert torch.equal(contrastive_loss(za, zb, same, margin=margin, distance="euclidean", weight=weight),
                           _old_beneath(d, same, margin, weight))
        assert torch.equal(contrastive_loss(za, zb, same, margin=margin, distance="cosine"),
                           _old_verify(za, zb, same, margin))
    # gradients agree too
    za.requires_grad_(True)
    g_new = torch.autograd.grad(contrastive_loss(za, zb, same, margin=0.5, distance="cosine"), za)[0]
    g_old = torch.autograd.grad(_old_verify(za, zb, same, 0.5), za)[0]
    assert torch.equal(g_new, g_old)


def test_by_hand():
    d, same = torch.tensor([0.2, 0.5, 1.5]), torch.tensor([1.0, 0.0, 0.0])
    # 0.2^2, (1 - 0.5)^2, 0 (beyond the margin)
    assert float(contrastive_loss(d, None, same, margin=1.0, distance="precomputed")) == pytest.approx(0.29 / 3)
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert float(pair_distance(a, b, "cosine")) == 1.0
    assert float(pair_distance(a, b)) == pytest.approx(2**0.5)


def test_bad_arguments_are_clear_errors():
    d, same = torch.ones(2), torch.ones(2)
    with pytest.raises(InvalidParameterError, match="unknown distance 'manhattan'"):
        contrastive_loss(d, d, same, margin=1.0, distance="manhattan")
    with pytest.raises(InvalidParameterError, match="needs two sets"):
        contrastive_loss(d, None, same, margin=1.0)
    with pytest.raises(InvalidParameterError, match="precomputed"):
        contrastive_loss(d, d, same, margin=1.0, distance="precomputed")
