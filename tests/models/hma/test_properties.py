"""Property-based tests of HMA over random shapes, class counts, queue sizes and variants."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from hetmem.models.hma import VARIANTS, HMAClassifier, HMAConfig, HMAHead


@st.composite
def setups(draw):
    cfg = HMAConfig(
        num_classes=draw(st.integers(2, 5)),
        variant=draw(st.sampled_from(sorted(VARIANTS))),
        label_dim=draw(st.integers(1, 8)),
        queue_size=draw(st.integers(1, 16)),
        slots_per_class=draw(st.integers(1, 4)),
        num_heads=draw(st.integers(1, 4)),
        dropout=0.0,
        eval_context=draw(st.sampled_from(["batch", "single"])),
        queue_labels=draw(st.sampled_from(["read", "write"])),
    )
    feature_dim = draw(st.integers(1, 24))
    batch = draw(st.integers(1, 9))
    prefill = draw(st.integers(0, 20))
    seed = draw(st.integers(0, 2**16))
    return cfg, feature_dim, batch, prefill, seed


def make(cfg, feature_dim, prefill, seed):
    torch.manual_seed(seed)
    head = HMAHead(feature_dim, cfg)
    if prefill:
        head.write_memory_(torch.randn(prefill, feature_dim), torch.randint(0, cfg.num_classes, (prefill,)))
    return head.eval()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(setups())
def test_logits_are_finite_with_the_right_shape(setup):
    cfg, feature_dim, batch, prefill, seed = setup
    head = make(cfg, feature_dim, prefill, seed)
    for mode in (head.eval(), head.train()):
        out = mode(torch.randn(batch, feature_dim) * 10)
        assert out.shape == (batch, cfg.num_classes) and torch.isfinite(out).all()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(setups())
def test_permuting_the_batch_permutes_the_logits(setup):
    cfg, feature_dim, batch, prefill, seed = setup
    head = make(cfg, feature_dim, prefill, seed)
    h = torch.randn(batch, feature_dim)
    perm = torch.randperm(batch)
    assert torch.allclose(head(h)[perm], head(h[perm]), atol=1e-4)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(setups())
def test_eval_never_writes_and_training_writes_every_row(setup):
    cfg, feature_dim, batch, prefill, seed = setup
    torch.manual_seed(seed)
    backbone = nn.Linear(3, feature_dim)
    backbone.feature_dim = feature_dim
    backbone.forward_features = backbone.forward
    model = HMAClassifier(backbone, cfg)
    x, y = torch.randn(batch, 3), torch.randint(0, cfg.num_classes, (batch,))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model(x, y)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    model.train()
    model(x, y)
    if cfg.uses_queue:
        assert len(model.head.queue) == min(batch, cfg.queue_size)
        assert int(model.head.queue.ptr) == batch % cfg.queue_size
    else:
        assert model.head.queue is None
