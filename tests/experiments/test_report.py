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
