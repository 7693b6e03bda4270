"""Retrieval diagnostics on planted attention, and a planted task whose labels only memory holds."""

import math

import pytest
import torch
import torch.nn.functional as F

from hetmem.models.hma import HMAConfig, HMAHead, RetrievalMeter
from hetmem.models.hma.diagnostics import memory_read_stats, slot_ncm_accuracy

ROW_LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2])  # M = 8 memory rows
QUERY_LABELS = torch.tensor([0, 2])


def test_a_read_on_same_class_rows_has_lift_one_over_their_share():
    w = (ROW_LABELS.unsqueeze(0) == QUERY_LABELS.unsqueeze(1)).float().unsqueeze(0)  # (1, B, M) on same-class rows
    stats = {k: float(v) / 2 for k, v in memory_read_stats(w, ROW_LABELS, QUERY_LABELS).items()}
    assert stats["same_class"] == pytest.approx(1.0) and stats["top1"] == 1.0
    assert stats["uniform"] == pytest.approx((2 / 8 + 4 / 8) / 2)
    assert stats["entropy"] == pytest.approx((math.log(2) + math.log(4)) / 2 / math.log(8))


def test_a_uniform_read_has_lift_one_and_entropy_one():
    w = torch.full((3, 2, 8), 0.5 / 8)  # half the mass on the memory, spread evenly
    stats = {k: float(v) / 2 for k, v in memory_read_stats(w, ROW_LABELS, QUERY_LABELS).items()}
    assert stats["same_class"] == pytest.approx(stats["uniform"])
    assert stats["entropy"] == pytest.approx(1.0) and stats["memory_mass"] == pytest.approx(0.5)


def test_slot_ncm_is_one_for_class_clusters_and_low_for_one_blob():
    head = HMAHead(4, HMAConfig(num_classes=3, width=None, label_dim=2, slots_per_class=4))
    with torch.no_grad():
        head.slots.slots.copy_(torch.eye(4)[:3].repeat_interleave(4, 0) * 10 + 0.1 * torch.randn(12, 4))
    assert slot_ncm_accuracy(head) == 1.0
    with torch.no_grad():
        head.slots.slots.normal_()
    assert slot_ncm_accuracy(head) < 0.8
    assert slot_ncm_accuracy(HMAHead(4, HMAConfig(num_classes=3, slots_per_class=1))) is None


def test_the_meter_averages_over_batches_and_reports_lifts():
    head = HMAHead(6, HMAConfig(num_classes=2, label_dim=4, queue_size=8, slots_per_class=2)).eval()
    head.write_memory_(torch.randn(8, 6), torch.tensor([0, 1] * 4))
    meter = RetrievalMeter(head)
    for _ in range(2):
        x = torch.randn(3, 6)
        meter.update(head.augment(x, need_weights=True), torch.tensor([0, 1, 1]), momentum_features=x, features=x)
    out = meter.compute()
    assert out["rma_uniform"] == pytest.approx(0.5) and out["sma_uniform"] == pytest.approx(0.5)
    assert out["rma_lift"] == pytest.approx(out["rma_same_class"] / 0.5)
    assert out["momentum_cosine"] == pytest.approx(1.0)
    meter.reset()
    assert meter.compute() == {}


def _episode(gen, n_points=32, dim=8, classes=4, noise=0.05):
    """Fresh random points with random labels: no weight can know them, the queue does."""
    keys = F.normalize(torch.randn(n_points, dim, generator=gen), dim=1)
    labels = torch.randint(0, classes, (n_points,), generator=gen)
    queries = keys + noise * torch.randn(n_points, dim, generator=gen)
    return keys, labels, queries


def _run_planted(config, steps):
    torch.manual_seed(0)
    head = HMAHead(8, config)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        keys, labels, queries = _episode(gen)
        head.queue.reset()
        head.write_memory_(keys, labels)
        loss = F.cross_entropy(head(queries), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    meter, correct = RetrievalMeter(head), 0
    with torch.no_grad():
        for _ in range(8):
            keys, labels, queries = _episode(gen)
            head.queue.reset()
            head.write_memory_(keys, labels)
            out = head.augment(queries, need_weights=True)
            meter.update(out, labels)
            correct += int((head.fc(out.c3).argmax(1) == labels).sum())
    return correct / (8 * 32), meter.compute()


@pytest.mark.slow
def test_planted_task_only_memory_can_solve_is_solved_by_the_defaults():
    """Each episode draws new points and labels and writes them to the queue; the queries are
    noisy copies. Without reading the queue the best possible accuracy is chance (0.25)."""
    config = HMAConfig(num_classes=4, variant="rma", width=16, label_dim=8, queue_size=32)
    accuracy, diag = _run_planted(config, steps=150)
    assert diag["rma_lift"] > 2.0 and diag["rma_top1"] > 0.8  # the read retrieves (uniform = lift 1)
    assert accuracy > 0.6  # and the head uses what it retrieves (chance 0.25)
    paper_accuracy, paper = _run_planted(HMAConfig.paper(num_classes=4, variant="rma", label_dim=8, queue_size=32), steps=150)
    assert paper["rma_lift"] < diag["rma_lift"] and paper_accuracy < accuracy  # the paper's read, same budget
