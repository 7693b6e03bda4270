import numpy as np
import pytest

from hetmem.data.dfa import DFA, NUM_SYMBOLS, sample_dfa, sample_dfas


def test_random_dfas_have_the_generator_properties():
    rng = np.random.default_rng(0)
    sizes = set()
    for _ in range(300):
        dfa = sample_dfa(rng)
        n = dfa.num_states
        sizes.add(n)
        assert 2 <= n <= 9 and len(dfa.alphabet) == n and len(set(dfa.alphabet)) == n
        assert all(0 <= a < NUM_SYMBOLS for a in dfa.alphabet)  # never the separator or pad ids
        for edges in dfa.transitions:
            assert 1 <= len(edges) <= min(4, n - 1) or (n == 2 and len(edges) == 1)
            assert {s for s, _ in edges} <= set(dfa.alphabet)
        for _ in range(3):
            word = dfa.walk(rng, int(rng.integers(0, 30)))
            assert dfa.accepts(word)
    assert sizes == set(range(2, 10))


def test_out_degree_is_at_most_four_and_reaches_four():
    rng = np.random.default_rng(1)
    degrees = [len(e) for _ in range(300) for e in sample_dfa(rng).transitions]
    assert max(degrees) == 4 and min(degrees) == 1


def test_a_string_with_a_missing_edge_is_rejected():
    dfa = DFA(alphabet=(3, 5), transitions=(((3, 1),), ((5, 0),)))
    assert dfa.accepts([3, 5, 3]) and not dfa.accepts([5]) and not dfa.accepts([3, 3])
    assert dfa.run([3]) == 1 and dfa.out_symbols(1) == [5]


def test_bad_transition_tables_are_refused():
    with pytest.raises(ValueError, match="two edges with one symbol"):
        DFA(alphabet=(1, 2), transitions=(((1, 0), (1, 1)), ((2, 0),)))
    with pytest.raises(ValueError, match="does not exist"):
        DFA(alphabet=(1, 2), transitions=(((1, 5),), ((2, 0),)))


def test_sample_dfas_are_distinct_and_avoid_the_excluded_ones():
    held = sample_dfas(np.random.default_rng(0), 50)
    assert len(set(held)) == 50
    again = sample_dfas(np.random.default_rng(0), 200, exclude=held)  # the same stream redraws the held ones first
    assert len(set(again)) == 200 and not set(again) & set(held)


def test_sample_dfas_gives_up_with_a_clear_error():
    with pytest.raises(ValueError, match="distinct DFAs"):
        sample_dfas(np.random.default_rng(0), 10, max_nodes=3, max_edges=2, max_tries=5)
