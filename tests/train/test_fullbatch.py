import pytest
import torch

from hetmem.models.rich.members import MemberMLP
from hetmem.train.env_objectives import create_objective
from hetmem.train.fullbatch import EnvData, fit_full_batch, member_accuracy


def _envs(members=2, n=64, d=6):
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(members, n, d, generator=g) for _ in range(2)]
    ys = [(x[..., 0] > 0).long() for x in xs]
    return EnvData(xs, ys)


def test_members_train_as_if_alone():
    data = _envs()
    both = MemberMLP([0, 1], in_features=6, hidden_dim=8)
    fit_full_batch(both, create_objective("vrex", penalty_weight=10.0), data, steps=5, lr=1e-2, l2=1e-3)
    alone = MemberMLP([1], in_features=6, hidden_dim=8)
    fit_full_batch(alone, create_objective("vrex", penalty_weight=10.0), EnvData([x[1:] for x in data.x], [y[1:] for y in data.y]),
                   steps=5, lr=1e-2, l2=1e-3)
    assert torch.allclose(both.w1[1], alone.w1[0], atol=1e-5)


def test_curve_head_only_and_keep_best():
    data = _envs()
    net = MemberMLP([0, 1], in_features=6, hidden_dim=8)
    w1 = net.w1.detach().clone()
    evaluate = lambda m: {"acc": member_accuracy(m, data.x[0], data.y[0])}  # noqa: E731
    curve = fit_full_batch(net, create_objective("erm"), data, steps=6, lr=1e-2, train="head", evaluate=evaluate, eval_at=[0, 3, 6])
    assert curve.steps == [0, 3, 6] and len(curve.metrics["acc"][0]) == 2 and len(curve.member(1)["acc"]) == 3
    assert torch.equal(net.w1, w1)  # frozen representation
    calls = iter([torch.tensor([0.9, 0.1]), torch.tensor([0.5, 0.2]), torch.tensor([0.1, 0.8])])
    net2 = MemberMLP([0, 1], in_features=6, hidden_dim=8)
    start = net2.w1.detach().clone()
    fit_full_batch(net2, create_objective("erm"), data, steps=4, lr=1e-2, evaluate=lambda m: {"s": next(calls)},
                   eval_at=[0, 2, 4], keep_best="s")
    assert torch.equal(net2.w1[0], start[0]) and not torch.equal(net2.w1[1], start[1])  # member 0 kept step 0


def test_clove_steps_on_minibatches():
    data = _envs(n=700)
    net = MemberMLP([0, 1], in_features=6, hidden_dim=8)
    fit_full_batch(net, create_objective("clove", penalty_weight=10.0), data, steps=2, lr=1e-2)
    assert torch.isfinite(net.w1).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="train must be"):
        fit_full_batch(MemberMLP([0], in_features=6), create_objective("erm"), _envs(1), steps=1, lr=1e-3, train="some")
