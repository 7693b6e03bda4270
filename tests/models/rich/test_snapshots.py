import pytest
import torch

from hetmem.models.rich import CatBackbone, FeatureClassifier, Recipe, fit_steps, train_snapshots

from ._nets import BNNet, blobs


def test_snapshots_are_copies_at_regular_steps_and_the_last_is_the_final_model():
    x, y = blobs(64)
    torch.manual_seed(0)
    net = FeatureClassifier(BNNet(), 3)
    torch.manual_seed(0)
    ref = FeatureClassifier(BNNet(), 3)
    snaps = train_snapshots(net, x, y, Recipe(steps=20, lr=0.1, batch_size=16), count=4, seed=3)
    assert len(snaps) == 4 and all(not s.training for s in snaps)
    assert all(torch.equal(a, b) for a, b in zip(snaps[-1].state_dict().values(), net.state_dict().values()))
    weights = [s.head.weight for s in snaps]
    assert all(not torch.equal(a, b) for a, b in zip(weights, weights[1:]))
    # the first snapshot is the model after 5 of the 20 steps
    fit_steps(ref, x, y, Recipe(steps=5, lr=0.1, batch_size=16), seed=3)
    assert torch.allclose(ref.head.weight, snaps[0].head.weight)
    assert CatBackbone([s.backbone for s in snaps]).feature_dim == 20


def test_snapshots_refuse_steps_that_do_not_divide():
    x, y = blobs(8)
    with pytest.raises(ValueError, match="multiple of count"):
        train_snapshots(FeatureClassifier(BNNet(), 3), x, y, Recipe(steps=7, lr=0.1), count=5)
