import numpy as np
import pytest
import torch

from hetmem.evaluation.linear_probe import LinearProbe, fit_linear_probe, linear_probe_accuracy


def blobs(n_per_class=20, num_classes=3, dim=5, seed=0, spread=0.5):
    g = torch.Generator().manual_seed(seed)
    centers = torch.eye(dim)[:num_classes] * 4
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    return centers[y] + spread * torch.randn(len(y), dim, generator=g), y


def test_separable_classes_are_probed_exactly():
    xtr, ytr = blobs(seed=0)
    xte, yte = blobs(n_per_class=10, seed=1)
    assert linear_probe_accuracy(xtr, ytr, xte, yte) == 1.0


def test_probe_predicts_long_labels_and_standardises_with_train_statistics():
    xtr, ytr = blobs(seed=2)
    probe = fit_linear_probe(xtr, ytr)
    assert isinstance(probe, LinearProbe)
    pred = probe.predict(xtr[:7])
    assert pred.dtype == torch.long and pred.shape == (7,)
    assert np.allclose(probe.mean, xtr.double().mean(0).numpy())
    assert np.allclose(probe.scale, xtr.double().std(0, unbiased=False).numpy())


def test_feature_scale_does_not_change_the_probe():
    xtr, ytr = blobs(seed=3, spread=2.0)
    xte, _ = blobs(n_per_class=10, seed=4, spread=2.0)
    shift = torch.tensor([100.0, -3.0, 0.0, 7.0, 1e3])
    a = fit_linear_probe(xtr, ytr).predict(xte)
    b = fit_linear_probe(xtr * 1e3 + shift, ytr).predict(xte * 1e3 + shift)
    assert torch.equal(a, b)


def test_constant_feature_is_harmless():
    xtr, ytr = blobs(seed=5)
    xtr[:, 4] = 1.0
    probe = fit_linear_probe(xtr, ytr)
    assert np.all(np.isfinite(probe.scale)) and probe.accuracy(xtr, ytr) == 1.0


def test_bad_inputs_raise():
    xtr, ytr = blobs()
    with pytest.raises(ValueError, match="single class"):
        fit_linear_probe(xtr, torch.zeros_like(ytr))
    with pytest.raises(ValueError, match="labels"):
        fit_linear_probe(xtr, ytr[:-1])
    with pytest.raises(ValueError, match="C must"):
        fit_linear_probe(xtr, ytr, C=0.0)
    with pytest.raises(ValueError, match="expected features"):
        fit_linear_probe(xtr, ytr).predict(torch.randn(3, 4))
