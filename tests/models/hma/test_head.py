import pytest
import torch

from hetmem.benchmarks.rma import paper_literal_rma
from hetmem.models.hma import VARIANTS, HMAConfig, HMAHead

D1, N = 16, 3


# The mechanics below are tested on the paper's attention (features enter unprojected, dot
# scores, whole-row keys, no LayerScale); the defaults' own options are tested at the end.
PAPER_ATTENTION = {"width": None, "keys": "row", "scores": "dot", "layer_scale": None, "label_dropout": 0.0}


def make_head(variant="hma", **kw):
    cfg = HMAConfig(num_classes=N, variant=variant, label_dim=8, queue_size=32, slots_per_class=2, **{**PAPER_ATTENTION, **kw})
    return HMAHead(D1, cfg)


def filled(head, n=20):
    if head.queue is not None:
        head.write_memory_(torch.randn(n, D1), torch.randint(0, N, (n,)))
    return head


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("B", [1, 7])
def test_logit_shapes_for_every_variant(variant, B):
    head = filled(make_head(variant))
    assert head(torch.randn(B, D1)).shape == (B, N)
    head.eval()
    assert head(torch.randn(B, D1)).shape == (B, N)


@pytest.mark.parametrize("variant", ["param", "rma", "abd", "abd+rma", "abd+syn", "hma"])
def test_augment_returns_every_intermediate(variant):
    head = filled(make_head(variant)).eval()
    out = head.augment(torch.randn(5, D1), need_weights=True)
    assert out.c1.shape == out.c2.shape == out.c3.shape == (5, D1 + 8)
    M = 20 if head.queue is not None else 0
    assert out.rma_weights.shape == (4, 5, 1 + M)
    S = N * 2 if head.slots is not None else 0
    K = (5 if head.context() == "batch" else 1) + S
    assert out.sma_weights.shape == (4, 5, K)


def test_c1_is_features_and_unknown_label_embedding():
    head = make_head()
    h = torch.randn(4, D1)
    c1 = head.augment(h).c1
    assert torch.equal(c1[:, :D1], h)
    assert torch.equal(c1[:, D1:], head.label_embed.weight[N].expand(4, -1))


@pytest.mark.parametrize("queue_labels", ["read", "write"])
def test_rma_read_equals_paper_literal_formulation(queue_labels):
    head = filled(make_head(queue_labels=queue_labels), n=25).eval()
    h = torch.randn(9, D1)
    ours = head.augment(h).c2
    c1 = torch.cat([h, head.label_embed.weight[N].expand(9, -1)], dim=1)
    literal = paper_literal_rma(head.rma, c1, head.queue_rows())
    assert torch.allclose(ours, literal, atol=1e-5)


def test_queue_rows_join_features_with_true_label_embeddings():
    head = make_head()
    feats, labels = torch.randn(4, D1), torch.tensor([2, 0, 1, 2])
    head.write_memory_(feats, labels)
    rows = head.queue_rows()
    assert torch.equal(rows[:, :D1], feats)
    assert torch.equal(rows[:, D1:], head.label_embed(labels))


def test_unfilled_queue_rows_are_never_read():
    head = filled(make_head(), n=5).eval()
    h = torch.randn(6, D1)
    before = head(h)
    with torch.no_grad():
        head.queue.rows[5:] = 1e6  # garbage in the unfilled storage
    assert torch.equal(head(h), before)


def test_empty_queue_rma_equals_param_variant():
    hma, param = make_head("rma").eval(), make_head("param").eval()
    param.load_state_dict({k: v for k, v in hma.state_dict().items() if not k.startswith("queue.")})
    h = torch.randn(5, D1)
    assert torch.allclose(hma(h), param(h), atol=1e-6)


def test_slots_enter_with_their_class_label_embedding():
    head = make_head()
    rows = head.slot_rows()
    assert rows.shape == (N * 2, D1 + 8)
    assert torch.equal(rows[:, D1:], head.label_embed(torch.tensor([0, 0, 1, 1, 2, 2])))


@pytest.mark.parametrize("variant", ["abd", "abd+rma", "abd+syn", "hma", "param", "rma"])
def test_permuting_the_batch_permutes_the_logits(variant):
    head = filled(make_head(variant)).eval()
    h = torch.randn(8, D1)
    perm = torch.randperm(8)
    assert torch.allclose(head(h)[perm], head(h[perm]), atol=1e-5)


def test_single_eval_context_is_batch_independent():
    head = filled(make_head(eval_context="single")).eval()
    x = torch.randn(1, D1)
    alone = head(x)
    for B in (2, 9, 33):
        batch = torch.randn(B, D1)
        pos = int(torch.randint(0, B, ()))
        batch[pos] = x[0]
        assert torch.allclose(head(batch)[pos], alone[0], atol=1e-5)


def test_batch_eval_context_depends_on_the_batch():
    head = filled(make_head(eval_context="batch")).eval()
    x = torch.randn(1, D1)
    alone = head(x)[0]
    inside = head(torch.cat([x, torch.randn(8, D1) * 5]))[0]
    assert not torch.allclose(alone, inside, atol=1e-4)


def test_training_context_is_used_in_train_mode():
    head = make_head(train_context="single", eval_context="batch")
    assert head.context() == "single"
    assert head.eval().context() == "batch"
    assert make_head("rma").context() == "single"  # no ABD: always per row


def test_gradients_reach_slots_label_embeddings_and_attention():
    head = filled(make_head())
    h = torch.randn(6, D1, requires_grad=True)
    head(h).logsumexp(-1).sum().backward()
    assert head.slots.slots.grad.abs().sum() > 0
    emb = head.label_embed.weight.grad
    assert emb[N].abs().sum() > 0  # the 'unknown' row, through C1
    assert emb[:N].abs().sum() > 0  # class rows, through the queue and the slots
    assert head.rma.q_proj.weight.grad.abs().sum() > 0 and head.sma.kv_proj.weight.grad.abs().sum() > 0
    assert h.grad.abs().sum() > 0


def test_state_dict_round_trip_restores_memory_and_outputs_exactly():
    head = filled(make_head(), n=41).eval()  # wraps the 32-row queue
    h = torch.randn(5, D1)
    other = make_head().eval()
    other.load_state_dict(head.state_dict())
    assert int(other.queue.ptr) == int(head.queue.ptr) == 41 % 32
    assert torch.equal(other.queue.rows, head.queue.rows) and torch.equal(other.queue.labels, head.queue.labels)
    assert torch.equal(other(h), head(h))


@pytest.mark.parametrize("bad, match", [
    (torch.randn(4, D1 + 1), r"features must have shape \(B, 16\), got \(4, 17\)"),
    (torch.randn(4, D1, 1), r"features must have shape \(B, 16\)"),
    (torch.randn(0, D1), "empty batch"),
    (torch.full((2, D1), float("nan")), "NaN or Inf"),
    (torch.tensor([[float("inf")] * D1]), "NaN or Inf"),
])
@pytest.mark.parametrize("variant", ["none", "hma"])
def test_bad_features(bad, match, variant):
    with pytest.raises(ValueError, match=match):
        make_head(variant)(bad)


@pytest.mark.parametrize("labels, match", [
    (torch.tensor([0, 3]), r"labels must be in \[0, 3\), got values in \[0, 3\]"),
    (torch.tensor([-1, 0]), r"labels must be in \[0, 3\)"),
    (torch.tensor([0.0, 1.0]), "integer tensor"),
    (torch.tensor([0, 1, 2]), r"shape \(2,\)"),
])
def test_bad_labels_on_write(labels, match):
    with pytest.raises(ValueError, match=match):
        make_head().write_memory_(torch.randn(2, D1), labels)


def test_bad_feature_dim():
    with pytest.raises(ValueError, match="feature_dim must be a positive int"):
        HMAHead(0, HMAConfig(num_classes=2))


def test_none_variant_cannot_augment():
    with pytest.raises(ValueError, match="no memory"):
        make_head("none").augment(torch.randn(2, D1))


def test_validation_can_be_switched_off():
    head = make_head(validate_inputs=False)
    head(torch.full((2, D1), float("nan")))  # no error: the user opted out


# ----- the defaults' options ---------------------------------------------------------------
def test_width_projects_features_and_queue_rows_through_one_map():
    head = make_head(width=6)
    assert head.dim == 6 + 8 and head.slots.slots.shape == (N * 2, 6)
    feats, labels = torch.randn(4, D1), torch.tensor([2, 0, 1, 2])
    head.write_memory_(feats, labels)
    assert torch.allclose(head.queue_rows()[:, :6], head.proj(feats))  # raw features stored, projected at read time
    out = head.augment(torch.randn(3, D1))
    assert out.c1.shape == out.c3.shape == (3, 14)
    assert "width=6" in repr(head)


def test_label_dropout_reads_labels_as_unknown_only_in_training():
    head = filled(make_head(label_dropout=0.5), n=32)
    torch.manual_seed(0)
    rows = head.queue_rows()[:, D1:]  # training: about half the labels dropped
    unknown = head.label_embed.weight[N]
    dropped = (rows == unknown).all(1)
    assert 5 < int(dropped.sum()) < 27
    assert not (head.eval().queue_rows()[:, D1:] == unknown).all(1).any()
    written = filled(make_head(label_dropout=0.5, queue_labels="write"), n=32)  # embeddings stored at write time
    rows = written.queue_rows()
    dropped = (rows[:, D1:] == written.label_embed.weight[N]).all(1)
    assert 5 < int(dropped.sum()) < 27 and torch.equal(rows[:, :D1], written.queue.read()[0][:, :D1])


def test_leave_one_out_hides_a_rows_own_earlier_copy():
    head = make_head(leave_one_out=True).eval()
    feats = torch.randn(5, D1)
    head.write_memory_(feats, torch.tensor([0, 1, 2, 0, 1]), torch.tensor([10, 11, 12, 13, 14]))
    out = head.augment(feats[:2], need_weights=True, exclude_ids=torch.tensor([10, 99]))
    assert torch.all(out.rma_weights[:, 0, 1] == 0)  # row 0 does not read queue row 0, its own copy
    assert torch.all(out.rma_weights[:, 1, 1:] > 0)  # an id not in the queue hides nothing


def test_the_classifier_hides_copies_of_the_same_input_in_training(tiny_backbone):
    from hetmem.models.hma import HMAClassifier

    model = HMAClassifier(tiny_backbone, HMAConfig(num_classes=N, queue_size=16, slots_per_class=2, leave_one_out=True))
    x, y = torch.randn(4, 12), torch.tensor([0, 1, 2, 0])
    model(x, y)  # writes the four inputs with their fingerprints
    seen = {}
    original = model.head.rma.forward
    def spy(*args, **kwargs):
        seen["mask"] = kwargs.get("memory_mask")
        return original(*args, **kwargs)
    model.head.rma.forward = spy
    model(torch.cat([x[2:], torch.randn(1, 12)]), torch.tensor([2, 0, 1]))
    assert seen["mask"].tolist() == [[False, False, True, False], [False, False, False, True], [False] * 4]


def test_data_slots_are_seeded_once_per_class_from_the_first_rows():
    head = make_head(slot_init="data", slot_init_std=0.0)
    feats = torch.randn(3, D1)
    head.write_memory_(feats, torch.tensor([1, 1, 2]))
    slots = head.slots.slots.detach()
    assert torch.equal(slots[2:4], feats[:2]) and torch.equal(slots[4:6], feats[[2, 2]])
    assert torch.all(slots[0:2] == 0) and head.slots.seeded.tolist() == [False, True, True]
    head.write_memory_(torch.randn(2, D1), torch.tensor([1, 0]))  # class 1 is not seeded again
    assert torch.equal(head.slots.slots.detach()[2:4], feats[:2])


def test_paper_preset_is_the_reference_formulation():
    """The paper preset against a literal port of the reference forward pass: the queue
    holds [features; label embedding] made at write time, slots start at zero, every block
    scores q.k / sqrt(D) over [row; queue] (RMA, each row repeated with the queue) and over
    [batch; slots] (SMA), residual on the query, then the MLP."""
    import torch.nn.functional as F

    cfg = HMAConfig.paper(num_classes=N, label_dim=8, queue_size=32, slots_per_class=2, num_heads=2)
    assert (cfg.queue_labels, cfg.slot_init, cfg.score_scale, cfg.scores, cfg.width, cfg.momentum) == (
        "write", "zeros", "model", "dot", None, 0.999)
    head = HMAHead(D1, cfg).eval()
    assert torch.all(head.slots.slots == 0)
    feats, labels = torch.randn(20, D1), torch.randint(0, N, (20,))
    head.write_memory_(feats, labels)
    with torch.no_grad():
        head.slots.slots.normal_()  # trained slots are not zero; give the read something to see
        h = torch.randn(6, D1)
        D, H = D1 + 8, 2

        def mha(block, q_rows, kv_rows):  # (B, D), (B, K, D): standard MHA, scores / sqrt(D)
            B, K = kv_rows.shape[:2]
            q = block.q_proj(block.norm_q(q_rows)).view(B, H, 1, -1)
            k, v = block.kv_proj(block.norm_kv(kv_rows)).view(B, K, 2, H, -1).permute(2, 0, 3, 1, 4)
            w = torch.softmax(q @ k.transpose(-1, -2) / D**0.5, dim=-1)  # (B, H, 1, K)
            x = q_rows + block.out_proj((w @ v).reshape(B, -1))
            return x + block.ff(block.norm_ff(x))

        memory = torch.cat([feats, head.label_embed(labels)], 1)  # written at write time
        c1 = torch.cat([h, head.label_embed.weight[N].expand(6, -1)], 1)
        c2 = mha(head.rma, c1, torch.cat([c1.unsqueeze(1), memory.unsqueeze(0).expand(6, -1, -1)], 1))
        slots = torch.cat([head.slots.slots, head.label_embed(head.slots.labels)], 1)
        context = torch.cat([c2, slots]).unsqueeze(0).expand(6, -1, -1)  # every row sees the batch and the slots
        literal = F.linear(mha(head.sma, c2, context), head.fc.weight, head.fc.bias)
        assert torch.allclose(head(h), literal, atol=1e-5)


def test_defaults_are_the_recipe_the_grid_chose():
    from hetmem.experiments.grids import DEFAULT_RECIPE, RECIPES

    recipe = dict(RECIPES[DEFAULT_RECIPE])
    preset = recipe.pop("preset")
    assert HMAConfig.from_preset(preset, num_classes=3, **recipe) == HMAConfig(num_classes=3)
