"""Memory Mosaics: networks of small associative memories (Zhang et al. 2025, arXiv 2405.06394).

Each contextual memory unit stores (key, value) pairs of the current sequence, a leaky
average of the past as key and a one-step look-ahead of the future as value, and predicts by
Gaussian-kernel regression over what it stored before (``softmax(k_t . k_s) v_s``, s < t).
Persistent memories hold learned pairs and replace the transformer's FFN. The specification
followed here, with the official code's traps, is ``MEMORY_MOSAICS.md`` of the project notes.

Files, bottom-up: ``leaky`` (leaky average: matrix, chunked, recurrent), ``read`` (causal and
strictly causal SDPA reads), ``extractors`` (key and value extractors), ``cache`` (decoding
state), ``context`` (ContextMemory), ``persistent`` (PersistentMemory), ``block``
(MosaicBlock), ``decoding`` (SequenceLM base, generate, loss_by_position), ``mosaic``
(MosaicConfig, MemoryMosaicLM), ``gpt`` (GPTConfig, GPTLM: the same-size baseline),
``rope`` (rotary positions) and ``ffn`` (SwiGLU) for the Llama baseline, ``v2_keys``
(gated time-variant keys, adaptive bandwidth), ``v2_read`` (reads restricted by lag),
``v2_memory`` (short/long-term memory split, v2 block), ``mosaic2`` (MosaicV2Config,
MemoryMosaicV2LM), ``registry`` (create_sequence_model: mosaic, mosaic2, gpt, llama),
``moons`` (the three-moons toy and its measures).

Relation to hetmem's attention and memory code: every read here is ``softmax(q k_i) v_i``
as in :func:`hetmem.attention.memory_attention`, but none has its exact maths (that function
adds the query row's own key and scales by 1 / sqrt(h); here reads are causal, use no
1 / sqrt(h) and, for the persistent memory, no self key), so the reads are written on SDPA in
``read.py`` and the modules' docstrings say what differs.

Shape glossary: B batch, T sequence length, d model width (``dim``), H heads (memory units
per layer), h = d / H head width, P persistent slots per head, V vocabulary size, n positions
already in a decoding cache.
"""

from hetmem.models.mosaics.block import MosaicBlock
from hetmem.models.mosaics.cache import ContextCache, GrowingBuffer, KVCache, LagCache, PersistentCache
from hetmem.models.mosaics.context import ContextMemory
from hetmem.models.mosaics.decoding import SequenceLM, generate, loss_by_position
from hetmem.models.mosaics.extractors import EXP_SCALE, KeyExtractor, ValueExtractor
from hetmem.models.mosaics.ffn import SwiGLU
from hetmem.models.mosaics.gpt import GPTConfig, GPTLM
from hetmem.models.mosaics.leaky import LEAKY_MODES, leaky_average, leaky_matrix
from hetmem.models.mosaics.moons import ComplexLinear, MoonMemory, moon_loss, permutation_mass, rollout_error, unit_moduli
from hetmem.models.mosaics.mosaic import INIT_RECIPES, MemoryMosaicLM, MosaicConfig
from hetmem.models.mosaics.mosaic2 import MemoryMosaicV2LM, MosaicV2Config
from hetmem.models.mosaics.persistent import PersistentMemory, default_pmem_size
from hetmem.models.mosaics.read import causal_attention, past_attention
from hetmem.models.mosaics.registry import create_sequence_model, list_sequence_models, register_sequence_model
from hetmem.models.mosaics.v2_keys import AdaptiveBandwidth, GatedLeakyKey, gated_leaky_average
from hetmem.models.mosaics.rope import apply_rotary, rotary_angles
from hetmem.models.mosaics.v2_memory import LagMemory, MosaicV2Block, ShortLongMemory
from hetmem.models.mosaics.v2_read import lag_counts, lag_mask, lag_read, lagged_attention

__all__ = [
    "EXP_SCALE",
    "GPTLM",
    "INIT_RECIPES",
    "LEAKY_MODES",
    "AdaptiveBandwidth",
    "ComplexLinear",
    "ContextCache",
    "ContextMemory",
    "GPTConfig",
    "GatedLeakyKey",
    "GrowingBuffer",
    "KVCache",
    "KeyExtractor",
    "LagCache",
    "LagMemory",
    "MemoryMosaicLM",
    "MemoryMosaicV2LM",
    "MoonMemory",
    "MosaicBlock",
    "MosaicConfig",
    "MosaicV2Block",
    "MosaicV2Config",
    "PersistentCache",
    "PersistentMemory",
    "SequenceLM",
    "ShortLongMemory",
    "SwiGLU",
    "ValueExtractor",
    "apply_rotary",
    "causal_attention",
    "create_sequence_model",
    "default_pmem_size",
    "gated_leaky_average",
    "generate",
    "lag_counts",
    "lag_mask",
    "lag_read",
    "lagged_attention",
    "leaky_average",
    "leaky_matrix",
    "list_sequence_models",
    "loss_by_position",
    "moon_loss",
    "past_attention",
    "permutation_mass",
    "register_sequence_model",
    "rotary_angles",
    "rollout_error",
    "unit_moduli",
]
