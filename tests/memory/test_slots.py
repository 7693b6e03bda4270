import pytest
import torch

from hetmem.memory import ClassMemorySlots


def test_shapes_and_grouped_labels():
    s = ClassMemorySlots(num_classes=3, slots_per_class=2, dim=5)
    rows, labels = s()
    assert rows.shape == (6, 5) and labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert isinstance(s.slots, torch.nn.Parameter)


def test_labels_are_a_non_persistent_buffer_that_follows_to():
    s = ClassMemorySlots(num_classes=2, slots_per_class=2, dim=3)
    assert "labels" in dict(s.named_buffers()) and "labels" not in s.state_dict()
    s = s.to(torch.float64)
    assert s.labels.dtype == torch.long and s.slots.dtype == torch.float64


def test_inits():
    assert torch.count_nonzero(ClassMemorySlots(2, 3, 4, init="zeros").slots) == 0
    normal = ClassMemorySlots(2, 300, 40, std=0.02).slots
    assert 0.015 < normal.std().item() < 0.025


def test_gradient_reaches_slots():
    s = ClassMemorySlots(2, 2, 3)
    s()[0].sum().backward()
    assert s.slots.grad is not None and torch.all(s.slots.grad == 1)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_classes": 0, "slots_per_class": 2, "dim": 3}, "num_classes"),
    ({"num_classes": 2, "slots_per_class": 0, "dim": 3}, "slots_per_class"),
    ({"num_classes": 2, "slots_per_class": 2, "dim": 3, "init": "uniform"}, "init"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClassMemorySlots(**kwargs)


def test_repr():
    assert repr(ClassMemorySlots(3, 2, 5)) == "ClassMemorySlots(num_classes=3, slots_per_class=2, dim=5, init='normal')"
