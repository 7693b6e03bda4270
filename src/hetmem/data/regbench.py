"""The ``regbench`` task: in-context language learning on random regular languages.

Every training sequence comes from its own random DFA (:mod:`hetmem.data.dfa`): 10-19 random
walks of 0 to ``max_string_len - 1`` symbols joined by the separator ``|``, one token per
character, inputs and targets shifted by one. A model must infer each sequence's language
from the sequence itself. Scored on held-out DFAs that no training sequence came from
(``test``), against the exact next-symbol distribution of the DFA read as a PFA (uniform
over the outgoing edges of the current state), at every position whose input is a symbol
(seq_icl scores the "non-separator positions"); ``iid`` scores new strings of the first
training DFAs (the thesis's Table B.3).

The test and validation DFAs depend only on ``eval_seed``: every run, model and number of
training languages is scored on the same held-out languages. The training DFAs depend on the
run's seed and never equal a held-out one; fewer training languages are a prefix of more.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np

from hetmem.data.dfa import DFA, NUM_SYMBOLS, sample_dfas
from hetmem.data.sequence import SequenceTaskData, TokenSequences, check_positive_options
from hetmem.data.task import register_task
from hetmem.errors import ConfigError

__all__ = ["SEPARATOR", "PAD", "VOCAB", "make_example", "pfa_targets", "load_regbench"]

SEPARATOR = NUM_SYMBOLS  # token 18
PAD = NUM_SYMBOLS + 1  # token 19
VOCAB = [*string.ascii_lowercase[:NUM_SYMBOLS], "|", "."]  # symbols a..r, separator, pad: 20 tokens


def make_example(dfa: DFA, rng: np.random.Generator, *, min_strings: int, max_strings: int, max_string_len: int) -> list[int]:
    """``U{min_strings..max_strings-1}`` walks of ``U{0..max_string_len-1}`` symbols joined by
    the separator (no trailing separator), as token ids."""
    tokens: list[int] = []
    for _ in range(int(rng.integers(min_strings, max_strings))):
        tokens += dfa.walk(rng, int(rng.integers(max_string_len)))
        tokens.append(SEPARATOR)
    return tokens[:-1]


def pfa_targets(dfa: DFA, tokens: list[int]) -> dict[str, np.ndarray]:
    """Inputs, targets and the exact next-token distribution of ``tokens`` under ``dfa``.

    Returns:
        ``idx`` (T,) = tokens[:-1], ``targets`` (T,) = tokens[1:], ``dist`` (T, 20): at
        position t, uniform over the symbols leaving the state reached after the current
        string's prefix up to and including token t (zero on separator and pad), and
        ``mask`` (T,): the positions scored, those whose input token is a symbol.
    """
    T = len(tokens) - 1
    dist = np.zeros((T, len(VOCAB)), dtype=np.float32)
    mask = np.zeros(T, dtype=bool)
    state: int | None = 0
    for t, token in enumerate(tokens[:-1]):
        state = 0 if token == SEPARATOR else dfa.step(state, token)
        if state is None:
            raise ValueError(f"pfa_targets: token {t} ({token}) is not a legal symbol of the DFA")
        legal = dfa.out_symbols(state)
        dist[t, legal] = 1.0 / len(legal)
        mask[t] = token != SEPARATOR
    return {"idx": np.asarray(tokens[:-1]), "targets": np.asarray(tokens[1:]), "dist": dist, "mask": mask}


def _examples(dfas: list[DFA], rng: np.random.Generator, scored: bool, **lengths: int) -> list[dict[str, np.ndarray]]:
    out = []
    for dfa in dfas:
        tokens = make_example(dfa, rng, **lengths)
        while len(tokens) < 2:  # no prediction to make (one empty string): draw again
            tokens = make_example(dfa, rng, **lengths)
        ex = pfa_targets(dfa, tokens)
        if not scored:
            ex = {"idx": ex["idx"], "targets": ex["targets"]}
        out.append(ex)
    return out


@register_task("regbench", offline=True, kind="sequence")
def load_regbench(
    *,
    root: Path,
    seed: int,
    per_class: int | None,
    num_languages: int = 100,
    num_val_languages: int = 100,
    num_test_languages: int = 200,
    num_iid: int = 100,
    max_string_len: int = 20,
    min_strings: int = 10,
    max_strings: int = 20,
    max_nodes: int = 10,
    max_edges: int = 5,
    eval_seed: int = 1234,
) -> SequenceTaskData:
    """RegBench in-context language learning: random DFAs, scored on held-out languages (generated, offline).

    Args:
        num_languages: training DFAs, one sequence each (the thesis's "# train environments").
        num_val_languages, num_test_languages: held-out DFAs for model selection and the test.
        num_iid: test sequences from the first training DFAs (new strings of seen languages).
        max_string_len: strings have 0 to ``max_string_len - 1`` symbols (seq_icl: 50; 20 on a CPU).
        min_strings, max_strings: strings per sequence, ``U{min..max-1}`` (seq_icl: 10, 20).
        max_nodes, max_edges: states ``U{2..max_nodes-1}``, out-degree ``U{1..min(max_edges, n)-1}``.
        eval_seed: draws the held-out DFAs and their sequences (the same for every run).
    """
    check_positive_options("regbench", num_languages=num_languages, num_val_languages=num_val_languages,
                           num_test_languages=num_test_languages, max_string_len=max_string_len, min_strings=min_strings)
    if max_string_len < 2:
        raise ConfigError(f"task option 'max_string_len' of regbench must be at least 2 (strings of 0 to max_string_len - 1 symbols), got {max_string_len}")
    if not isinstance(num_iid, int) or num_iid < 0:
        raise ConfigError(f"task option 'num_iid' of regbench must be a non-negative int, got {num_iid!r}")
    if not isinstance(max_strings, int) or max_strings <= min_strings:
        raise ConfigError(f"task option 'max_strings' of regbench must exceed min_strings ({min_strings}), got {max_strings!r}")
    lengths = {"min_strings": min_strings, "max_strings": max_strings, "max_string_len": max_string_len}
    shape = {"max_nodes": max_nodes, "max_edges": max_edges}
    try:
        held_rng = np.random.default_rng(eval_seed)
        held = sample_dfas(held_rng, num_test_languages + num_val_languages, **shape)
        test_dfas, val_dfas = held[:num_test_languages], held[num_test_languages:]
        rng = np.random.default_rng([seed, 7])
        train_dfas = sample_dfas(rng, num_languages, exclude=held, **shape)
    except ValueError as err:
        raise ConfigError(f"regbench: {err}") from None
    train = _examples(train_dfas, rng, False, **lengths)
    tests = {"test": TokenSequences(_examples(test_dfas, held_rng, True, **lengths), shuffle=False)}
    if num_iid:
        iid_dfas = [train_dfas[i % num_languages] for i in range(num_iid)]
        tests["iid"] = TokenSequences(_examples(iid_dfas, np.random.default_rng([seed, 8]), True, **lengths), shuffle=False)
    val = TokenSequences(_examples(val_dfas, held_rng, True, **lengths), shuffle=False)
    max_len = max(len(e["idx"]) for split in (train, val.examples, *(t.examples for t in tests.values())) for e in split)
    return SequenceTaskData(
        name="regbench",
        objective="lm",
        train=TokenSequences(train, shuffle=True),
        val=val,
        tests=tests,
        models=("mosaic", "gpt"),
        metric="loss",  # model selection on held-out languages' cross-entropy: accuracy peaks early and is coarse
        metric_mode="min",
        vocab=list(VOCAB),
        max_len=max_len,
        info={"source": "random DFAs (seq_icl generator, 18 regular symbols)", "train_languages": num_languages,
              "max_string_len": max_string_len},
    )
