"""``where``: running one slice of a grid."""

import pytest

from hetmem.experiments import run_experiment
from hetmem.experiments.grids import get_experiment
from hetmem.experiments.run import _select


def test_where_keeps_only_the_matching_cells():
    exp = get_experiment("ablation")
    cells = exp.cells(False)
    digits = _select(exp, cells, {"task": "digits"})
    assert digits and all(c.params["task"] == "digits" for c in digits)
    assert len(digits) == sum(c.params["task"] == "digits" for c in cells) < len(cells)
    both = _select(exp, cells, {"task": "digits", "variant": "hma"})
    assert [c.params for c in both] == [{"task": "digits", "backbone": "mlp", "variant": "hma", "v": 2}]
    assert _select(exp, cells, {}) == cells


@pytest.mark.parametrize(("where", "message"), [({"tsk": "digits"}, "no cell parameter 'tsk'"),
                                                 ({"task": "cifar"}, "no cell with {'task': 'cifar'}")])
def test_a_where_that_matches_nothing_is_a_clear_error_before_anything_runs(tmp_path, where, message):
    with pytest.raises(ValueError, match=message):
        run_experiment("ablation", store=tmp_path / "s.jsonl", work_dir=tmp_path / "runs", where=where)
    assert not (tmp_path / "s.jsonl").exists() and not (tmp_path / "runs").exists()


def test_pending_runs_lists_what_the_store_lacks_and_runs_nothing(tmp_path):
    from hetmem.experiments import ResultsStore, pending_runs
    from hetmem.experiments.store import cell_key

    store = tmp_path / "s.jsonl"
    todo, skipped = pending_runs("ablation", seeds=[0, 1], store=store, where={"task": "digits"})
    assert skipped == 0 and len(todo) == 2 * 5
    assert [(r.params["variant"], r.seed) for r in todo[:2]] == [("none", 0), ("none", 1)]
    first = todo[0]
    assert first.key == cell_key("ablation", first.params, 0)
    ResultsStore(store).add({"key": first.key, "experiment": "ablation", "metrics": {}})
    todo2, skipped2 = pending_runs("ablation", seeds=[0, 1], store=store, where={"task": "digits"})
    assert skipped2 == 1 and todo2 == todo[1:]
    assert not (tmp_path / "runs").exists() and len(list(ResultsStore(store).rows())) == 1
