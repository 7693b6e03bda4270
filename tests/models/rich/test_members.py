import pytest
import torch

from hetmem.models.rich.members import MemberHead, MemberMLP


def test_shapes_and_independent_members():
    net = MemberMLP([0, 1, 2], in_features=6, hidden_dim=5)
    x = torch.randn(3, 7, 6)
    assert net(x).shape == (3, 7) and net.features(x).shape == (3, 7, 5) and net.features(x[0]).shape == (3, 7, 5)
    assert MemberMLP([0], in_features=6, hidden_dim=5, out=4)(x[:1]).shape == (1, 7, 4)
    net(x)[1].sum().backward()
    assert net.w1.grad[0].abs().max() == 0 and net.w1.grad[2].abs().max() == 0 and net.w1.grad[1].abs().max() > 0


def test_a_members_init_depends_on_its_seed_and_stream_only():
    a = MemberMLP([7], in_features=6, hidden_dim=5)
    b = MemberMLP([3, 7], in_features=6, hidden_dim=5)
    assert torch.equal(a.w1[0], b.w1[1]) and torch.equal(a.head.weight[0], b.head.weight[1])
    assert not torch.equal(a.w1[0], MemberMLP([7], in_features=6, hidden_dim=5, stream=1).w1[0])
    assert torch.equal(a.b1, torch.zeros(1, 5))  # zero biases, as IRM's init
    bound = (6 / (6 + 5)) ** 0.5
    assert a.w1.abs().max() <= bound  # Xavier uniform


def test_equals_a_plain_irm_mlp_per_member():
    net = MemberMLP([0, 1], in_features=6, hidden_dim=5)
    x = torch.randn(2, 4, 6)
    for m in range(2):
        h = torch.relu(torch.relu(x[m] @ net.w1[m] + net.b1[m]) @ net.w2[m] + net.b2[m])
        assert torch.allclose(net(x)[m], (h @ net.head.weight[m] + net.head.bias[m]).squeeze(-1), atol=1e-6)


def test_head_alone_reads_features():
    head = MemberHead([0, 1], 5)
    phi = torch.randn(2, 3, 5)
    assert head.head is head and torch.equal(head.features(phi), phi) and head(phi).shape == (2, 3)


def test_bad_sizes():
    with pytest.raises(ValueError, match="positive sizes"):
        MemberMLP([0], in_features=0)
