"""``wrap``: any ``nn.Module`` as a hetmem backbone (``forward_features`` and ``feature_dim``).

A torchvision, timm, PyG or home-made model becomes something :class:`~hetmem.HMAClassifier`
takes in one line: its output (or the output of a named layer, read by a forward hook) pooled
to one row per sample, with the width found by one dry run on an example input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from hetmem.backbones.gnn import global_pool
from hetmem.inputs import as_positive_int

__all__ = ["POOLS", "WrappedBackbone", "wrap"]

POOLS = ("auto", "none", "mean", "max", "sum", "flatten", "token-mean", "cls")
Inputs = Callable[[Any], Any]  # batch -> the module's positional args (a tuple) or kwargs (a dict)
Pool = str | Callable[[Any, Any], Tensor]  # a name from POOLS, or f(raw output, batch) -> (B, D)


class _Captured(BaseException):
    """Carries a hooked layer's output out of the forward pass (the layers after it never run).

    A BaseException, so a module's own ``except Exception`` cannot swallow it."""

    def __init__(self, output: Any) -> None:
        super().__init__("hetmem.backbones.wrap: layer output captured")
        self.output = output


def _graph_inputs(batch: Any) -> tuple[Tensor, Tensor]:
    """PyG's convention: ``model(x, edge_index)`` for a ``torch_geometric`` (mini-)batch."""
    return batch.x, batch.edge_index


INPUTS: dict[str, Inputs] = {"graph": _graph_inputs}


def _first_tensor(out: Any, where: str) -> Tensor:
    if isinstance(out, (tuple, list)) and out:  # (output, state) pairs, e.g. nn.LSTM
        out = out[0]
    if not isinstance(out, Tensor):
        raise ValueError(f"wrap: {where} returned {type(out).__name__}, not a tensor; pass layer=... or pool=callable")
    return out


def _is_node_level(out: Tensor, batch: Any) -> bool:
    """True for a PyG batch whose output has one row per node (to pool per graph)."""
    return hasattr(batch, "batch") and hasattr(batch, "num_graphs") and out.dim() == 2 and out.shape[0] == batch.num_nodes


def _pool(out: Tensor, batch: Any, pool: str) -> Tensor:
    """One row per sample: (B, D) from node rows, (B, C, *S) maps, (B, T, D) tokens, or (B, *)."""
    if pool == "none":
        return out
    if _is_node_level(out, batch) and batch.num_nodes != batch.num_graphs:
        if pool not in ("auto", "mean", "max", "sum"):
            raise ValueError(f"wrap: pool {pool!r} does not apply to the node rows of a graph batch; use auto, mean, max or sum")
        return global_pool(out, batch.batch, batch.num_graphs, "mean" if pool == "auto" else pool)  # (G, D)
    if out.dim() <= 2:
        return out.reshape(out.shape[0], -1)  # (B, D); (B,) becomes (B, 1)
    if pool == "flatten":
        return out.flatten(1)  # (B, C * prod(S))
    if pool == "token-mean":
        return out.mean(1) if out.dim() == 3 else out.flatten(2).mean(1)  # (B, T, D) -> (B, D)
    if pool == "cls":
        return out[:, 0]  # (B, T, D) -> (B, D): the first token
    spatial = out.flatten(2)  # (B, C, prod(S)): channel-first maps, as conv layers make them
    if pool == "max":
        return spatial.amax(-1)
    return spatial.sum(-1) if pool == "sum" else spatial.mean(-1)  # (B, C)


class WrappedBackbone(nn.Module):
    """A module seen through hetmem's backbone interface; build it with :func:`wrap`.

    Shapes:
        - forward_features(x): whatever ``module`` takes, batch size B; returns (B, feature_dim).
    """

    def __init__(self, module: nn.Module, *, layer: str | None, pool: Pool, inputs: Inputs | None, feature_dim: int) -> None:
        super().__init__()
        self.module = module
        self.layer = layer
        self.pool = pool
        self.inputs = inputs
        self.feature_dim = feature_dim

    def _call(self, x: Any) -> Any:
        args = x if self.inputs is None else self.inputs(x)
        if isinstance(args, dict):
            return self.module(**args)
        return self.module(*args) if isinstance(args, tuple) else self.module(args)

    def _output(self, x: Any) -> Any:
        if self.layer is None:
            return self._call(x)

        def capture(_module: nn.Module, _args: Any, output: Any) -> None:
            raise _Captured(output)

        handle = self.module.get_submodule(self.layer).register_forward_hook(capture)
        try:
            self._call(x)
        except _Captured as hit:
            return hit.output
        finally:
            handle.remove()
        raise ValueError(f"wrap: layer {self.layer!r} did not run in the forward pass")

    def forward_features(self, x: Any) -> Tensor:
        where = f"layer {self.layer!r}" if self.layer else type(self.module).__name__
        raw = self._output(x)
        out = self.pool(raw, x) if callable(self.pool) else _pool(_first_tensor(raw, where), x, self.pool)  # (B, D)
        if out.dim() != 2:
            raise ValueError(f"wrap: pooled output of {where} has shape {tuple(out.shape)}; expected (B, D), pick another pool")
        return out

    def forward(self, x: Any) -> Tensor:
        return self.forward_features(x)

    def extra_repr(self) -> str:
        pool = self.pool if isinstance(self.pool, str) else getattr(self.pool, "__name__", "callable")
        return f"layer={self.layer!r}, pool={pool!r}, feature_dim={self.feature_dim}"


def wrap(
    module: nn.Module,
    *,
    example_input: Any = None,
    layer: str | None = None,
    pool: Pool = "auto",
    inputs: str | Inputs | None = None,
    feature_dim: int | None = None,
) -> WrappedBackbone:
    """Makes a backbone (``forward_features(x) -> (B, D)`` and ``feature_dim``) of any module.

    Args:
        module: the model; its weights are shared, not copied (``wrapped.module is module``).
        example_input: one batch the wrapped module takes; a dry run on it (eval mode, no
            grad, every submodule's mode restored after) finds ``feature_dim``.
        layer: read this submodule's output (a name from ``module.named_modules()``, e.g.
            ``"layer4"`` or ``"convs.2"``) through a forward hook instead of the module's own
            output; the layers after it are not run.
        pool: how an output becomes one row per sample. ``"auto"``: node rows of a
            torch_geometric batch are averaged per graph, (B, C, *S) maps are averaged over S,
            (B, D) is kept. ``"mean"``, ``"max"``, ``"sum"``: the same with that reduction;
            ``"flatten"``; ``"token-mean"`` and ``"cls"`` for (B, T, D) tokens; ``"none"``.
            A tuple output (e.g. ``nn.LSTM``'s) is read at its first element. Or a callable
            ``f(output, batch) -> (B, D)`` given the raw output (a dict, a model-output object).
        inputs: how a batch becomes the module's arguments: None calls ``module(batch)``;
            ``"graph"`` calls ``module(batch.x, batch.edge_index)`` (torch_geometric's model
            zoo); a callable returns a tuple of positional or a dict of keyword arguments.
        feature_dim: the width, when known (no dry run needed).

    Returns:
        A :class:`WrappedBackbone` holding ``module``.

    Raises:
        ValueError: unknown layer, pool or inputs; neither example_input nor feature_dim; an
            output that does not pool to (B, D).

    Example:
        >>> cnn = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.Flatten(), nn.Linear(16 * 24 * 24, 10))
        >>> backbone = wrap(cnn, layer="2", example_input=torch.randn(2, 1, 28, 28))
        >>> backbone.feature_dim, backbone.forward_features(torch.randn(5, 1, 28, 28)).shape
        (16, torch.Size([5, 16]))
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"wrap: module must be a torch.nn.Module, got {type(module).__name__}")
    names = dict(module.named_modules())
    if layer is not None and (layer == "" or layer not in names):
        shown = [n for n in names if n][:12]
        raise ValueError(f"wrap: {type(module).__name__} has no layer {layer!r}; its layers include {shown}")
    if isinstance(pool, str) and pool not in POOLS:
        raise ValueError(f"wrap: pool must be one of {list(POOLS)} or a callable, got {pool!r}")
    if isinstance(inputs, str):
        if inputs not in INPUTS:
            raise ValueError(f"wrap: inputs must be one of {sorted(INPUTS)}, a callable or None, got {inputs!r}")
        inputs = INPUTS[inputs]
    if feature_dim is None and example_input is None:
        raise ValueError("wrap: pass example_input (a batch the module takes) so feature_dim can be inferred, or feature_dim")
    backbone = WrappedBackbone(module, layer=layer, pool=pool, inputs=inputs, feature_dim=feature_dim or 0)
    if feature_dim is None:
        modes = {m: m.training for m in module.modules()}
        try:
            with torch.no_grad():
                feature_dim = backbone.eval().forward_features(example_input).shape[1]  # the dry run
        finally:
            for m, training in modes.items():
                m.training = training
    backbone.feature_dim = as_positive_int("wrap", "feature_dim", feature_dim)
    backbone.training = module.training
    return backbone
