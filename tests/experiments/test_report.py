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
    verdict = next(n for n in notes if n.startswith("**Verdict (HMA at hetmem's defaults vs baseline):**"))
    assert "in 1 of 1 rows with several seeds" in verdict and "worse by more than one in 0" in verdict
    assert "1 rows have a single seed" in verdict
    assert not any("paper" in n for n in notes)  # no paper column, no paper verdict


def test_the_paper_column_gets_its_own_difference_and_verdict():
    rows = [_row("digits", v, s, acc) for v, accs in (("none", (0.90, 0.92)), ("paper", (0.80, 0.81)), ("hma", (0.91, 0.92)))
            for s, acc in enumerate(accs)]
    table, notes = _grid_table(get_experiment("ablation"), rows)
    assert table.splitlines()[0].endswith("| hma − none | paper − none |")
    assert table.splitlines()[2].endswith("| +0.005 | -0.105 |")
    paper = next(n for n in notes if n.startswith("**Verdict (the paper's HMA vs baseline):**"))
    assert "worse by more than one in 1" in paper
    ours = next(n for n in notes if n.startswith("**Verdict (HMA at hetmem's defaults vs baseline):**"))
    assert "within one standard deviation in 1" in ours


def test_a_table_of_single_seeds_makes_no_verdict():
    rows = [_row("digits", "none", 0, 0.90), _row("digits", "hma", 0, 0.95)]
    _, notes = _grid_table(get_experiment("ablation"), rows)
    assert any(n.startswith("**Verdict (HMA at hetmem's defaults):** none: every row has a single seed (1)") for n in notes)


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


def _recipe_row(task, recipe, seed, val, lift=1.0):
    return {"cell": {"task": task, "backbone": "mlp", "recipe": recipe}, "seed": seed,
            "metrics": {"val": {"accuracy": val}, "test": {"accuracy": 0.0}},
            "diagnostics_history": [{"epoch": 0, "rma_lift": 1.0}, {"epoch": 9, "rma_lift": lift}]}


def test_recipes_are_ranked_on_validation_never_on_test():
    from hetmem.experiments.grids import DEFAULT_RECIPE
    from hetmem.experiments.report import _recipe_ranking

    exp = get_experiment("hma-defaults")
    other = "paper" if DEFAULT_RECIPE != "paper" else "stable"
    rows = [_recipe_row("digits", DEFAULT_RECIPE, 0, 0.9, lift=5), _recipe_row("digits", other, 0, 0.8, lift=5),
            _recipe_row("wine", DEFAULT_RECIPE, 0, 0.7, lift=5), _recipe_row("wine", other, 0, 0.7, lift=5)]
    table, _ = _grid_table(exp, rows)
    assert "**0.900 (1 seed)**" in table  # validation scores, not the test zeros
    text = "\n".join(_recipe_ranking(exp, rows))
    assert f"| {DEFAULT_RECIPE} | 1.00 | 1 1 | 5.00 |" in text and f"| {other} | 1.50 | 2 1 | 5.00 |" in text
    assert f"`{DEFAULT_RECIPE}`. HMAConfig's defaults are this recipe." in text
    flipped = [{**r, "metrics": {"val": {"accuracy": 1 - r["metrics"]["val"]["accuracy"]}}} for r in rows]
    assert "the defaults are stale" in "\n".join(_recipe_ranking(exp, flipped))


def test_the_choice_prefers_recipes_whose_read_retrieves():
    from hetmem.experiments.report import _recipe_ranking

    exp = get_experiment("hma-defaults")
    rows = [_recipe_row("digits", "paper", 0, 0.95, lift=1.0), _recipe_row("digits", "retrieval", 0, 0.94, lift=8.0),
            _recipe_row("digits", "stable", 0, 0.93, lift=3.5)]
    text = "\n".join(_recipe_ranking(exp, rows))
    assert "first): `retrieval`." in text and "The best mean rank over all recipes is `paper` (1.00 vs 2.00)." in text
    no_retrieval = [{**r, "diagnostics_history": [{"rma_lift": 1.0}]} for r in rows]
    assert "(no recipe's queue read retrieves); a tie goes to the recipe listed first): `paper`." in "\n".join(_recipe_ranking(exp, no_retrieval))


def test_diagnostics_table_shows_the_last_epoch_mean_over_seeds():
    from hetmem.experiments.report import _diagnostics_table

    rows = [_recipe_row("digits", "retrieval", 0, 0.9, lift=7.0), _recipe_row("digits", "retrieval", 1, 0.9, lift=9.0),
            {"cell": {"task": "digits", "backbone": "mlp", "recipe": "none"}, "seed": 0, "metrics": {}}]
    table = _diagnostics_table(get_experiment("hma-defaults"), rows)
    assert table.splitlines()[0] == "| task | backbone | recipe | queue read: same-class lift |"
    assert table.splitlines()[2] == "| digits | mlp | retrieval | 8.000 ± 1.414 |"


def test_rows_of_cells_the_grid_no_longer_defines_are_set_apart():
    from hetmem.experiments.report import _current_rows

    exp = get_experiment("scarcity")
    now = {"cell": {"task": "digits", "per_class": 1, "variant": "hma", "v": 2}}
    reused = {"cell": {"task": "digits", "per_class": 1, "variant": "none"}}
    old = {"cell": {"task": "digits", "per_class": 1, "variant": "hma"}}  # version 1: hetmem 0.1's HMA
    assert _current_rows(exp, [now, reused, old]) == ([now, reused], [old])
