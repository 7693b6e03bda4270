"""``generate_text``: continue a text prompt with a language model trained by ``hetmem train``
(behind ``hetmem generate``), with the model's cached incremental decoding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hetmem.errors import CheckpointError, ConfigError

__all__ = ["load_language_model", "generate_text"]


def load_language_model(checkpoint: str | Path) -> tuple[Any, list[str], dict[str, Any]]:
    """The model, vocabulary and hetmem metadata of a sequence-task checkpoint, built from the
    checkpoint alone (no data set is read).

    Raises:
        CheckpointError: unreadable, not from a sequence task, or from a model that is not a
            language model (the three-moons toy).
    """
    from hetmem.train.checkpoint import read_checkpoint
    from hetmem.train.config import config_from_checkpoint
    from hetmem.train.runner import find_checkpoint
    from hetmem.train.sequence_models import create_task_model

    path = find_checkpoint(checkpoint)
    state = read_checkpoint(path)
    meta = state.get("hetmem")
    if not isinstance(meta, dict) or meta.get("kind") != "sequence":
        raise CheckpointError(f"checkpoint {str(path)!r} is not a sequence model's (train one with hetmem train --task shakespeare or regbench)")
    if not meta.get("vocab"):
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {meta['config']['backbone']!r} model of vectors, not a language model")
    cfg = config_from_checkpoint(meta["config"])
    model = create_task_model(cfg.backbone, cfg.backbone_options, objective=meta["objective"], vocab_size=len(meta["vocab"]), max_len=meta["max_len"])
    try:
        model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()})
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit its model: {str(err).splitlines()[1].strip()}") from None
    return model.eval(), list(meta["vocab"]), meta


def _encode(prompt: str, vocab: list[str]) -> torch.Tensor:
    ids = {token: i for i, token in enumerate(vocab)}
    unknown = ids.get("\ufffd")  # the character vocabulary's token for unseen characters
    out = []
    for ch in prompt:
        if ch not in ids and unknown is None:
            raise ConfigError(f"prompt character {ch!r} is not in the model's vocabulary {''.join(vocab)!r}")
        out.append(ids.get(ch, unknown))
    return torch.tensor([out], dtype=torch.long)


def generate_text(
    checkpoint: str | Path,
    prompt: str,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> str:
    """The ``max_new_tokens`` characters a trained language model writes after ``prompt``.

    Args:
        checkpoint: a ``.ckpt`` of a sequence task, or its run directory (``best.ckpt``).
        prompt: text in the model's vocabulary (unseen characters map to the unknown token
            where the vocabulary has one; otherwise they are an error).
        max_new_tokens: characters to generate (>= 1).
        temperature: 0 for greedy decoding.
        top_k: sample among the k most likely tokens only.
        seed: seeds the sampling.

    Raises:
        ConfigError: an empty prompt, a count below 1, a character outside the vocabulary.
        ValueError: a negative temperature, top_k below 1, or a GPT asked for more positions
            than its block size (the model's own checks).
    """
    if not prompt:
        raise ConfigError("the prompt is empty; generation needs at least one character to start from")
    if max_new_tokens < 1:
        raise ConfigError(f"--tokens must be a positive int, got {max_new_tokens}")
    model, vocab, _ = load_language_model(checkpoint)
    idx = _encode(prompt, vocab)
    generator = torch.Generator().manual_seed(seed)
    out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, generator=generator)
    return "".join(vocab[int(i)] for i in out[0, idx.shape[1] :])
