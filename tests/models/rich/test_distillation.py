import math

import pytest
import torch
import torch.nn.functional as F

from hetmem.models.rich import DistillNet, FeatureClassifier, Recipe, distill, distill_loss, fit_steps, predict_logits

from ._nets import BNNet, blobs


def test_distill_loss_on_a_known_case():
    # teacher uniform, student softmax at tau = 10 is (3/4, 1/4): tau^2 * KL = 100 * 0.5 * log(4/3)
    student = torch.tensor([[[10 * math.log(3.0), 0.0]]])
    assert distill_loss(student, torch.zeros(1, 1, 2)).item() == pytest.approx(50 * math.log(4 / 3), rel=1e-5)
    assert distill_loss(student, student.clone()).item() == pytest.approx(0.0, abs=1e-6)


def test_distill_loss_sums_heads_and_mixes_cross_entropy_with_alpha():
    torch.manual_seed(0)
    s, t, y = torch.randn(3, 5, 4), torch.randn(3, 5, 4), torch.randint(0, 4, (5,))
    kl_only = distill_loss(s, t)
    per_head = sum(distill_loss(s[i : i + 1], t[i : i + 1]) for i in range(3))
    assert kl_only.item() == pytest.approx(per_head.item(), rel=1e-5)
    ce = sum(F.cross_entropy(s[i], y) for i in range(3))
    assert distill_loss(s, t, y, alpha=0.0).item() == pytest.approx(ce.item(), rel=1e-5)
    mixed = distill_loss(s, t, y, alpha=0.8)
    assert mixed.item() == pytest.approx(0.8 * kl_only.item() + 0.2 * ce.item(), rel=1e-5)


def test_distill_loss_sends_no_gradient_to_the_teacher():
    s, t = torch.randn(2, 3, 4, requires_grad=True), torch.randn(2, 3, 4, requires_grad=True)
    distill_loss(s, t).backward()
    assert s.grad is not None and t.grad is None


def test_distill_loss_refuses_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        distill_loss(torch.randn(2, 3, 4), torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="needs labels"):
        distill_loss(torch.randn(2, 3, 4), torch.randn(2, 3, 4), alpha=0.5)
    with pytest.raises(ValueError, match="tau"):
        distill_loss(torch.randn(2, 3, 4), torch.randn(2, 3, 4), tau=0)


def test_distilled_student_agrees_with_each_teacher():
    x, y = blobs(96)
    teachers = []
    for seed in range(2):
        torch.manual_seed(seed)
        t = FeatureClassifier(BNNet(feature_dim=8), 3)
        fit_steps(t, x, y, Recipe(steps=30, lr=0.1, batch_size=32), seed=seed)
        teachers.append(t.eval())
    student = DistillNet(BNNet(feature_dim=8), 2, 3)
    losses = distill(student, teachers, x, y, Recipe(steps=50, lr=0.05, batch_size=32, optimizer="adam"), alpha=0.9)
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        out = student.eval()(x)
    assert out.shape == (2, 96, 3)
    for i, t in enumerate(teachers):
        agree = (out[i].argmax(-1) == predict_logits(t, x).argmax(-1)).float().mean()
        assert agree > 0.9


def test_distill_checks_heads_against_teachers():
    x, y = blobs(8)
    with pytest.raises(ValueError, match="2 heads for 1 teachers"):
        distill(DistillNet(BNNet(), 2, 3), [FeatureClassifier(BNNet(), 3)], x, y, Recipe(steps=1, lr=0.1))
