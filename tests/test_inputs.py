import numpy as np
import pytest
import torch
from torch import nn

from hetmem import HMAClassifier, HMAConfig, HMAHead
from hetmem.inputs import as_float, as_labels, as_positive_int


class NumpyWidthBackbone(nn.Module):
    feature_dim = np.int64(6)  # e.g. computed from a numpy shape

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(5, 6)

    def forward_features(self, x):
        return self.lin(x)


def model(**kw) -> HMAClassifier:
    torch.manual_seed(0)
    return HMAClassifier(NumpyWidthBackbone(), HMAConfig(num_classes=np.int64(3), label_dim=4, queue_size=8, num_heads=2, **kw))


def test_numpy_integers_are_accepted_as_sizes():
    m = model()
    assert m.head.feature_dim == 6 and type(m.head.feature_dim) is int and type(m.config.num_classes) is int
    assert HMAHead(np.int32(6), HMAConfig(num_classes=2)).feature_dim == 6
    for bad in (0, -2, 2.0, True, np.float64(3.0), "3"):
        with pytest.raises(ValueError, match="feature_dim must be a positive int"):
            as_positive_int("HMAHead", "feature_dim", bad)


def test_numpy_and_list_labels_train_like_a_tensor():
    x = np.random.default_rng(0).normal(size=(4, 5))  # float64, as numpy makes it
    y = [0, 2, 1, 2]
    reference = model().train()
    expected = reference(torch.tensor(x, dtype=torch.float32), torch.tensor(y))
    for labels in (y, np.array(y, dtype=np.int32), torch.tensor(y, dtype=torch.int16)):
        m = model().train()
        assert torch.equal(m(x, labels), expected)
        assert torch.equal(m.head.queue.read()[1], torch.tensor(y))


def test_float64_and_half_inputs_are_cast_to_the_model_dtype():
    m = model().eval()
    x = torch.randn(3, 5)
    expected = m(x)
    assert torch.equal(m(x.double()), expected) and torch.equal(m(x.numpy().astype(np.float64)), expected)
    assert torch.allclose(m(x.half()), m(x.half().float()))
    assert m.head(torch.randn(2, 6, dtype=torch.float64)).dtype == torch.float32


@pytest.mark.parametrize("call, match", [
    (lambda m: m(torch.randn(2, 5), [0.0, 1.0]), r"labels must be integer class indices \(.*\), got dtype torch.float"),
    (lambda m: m(torch.randn(2, 5), np.array([True, False])), r"labels must be integer class indices \(.*\), got dtype torch.bool"),
    (lambda m: m(torch.randn(2, 5), ["a", "b"]), "labels must be integer class indices"),
    (lambda m: m.head(torch.ones(2, 6, dtype=torch.long)), "HMAHead: features must be floating-point .* got dtype torch.int64"),
    (lambda m: m.head(np.ones((2, 6), dtype=np.int32)), "HMAHead: features must be floating-point, got numpy dtype int32"),
    (lambda m: m.head.write_memory_(torch.randn(2, 6), [0.5, 1.0]), "write_memory_: labels must be integer"),
])
def test_what_cannot_be_cast_is_one_clear_error_naming_the_dtype(call, match):
    with pytest.raises(ValueError, match=match):
        call(model().train())


def test_as_labels_and_as_float_keep_tensors_that_already_fit():
    y = torch.tensor([1, 0])
    assert as_labels(y, y.device, "t") is y
    x = torch.randn(2, 3)
    assert as_float(x, x, "t") is x
