"""Siamese graph encoders (GCN or GAT) of the superpixel graphs of two views of a painting.

One :class:`BeneathEncoder` embeds the visible graph and the other graph of a
:class:`~artlens.beneath.graphs.GraphPair` *with the same weights*: both graphs share the node
feature layout (:data:`~artlens.beneath.graphs.FEATURE_NAMES`, 23 columns), so where the other view
is what the visible colours predict, a region's two embeddings coincide. Layers: input
standardisation (feature mean and standard deviation stored as buffers), a linear projection,
``layers`` graph convolutions with residual connections and layer normalisation, and a linear output
normalised to unit length.

- ``conv="gcn"``: :class:`torch_geometric.nn.GCNConv` (Kipf and Welling 2017), the edge weights in
  its symmetric normalisation.
- ``conv="gat"``: :class:`torch_geometric.nn.GATv2Conv` (Brody et al. 2022, the dynamic-attention
  form of Veličković et al. 2018's GAT), the edge weight as a one-dimensional edge feature of the
  attention logits; self-loops get weight 1. ``embed(..., return_attention=True)`` returns the true
  attention coefficients of every layer, which sum to one over the incoming edges of each node.

The heatmap of a region is the distance of its two embeddings (:meth:`BeneathEncoder.distance`).
Training (:mod:`artlens.train.beneath`) uses :func:`artlens.models.losses.contrastive_loss`
(Hadsell et al. 2006) on pairs of region embeddings: a region's two views are a positive pair where
the views agree, a negative pair where the synthetic ground truth puts hidden content; other regions,
other images and the other view of a shifted crop give further negatives. An optional supervised
head (``head=True``) scores ``[|z_v - z_o|, z_v * z_o]`` with a small MLP.

This module imports torch only; PyTorch Geometric is imported (quietly, :func:`pyg`) when an encoder
is built. The graphs themselves are built in :mod:`artlens.beneath.graphs`.

Registered models: ``beneath_gcn``, ``beneath_gat`` and the tiny ``beneath_gcn_test`` /
``beneath_gat_test`` for tests; shipped weights: the tags ``beneath_gat.beneath_default`` and
``beneath_gcn.beneath_gcn_default`` (:mod:`artlens.models.pretrained`).

References:
    Kipf, T. N. and Welling, M. (2017). Semi-supervised classification with graph convolutional
    networks. ICLR.
    Veličković, P., Cucurull, G., Casanova, A., Romero, A., Liò, P. and Bengio, Y. (2018). Graph
    attention networks. ICLR.
    Brody, S., Alon, U. and Yahav, E. (2022). How attentive are graph attention networks? ICLR.
    Hadsell, R., Chopra, S. and LeCun, Y. (2006). Dimensionality reduction by learning an invariant
    mapping. CVPR.
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any

import torch
from torch import nn

from artlens.errors import InvalidParameterError
from artlens.models.registry import register_model

__all__ = ["CONVS", "NODE_FEATURES", "BeneathEncoder", "pyg"]

CONVS = ("gcn", "gat")
NODE_FEATURES = 23
"""Node features of a region graph (``len(artlens.beneath.graphs.FEATURE_NAMES)``)."""


def pyg() -> ModuleType:
    """``torch_geometric``, imported quietly (its import warns that ``torch.jit.script`` is deprecated)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        import torch_geometric
        import torch_geometric.data  # noqa: F401
        import torch_geometric.nn  # noqa: F401
    return torch_geometric


class BeneathEncoder(nn.Module):
    """Siamese graph encoder of region graphs (one set of weights for both views).

    Args:
        in_dim: node features (23: :data:`~artlens.beneath.graphs.FEATURE_NAMES`).
        hidden: width of the graph layers.
        out_dim: embedding size.
        layers: graph convolutions.
        conv: ``"gcn"`` or ``"gat"``.
        heads: attention heads of each GAT layer (``hidden`` must be divisible by it).
        dropout: dropout on the hidden features (and on the attention of GAT layers).
        head: add a supervised head (:meth:`head_logit`).

    Shape:
        ``x (N, in_dim)``, ``edge_index (2, E)``, ``edge_weight (E,)`` → embeddings ``(N, out_dim)`` of
        unit length.

    Example:
        >>> enc = BeneathEncoder(hidden=8, out_dim=4, layers=1, conv="gat", heads=2)
        >>> z, att = enc.embed(torch.zeros(3, 23), torch.tensor([[0, 1], [1, 2]]), torch.ones(2),
        ...                    return_attention=True)
        >>> tuple(z.shape), len(att)
        ((3, 4), 1)
    """

    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, in_dim: int = NODE_FEATURES, hidden: int = 32, out_dim: int = 16, layers: int = 2,
                 conv: str = "gat", heads: int = 4, dropout: float = 0.0, head: bool = False):
        super().__init__()
        if conv not in CONVS:
            raise InvalidParameterError(f"unknown graph convolution {conv!r}; expected one of {', '.join(CONVS)}")
        if layers < 1 or hidden < 1 or out_dim < 1:
            raise InvalidParameterError("layers, hidden and out_dim must be >= 1")
        if conv == "gat" and hidden % heads:
            raise InvalidParameterError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        gnn = pyg().nn
        self.conv_kind, self.in_dim = conv, in_dim
        self.config = {"in_dim": in_dim, "hidden": hidden, "out_dim": out_dim, "layers": layers, "heads": heads,
                       "dropout": dropout, "head": head}
        self.register_buffer("feature_mean", torch.zeros(in_dim))
        self.register_buffer("feature_std", torch.ones(in_dim))
        self.inp = nn.Linear(in_dim, hidden)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(layers):
            if conv == "gat":
                self.convs.append(gnn.GATv2Conv(hidden, hidden // heads, heads=heads, edge_dim=1, add_self_loops=True,
                                                fill_value=1.0, dropout=dropout))
            else:
                self.convs.append(gnn.GCNConv(hidden, hidden, add_self_loops=True, normalize=True))
            self.norms.append(nn.LayerNorm(hidden))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, out_dim)
        self.head = nn.Sequential(nn.Linear(2 * out_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1)) if head else None

    def architecture(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this architecture (saved in checkpoints; ``conv`` is implied by
        the registered name)."""
        return dict(self.config)

    def set_feature_scaling(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the training features' mean and standard deviation (used to standardise inputs)."""
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feature_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None,
              return_attention: bool = False) -> Any:
        """Unit-length embeddings ``(N, out_dim)`` of one graph; with ``return_attention`` also the list of
        ``(edge_index (2, E'), alpha (E', heads))`` of each GAT layer (empty for a GCN), self-loops included."""
        if x.shape[-1] != self.in_dim:
            raise InvalidParameterError(f"expected {self.in_dim} node features, got {x.shape[-1]}")
        if edge_weight is None:
            edge_weight = torch.ones(edge_index.shape[1], dtype=x.dtype, device=x.device)
        h = torch.relu(self.inp((x - self.feature_mean) / self.feature_std))
        attentions = []
        for conv, norm in zip(self.convs, self.norms, strict=True):
            if self.conv_kind == "gat":
                if return_attention:
                    m, (ei, alpha) = conv(h, edge_index, edge_attr=edge_weight[:, None], return_attention_weights=True)
                    attentions.append((ei, alpha))
                else:
                    m = conv(h, edge_index, edge_attr=edge_weight[:, None])
            else:
                m = conv(h, edge_index, edge_weight)
            h = norm(h + self.drop(torch.relu(m)))
        z = nn.functional.normalize(self.out(h), dim=-1)
        return (z, attentions) if return_attention else z

    def forward(self, visible: Any, other: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings ``(z_visible, z_other)`` of two graphs (or batches) on the same regions."""
        zv = self.embed(visible.x, visible.edge_index, getattr(visible, "edge_weight", None))
        zo = self.embed(other.x, other.edge_index, getattr(other, "edge_weight", None))
        return zv, zo

    @staticmethod
    def distance(za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
        """Euclidean distance of paired embeddings, ``(N,)`` in ``[0, 2]``."""
        return torch.linalg.vector_norm(za - zb, dim=-1)

    def head_logit(self, zv: torch.Tensor, zo: torch.Tensor) -> torch.Tensor:
        """Logit ``(N,)`` of the supervised head that the region differs between the views."""
        if self.head is None:
            raise InvalidParameterError("this model has no supervised head (build it with head=True)")
        return self.head(torch.cat([(zv - zo).abs(), zv * zo], dim=-1)).squeeze(-1)


@register_model(family="beneath")
def beneath_gat(**kwargs: Any) -> BeneathEncoder:
    """Siamese GAT (GATv2) encoder: 2 layers, 64 wide, 4 heads, 32-d embeddings."""
    return BeneathEncoder(**{"hidden": 64, "out_dim": 32, "layers": 2, "heads": 4, **kwargs, "conv": "gat"})


@register_model(family="beneath")
def beneath_gcn(**kwargs: Any) -> BeneathEncoder:
    """Siamese GCN encoder: 2 layers, 64 wide, 32-d embeddings."""
    return BeneathEncoder(**{"hidden": 64, "out_dim": 32, "layers": 2, **kwargs, "conv": "gcn"})


@register_model(family="beneath")
def beneath_gcn_test(**kwargs: Any) -> BeneathEncoder:
    """Tiny GCN encoder for tests (1 layer, 8 wide)."""
    return BeneathEncoder(**{"hidden": 8, "out_dim": 4, "layers": 1, **kwargs, "conv": "gcn"})


@register_model(family="beneath")
def beneath_gat_test(**kwargs: Any) -> BeneathEncoder:
    """Tiny GAT encoder for tests (1 layer, 8 wide, 2 heads)."""
    return BeneathEncoder(**{"hidden": 8, "out_dim": 4, "layers": 1, "heads": 2, **kwargs, "conv": "gat"})
