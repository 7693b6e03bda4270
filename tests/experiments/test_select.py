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
    assert [c.params for c in both] == [{"task": "digits", "backbone": "mlp", "variant": "hma"}]
    assert _select(exp, cells, {}) == cells


@pytest.mark.parametrize(("where", "message"), [({"tsk": "digits"}, "no cell parameter 'tsk'"),
                                                 ({"task": "cifar"}, "no cell with {'task': 'cifar'}")])
def test_a_where_that_matches_nothing_is_a_clear_error_before_anything_runs(tmp_path, where, message):
    with pytest.raises(ValueError, match=message):
        run_experiment("ablation", store=tmp_path / "s.jsonl", work_dir=tmp_path / "runs", where=where)
    assert not (tmp_path / "s.jsonl").exists() and not (tmp_path / "runs").exists()
