"""InputSpec: what a task feeds its backbone, so backbones can be built for any task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["InputKind", "InputSpec"]

InputKind = Literal["image", "vector", "graph"]


@dataclass(frozen=True)
class InputSpec:
    """The input a backbone receives.

    - ``image``: float tensors (B, C, H, W); ``shape = (C, H, W)``.
    - ``vector``: float tensors (B, F) (tabular data, MNIST-1D); ``shape = (F,)``.
    - ``graph``: a ``torch_geometric`` Batch with ``x``, ``edge_index``, ``batch`` and maybe
      ``edge_attr``. ``node_features`` is ``"atom"`` (OGB's 9 integer atom features, read by
      ``AtomEncoder``) or the int width of float node features; ``edge_features`` is
      ``"bond"`` (OGB's 3 integer bond features), an int width, or None.

    Example:
        >>> InputSpec.image(2, 14, 14).numel
        392
        >>> InputSpec.graph().node_features
        'atom'
    """

    kind: InputKind
    shape: tuple[int, ...] = ()
    node_features: str | int | None = None
    edge_features: str | int | None = None

    @classmethod
    def image(cls, channels: int, height: int, width: int) -> InputSpec:
        return cls("image", (channels, height, width))

    @classmethod
    def vector(cls, features: int) -> InputSpec:
        return cls("vector", (features,))

    @classmethod
    def graph(cls, node_features: str | int = "atom", edge_features: str | int | None = "bond") -> InputSpec:
        return cls("graph", (), node_features, edge_features)

    @property
    def numel(self) -> int:
        """Numbers per sample for image and vector inputs (what an MLP sees after flattening)."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    def describe(self) -> str:
        if self.kind == "graph":
            return f"graph (node features {self.node_features!r}, edge features {self.edge_features!r})"
        return f"{self.kind} {self.shape}"
