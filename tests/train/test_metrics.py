import math

import pytest
import torch
from sklearn.metrics import matthews_corrcoef, roc_auc_score

from hetmem.train.metrics import classification_metrics


def test_accuracy_loss_and_mcc_match_references():
    torch.manual_seed(0)
    logits, labels = torch.randn(50, 3), torch.randint(0, 3, (50,))
    m = classification_metrics(logits, labels, "mcc")
    assert m["accuracy"] == pytest.approx((logits.argmax(1) == labels).float().mean().item())
    assert m["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item())
    assert m["mcc"] == pytest.approx(matthews_corrcoef(labels, logits.argmax(1)))


def test_binary_rocauc_uses_the_positive_class_probability():
    torch.manual_seed(1)
    logits, labels = torch.randn(40, 2), torch.randint(0, 2, (40,))
    expected = roc_auc_score(labels, logits.softmax(1)[:, 1])
    assert classification_metrics(logits, labels, "rocauc")["rocauc"] == pytest.approx(expected)
    ogb = classification_metrics(logits, labels, "rocauc", ogb_name="ogbg-molbace")["rocauc"]
    assert ogb == pytest.approx(expected)


def test_rocauc_of_one_class_is_nan_not_an_error():
    assert math.isnan(classification_metrics(torch.randn(4, 2), torch.zeros(4, dtype=torch.long), "rocauc")["rocauc"])


def test_unknown_metric():
    with pytest.raises(ValueError, match="metric must be one of"):
        classification_metrics(torch.randn(2, 2), torch.tensor([0, 1]), "f1")
