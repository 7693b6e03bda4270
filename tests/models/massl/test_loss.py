import math

import pytest
import torch
import torch.nn.functional as F

from hetmem.models.massl.loss import massl_loss


def unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1)


def softmax(values, temp):
    e = [math.exp(v / temp) for v in values]
    return [x / sum(e) for x in e]


def loss_by_hand(student, teacher, memory, blocks, ts, tt):
    """The MaSSL loss with explicit loops over pairs, samples, blocks and rows."""
    s, t, m = student.tolist(), teacher.tolist(), memory.tolist()
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
    total, pairs = 0.0, 0
    for i in range(len(s)):
        for j in range(len(t)):
            if i == j:
                continue
            pair, count = 0.0, 0
            for b in range(len(s[i])):
                for block in blocks.tolist():
                    p = softmax([dot(s[i][b], m[k]) for k in block], ts)
                    q = softmax([dot(t[j][b], m[k]) for k in block], tt)
                    pair += -sum(qk * math.log(pk) for qk, pk in zip(q, p))
                    count += 1
            total += pair / count
            pairs += 1
    return total / pairs


def test_loss_equals_hand_computation():
    student, teacher, memory = unit(4, 3, 5, seed=0), unit(2, 3, 5, seed=1), unit(6, 5, seed=2)
    blocks = torch.tensor([[4, 0, 2], [1, 5, 3]])  # a shuffled partition into 2 blocks of 3
    loss, _ = massl_loss(student, teacher, memory, blocks, student_temp=0.1, teacher_temp=0.05)
    expected = loss_by_hand(student, teacher, memory, blocks, 0.1, 0.05)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_pair_count_skips_same_crop_pairs():
    # 2 student views, 2 teacher views: only (0, 1) and (1, 0) count
    student, teacher, memory = unit(2, 2, 4, seed=3), unit(2, 2, 4, seed=4), unit(4, 4, seed=5)
    blocks = torch.arange(4).view(1, 4)
    loss, _ = massl_loss(student, teacher, memory, blocks)
    expected = loss_by_hand(student, teacher, memory, blocks, 0.1, 0.07)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_one_block_is_a_full_softmax_over_the_memory():
    student, teacher, memory = unit(3, 4, 8, seed=6), unit(2, 4, 8, seed=7), unit(10, 8, seed=8)
    loss, _ = massl_loss(student, teacher, memory, torch.randperm(10).view(1, 10))
    log_p = torch.log_softmax(torch.einsum("vbd,kd->vbk", student, memory) / 0.1, -1)
    q = torch.softmax(torch.einsum("vbd,kd->vbk", teacher, memory) / 0.07, -1)
    pairs = [(i, j) for i in range(3) for j in range(2) if i != j]
    expected = sum(-(q[j] * log_p[i]).sum(-1).mean() for i, j in pairs) / len(pairs)
    assert torch.allclose(loss, expected, atol=1e-12)


def test_block_order_and_order_within_blocks_do_not_matter():
    student, teacher, memory = unit(3, 4, 8, seed=9), unit(2, 4, 8, seed=10), unit(12, 8, seed=11)
    blocks = torch.randperm(12, generator=torch.Generator().manual_seed(0)).view(3, 4)
    a, _ = massl_loss(student, teacher, memory, blocks)
    b, _ = massl_loss(student, teacher, memory, blocks.flip(0).flip(1))
    assert torch.allclose(a, b, atol=1e-12)


def test_gradient_reaches_the_student_only():
    student = unit(3, 4, 8, seed=12).float().requires_grad_()
    teacher = unit(2, 4, 8, seed=13).float().requires_grad_()
    memory = unit(8, 8, seed=14).float().requires_grad_()
    loss, _ = massl_loss(student, teacher, memory, torch.arange(8).view(2, 4))
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None and memory.grad is None


def test_gradient_matches_finite_differences():
    student = unit(3, 2, 4, seed=15).requires_grad_()
    teacher, memory = unit(2, 2, 4, seed=16), unit(6, 4, seed=17)
    blocks = torch.tensor([[0, 3, 5], [1, 2, 4]])
    assert torch.autograd.gradcheck(lambda s: massl_loss(s, teacher, memory, blocks)[0], (student,))


def test_stats_entropies_and_distinct_rows():
    teacher = unit(1, 4, 6, seed=18).expand(2, 4, 6)  # both teacher views equal
    student, memory = unit(3, 4, 6, seed=19), unit(8, 6, seed=20)
    blocks = torch.arange(8).view(2, 4)
    _, stats = massl_loss(student, teacher, memory, blocks, teacher_temp=0.05)
    logits = (teacher[0] @ memory.T).view(4, 2, 4)  # (B, N, Nb)
    q = torch.softmax(logits / 0.05, -1)
    assert stats.teacher_entropy.item() == pytest.approx(-(q * q.log()).sum(-1).mean().item(), rel=1e-9)
    winners = {int(blocks[n, logits[b, n].argmax()]) for b in range(4) for n in range(2)}
    assert int(stats.distinct_rows) == len(winners)
    assert 0 < stats.teacher_entropy < math.log(4) and 0 < stats.student_entropy <= math.log(4) + 1e-9


def test_collapsed_embeddings_have_one_winner_and_uniform_targets_against_a_collapsed_memory():
    c = unit(6, seed=21)
    student, teacher, memory = c.expand(3, 5, 6), c.expand(2, 5, 6), c.expand(8, 6)
    loss, stats = massl_loss(student, teacher, memory, torch.arange(8).view(1, 8))
    assert loss.item() == pytest.approx(math.log(8)) and stats.teacher_entropy.item() == pytest.approx(math.log(8))
    assert int(stats.distinct_rows) == 1


@pytest.mark.parametrize(
    "shapes, match",
    [
        (((3, 4, 8), (2, 4, 8), (8, 8), (8,)), "expected"),
        (((3, 4, 8), (2, 5, 8), (8, 8), (2, 4)), "agree"),
        (((3, 4, 8), (2, 4, 8), (8, 7), (2, 4)), "agree"),
        (((1, 4, 8), (2, 4, 8), (8, 8), (2, 4)), "Vt <= Vs"),
        (((1, 4, 8), (1, 4, 8), (8, 8), (2, 4)), "pair"),
    ],
)
def test_bad_shapes_raise(shapes, match):
    s, t, m, b = shapes
    with pytest.raises(ValueError, match=match):
        massl_loss(torch.randn(*s), torch.randn(*t), torch.randn(*m), torch.arange(8).view(*b))


def test_bad_temperature_raises():
    with pytest.raises(ValueError, match="temperatures"):
        massl_loss(torch.randn(3, 2, 4), torch.randn(2, 2, 4), torch.randn(4, 4), torch.arange(4).view(1, 4), teacher_temp=0.0)
