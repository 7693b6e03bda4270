import pytest
import torch
from torch import nn

from hetmem.memory import MomentumEncoder


def test_copy_is_frozen_and_independent(tiny_backbone):
    ema = MomentumEncoder(tiny_backbone, momentum=0.9)
    assert all(not p.requires_grad for p in ema.parameters())
    assert all(p.requires_grad for p in tiny_backbone.parameters())
    assert ema.module.net[0].weight.data_ptr() != tiny_backbone.net[0].weight.data_ptr()


def test_stays_in_eval_mode_when_parent_trains(tiny_backbone):
    parent = nn.ModuleDict({"ema": MomentumEncoder(tiny_backbone)})
    parent.train()
    assert not parent["ema"].module.training
    assert all(not m.training for m in parent["ema"].module.modules())


def test_ema_update_rule(tiny_backbone):
    ema = MomentumEncoder(tiny_backbone, momentum=0.9)
    before = ema.module.net[0].weight.clone()
    with torch.no_grad():
        tiny_backbone.net[0].weight.add_(1.0)
    ema.update_(tiny_backbone)
    expected = 0.9 * before + 0.1 * tiny_backbone.net[0].weight
    assert torch.allclose(ema.module.net[0].weight, expected, atol=1e-6)


@pytest.mark.parametrize("mode", ["ema", "copy", "keep"])
def test_batchnorm_buffers(tiny_backbone, mode):
    ema = MomentumEncoder(tiny_backbone, momentum=0.5, buffers=mode)
    tiny_backbone.train()
    tiny_backbone.forward_features(torch.randn(16, 12) * 3 + 5)  # moves running stats
    src = tiny_backbone.net[1].running_mean.clone()
    old = ema.module.net[1].running_mean.clone()
    ema.update_(tiny_backbone)
    got = ema.module.net[1].running_mean
    expected = {"ema": 0.5 * old + 0.5 * src, "copy": src, "keep": old}[mode]
    assert torch.allclose(got, expected)
    tracked = ema.module.net[1].num_batches_tracked
    assert int(tracked) == (0 if mode == "keep" else 1)


def test_forward_has_no_grad(tiny_backbone):
    ema = MomentumEncoder(tiny_backbone.net)
    out = ema(torch.randn(4, 12, requires_grad=True))
    assert not out.requires_grad


def test_mismatched_source_rejected(tiny_backbone):
    ema = MomentumEncoder(tiny_backbone)
    with pytest.raises(ValueError, match="parameters"):
        ema.update_(nn.Linear(2, 2))


@pytest.mark.parametrize("kwargs, match", [({"momentum": 1.5}, "momentum"), ({"buffers": "avg"}, "buffers")])
def test_bad_arguments(tiny_backbone, kwargs, match):
    with pytest.raises(ValueError, match=match):
        MomentumEncoder(tiny_backbone, **kwargs)
