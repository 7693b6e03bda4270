"""A registry of backbone factories, timm-style: ``create_backbone("cnn", spec, **kwargs)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from hetmem.backbones.spec import InputKind, InputSpec

__all__ = ["BackboneEntry", "register_backbone", "create_backbone", "list_backbones", "compatible_backbones"]


@dataclass(frozen=True)
class BackboneEntry:
    name: str
    factory: Callable[..., nn.Module]  # factory(spec, **kwargs) -> module with forward_features and feature_dim
    kinds: tuple[InputKind, ...]  # input kinds the backbone accepts
    doc: str


_REGISTRY: dict[str, BackboneEntry] = {}


def register_backbone(name: str, *, kinds: tuple[InputKind, ...]) -> Callable:
    """Decorator adding ``factory(spec: InputSpec, **kwargs)`` to the registry under ``name``."""

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        old = _REGISTRY.get(name)
        same = old is not None and (old.factory.__module__, old.factory.__qualname__) == (factory.__module__, factory.__qualname__)
        if old is not None and not same:  # the same function again is a module re-import: replace it
            raise ValueError(f"register_backbone: {name!r} is already registered")
        doc = (factory.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[name] = BackboneEntry(name, factory, kinds, doc)
        return factory

    return wrap


def list_backbones() -> list[str]:
    return sorted(_REGISTRY)


def compatible_backbones(spec: InputSpec) -> list[str]:
    """The registered backbones that accept ``spec``'s input kind."""
    return [name for name in list_backbones() if spec.kind in _REGISTRY[name].kinds]


def create_backbone(name: str, spec: InputSpec, **kwargs) -> nn.Module:
    """Builds backbone ``name`` for inputs described by ``spec``.

    Every backbone has ``forward_features(x) -> (B, feature_dim)`` and an int ``feature_dim``.

    Raises:
        ValueError: unknown name, or a backbone that does not take this kind of input.

    Example:
        >>> net = create_backbone("mlp", InputSpec.image(2, 14, 14))
        >>> net.feature_dim
        390
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown backbone {name!r}; expected one of {list_backbones()}")
    entry = _REGISTRY[name]
    if spec.kind not in entry.kinds:
        raise ValueError(
            f"backbone {name!r} takes {' or '.join(entry.kinds)} input, but the task gives {spec.describe()}; "
            f"backbones for this input: {compatible_backbones(spec)}"
        )
    return entry.factory(spec, **kwargs)
