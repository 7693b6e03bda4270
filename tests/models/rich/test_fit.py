import pytest
import torch

from hetmem.errors import DivergedError
from hetmem.models.rich import FeatureClassifier, Recipe, accuracy, epochs_to_steps, fit_steps, predict_logits

from ._nets import BNNet, blobs


def test_recipe_drops_the_learning_rate_at_the_given_steps():
    r = Recipe(steps=2000, lr=1e-3, lr_drop_at=(1000,))
    assert r.lr_at(999) == 1e-3 and r.lr_at(1000) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="lr"):
        Recipe(steps=1, lr=0.0)
    with pytest.raises(ValueError, match="optimizer"):
        Recipe(steps=1, lr=0.1, optimizer="lbfgs")


def test_fit_steps_is_deterministic_calls_back_and_learns():
    x, y = blobs(96)
    runs, calls = [], []
    for _ in range(2):
        torch.manual_seed(0)
        net = FeatureClassifier(BNNet(), 3)
        losses = fit_steps(net, x, y, Recipe(steps=40, lr=0.1, batch_size=32), seed=1, every=10, callback=lambda s, m: calls.append(s))
        runs.append((losses, net.head.weight.clone()))
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])
    assert calls == [10, 20, 30, 40] * 2
    assert accuracy(predict_logits(net, x), y) > 0.9


def test_fit_steps_trains_only_the_given_parameters():
    x, y = blobs(32)
    net = FeatureClassifier(BNNet(), 3)
    fc = net.backbone.fc.weight.clone()
    fit_steps(net, x, y, Recipe(steps=3, lr=0.1, batch_size=16), params=net.head.parameters())
    assert torch.equal(fc, net.backbone.fc.weight)


def test_fit_steps_stops_on_a_non_finite_loss():
    x, y = blobs(32)
    net = FeatureClassifier(BNNet(), 3)
    with torch.no_grad():
        net.head.weight.fill_(float("nan"))
    with pytest.raises(DivergedError, match="diverged at step 0"):
        fit_steps(net, x, y, Recipe(steps=3, lr=0.1, batch_size=16))


def test_epochs_to_steps_counts_full_batches():
    assert epochs_to_steps(1, 100, 32) == 3 and epochs_to_steps(2, 10, 32) == 2
