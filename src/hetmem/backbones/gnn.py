"""Graph neural networks of the OGB molecule examples (Hu et al. 2020): GCN and GIN, with an
optional virtual node, pooled into one feature row per graph.

torch_geometric and ogb are imported when a graph backbone is built, never when this module is
imported, so ``import hetmem.backbones`` works without them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetmem.backbones._checks import check_choice, check_dropout, check_positive_int
from hetmem.backbones.registry import register_backbone
from hetmem.backbones.spec import InputSpec
from hetmem.extras import optional_import

__all__ = ["GraphBatchNorm", "VirtualNode", "GNN", "global_pool", "gcn", "gin", "gcn_v", "gin_v"]

CONVS = ("gcn", "gin")
POOLINGS = ("mean", "max", "sum")


def global_pool(h: Tensor, batch: Tensor, num_graphs: int, pooling: str = "mean") -> Tensor:
    """Pools node rows into one row per graph by mean, max or sum; a graph without nodes gets zeros.

    Args:
        h: node rows (N, D).
        batch: graph index of each node (N,), in [0, num_graphs).
        num_graphs: G, the number of graphs.
        pooling: "mean", "max" or "sum".

    Returns:
        Graph rows (G, D).

    Example:
        >>> h, batch = torch.tensor([[1.0], [3.0], [5.0]]), torch.tensor([0, 0, 1])
        >>> global_pool(h, batch, 2, "mean").flatten().tolist()
        [2.0, 5.0]
    """
    check_choice("global_pool", "pooling", pooling, POOLINGS)
    reduce = {"mean": "mean", "max": "amax", "sum": "sum"}[pooling]
    index = batch.unsqueeze(-1).expand_as(h)  # (N, D)
    return h.new_zeros(num_graphs, h.shape[-1]).scatter_reduce(0, index, h, reduce=reduce, include_self=False)  # (G, D)


class GraphBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d that also takes a batch of one row in training mode.

    One row has no batch variance, and plain BatchNorm1d raises on it; with graphs that happens
    to the virtual node's MLP whenever a batch holds one graph (say the last batch of an epoch),
    and to the node layers for a batch of one single-atom molecule. Such a row is normalised
    with the running statistics instead, which it leaves unchanged.

    Shapes:
        - input and output: (N, num_features).
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps)
        return super().forward(x)


class VirtualNode(nn.Module):
    r"""The virtual node of the OGB examples: one extra node per graph, linked to all its nodes.

    From "Neural Message Passing for Quantum Chemistry" (https://arxiv.org/abs/1704.01212).
    Before each layer every node adds its graph's virtual-node state :math:`\mathbf{v}`
    (zero at first); after each layer but the last the state becomes

    .. math::
        \mathbf{v} \leftarrow \mathrm{Dropout}\Big(\mathrm{MLP}_l\Big(\mathbf{v}
        + \sum_{i \in \text{graph}} \mathbf{h}_i\Big)\Big)

    where :math:`\mathbf{h}_i` are that layer's inputs and MLP = Linear(D, 2D), norm, ReLU,
    Linear(2D, D), norm, ReLU.

    Args:
        dim: node width D.
        num_updates: state updates, one per layer but the last.
        dropout: dropout on the updated state.
        norm_layer: the normalisation inside the MLPs, called with a width.

    Shapes:
        - ``initial(G)``: (G, D).
        - ``forward(layer, h, batch, state)``: h (N, D), batch (N,), state (G, D) -> (G, D).
    """

    def __init__(self, dim: int, num_updates: int, *, dropout: float = 0.5, norm_layer: Callable[[int], nn.Module] = GraphBatchNorm) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.zeros(dim))  # the initial state
        self.mlps = nn.ModuleList(
            nn.Sequential(
                nn.Linear(dim, 2 * dim), norm_layer(2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim), norm_layer(dim), nn.ReLU()
            )
            for _ in range(num_updates)
        )
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.embedding)
        for mlp in self.mlps:
            for module in mlp:
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()

    def initial(self, num_graphs: int) -> Tensor:
        return self.embedding.expand(num_graphs, -1)  # (G, D)

    def forward(self, layer: int, h: Tensor, batch: Tensor, state: Tensor) -> Tensor:
        summed = state.new_zeros(state.shape).index_add(0, batch, h)  # (G, D)
        return self.dropout(self.mlps[layer](summed + state))  # (G, D)

    def extra_repr(self) -> str:
        return f"dim={self.embedding.shape[0]}, num_updates={len(self.mlps)}"


def _is_width(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _reset_encoder(encoder: nn.Module) -> None:
    """A Linear's own init; Xavier-uniform for the embeddings of OGB's Atom/BondEncoder, as OGB."""
    if isinstance(encoder, nn.Linear):
        encoder.reset_parameters()
    for module in encoder.modules():
        if isinstance(module, nn.Embedding):
            nn.init.xavier_uniform_(module.weight)


class GNN(nn.Module):
    """Node encoder, ``num_layers`` message-passing layers, graph pooling: OGB's ``GNN`` network.

    Each layer is a conv (``GINConv`` or ``GCNConv`` of ``hetmem.backbones.graph_conv``, each
    with its own edge encoder), BatchNorm, ReLU (not after the last layer) and dropout; the
    last layer's node rows are pooled per graph (OGB's ``JK="last"``, no residual).
    BatchNorm is ``GraphBatchNorm``, so a training batch of a single graph works.

    Args:
        node_features: ``"atom"`` for OGB's 9 integer atom features (``AtomEncoder``), or the
            int width of float node features (a Linear layer).
        edge_features: ``"bond"`` for OGB's 3 integer bond features (``BondEncoder``), an int
            width of float edge features (a Linear layer), or None (no edge features).
        conv: "gin" or "gcn".
        hidden_dim: node width D; also ``feature_dim``.
        num_layers: message-passing layers.
        pooling: "mean", "max" or "sum" over each graph's nodes.
        dropout: dropout after each layer (and on the virtual node).
        virtual_node: add OGB's virtual node (the "-v" models of the HMA paper).

    Shapes:
        - input: a torch_geometric Batch (or one Data) with N nodes in G graphs: x (N, 9) long
          or (N, node_features) float, edge_index (2, E), batch (N,), edge_attr (E, 3) long or
          (E, edge_features) float when edge features are used.
        - output: (G, hidden_dim).

    Example:
        >>> from torch_geometric.data import Batch, Data
        >>> net = GNN(4, None, conv="gin", hidden_dim=16)
        >>> a = Data(x=torch.randn(3, 4), edge_index=torch.tensor([[0, 1], [1, 2]]))
        >>> b = Data(x=torch.randn(2, 4), edge_index=torch.tensor([[0], [1]]))
        >>> net(Batch.from_data_list([a, b])).shape
        torch.Size([2, 16])
    """

    def __init__(
        self,
        node_features: str | int,
        edge_features: str | int | None,
        *,
        conv: str = "gin",
        hidden_dim: int = 300,
        num_layers: int = 3,
        pooling: str = "mean",
        dropout: float = 0.5,
        virtual_node: bool = False,
    ) -> None:
        super().__init__()
        if node_features != "atom" and not _is_width(node_features):
            raise ValueError(f"GNN: node_features must be 'atom' or a positive int width, got {node_features!r}")
        if edge_features not in (None, "bond") and not _is_width(edge_features):
            raise ValueError(f"GNN: edge_features must be 'bond', a positive int width or None, got {edge_features!r}")
        check_choice("GNN", "conv", conv, CONVS)
        check_positive_int("GNN", "hidden_dim", hidden_dim)
        check_positive_int("GNN", "num_layers", num_layers)
        check_choice("GNN", "pooling", pooling, POOLINGS)
        check_dropout("GNN", "dropout", dropout)
        if not isinstance(virtual_node, bool):
            raise ValueError(f"GNN: virtual_node must be True or False, got {virtual_node!r}")
        from hetmem.backbones import graph_conv  # needs torch_geometric; raises a clear ImportError without it
        self.node_features = node_features
        self.edge_features = edge_features
        self.conv = conv
        self.pooling = pooling
        self.feature_dim = hidden_dim
        self.node_encoder = self._encoder(node_features, hidden_dim)
        if conv == "gin":
            convs = [
                graph_conv.GINConv(hidden_dim, edge_encoder=self._encoder(edge_features, hidden_dim), norm_layer=GraphBatchNorm)
                for _ in range(num_layers)
            ]
        else:
            convs = [graph_conv.GCNConv(hidden_dim, edge_encoder=self._encoder(edge_features, hidden_dim)) for _ in range(num_layers)]
        self.convs = nn.ModuleList(convs)  # each conv has its own edge encoder, as in OGB
        self.norms = nn.ModuleList(GraphBatchNorm(hidden_dim) for _ in range(num_layers))
        self.dropout = nn.Dropout(dropout)
        self.virtual_node = VirtualNode(hidden_dim, num_layers - 1, dropout=dropout) if virtual_node else None
        self.reset_parameters()

    @staticmethod
    def _encoder(features: str | int | None, dim: int) -> nn.Module | None:
        """OGB's AtomEncoder / BondEncoder for "atom" / "bond", a Linear for an int width."""
        if features is None:
            return None
        if features == "atom":
            return optional_import("ogb.graphproppred.mol_encoder", "graph", needed_by="graph backbones").AtomEncoder(dim)
        if features == "bond":
            return optional_import("ogb.graphproppred.mol_encoder", "graph", needed_by="graph backbones").BondEncoder(dim)
        return nn.Linear(features, dim)

    def reset_parameters(self) -> None:
        _reset_encoder(self.node_encoder)
        for conv, norm in zip(self.convs, self.norms):
            conv.reset_parameters()
            if conv.edge_encoder is not None:
                _reset_encoder(conv.edge_encoder)
            norm.reset_parameters()
        if self.virtual_node is not None:
            self.virtual_node.reset_parameters()

    def _read_nodes(self, x: Tensor) -> Tensor:
        if self.node_features == "atom":
            if x.dim() != 2 or x.is_floating_point():
                raise ValueError(f"GNN: atom features must be integer indices of shape (N, 9), got {x.dtype} {tuple(x.shape)}")
            return x
        if x.dim() != 2 or x.shape[1] != self.node_features:
            raise ValueError(f"GNN: expected node features of shape (N, {self.node_features}), got {tuple(x.shape)}")
        return x.to(self.node_encoder.weight.dtype)  # float features, or integer one-hot ones

    def forward_features(self, data: Any) -> Tensor:
        x, edge_index = self._read_nodes(data.x), data.edge_index
        edge_attr = getattr(data, "edge_attr", None)
        if edge_attr is not None and self.edge_features not in (None, "bond"):
            edge_attr = edge_attr.to(self.convs[0].edge_encoder.weight.dtype)
        batch = getattr(data, "batch", None)
        if batch is None:  # a single Data: one graph
            batch, num_graphs = torch.zeros(x.shape[0], dtype=torch.long, device=x.device), 1
        else:
            num_graphs = getattr(data, "num_graphs", None) or int(batch.max()) + 1  # a Batch knows it without a sync
        h = self.node_encoder(x)  # (N, D)
        state = self.virtual_node.initial(num_graphs) if self.virtual_node is not None else None  # (G, D)
        last = len(self.convs) - 1
        for layer, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            if state is not None:
                h = h + state[batch]  # (N, D): every node reads its graph's virtual node
            out = norm(conv(h, edge_index, edge_attr))  # (N, D)
            if layer < last:
                out = F.relu(out)
                if state is not None:
                    state = self.virtual_node(layer, h, batch, state)  # (G, D)
            h = self.dropout(out)
        return global_pool(h, batch, num_graphs, self.pooling)  # (G, D)

    forward = forward_features

    def extra_repr(self) -> str:
        return (
            f"conv={self.conv!r}, node_features={self.node_features!r}, edge_features={self.edge_features!r}, "
            f"pooling={self.pooling!r}, feature_dim={self.feature_dim}"
        )


def _gnn(conv: str, spec: InputSpec, **options: Any) -> GNN:
    return GNN(spec.node_features, spec.edge_features, conv=conv, **options)


@register_backbone("gcn", kinds=("graph",))
def gcn(
    spec: InputSpec, *, hidden_dim: int = 300, num_layers: int = 3, pooling: str = "mean", dropout: float = 0.5, virtual_node: bool = False
) -> GNN:
    """OGB's GCN with edge features: degree-normalised sum of ReLU(W h_j + e_ji), BatchNorm, pooling."""
    return _gnn("gcn", spec, hidden_dim=hidden_dim, num_layers=num_layers, pooling=pooling, dropout=dropout, virtual_node=virtual_node)


@register_backbone("gin", kinds=("graph",))
def gin(
    spec: InputSpec, *, hidden_dim: int = 300, num_layers: int = 3, pooling: str = "mean", dropout: float = 0.5, virtual_node: bool = False
) -> GNN:
    """OGB's GIN with edge features: MLP((1 + eps) h_i + sum ReLU(h_j + e_ji)), BatchNorm, pooling."""
    return _gnn("gin", spec, hidden_dim=hidden_dim, num_layers=num_layers, pooling=pooling, dropout=dropout, virtual_node=virtual_node)


@register_backbone("gcn-v", kinds=("graph",))
def gcn_v(spec: InputSpec, *, hidden_dim: int = 300, num_layers: int = 3, pooling: str = "mean", dropout: float = 0.5) -> GNN:
    """``gcn`` with OGB's virtual node (the HMA paper's gcn-v)."""
    return _gnn("gcn", spec, hidden_dim=hidden_dim, num_layers=num_layers, pooling=pooling, dropout=dropout, virtual_node=True)


@register_backbone("gin-v", kinds=("graph",))
def gin_v(spec: InputSpec, *, hidden_dim: int = 300, num_layers: int = 3, pooling: str = "mean", dropout: float = 0.5) -> GNN:
    """``gin`` with OGB's virtual node (the HMA paper's gin-v)."""
    return _gnn("gin", spec, hidden_dim=hidden_dim, num_layers=num_layers, pooling=pooling, dropout=dropout, virtual_node=True)
