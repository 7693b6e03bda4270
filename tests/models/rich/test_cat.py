import copy

import pytest
import torch
import torch.nn.functional as F

from hetmem.models.hma import HMAClassifier, HMAConfig
from hetmem.models.rich import CatBackbone, FeatureClassifier, Recipe, catsub, concat_heads, two_stage_finetune

from ._nets import BNNet, blobs


def members(n=3, dims=(5, 7, 4)):
    return [BNNet(feature_dim=d) for d in dims[:n]]


def test_cat_concatenates_member_features_in_order():
    nets = members()
    cat = CatBackbone(nets)
    x = torch.randn(8, 6)
    out = cat(x)
    assert cat.feature_dim == 16 and out.shape == (8, 16) and cat.member_dims == (5, 7, 4)
    for net, cols in zip(nets, cat.slices):
        assert torch.equal(out[:, cols], net.forward_features(x))


def test_cat_members_are_frozen_and_stay_in_eval_mode():
    cat = CatBackbone(members())
    cat.train()
    assert not any(p.requires_grad for p in cat.parameters())
    assert all(not m.training for m in cat.members.modules())
    stats = [m.bn.running_mean.clone() for m in cat.members]
    cat(torch.randn(8, 6) + 5)  # a training-mode forward on shifted data
    assert all(torch.equal(s, m.bn.running_mean) for s, m in zip(stats, cat.members))


def test_an_hma_head_trains_on_a_cat_without_moving_the_members():
    cat = CatBackbone(members())
    before = copy.deepcopy(cat.state_dict())
    model = HMAClassifier(cat, HMAConfig(num_classes=3, queue_size=16, label_dim=8, width=16))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x, y = blobs(16)
    head_before = model.head.fc.weight.clone()
    for _ in range(2):
        loss = F.cross_entropy(model(x, y), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not torch.equal(head_before, model.head.fc.weight)
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_concat_heads_outputs_the_mean_of_the_members_logits():
    nets = members()
    heads = [torch.nn.Linear(m.feature_dim, 3) for m in nets]
    head = concat_heads(heads)
    x = torch.randn(10, 6)
    cat = CatBackbone(nets)
    mean = torch.stack([h(m(x)) for h, m in zip(heads, nets)]).mean(0)
    assert torch.allclose(head(cat(x)), mean, atol=1e-6)
    assert torch.allclose(head.weight[:, :5], heads[0].weight / 3) and torch.allclose(head.bias, sum(h.bias for h in heads) / 3)


def test_concat_heads_refuses_heads_of_different_classes():
    with pytest.raises(ValueError, match="same out_features"):
        concat_heads([torch.nn.Linear(4, 3), torch.nn.Linear(4, 2)])
    with pytest.raises(ValueError, match="non-empty"):
        concat_heads([])
    with pytest.raises(ValueError, match="forward_features"):
        CatBackbone([torch.nn.Linear(3, 3)])


def test_catsub_is_the_ensemble_of_its_classifiers():
    clfs = [FeatureClassifier(m, 3) for m in members()]
    for c in clfs:
        c.eval()
    x = torch.randn(7, 6)
    mean = torch.stack([c(x) for c in clfs]).mean(0)
    assert torch.allclose(catsub(clfs).eval()(x), mean, atol=1e-6)


def test_two_stage_starts_the_head_at_the_members_average_and_trains_only_the_head():
    x, y = blobs(48)
    nets = members()
    originals = copy.deepcopy([n.state_dict() for n in nets])
    recipe = Recipe(steps=5, lr=0.05, batch_size=16)
    untrained = two_stage_finetune(nets, x, y, num_classes=3, finetune=recipe, head_epochs=0)
    # the given backbones are copied, not fine-tuned in place
    assert all(torch.equal(o[k], n.state_dict()[k]) for o, n in zip(originals, nets) for k in o)
    mean = torch.stack([m.eval()(x) for m in untrained.members]).mean(0)
    assert torch.allclose(untrained.model(x), mean, atol=1e-5)
    assert untrained.head_losses == []

    result = two_stage_finetune(nets, x, y, num_classes=3, finetune=recipe, head_epochs=1)
    assert len(result.head_losses) == 3  # one epoch: 48 rows in batches of 16
    # stage 1 is deterministic, so the members equal the untrained run's; only the head moved
    for a, b in zip(result.members, untrained.members):
        assert all(torch.equal(a.backbone.state_dict()[k], b.backbone.state_dict()[k]) for k in a.backbone.state_dict())
    assert not torch.allclose(result.model.head.weight, untrained.model.head.weight)
    assert result.model.backbone.members[0] is result.members[0].backbone


def test_two_stage_checks_head_epochs():
    x, y = blobs(8)
    with pytest.raises(ValueError, match="head_epochs"):
        two_stage_finetune(members(1), x, y, num_classes=3, finetune=Recipe(steps=1, lr=0.1), head_epochs=-1)
