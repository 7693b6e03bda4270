from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import Subset, TensorDataset

import hetmem.data  # noqa: F401  (registers the tasks)
from hetmem.backbones.spec import InputSpec
from hetmem.data import task as task_module
from hetmem.data.task import (
    DataError,
    TaskData,
    dataset_labels,
    list_tasks,
    load_task,
    register_task,
    subsample_per_class,
    task_options,
    validate_task,
)
from hetmem.errors import ConfigError

OFFLINE_TASKS = {"colored-mnist", "mnist", "digits", "breast-cancer", "wine", "mnist1d", "molecules"}


def _toy_dataset(counts=(30, 20, 5)) -> TensorDataset:
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])  # (N,)
    x = torch.arange(len(y), dtype=torch.float32)[:, None].repeat(1, 4)  # (N, 4): row i holds i
    return TensorDataset(x, y)


def _toy_task(**overrides) -> TaskData:
    ds = _toy_dataset()
    fields = dict(name="toy", num_classes=3, input_spec=InputSpec.vector(4), train=ds, val=ds, tests={"test": ds})
    return TaskData(**{**fields, **overrides})


@pytest.fixture
def toy_registry(monkeypatch):
    """A private copy of the registry with a task 'toy' that has one option."""
    monkeypatch.setattr(task_module, "_REGISTRY", dict(task_module._REGISTRY))

    @register_task("toy", offline=True)
    def load_toy(*, root, seed, per_class, scale: float = 1.0):
        """A toy task."""
        return _toy_task(train=subsample_per_class(_toy_dataset(), per_class, seed), info={"scale": scale})

    return load_toy


def test_offline_tasks_are_registered():
    assert OFFLINE_TASKS <= set(list_tasks(offline=True))
    assert not OFFLINE_TASKS & set(list_tasks(offline=False))


def test_task_options_and_load(toy_registry):
    assert task_options("toy") == {"scale": 1.0}
    assert task_module.task_entry("toy").doc == "A toy task."
    task = load_task("toy", scale=2.0, per_class=3)
    assert task.info == {"scale": 2.0} and len(task.train) == 9


def test_register_a_different_loader_under_a_taken_name_fails(toy_registry):
    def other_loader(*, root, seed, per_class):
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="'toy' is already registered"):
        register_task("toy", offline=True)(other_loader)
    register_task("toy", offline=True)(toy_registry)  # the same function again (a re-import) is fine


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown task 'no-such-task'; expected one of \["):
        load_task("no-such-task")


def test_unknown_option_is_a_config_error(toy_registry):
    with pytest.raises(ConfigError, match=r"task 'toy' has no option 'colour'; its options are \['scale'\]"):
        load_task("toy", colour="red")


@pytest.mark.parametrize("per_class", [0, -3, 2.5, "10"])
def test_bad_per_class_is_a_config_error(toy_registry, per_class):
    with pytest.raises(ConfigError, match="per_class must be a positive int or None"):
        load_task("toy", per_class=per_class)


def test_subsample_per_class_keeps_exactly_n_per_class():
    ds = _toy_dataset((30, 20, 5))
    sub = subsample_per_class(ds, 8, seed=0)
    assert isinstance(sub, Subset)
    assert np.bincount(dataset_labels(sub)).tolist() == [8, 8, 5]  # a class with fewer keeps all
    assert subsample_per_class(ds, None, seed=0) is ds


def test_subsample_per_class_is_deterministic_in_seed():
    ds = _toy_dataset((30, 20, 5))
    a = subsample_per_class(ds, 8, seed=1).indices
    assert a == subsample_per_class(ds, 8, seed=1).indices
    assert a != subsample_per_class(ds, 8, seed=2).indices


def test_dataset_labels_on_pairs_graph_like_items_and_subsets():
    pairs = [(torch.zeros(2), torch.tensor(c)) for c in [2, 0, 1]]
    graphs = [SimpleNamespace(y=torch.tensor([c])) for c in [1, 1, 0]]
    assert dataset_labels(pairs).tolist() == [2, 0, 1]
    assert dataset_labels(graphs).tolist() == [1, 1, 0]
    assert dataset_labels(Subset(graphs, [2, 0])).tolist() == [0, 1]
    assert np.bincount(dataset_labels(subsample_per_class(graphs, 1, seed=0))).tolist() == [1, 1]


def test_validate_task_accepts_a_good_task():
    validate_task(_toy_task())


def test_validate_task_rejects_an_empty_split():
    empty = TensorDataset(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    with pytest.raises(DataError, match="the val split is empty"):
        validate_task(_toy_task(val=empty))


@pytest.mark.parametrize("bad_label", [-1, 3])
def test_validate_task_rejects_labels_out_of_range(bad_label):
    x, y = _toy_dataset().tensors
    y = y.clone()
    y[0] = bad_label
    with pytest.raises(DataError, match=r"test labels must be in \[0, 3\)"):
        validate_task(_toy_task(tests={"test": TensorDataset(x, y)}))


def test_validate_task_rejects_nan_inputs_also_behind_a_subset():
    x, y = _toy_dataset().tensors
    x = x.clone()
    x[1, 2] = float("nan")
    with pytest.raises(DataError, match="the train inputs contain NaN or Inf"):
        validate_task(_toy_task(train=Subset(TensorDataset(x, y), [0, 1, 2])))


def test_validate_task_rejects_a_single_class():
    with pytest.raises(DataError, match="has 1 class; classification needs at least 2"):
        validate_task(_toy_task(num_classes=1))
