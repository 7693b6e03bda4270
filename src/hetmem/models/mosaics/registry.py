"""Registry of sequence models by name, for configs and the command line."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from hetmem.models.mosaics.decoding import SequenceLM
from hetmem.models.mosaics.gpt import GPTConfig, GPTLM
from hetmem.models.mosaics.mosaic import MemoryMosaicLM, MosaicConfig
from hetmem.models.mosaics.mosaic2 import MemoryMosaicV2LM, MosaicV2Config

__all__ = ["create_sequence_model", "list_sequence_models", "register_sequence_model"]

_REGISTRY: dict[str, Callable[..., SequenceLM]] = {}


def register_sequence_model(name: str) -> Callable[[Callable[..., SequenceLM]], Callable[..., SequenceLM]]:
    """Decorator: register ``factory(vocab_size, **options) -> SequenceLM`` under ``name``."""

    def wrap(factory: Callable[..., SequenceLM]) -> Callable[..., SequenceLM]:
        if name in _REGISTRY:
            raise ValueError(f"sequence model {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return wrap


def list_sequence_models() -> list[str]:
    return sorted(_REGISTRY)


def create_sequence_model(name: str, vocab_size: int, **options: Any) -> SequenceLM:
    """Build a registered sequence model.

    Args:
        name: ``"mosaic"`` (:class:`MemoryMosaicLM`), ``"mosaic2"`` (:class:`MemoryMosaicV2LM`),
            ``"gpt"`` (:class:`GPTLM`, learned positions, GELU MLP) or ``"llama"`` (:class:`GPTLM`
            with ``position="rope"``, ``mlp="swiglu"``: hidden 3 d, no positional table).
        vocab_size: V.
        **options: fields of the model's config (:class:`MosaicConfig` / :class:`MosaicV2Config`
            / :class:`GPTConfig`), plus ``dropout`` as a shorthand setting both ``attn_dropout``
            and ``resid_dropout``. ``block_size`` is accepted by every model and used only by
            ``"gpt"`` (the others have no positional limit), so one option set builds all four.

    Example:
        >>> create_sequence_model("gpt", 11, dim=8, num_heads=2, num_layers=1, block_size=8).num_parameters()
        944
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown sequence model {name!r}; choose from {', '.join(list_sequence_models())}")
    dropout = options.pop("dropout", None)
    if dropout is not None:
        options.setdefault("attn_dropout", dropout)
        options.setdefault("resid_dropout", dropout)
    return _REGISTRY[name](vocab_size, **options)


def _build(config_cls: type, vocab_size: int, options: dict[str, Any]) -> Any:
    fields = {f.name for f in dataclasses.fields(config_cls)} - {"vocab_size"}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(f"{config_cls.__name__}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}, dropout")
    return config_cls(vocab_size=vocab_size, **options)


@register_sequence_model("mosaic")
def _mosaic(vocab_size: int, *, block_size: int | None = None, **options: Any) -> MemoryMosaicLM:
    del block_size  # no positional table: any length works
    return MemoryMosaicLM(_build(MosaicConfig, vocab_size, options))


@register_sequence_model("mosaic2")
def _mosaic2(vocab_size: int, *, block_size: int | None = None, **options: Any) -> MemoryMosaicV2LM:
    del block_size  # no positional table: any length works
    return MemoryMosaicV2LM(_build(MosaicV2Config, vocab_size, options))


@register_sequence_model("gpt")
def _gpt(vocab_size: int, **options: Any) -> GPTLM:
    return GPTLM(_build(GPTConfig, vocab_size, options))


LLAMA = {"position": "rope", "mlp": "swiglu"}


@register_sequence_model("llama")
def _llama(vocab_size: int, **options: Any) -> GPTLM:
    fixed = {k: options[k] for k in LLAMA if k in options and options[k] != LLAMA[k]}
    if fixed:
        raise ValueError(f"llama is the GPT model with position='rope', mlp='swiglu'; got {fixed} (use 'gpt' for other choices)")
    return GPTLM(_build(GPTConfig, vocab_size, {**options, **LLAMA}))
