"""Eval-mode cache of the memories' keys and values: every change of what they depend on must
show in the next prediction, equal to an uncached model to 1e-6."""

import copy

import pytest
import torch

from hetmem.models.hma import HMAClassifier, HMAConfig

N = 3


def make_model(backbone, **kw):
    torch.manual_seed(0)
    cfg = dict(num_classes=N, label_dim=4, queue_size=8, slots_per_class=2, num_heads=2, dropout=0.0, momentum=0.5)
    model = HMAClassifier(backbone, HMAConfig(**{**cfg, **kw})).train()
    for _ in range(2):  # fills the queue
        model(torch.randn(5, 12), torch.randint(0, N, (5,)))
    return model.eval()


def predict(model, x, *, cached=True):
    model.head.cache_memory = cached
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.head.cache_memory = True


def step(*params):
    """One optimiser step on ``params`` only (gradients drawn at random)."""
    opt = torch.optim.SGD(params, lr=0.5)
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()


TRIGGERS = {
    "train-mode forward (queue write + EMA)": lambda m: (m.train()(torch.randn(4, 12), torch.randint(0, N, (4,))), m.eval()),
    "queue write in eval": lambda m: m.head.write_memory_(torch.randn(3, 20), torch.tensor([0, 1, 2])),
    "queue reset": lambda m: m.head.queue.reset(),
    "load_state_dict": lambda m: m.load_state_dict(make_model(type(m.backbone)()).state_dict() | {
        "head.queue.rows": torch.randn(8, 20)}),
    "load_state_dict(assign=True)": lambda m: m.load_state_dict(
        {k: v.clone() + 0.1 if v.is_floating_point() else v.clone() for k, v in m.state_dict().items()}, assign=True),
    "optimiser step on the RMA block": lambda m: step(m.head.rma.k_proj.weight),
    "optimiser step on the head's width projection": lambda m: step(m.head.proj.weight),
    "optimiser step on the cosine temperature": lambda m: step(m.head.rma.log_temperature),
    "optimiser step on the SMA block's key norm": lambda m: step(m.head.sma.norm_kv.weight),
    "optimiser step on the label embedding": lambda m: step(m.head.label_embed.weight),
    "optimiser step on the slots": lambda m: step(m.head.slots.slots),
    "in-place write under no_grad": lambda m: torch.no_grad()(lambda: m.head.slots.slots.mul_(3.0))(),
    "dtype round trip through half": lambda m: m.half().float(),
}


@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_cached_predictions_follow_every_change(tiny_backbone, trigger):
    model = make_model(tiny_backbone)
    x = torch.randn(6, 12)
    before = predict(model, x)
    assert torch.allclose(predict(model, x), before)  # filled and reused
    misses = model.head._memory_cache.misses
    TRIGGERS[trigger](model)
    after = predict(model, x)
    assert model.head._memory_cache.misses == misses + 1, "the change was not seen"
    assert not torch.equal(after, before), "the trigger should change the predictions"
    assert torch.allclose(after, predict(model, x, cached=False), atol=1e-6)


def test_nothing_changed_means_no_recompute_and_equal_outputs(tiny_backbone):
    model = make_model(tiny_backbone)
    x = torch.randn(6, 12)
    uncached = predict(model, x, cached=False)
    with torch.inference_mode():
        outs = [model(x) for _ in range(3)]
    cache = model.head._memory_cache
    assert (cache.misses, cache.hits) == (1, 2)
    assert all(torch.allclose(o, uncached, atol=1e-6) for o in outs)


def test_move_to_float64_is_seen(tiny_backbone):
    model = make_model(tiny_backbone)
    x = torch.randn(6, 12)
    predict(model, x)
    model.double()
    out = predict(model, x)
    assert out.dtype == torch.float64 and torch.allclose(out, predict(model, x, cached=False), atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_move_to_another_device_is_seen(tiny_backbone):
    model = make_model(tiny_backbone)
    x = torch.randn(6, 12)
    predict(model, x)
    model.cuda()
    out = predict(model, x.cuda())
    assert out.is_cuda and torch.allclose(out, predict(model, x.cuda(), cached=False), atol=1e-6)


def test_train_mode_and_autograd_never_use_the_cache(tiny_backbone):
    model = make_model(tiny_backbone)
    x = torch.randn(6, 12)
    predict(model, x)
    hits = model.head._memory_cache.hits
    model(x).sum().backward()  # eval mode, autograd on: gradients must reach the memory
    assert model.head.slots.slots.grad is not None and model.head.rma.k_proj.weight.grad.abs().sum() > 0
    model.train()
    with torch.no_grad():
        model(x, torch.zeros(6, dtype=torch.long))
    assert model.head._memory_cache.hits == hits


def test_inference_mode_then_no_grad(tiny_backbone):
    model = make_model(tiny_backbone)
    x = torch.randn(6, 12)
    with torch.inference_mode():
        a = model(x)
    b = predict(model, x)  # tensors made in inference mode are not reused outside it
    assert torch.allclose(a, b) and model.head._memory_cache.misses == 2


def test_writes_through_data_need_clear(tiny_backbone):
    model = make_model(tiny_backbone)
    x = torch.randn(6, 12)
    before = predict(model, x)
    model.head.slots.slots.data.mul_(3.0)  # bypasses the version counter: not seen
    assert torch.equal(predict(model, x), before)
    model.head.clear_memory_cache()
    assert torch.allclose(predict(model, x), predict(model, x, cached=False), atol=1e-6)


def test_copies_start_with_an_empty_cache(tiny_backbone):
    model = make_model(tiny_backbone)
    x = torch.randn(6, 12)
    predict(model, x)
    twin = copy.deepcopy(model)
    assert twin.head._memory_cache.misses == 0
    assert torch.allclose(predict(twin, x), predict(model, x), atol=1e-6)


def test_a_model_made_in_inference_mode_is_correct_but_not_cached(tiny_backbone):
    with torch.inference_mode():
        model = make_model(tiny_backbone)  # its parameters are inference tensors: no version counter
        x = torch.randn(6, 12)
        a, b = model(x), model(x)
    assert torch.equal(a, b) and model.head._memory_cache.hits == 0
