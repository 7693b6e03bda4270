"""Random DFAs for in-context language learning (RegBench, Akyürek et al. 2024).

A language is a random deterministic finite automaton read as a probabilistic one: from each
state every outgoing edge is taken with equal probability. The generator follows seq_icl's
``src/dataloaders/dfa.py`` (the code behind the Memory Mosaics thesis, Fig. 3.10):

- states ``n ~ U{2, ..., max_nodes - 1}`` (``rng.integers(2, max_nodes)``, max_nodes = 10);
- an alphabet of ``n`` distinct symbols drawn from the :data:`NUM_SYMBOLS` regular symbols
  (seq_icl draws from ``range(20)``, which includes its two special tokens; we do not);
- each state gets ``U{1, ..., max_out - 1}`` outgoing edges, ``max_out = min(max_edges, n)``
  with max_edges = 5 (so at most 4), labelled with distinct symbols of the alphabet and
  leading to uniformly random states;
- a string is a uniform random walk from state 0; any walk is in the language.

DFAs are compared (and deduplicated) by their alphabet and transition table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["NUM_SYMBOLS", "DFA", "sample_dfa", "sample_dfas"]

NUM_SYMBOLS = 18  # regular symbols; token ids 0..17 (RegBench's vocabulary adds a separator and a pad)


@dataclass(frozen=True)
class DFA:
    """A deterministic automaton over symbol ids; the start state is 0.

    Args:
        alphabet: the symbols the DFA uses (as many as it has states).
        transitions: per state, ``(symbol, next_state)`` pairs sorted by symbol.

    Example:
        >>> dfa = DFA(alphabet=(3, 5), transitions=(((3, 1), (5, 0)), ((5, 1),)))
        >>> dfa.accepts([3, 5, 5]), dfa.accepts([5, 5, 3, 3])
        (True, False)
        >>> dfa.out_symbols(dfa.run([3]))
        [5]
    """

    alphabet: tuple[int, ...]
    transitions: tuple[tuple[tuple[int, int], ...], ...]

    def __post_init__(self) -> None:
        if len(self.transitions) < 1:
            raise ValueError("DFA: needs at least one state")
        for state, edges in enumerate(self.transitions):
            symbols = [s for s, _ in edges]
            if len(set(symbols)) != len(symbols):
                raise ValueError(f"DFA: state {state} has two edges with one symbol")
            if any(not 0 <= nxt < len(self.transitions) for _, nxt in edges):
                raise ValueError(f"DFA: state {state} has an edge to a state that does not exist")

    @property
    def num_states(self) -> int:
        return len(self.transitions)

    def step(self, state: int, symbol: int) -> int | None:
        """The state after reading ``symbol`` in ``state``, or None if there is no such edge."""
        for s, nxt in self.transitions[state]:
            if s == symbol:
                return nxt
        return None

    def run(self, symbols: Iterable[int]) -> int | None:
        """The state after reading ``symbols`` from state 0, or None if the string is rejected."""
        state: int | None = 0
        for symbol in symbols:
            state = self.step(state, int(symbol))
            if state is None:
                return None
        return state

    def accepts(self, symbols: Iterable[int]) -> bool:
        return self.run(symbols) is not None

    def out_symbols(self, state: int) -> list[int]:
        """The legal next symbols in ``state`` (each equally likely under the PFA)."""
        return [s for s, _ in self.transitions[state]]

    def walk(self, rng: np.random.Generator, length: int) -> list[int]:
        """A uniform random walk of ``length`` symbols from state 0."""
        state, out = 0, []
        for _ in range(length):
            edges = self.transitions[state]
            symbol, state = edges[int(rng.integers(len(edges)))]
            out.append(symbol)
        return out


def sample_dfa(rng: np.random.Generator, *, max_nodes: int = 10, max_edges: int = 5, num_symbols: int = NUM_SYMBOLS) -> DFA:
    """One random DFA (see the module docstring for the distribution)."""
    if not 3 <= max_nodes <= num_symbols + 1:
        raise ValueError(f"sample_dfa: max_nodes must be in [3, {num_symbols + 1}], got {max_nodes}")
    if max_edges < 2:
        raise ValueError(f"sample_dfa: max_edges must be at least 2, got {max_edges}")
    n = int(rng.integers(2, max_nodes))
    alphabet = [int(a) for a in rng.choice(num_symbols, size=n, replace=False)]
    max_out = min(max_edges, n)
    transitions = []
    for _ in range(n):
        k = int(rng.integers(1, max_out))
        symbols = [int(s) for s in rng.choice(alphabet, size=k, replace=False)]
        targets = [int(t) for t in rng.integers(n, size=k)]
        transitions.append(tuple(sorted(zip(symbols, targets))))
    return DFA(tuple(alphabet), tuple(transitions))


def sample_dfas(
    rng: np.random.Generator,
    count: int,
    *,
    exclude: Iterable[DFA] = (),
    max_nodes: int = 10,
    max_edges: int = 5,
    max_tries: int | None = None,
) -> list[DFA]:
    """``count`` distinct random DFAs, none equal to one in ``exclude``, in the order drawn.

    Raises:
        ValueError: fewer than ``count`` distinct DFAs after ``max_tries`` draws (default
            ``10 * count + 100``).
    """
    seen = set(exclude)
    out: list[DFA] = []
    tries = max_tries if max_tries is not None else 10 * count + 100
    for _ in range(tries):
        if len(out) == count:
            break
        dfa = sample_dfa(rng, max_nodes=max_nodes, max_edges=max_edges)
        if dfa not in seen:
            seen.add(dfa)
            out.append(dfa)
    if len(out) < count:
        raise ValueError(f"sample_dfas: only {len(out)} distinct DFAs in {tries} draws, {count} wanted")
    return out
