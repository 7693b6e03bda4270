import pytest
import torch
import torch.nn.functional as F

from hetmem.train.env_objectives import ENV_OBJECTIVES, EnvBatch, create_objective, example_losses, l2_penalty, penalty_schedule


def _linear_batch(member_shape=(3,), n=12, d=5, seed=0, classes=None):
    """Two environments through a linear head (M, D) or (M, D, C): features, logits, labels, params."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(*member_shape, d, *(() if classes is None else (classes,)), generator=g).requires_grad_()
    feats = [torch.randn(*member_shape, n + k, d, generator=g) for k in (0, 3)]
    eq = "...nd,...d->...n" if classes is None else "...nd,...dc->...nc"
    logits = [torch.einsum(eq, f, w) for f in feats]
    labels = [torch.randint(0, classes or 2, (n + k,), generator=g) for k in (0, 3)]
    return w, EnvBatch(logits, labels, feats, [w], member_ndim=len(member_shape))


def _per_row_head_grads(w, phi, y):
    """Per-row gradients of the BCE of a 1-logit linear head, by autograd one row at a time (Fishr's BackPACK)."""
    rows = []
    for i in range(len(y)):
        wi = w.detach().clone().requires_grad_()
        loss = F.binary_cross_entropy_with_logits((phi[i] @ wi)[None], y[i : i + 1].float())
        rows.append(torch.autograd.grad(loss, wi)[0])
    return torch.stack(rows)


def test_penalties_match_direct_computations():
    w, b = _linear_batch(member_shape=())
    risks = torch.stack([example_losses(z, y).mean() for z, y in zip(b.logits, b.labels)])
    # IRMv1: mean_e (dL_e/ds)^2, dL/ds at s = 1 is mean((sigmoid(f) - y) f) for BCE
    irm_direct = torch.stack([((torch.sigmoid(z) - y.float()) * z).mean() for z, y in zip(b.logits, b.labels)]).pow(2).mean()
    o = create_objective("irmv1", penalty_weight=1.0)
    bb = o.prepare(b)
    assert torch.allclose(o.penalty(bb, o.env_risks(bb)), irm_direct, atol=1e-6)
    assert torch.allclose(create_objective("vrex").penalty(b, risks), (risks[0] - risks[1]).pow(2) / 2)
    assert torch.allclose(create_objective("sd").penalty(b, risks), sum(z.pow(2).mean() for z in b.logits))
    # IGA: sum_e ||g_e - mean g||^2 with g_e the gradient of L_e in w
    g = [torch.autograd.grad(r, w, retain_graph=True)[0] for r in risks]
    iga_direct = sum((ge - (g[0] + g[1]) / 2).pow(2).sum() for ge in g)
    assert torch.allclose(create_objective("iga").penalty(b, risks), iga_direct, atol=1e-6)
    # Fishr: uncentred second moments of the per-row head gradients (weights; the bias gradient is the residual)
    v = []
    for phi, y, z in zip(b.features, b.labels, b.logits):
        gw = _per_row_head_grads(w, phi, y)  # (N, D)
        gb = torch.sigmoid(z.detach()) - y.float()
        v.append(torch.cat([gw.pow(2).mean(0), gb.pow(2).mean()[None]]))
    fishr_direct = sum((ve - (v[0] + v[1]) / 2).pow(2).sum() for ve in v)
    assert torch.allclose(create_objective("fishr").penalty(b, risks), fishr_direct, atol=1e-6)


@pytest.mark.parametrize("name", sorted(ENV_OBJECTIVES))
@pytest.mark.parametrize("classes", [None, 3])
def test_members_never_mix(name, classes):
    """An ensemble's loss per member equals the objective on that member alone, and its gradient stays in that member."""
    torch.manual_seed(0)
    opts = {"penalty_weight": 10.0, "num_envs": 2}
    w, b = _linear_batch(member_shape=(3,), classes=classes)
    if name == "clove":
        torch.manual_seed(1)
    together = create_objective(name, member_shape=(3,), **opts)(b, step=5)
    assert together.shape == (3,)
    (grad,) = torch.autograd.grad(together[1], w)
    assert grad[0].abs().max() == 0 and grad[2].abs().max() == 0 and grad[1].abs().max() > 0
    for m in range(3):
        wm = w[m].detach().clone().requires_grad_()
        eq = "nd,d->n" if classes is None else "nd,dc->nc"
        logits = [torch.einsum(eq, f[m], wm) for f in b.features]
        alone = EnvBatch(logits, b.labels, [f[m] for f in b.features], [wm], member_ndim=0)
        assert torch.allclose(create_objective(name, **opts)(alone, step=5), together[m], atol=1e-5), (name, m)


def test_anneal_weight_one_before_then_loss_divided_by_lambda():
    _, b = _linear_batch(member_shape=())
    o = create_objective("vrex", penalty_weight=1e4, anneal_steps=3)
    risks = o.env_risks(b)
    data, pen = risks.sum(), o.penalty(b, risks)
    assert [o.weight(t) for t in (0, 2, 3, 9)] == [1.0, 1.0, 1e4, 1e4]
    assert torch.allclose(o(b, step=2), data + pen)  # lambda = 1, not 0, before the anneal
    assert torch.allclose(o(b, step=3, l2=0.5), (data + 0.5 + 1e4 * pen) / 1e4)  # L2 inside the division
    mean = create_objective("vrex", penalty_weight=0.5, risk="mean")
    assert torch.allclose(mean(b, step=0), risks.mean() + 0.5 * pen)  # lambda <= 1: no division
    assert penalty_schedule(0, penalty_weight=5.0, anneal_steps=0) == 5.0


def test_erm_groupdro_and_rerm_data_terms():
    _, b = _linear_batch(member_shape=())
    o = create_objective("erm")
    pooled = torch.cat([example_losses(z, y) for z, y in zip(b.logits, b.labels)]).mean()
    assert torch.allclose(o(b, step=0), pooled)
    risks = o.env_risks(b)
    assert torch.allclose(create_objective("rerm")(b, step=0), risks.max())
    dro = create_objective("groupdro", eta=1.0)
    first = dro(b, step=0)
    q = torch.softmax(risks.detach(), 0)  # from uniform weights, one exp(eta L) step is a softmax
    assert torch.allclose(first, (q * risks).sum(), atol=1e-6) and torch.allclose(dro.q, q)
    assert "q" not in dro.state_dict()


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="unknown objective 'nope'"):
        create_objective("nope")
    with pytest.raises(ValueError, match="penalty_weight and anneal_weight must be >= 0"):
        create_objective("irmv1", penalty_weight=-1)
    with pytest.raises(ValueError, match="anneal_steps must be >= 0"):
        create_objective("vrex", anneal_steps=-2)
    with pytest.raises(ValueError, match="unexpected keyword argument 'eta'"):
        create_objective("vrex", eta=0.1)
    with pytest.raises(ValueError, match="features"):
        _, b = _linear_batch(member_shape=())
        create_objective("fishr", penalty_weight=1.0)(EnvBatch(b.logits, b.labels), step=0)


def test_l2_penalty_scopes():
    a, h = torch.ones(2, 3), torch.full((2, 4), 2.0)
    groups = {"featurizer": [a], "head": [h]}
    assert torch.equal(l2_penalty(groups, "all", member_ndim=1), torch.tensor([19.0, 19.0]))
    assert torch.equal(l2_penalty(groups, "featurizer", member_ndim=1), torch.tensor([3.0, 3.0]))
    assert l2_penalty(groups, "none") == 0.0
