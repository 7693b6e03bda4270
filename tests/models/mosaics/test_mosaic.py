import math

import pytest
import torch
import torch.nn.functional as F

from hetmem.models.mosaics import GPTConfig, GPTLM, MemoryMosaicLM, MosaicConfig


def tiny(**kw):
    options = dict(vocab_size=13, dim=16, num_heads=4, num_layers=3, attn_dropout=0.0, resid_dropout=0.0)
    options.update(kw)
    return MemoryMosaicLM(MosaicConfig(**options))


def capture_outputs(model, idx):
    """Outputs of every block and every memory inside it, for one forward pass."""
    captured, handles = {}, []
    for name, module in model.named_modules():
        if name.startswith("blocks.") and name.count(".") <= 2 and not name.endswith(("ln1", "ln2")):
            handles.append(module.register_forward_hook(lambda m, i, o, name=name: captured.__setitem__(name, o.detach())))
    logits = model(idx)
    for h in handles:
        h.remove()
    captured["logits"] = logits.detach()
    return captured


def test_causal_under_perturbation_in_every_layer():
    model = tiny().eval()
    idx = torch.randint(0, 13, (2, 10))
    base = capture_outputs(model, idx)
    assert len(base) == 3 * 3 + 1  # 3 blocks x (block, cmem, pmem) + logits
    for j in range(10):
        moved = idx.clone()
        moved[:, j] = (moved[:, j] + 1) % 13
        out = capture_outputs(model, moved)
        for name, value in out.items():
            assert torch.equal(value[:, :j], base[name][:, :j]), (name, j)
            if j < 9 and name != "logits" and "pmem" not in name:
                assert not torch.allclose(value[:, j + 1 :], base[name][:, j + 1 :]), (name, j)


def test_no_nan_anywhere_including_the_leak_decay_gradient():
    model = tiny(num_layers=2)
    idx = torch.randint(0, 13, (2, 300))
    logits, loss = model(idx, torch.randint(0, 13, (2, 300)))
    assert torch.isfinite(logits).all()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert model.blocks[0].cmem.key.leaky_key_beta.grad.abs().min() > 0


def test_parameter_count_parity_with_gpt_at_gpt2_small_size():
    with torch.device("meta"):
        mm = MemoryMosaicLM(MosaicConfig(vocab_size=50304, dim=768, num_heads=12, num_layers=12))
        gpt = GPTLM(GPTConfig(vocab_size=50304, dim=768, num_heads=12, num_layers=12, block_size=512))
    assert mm.config.pmem_size == 2688
    assert mm.num_parameters() == 123_588_336  # 12 d^2 per block + tied embedding + per-head scalars + LayerNorms
    assert gpt.num_parameters() == 123_980_544  # the same + the 512 x 768 positional table
    assert mm.num_parameters() + 512 * 768 - gpt.num_parameters() == 12 * 7 * 12  # MM's extra: 7 per-head scalars per block


def test_library_init_recipe():
    model = tiny(dim=64, num_heads=4, num_layers=4, vocab_size=500)
    assert model.wte.weight is model.head.weight
    assert abs(model.head.weight.std().item() - 1 / 8) < 0.01  # tied: the head's 1/sqrt(d) wins
    block = model.blocks[0]
    assert abs(block.cmem.key.W_k.weight.std().item() - 1 / 8) < 0.01
    assert abs(block.cmem.c_proj.weight.std().item() - 1 / 16) < 0.006  # 1/sqrt(d L)
    assert abs(block.pmem.M_k.std().item() - 0.25) < 0.01  # 1/sqrt(h)
    assert model.logit_scale == pytest.approx(1 / 8)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    model.reset_parameters()  # re-draws everything, slots and per-head scalars included
    assert abs(block.pmem.M_k.std().item() - 0.25) < 0.01 and abs(model.head.weight.std().item() - 1 / 8) < 0.01
    assert torch.allclose(block.pmem.key.decay, torch.linspace(0.5, 5, 4)) and block.ln1.weight.eq(1).all()
    untied = tiny(dim=64, num_heads=4, vocab_size=500, weight_tying=False)
    assert abs(untied.wte.weight.std().item() - 1.0) < 0.03


def test_gpt2_init_recipe_and_no_logit_scale():
    model = tiny(dim=64, num_heads=4, num_layers=4, vocab_size=500, init="gpt2")
    assert abs(model.head.weight.std().item() - 0.02) < 0.002
    assert abs(model.blocks[1].pmem.c_proj.weight.std().item() - 0.02 / math.sqrt(8)) < 0.001
    assert model.logit_scale == 1.0
    x = model.forward_features(torch.randint(0, 500, (1, 5)))
    assert torch.allclose(model.forward_head(x), x @ model.head.weight.T)


def test_runs_on_sequences_of_any_length():
    model = tiny().eval()
    for T in (1, 2, 50, 1100):
        assert model(torch.randint(0, 13, (1, T))).shape == (1, T, 13)


def test_leaky_modes_give_the_same_model():
    idx = torch.randint(0, 13, (2, 40))
    torch.manual_seed(1)
    a = tiny(leaky_mode="matrix").eval()
    torch.manual_seed(1)
    b = tiny(leaky_mode="chunked", leaky_chunk=3).eval()
    assert torch.allclose(a(idx), b(idx), atol=1e-5)


def test_loss_is_the_mean_cross_entropy_and_ignores_minus_one():
    model = tiny()
    idx, targets = torch.randint(0, 13, (2, 6)), torch.randint(0, 13, (2, 6))
    targets[0, :3] = -1
    logits, loss = model(idx, targets)
    keep = targets != -1
    assert torch.allclose(loss, F.cross_entropy(logits[keep], targets[keep]))


def test_optim_groups_decay_matrices_only():
    model = tiny()
    decay, no_decay = model.optim_groups(0.1)
    assert any(p is model.blocks[0].pmem.M_k for p in decay["params"])
    assert any(p is model.blocks[0].cmem.key.leaky_key_beta for p in no_decay["params"])
    assert sum(p.numel() for g in (decay, no_decay) for p in g["params"]) == model.num_parameters()


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(dim=10, num_heads=4), "divisible"),
        (dict(num_layers=0), "num_layers"),
        (dict(init="xavier"), "init"),
        (dict(value_kind="conv3"), "value_kind"),
        (dict(attn_dropout=1.0), "attn_dropout"),
        (dict(pmem_size=0), "pmem_size"),
        (dict(vocab_size=0), "vocab_size"),
    ],
)
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kw)


def test_bad_inputs():
    model = tiny()
    with pytest.raises(ValueError, match="T = 0"):
        model(torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="shape of idx"):
        model(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))


def test_state_dict_round_trip_and_dtype_move():
    model = tiny().eval()
    idx = torch.randint(0, 13, (2, 9))
    copy = tiny().eval()  # other random weights; the init recipe (and its logit scale) comes from the config
    assert not torch.equal(copy(idx), model(idx))
    copy.load_state_dict(model.state_dict())
    assert torch.equal(copy(idx), model(idx))
    assert set(model.state_dict()) == {n for n, _ in model.named_parameters(remove_duplicate=False)}  # no buffers (masks, T x T tables)
    double = tiny().double().eval()
    assert double(idx).dtype == torch.float64
