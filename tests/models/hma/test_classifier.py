import pytest
import torch
from torch import nn

from hetmem.models.hma import HMAClassifier, HMAConfig

N = 4


def make_model(backbone, variant="hma", **kw):
    return HMAClassifier(backbone, HMAConfig(num_classes=N, variant=variant, label_dim=8, queue_size=16, **kw))


def batch(B=6):
    return torch.randn(B, 12), torch.randint(0, N, (B,))


def test_training_forward_writes_queue_with_momentum_features_and_true_labels(tiny_backbone):
    model = make_model(tiny_backbone, momentum=0.5).train()
    x, y = batch()
    model(x, y)
    feats, labels = model.head.queue.read()
    assert len(model.head.queue) == 6 and torch.equal(labels, y)
    expected = model.momentum_encoder.module.forward_features(x)  # the copy is in eval mode: deterministic
    assert torch.allclose(feats, expected, atol=1e-6)


def test_momentum_encoder_follows_the_backbone_across_steps(tiny_backbone):
    model = make_model(tiny_backbone, momentum=0.5).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    ema_w = lambda: model.momentum_encoder.module.net[0].weight.clone()  # noqa: E731
    start = ema_w()
    for _ in range(3):
        x, y = batch()
        loss = nn.functional.cross_entropy(model(x, y), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    before_last_update = ema_w()
    model(*batch())  # this forward applies the EMA step that follows the last optimiser step
    after = ema_w()
    backbone_w = model.backbone.net[0].weight.detach()
    assert not torch.equal(start, after)
    assert torch.allclose(after, 0.5 * before_last_update + 0.5 * backbone_w, atol=1e-6)
    assert len(model.head.queue) == 16  # 4 batches of 6 wrapped a 16-row queue


def test_eval_writes_nothing_and_does_not_move_the_momentum_encoder(tiny_backbone):
    model = make_model(tiny_backbone).train()
    model(*batch())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    with torch.no_grad():
        tiny_backbone.net[0].weight.add_(1.0)  # an EMA step would now change the copy
        x, y = batch()
        model(x, y)
        model(x)
    for k, v in model.state_dict().items():
        if not k.startswith("backbone."):
            assert torch.equal(v, state[k]), k


def test_training_without_labels_is_a_clear_error(tiny_backbone):
    model = make_model(tiny_backbone).train()
    with pytest.raises(ValueError, match="labels are required in training mode"):
        model(batch()[0])


@pytest.mark.parametrize("variant", ["none", "param", "abd", "abd+syn"])
def test_variants_without_queue_have_no_momentum_encoder_and_need_no_labels(tiny_backbone, variant):
    model = make_model(tiny_backbone, variant).train()
    assert model.momentum_encoder is None
    assert model(batch()[0]).shape == (6, N)


def test_gradients_reach_backbone_slots_and_label_embeddings_never_the_momentum_encoder(tiny_backbone):
    model = make_model(tiny_backbone).train()
    model(*batch())  # fill some queue rows
    x, y = batch()
    nn.functional.cross_entropy(model(x, y), y).backward()
    assert model.backbone.net[0].weight.grad.abs().sum() > 0
    assert model.head.slots.slots.grad.abs().sum() > 0
    assert model.head.label_embed.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in model.momentum_encoder.parameters())


def test_momentum_encoder_is_not_in_parameters_that_need_grad(tiny_backbone):
    model = make_model(tiny_backbone)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert not trainable & {id(p) for p in model.momentum_encoder.parameters()}


def test_state_dict_round_trip_restores_queue_ema_and_outputs(tiny_backbone):
    model = make_model(tiny_backbone).train()
    for _ in range(3):
        model(*batch())
    model.eval()
    x = batch()[0]
    out = model(x)
    clone = make_model(type(tiny_backbone)()).eval()
    clone.load_state_dict(model.state_dict())
    assert torch.equal(clone(x), out)
    assert int(clone.head.queue.ptr) == int(model.head.queue.ptr)
    assert any(k.startswith("momentum_encoder.") for k in model.state_dict())


def test_batch_of_one_trains_and_evaluates():
    backbone = nn.Module()
    backbone.feature_dim = 5
    backbone.lin = nn.Linear(3, 5)
    backbone.forward_features = backbone.lin
    model = HMAClassifier(backbone, HMAConfig(num_classes=2, label_dim=4, queue_size=4, num_heads=1))
    y = torch.tensor([1])
    assert model(torch.randn(1, 3), y).shape == (1, 2)
    assert model.eval()(torch.randn(1, 3)).shape == (1, 2)


def test_backbone_without_the_interface_is_rejected():
    with pytest.raises(ValueError, match="forward_features"):
        HMAClassifier(nn.Linear(3, 4), HMAConfig(num_classes=2))


@pytest.mark.parametrize("labels, match", [
    (torch.tensor([0, 1, 2, 3, 4, 0]), r"labels must be in \[0, 4\)"),
    (torch.tensor([0, 1]), "labels has 2 rows but the batch has 6"),
    (torch.zeros(6, 1, dtype=torch.long), "integer tensor of shape"),
])
def test_bad_labels(tiny_backbone, labels, match):
    with pytest.raises(ValueError, match=match):
        make_model(tiny_backbone)(batch()[0], labels)


def test_a_refused_call_changes_no_state(tiny_backbone):
    model = make_model(tiny_backbone, momentum=0.5).train()
    model(*batch())
    with torch.no_grad():  # the backbone moves away from its momentum copy, as after an optimiser step
        for p in model.backbone.parameters():
            p.add_(1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="labels has 2 rows but the batch has 6"):
        model(batch()[0], torch.tensor([0, 1]))
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == []  # before: the momentum encoder had taken its EMA step and BatchNorm its statistics


def test_wrong_backbone_width_is_caught_by_the_head(tiny_backbone):
    tiny_backbone.feature_dim = 21  # lies about its width
    model = make_model(tiny_backbone)
    with pytest.raises(ValueError, match=r"features must have shape \(B, 21\), got \(6, 20\)"):
        model(*batch())


def test_augment_writes_nothing(tiny_backbone):
    model = make_model(tiny_backbone).train()
    out = model.augment(batch()[0], need_weights=True)
    assert len(model.head.queue) == 0 and out.c3.shape == (6, model.head.width + 8)
