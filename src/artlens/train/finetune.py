"""What only training needs of the painting classifier: staged unfreezing of the backbone
(:func:`backbone_groups`, :func:`set_trainable`) and the stacked blend's fit (:func:`fit_stacker`).

Inference (:mod:`artlens.paintings.classify`) and evaluation (:mod:`artlens.paintings.evaluate`)
never import this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["backbone_groups", "fit_stacker", "set_trainable"]


def backbone_groups(backbone: nn.Module) -> list[list[str]]:
    """Parameter names of the backbone's layer groups, from the input (stem) to the output.

    Uses timm's coarse group matcher (for EfficientNet: the stem, each block stage, the last
    convolution); a model without one gives one group per top-level child module.
    """
    matcher = getattr(backbone, "group_matcher", None)
    if matcher is not None:
        from timm.models import group_parameters

        groups = group_parameters(backbone, matcher(coarse=True))
        return [list(groups[k]) for k in sorted(groups)]
    out = []
    for name, child in backbone.named_children():
        names = [f"{name}.{n}" for n, _ in child.named_parameters()]
        if names:
            out.append(names)
    return out


def set_trainable(backbone: nn.Module, n_groups: int) -> list[str]:
    """Freeze the backbone except its last ``n_groups`` layer groups (:func:`backbone_groups`).

    ``0`` freezes everything; ``-1`` or more than the number of groups unfreezes everything. The
    batch-norm layers of frozen groups keep their ImageNet statistics (see
    :meth:`artlens.models.heads.ImageClassifier.train`).

    Returns:
        Names of the trainable parameters.
    """
    groups = backbone_groups(backbone)
    n = len(groups) if n_groups < 0 else min(int(n_groups), len(groups))
    train = {name for g in groups[len(groups) - n:] for name in g} if n else set()
    for name, p in backbone.named_parameters():
        p.requires_grad_(name in train)
    return [name for name, p in backbone.named_parameters() if p.requires_grad]


def fit_stacker(member_probs: Sequence[np.ndarray], y: np.ndarray, *, l2: float = 1.0, steps: int = 300
                ) -> dict[str, np.ndarray]:
    """Fit a stacked blend: multinomial logistic regression on the members' log-probabilities.

    Args:
        member_probs: each member's ``(n, K)`` probabilities on held-out images (never the images
            the members were trained on).
        y: ``(n,)`` true class indices.
        l2: weight decay of the regression (strong by default: held-out sets are small).
        steps: L-BFGS iterations.

    Returns:
        ``{"weight": (K, M·K), "bias": (K,)}`` float32, for :func:`stack_probabilities`.
    """
    x = torch.from_numpy(np.concatenate([np.log(np.clip(p, 1e-7, 1.0)) for p in member_probs], axis=1)).float()
    k = member_probs[0].shape[1]
    target = torch.as_tensor(np.asarray(y), dtype=torch.long)
    lin = nn.Linear(x.shape[1], k)
    with torch.no_grad():  # start from the plain average of log-probabilities
        lin.weight.zero_()
        m = len(member_probs)
        for j in range(m):
            lin.weight[:, j * k:(j + 1) * k] += torch.eye(k) / m
        lin.bias.zero_()
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(lin(x), target) + l2 / len(x) * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return {"weight": lin.weight.detach().numpy().astype(np.float32),
            "bias": lin.bias.detach().numpy().astype(np.float32)}
