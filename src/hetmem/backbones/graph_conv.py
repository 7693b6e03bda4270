"""The message-passing layers of the OGB molecule examples (Hu et al. 2020): GIN and GCN with
edge features.

This module needs torch_geometric; ``hetmem.backbones.gnn`` imports it only when a graph
backbone is built, so ``import hetmem.backbones`` works without it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

try:
    from torch_geometric.nn import MessagePassing
    from torch_geometric.utils import degree
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("graph backbones need 'torch_geometric', which is not installed: pip install 'hetmem[graph]'") from err

__all__ = ["GINConv", "GCNConv"]


def _edge_embedding(encoder: nn.Module | None, edge_attr: Tensor | None, edge_index: Tensor, like: Tensor, owner: str) -> Tensor | None:
    """``encoder(edge_attr)`` (E, D); None without an encoder; an empty (0, D) for an edgeless batch."""
    if encoder is None:
        return None
    if edge_attr is None:
        if edge_index.shape[1] == 0:
            return like.new_zeros(0, like.shape[-1])
        raise ValueError(f"{owner}: this layer reads edge features, but the batch has no edge_attr")
    return encoder(edge_attr)  # (E, D)


class GINConv(MessagePassing):
    r"""The graph isomorphism layer with edge features of the OGB examples.

    From "How Powerful are Graph Neural Networks?" (https://arxiv.org/abs/1810.00826) as
    extended to edge features in "Strategies for Pre-training Graph Neural Networks"
    (https://arxiv.org/abs/1905.12265):

    .. math::
        \mathbf{h}_i' = \mathrm{MLP}\Big((1 + \epsilon)\,\mathbf{h}_i
        + \sum_{j \in \mathcal{N}(i)} \mathrm{ReLU}(\mathbf{h}_j + \mathbf{e}_{ji})\Big)

    with a learnable :math:`\epsilon` (initially 0) and MLP = Linear(D, 2D), norm, ReLU,
    Linear(2D, D). Without an edge encoder the messages are plain :math:`\mathbf{h}_j`, the
    original GIN.

    Args:
        dim: node width D, in and out.
        edge_encoder: maps ``edge_attr`` to (E, D), e.g. OGB's ``BondEncoder(D)``; None for
            graphs without edge features.
        norm_layer: the normalisation inside the MLP, called with the width 2D.

    Shapes:
        - x: (N, D); edge_index: (2, E); edge_attr: whatever edge_encoder reads, (E, ...).
        - output: (N, D).

    Example:
        >>> conv = GINConv(8)
        >>> x, edge_index = torch.randn(3, 8), torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> conv(x, edge_index).shape
        torch.Size([3, 8])
    """

    def __init__(self, dim: int, *, edge_encoder: nn.Module | None = None, norm_layer: Callable[[int], nn.Module] = nn.BatchNorm1d) -> None:
        super().__init__(aggr="add")
        self.dim = dim
        self.edge_encoder = edge_encoder
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), norm_layer(2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))
        self.eps = nn.Parameter(torch.zeros(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for module in self.mlp:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        nn.init.zeros_(self.eps)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None) -> Tensor:
        edge_emb = _edge_embedding(self.edge_encoder, edge_attr, edge_index, x, "GINConv")  # (E, D) or None
        neighbours = self.propagate(edge_index, x=x, edge_emb=edge_emb)  # (N, D)
        return self.mlp((1 + self.eps) * x + neighbours)

    def message(self, x_j: Tensor, edge_emb: Tensor | None) -> Tensor:
        return x_j if edge_emb is None else F.relu(x_j + edge_emb)  # (E, D)

    __repr__ = nn.Module.__repr__  # the whole tree, like every hetmem module (MessagePassing's hides the MLP)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GCNConv(MessagePassing):
    r"""The graph convolution with edge features of the OGB examples.

    From "Semi-Supervised Classification with Graph Convolutional Networks"
    (https://arxiv.org/abs/1609.02907) as extended to edge features in the OGB examples:

    .. math::
        \mathbf{h}_i' = \sum_{j \in \mathcal{N}(i)} \frac{1}{\sqrt{\hat d_i \hat d_j}}
        \mathrm{ReLU}(\mathbf{W}\mathbf{h}_j + \mathbf{b} + \mathbf{e}_{ji})
        + \frac{1}{\hat d_i} \mathrm{ReLU}(\mathbf{W}\mathbf{h}_i + \mathbf{b} + \mathbf{r})

    where :math:`\hat d_i` is node i's in-degree plus one (its self-loop) and :math:`\mathbf{r}`
    a learned root embedding. Without an edge encoder both ReLUs and :math:`\mathbf{r}` are
    dropped, which is Kipf & Welling's propagation with self-loops:
    :math:`\mathbf{h}_i' = \sum_{j \in \mathcal{N}(i) \cup \{i\}} (\mathbf{W}\mathbf{h}_j + \mathbf{b}) / \sqrt{\hat d_i \hat d_j}`.

    Args:
        dim: node width D, in and out.
        edge_encoder: maps ``edge_attr`` to (E, D), e.g. OGB's ``BondEncoder(D)``; None for
            graphs without edge features.

    Shapes:
        - x: (N, D); edge_index: (2, E); edge_attr: whatever edge_encoder reads, (E, ...).
        - output: (N, D).

    Example:
        >>> conv = GCNConv(8)
        >>> x, edge_index = torch.randn(3, 8), torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> conv(x, edge_index).shape
        torch.Size([3, 8])
    """

    def __init__(self, dim: int, *, edge_encoder: nn.Module | None = None) -> None:
        super().__init__(aggr="add")
        self.dim = dim
        self.edge_encoder = edge_encoder
        self.linear = nn.Linear(dim, dim)
        if edge_encoder is None:
            self.register_parameter("root", None)
        else:
            self.root = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.linear.reset_parameters()
        if self.root is not None:
            nn.init.normal_(self.root)  # as the Embedding(1, D) of the OGB examples

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None) -> Tensor:
        N = x.shape[0]
        x = self.linear(x)  # (N, D)
        edge_emb = _edge_embedding(self.edge_encoder, edge_attr, edge_index, x, "GCNConv")  # (E, D) or None
        src, dst = edge_index
        deg = degree(dst, N, dtype=x.dtype) + 1  # (N,) in-degree plus the self-loop, so >= 1
        inv_sqrt = deg.rsqrt()  # (N,)
        norm = inv_sqrt[src] * inv_sqrt[dst]  # (E,)
        neighbours = self.propagate(edge_index, x=x, edge_emb=edge_emb, norm=norm)  # (N, D)
        self_term = x if self.root is None else F.relu(x + self.root)  # (N, D)
        return neighbours + self_term / deg.unsqueeze(-1)

    def message(self, x_j: Tensor, edge_emb: Tensor | None, norm: Tensor) -> Tensor:
        m = x_j if edge_emb is None else F.relu(x_j + edge_emb)  # (E, D)
        return norm.unsqueeze(-1) * m

    __repr__ = nn.Module.__repr__  # the whole tree, like every hetmem module (MessagePassing's hides it)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
