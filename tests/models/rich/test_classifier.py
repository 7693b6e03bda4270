import pytest
import torch
from torch import nn

from hetmem.models.rich import FeatureClassifier

from ._nets import BNNet


class Ones(nn.Module):
    feature_dim = 200

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward_features(self, x):
        return self.w * torch.ones(len(x), self.feature_dim)


def test_dropout_acts_on_the_features_with_inverted_scaling_and_not_in_eval():
    clf = FeatureClassifier(Ones(), 200, dropout=0.9, head=nn.Linear(200, 200, bias=False))
    with torch.no_grad():
        clf.head.weight.copy_(torch.eye(200))
    torch.manual_seed(0)
    out = clf.train()(torch.zeros(50, 3))
    assert torch.all((out == 0) | ((out - 10).abs() < 1e-4))
    assert 0.87 < (out == 0).float().mean() < 0.93
    assert torch.equal(clf.eval()(torch.zeros(4, 3)), torch.ones(4, 200))
    assert torch.equal(clf.forward_features(torch.zeros(2, 3)), torch.ones(2, 200))


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_norm_keeps_batchnorm_statistics_but_trains_its_affine_weights(freeze):
    clf = FeatureClassifier(BNNet(), 3, freeze_norm=freeze).train()
    before = clf.backbone.bn.running_mean.clone()
    clf(torch.randn(16, 6) + 3).sum().backward()
    assert torch.equal(before, clf.backbone.bn.running_mean) == freeze
    assert clf.backbone.bn.weight.grad is not None


def test_classifier_refuses_bad_arguments():
    with pytest.raises(ValueError, match="dropout"):
        FeatureClassifier(BNNet(), 3, dropout=1.0)
    with pytest.raises(ValueError, match="head maps"):
        FeatureClassifier(BNNet(), 3, head=nn.Linear(4, 3))
    with pytest.raises(ValueError, match="forward_features"):
        FeatureClassifier(nn.Linear(3, 3), 3)
