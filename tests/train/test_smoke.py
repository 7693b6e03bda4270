"""Every offline task with every backbone that takes its input: two training steps and an eval
pass through the same code the runner uses (data -> backbone -> HMA -> loss)."""

import pytest
import torch
import torch.nn.functional as F

from hetmem.backbones import compatible_backbones
from hetmem.data import list_tasks, load_task
from hetmem.data.task import task_entry
from hetmem.train.config import resolve_config
from hetmem.train.loaders import EpochLoader
from hetmem.train.module import split_batch
from hetmem.train.runner import build_model, train

SMALL = {"resnet18": {"width": 8}, "vit": {"dim": 32, "depth": 1, "num_heads": 2}, "cnn": {"channels": [16, 16, 16, 16]}}
GRAPH_SMALL = {"hidden_dim": 32}
TASKS = [t for t in list_tasks(offline=True) if not t.startswith("_") and task_entry(t).kind == "classification"]  # sequence: tests/train/test_sequence.py
PAIRS = [
    (task, backbone)
    for task in TASKS
    for backbone in compatible_backbones(load_task(task, per_class=3, validate=False).input_spec)
    if not backbone.startswith("_")
]


def test_every_offline_task_has_a_backbone():
    assert {t for t, _ in PAIRS} == set(TASKS)
    assert len(PAIRS) >= 15


@pytest.mark.parametrize("task_name, backbone", PAIRS)
def test_pair_trains_and_evaluates(task_name, backbone):
    options = GRAPH_SMALL if backbone.startswith(("gcn", "gin")) else SMALL.get(backbone, {})
    cfg = resolve_config({"task": task_name, "backbone": backbone, "variant": "hma", "batch_size": 16,
                          "backbone_options": options, "hma": {"queue_size": 16, "slots_per_class": 2}})
    task = load_task(task_name, per_class=4)
    torch.manual_seed(0)
    model = build_model(cfg, task).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = EpochLoader(task.train, 16, shuffle=True, graph=task.is_graph)
    for step, batch in zip(range(2), loader):
        x, y = split_batch(batch)
        loss = F.cross_entropy(model(x, y), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
    assert len(model.head.queue) > 0  # the queue was written
    model.eval()
    x, y = split_batch(next(iter(EpochLoader(task.val, 8, shuffle=False, graph=task.is_graph))))
    with torch.no_grad():
        assert model(x).shape == (len(y), task.num_classes)


@pytest.mark.slow
def test_the_runner_end_to_end_on_real_data(tmp_path):
    cfg = resolve_config({"task": "digits", "epochs": 1, "per_class": 10, "progress": False})
    run = train(cfg, tmp_path / "r")
    assert 0.0 <= run.seeds[0].metrics["test"]["accuracy"] <= 1.0
