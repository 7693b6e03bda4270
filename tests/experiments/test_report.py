"""The grid table's cells and verdict, on hand-made store rows."""

from hetmem.experiments.grids import get_experiment
from hetmem.experiments.report import _grid_table


def _row(task, variant, seed, acc):
    return {"cell": {"task": task, "backbone": "mlp", "variant": variant}, "seed": seed,
            "metrics": {"test": {"accuracy": acc}}}


def test_the_verdict_calls_only_rows_with_several_seeds():
    rows = [
        _row("digits", "none", 0, 0.90), _row("digits", "none", 1, 0.92),
        _row("digits", "hma", 0, 0.97), _row("digits", "hma", 1, 0.98),  # +0.065, spread 0.014: a win
        _row("wine", "none", 0, 0.90), _row("wine", "hma", 0, 0.80),  # one seed: not called
    ]
    table, notes = _grid_table(get_experiment("ablation"), rows)
    assert "**0.975 ± 0.007**" in table and "0.910 ± 0.014" in table
    assert "0.800 (1 seed)" in table and "**0.900 (1 seed)**" in table
    verdict = next(n for n in notes if n.startswith("**Verdict:**"))
    assert "in 1 of 1 rows with several seeds" in verdict and "worse by more than one in 0" in verdict
    assert "1 rows have a single seed" in verdict


def test_a_table_of_single_seeds_makes_no_verdict():
    rows = [_row("digits", "none", 0, 0.90), _row("digits", "hma", 0, 0.95)]
    _, notes = _grid_table(get_experiment("ablation"), rows)
    assert any(n.startswith("**Verdict:** none: every row has a single seed (1)") for n in notes)


def test_the_per_test_set_table_shows_validation_and_the_epoch_picked_per_seed():
    from hetmem.experiments.report import _split_table

    def row(seed, gray, rev, val, epoch):
        return {"cell": {"backbone": "cnn", "variant": "none"}, "seed": seed, "best_epoch": epoch,
                "metrics": {"gray": {"accuracy": gray}, "reversed": {"accuracy": rev},
                            "test_mean": {"accuracy": (gray + rev) / 2}, "val": {"accuracy": val}}}

    table = _split_table([row(1, 0.6, 0.2, 0.80, 4), row(0, 0.5, 0.1, 0.90, 0)])
    lines = table.splitlines()
    assert lines[0] == "| backbone | variant | gray | reversed | val | best epoch per seed |"
    assert lines[2] == "| cnn | none | 0.550 ± 0.071 | 0.150 ± 0.071 | 0.850 ± 0.071 | 0, 4 |"
    single = {"cell": {"task": "digits"}, "seed": 0, "metrics": {"test": {"accuracy": 0.9}, "val": {"accuracy": 0.9}}}
    assert _split_table([single]) is None
