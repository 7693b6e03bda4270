import numpy as np
import pytest

from hetmem.data import load_task
from hetmem.data.dfa import DFA
from hetmem.data.regbench import PAD, SEPARATOR, VOCAB, pfa_targets
from hetmem.errors import ConfigError

SMALL = {"num_languages": 30, "num_val_languages": 10, "num_test_languages": 20, "num_iid": 10}


def test_vocabulary_is_eighteen_symbols_a_separator_and_a_pad():
    assert len(VOCAB) == 20 and VOCAB[SEPARATOR] == "|" and VOCAB[PAD] == "."


def test_pfa_targets_are_the_uniform_distribution_over_outgoing_edges():
    dfa = DFA(alphabet=(0, 1, 2), transitions=(((0, 1), (1, 0)), ((2, 0),), ((0, 0),)))
    tokens = [0, 2, 1, SEPARATOR, 1, 0]
    ex = pfa_targets(dfa, tokens)
    assert ex["idx"].tolist() == tokens[:-1] and ex["targets"].tolist() == tokens[1:]
    assert ex["mask"].tolist() == [True, True, True, False, True]
    assert np.allclose(ex["dist"].sum(-1), 1.0)
    assert ex["dist"][0, 2] == 1.0  # after "a" (state 1) only "c"
    assert ex["dist"][3, 0] == ex["dist"][3, 1] == 0.5  # after the separator: state 0 again
    assert (ex["dist"][:, [SEPARATOR, PAD]] == 0).all()
    with pytest.raises(ValueError, match="not a legal symbol"):
        pfa_targets(dfa, [2, 0])


def test_every_sequence_is_accepted_by_its_language_and_scored_only_on_symbols():
    task = load_task("regbench", seed=0, **SMALL)
    for split in (task.val, task.tests["test"], task.tests["iid"]):
        for ex in split.examples:
            assert ex["mask"].any() and np.allclose(ex["dist"][ex["mask"]].sum(-1), 1.0)
            assert not ex["mask"][ex["idx"] == SEPARATOR].any()
            legal = ex["dist"][np.arange(len(ex["idx"])), ex["targets"]] > 0
            is_symbol = ex["targets"] < SEPARATOR
            assert legal[is_symbol].all()  # every next symbol of the data is legal under its DFA


def test_held_out_languages_are_fixed_and_disjoint_from_training(monkeypatch):
    import hetmem.data.regbench as rb

    drawn = []
    real = rb.sample_dfas
    monkeypatch.setattr(rb, "sample_dfas", lambda *a, **k: drawn.append(real(*a, **k)) or drawn[-1])
    a = load_task("regbench", seed=0, **SMALL)
    b = load_task("regbench", seed=1, **SMALL)
    held_a, train_a, held_b, train_b = drawn
    assert held_a == held_b and train_a != train_b  # the seed changes the training languages only
    assert not set(train_a) & set(held_a) and not set(train_b) & set(held_b)
    assert [e["idx"].tolist() for e in a.tests["test"].examples] == [e["idx"].tolist() for e in b.tests["test"].examples]
    more = load_task("regbench", seed=0, **{**SMALL, "num_languages": 60})
    assert more.sizes()["train"] == 60 and drawn[-1][:30] == train_a  # fewer languages are a prefix of more


def test_batches_are_grouped_by_length_not_padded_to_the_longest():
    task = load_task("regbench", seed=0, **{**SMALL, "num_languages": 128})
    longest = int(task.train.lengths.max())
    widths = [task.train.batch(seed=0, epoch=0, index=i, batch_size=8)["idx"].shape[1] for i in range(16)]
    assert max(widths) == longest and np.median(widths) < 0.8 * longest
    rows = task.train.batch(seed=0, epoch=0, index=0, batch_size=8)
    padded = (rows["targets"] == -100).numpy()
    lengths = (~padded).sum(1)
    assert (padded == (np.arange(padded.shape[1])[None] >= lengths[:, None])).all()  # padding only at the end
    first = [task.train.batch(seed=0, epoch=e, index=0, batch_size=8)["idx"] for e in (0, 0, 1)]
    assert first[0].equal(first[1]) and not (first[0].shape == first[2].shape and first[0].equal(first[2]))


@pytest.mark.parametrize("options, match", [
    ({"num_languages": 0}, "num_languages"),
    ({"max_string_len": 1}, "max_string_len"),
    ({"max_strings": 5}, "max_strings"),
])
def test_bad_options_are_config_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        load_task("regbench", seed=0, **{**SMALL, **options})


def test_per_class_is_refused_for_a_sequence_task():
    with pytest.raises(ConfigError, match="per_class applies to classification tasks"):
        load_task("regbench", seed=0, per_class=5, **SMALL)
