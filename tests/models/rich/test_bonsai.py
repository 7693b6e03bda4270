import pytest
import torch

from hetmem.models.rich.bonsai import BonsaiConfig, _synthesis_rows, discover_and_synthesize


def _two_feature_data(members=2, n=400, seed=0):
    """Labels predicted by a strong feature (x0, 90%) and a weak one (x1, 75%), plus noise dims."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (members, n), generator=g)
    sign = 2 * y.float() - 1
    strong = sign * torch.where(torch.rand(members, n, generator=g) < 0.9, 1.0, -1.0)
    weak = sign * torch.where(torch.rand(members, n, generator=g) < 0.75, 1.0, -1.0)
    x = torch.cat([strong[..., None], weak[..., None], 0.1 * torch.randn(members, n, 4, generator=g)], -1)
    return x, y


CFG = BonsaiConfig(round_steps=(20, 60), synthesis_steps=60, lr=1e-2, l2=0.0, hidden_dim=16)


def test_discovery_rounds_and_synthesis():
    x, y = _two_feature_data()
    b = discover_and_synthesize(x, y, [0, 1], CFG)
    assert b.correct.shape == (2, 2, 400) and b.predictions.shape == (2, 2, 400)
    assert torch.equal(b.correct, b.predictions == y)  # pseudo-labels are the rounds' hard predictions
    # code form: A = rows where every round agrees (all right or all wrong)
    assert torch.equal(b.agree, b.correct.all(0) | (~b.correct).all(0))
    r0 = b.correct[0].float().mean(-1)
    assert (r0 > 0.8).all()  # round 0 (ERM) finds the strong feature
    # round 1 balances the groups round 0 made: it gets far more of round 0's mistakes right than round 0 did (0)
    wrong0 = ~b.correct[0]
    assert ((b.correct[1] & wrong0).sum(-1).float() / wrong0.sum(-1) > 0.3).all()
    assert b.synthesis_curve.metrics["pseudo_label_acc"][-1][0] > 0.8
    init = b.initialization()
    assert torch.allclose(init.head.weight, b.network.head.weight.mean(-1, keepdim=True))
    assert torch.equal(init.w1, b.network.w1) and init.w1.data_ptr() != b.network.w1.data_ptr()
    assert b.features(x).shape == (2, 400, 16)
    assert set(b.summary()) == {"round0_train_acc", "round1_train_acc", "agree_share"}


def test_thesis_form_and_early_stopping():
    x, y = _two_feature_data()
    cfg = BonsaiConfig(**{**CFG.__dict__, "form": "thesis", "stop": "worst-group", "stop_every": 5})
    b = discover_and_synthesize(x, y, [0, 1], cfg)
    assert torch.equal(b.agree, b.correct.all(0))  # thesis: the intersection of the A_k
    curve = b.round_curves[1]
    assert curve.steps == list(range(0, 61, 5)) and "worst_group_val" in curve.metrics


def test_a_seed_gives_the_same_bonsai_alone_or_with_others():
    x, y = _two_feature_data(members=2)
    both = discover_and_synthesize(x, y, [0, 1], CFG)
    alone = discover_and_synthesize(x[1:], y[1:], [1], CFG)
    assert torch.equal(both.predictions[:, 1], alone.predictions[:, 0])
    assert torch.allclose(both.network.w1[1], alone.network.w1[0], atol=1e-5)


def test_synthesis_rows_balance_agreeing_and_disagreeing_rows():
    agree = torch.zeros(1, 100, dtype=torch.bool)
    agree[0, :90] = True
    rows = _synthesis_rows(agree, [0])
    assert rows.shape == (1, 100) and (rows[0] < 90).sum() == 50


@pytest.mark.parametrize("kw, match", [({"round_steps": ()}, "at least one round"), ({"form": "x"}, "form must be"),
                                       ({"val_fraction": 1.0}, "val_fraction")])
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        BonsaiConfig(**kw)
