import math

import pytest
import torch

from hetmem.models.mosaics import MemoryMosaicV2LM, MosaicV2Config, create_sequence_model

COMBOS = [(True, True), (False, True), (False, False)]  # (gated_keys, adaptive_bandwidth); (True, False) is refused
SMALL = dict(vocab_size=13, dim=16, num_heads=4, num_layers=2, short_window=6, long_lag=(2, 5), attn_dropout=0.0, resid_dropout=0.0)


def tiny(**kw) -> MemoryMosaicV2LM:
    return MemoryMosaicV2LM(MosaicV2Config(**{**SMALL, **kw}))


def expected_parameters(V: int, d: int, H: int, L: int, hidden: int, gated: bool, adaptive: bool) -> int:
    memory = 3 * d * d + 2 * H  # W_k (or the gated key's W_k), W_v, c_proj; value mix c and scale p_v
    memory += 2 * (d * H + H) if gated else 2 * H  # W_g, W_lambda with biases, or v1's decay and key scale
    memory += 3 * H if adaptive else 0  # beta_0, beta_1, alpha
    block = 2 * memory + 3 * d * hidden + 2 * d  # short + long, SwiGLU, two LayerNorms without bias
    return V * d + L * block + d  # tied embedding, final LayerNorm


@pytest.mark.parametrize("gated, adaptive", COMBOS)
def test_shapes_and_parameter_count(gated, adaptive):
    model = tiny(gated_keys=gated, adaptive_bandwidth=adaptive)
    assert model(torch.randint(0, 13, (3, 9))).shape == (3, 9, 13)
    assert model.num_parameters() == expected_parameters(13, 16, 4, 2, 48, gated, adaptive)
    assert tiny(ffn_hidden=20).num_parameters() == expected_parameters(13, 16, 4, 2, 20, True, True)


def test_v2_block_is_15_d2_against_llama_13_d2():
    d, L = 64, 2
    with torch.device("meta"):
        v2 = create_sequence_model("mosaic2", 136, dim=d, num_heads=4, num_layers=L)
        llama = create_sequence_model("llama", 136, dim=d, num_heads=4, num_layers=L)
    per_block_v2 = (v2.num_parameters() - 136 * d - d) / L
    per_block_llama = (llama.num_parameters() - 136 * d - d) / L
    assert round(per_block_v2 / d**2) == 15 and round(per_block_llama / d**2) == 13
    assert 133_000 < v2.num_parameters() < 135_000 and 115_000 < llama.num_parameters() < 116_000  # the design note's sizes


@pytest.mark.parametrize("gated, adaptive", COMBOS)
def test_causal_under_perturbation(gated, adaptive):
    model = tiny(gated_keys=gated, adaptive_bandwidth=adaptive).eval()
    idx = torch.randint(0, 13, (2, 14))
    base = model(idx)
    for j in range(14):
        moved = idx.clone()
        moved[:, j] = (moved[:, j] + 1) % 13
        out = model(moved)
        assert torch.equal(out[:, :j], base[:, :j]), j
        assert not torch.allclose(out[:, j:], base[:, j:]), j


@pytest.mark.parametrize("gated, adaptive", COMBOS)
@pytest.mark.parametrize("use_long", [True, False])
def test_cache_prompt_chunks_then_single_tokens_equal_the_full_pass_in_float64(gated, adaptive, use_long, device):
    model = tiny(gated_keys=gated, adaptive_bandwidth=adaptive, use_long_memory=use_long, leaky_chunk=4).double().to(device).eval()
    idx = torch.randint(0, 13, (2, 40), device=device)
    full = model(idx)
    cache = model.new_cache()
    pieces = [model(idx[:, a:b], cache=cache) for a, b in ((0, 9), (9, 10), (10, 23), (23, 24), (24, 26))]
    pieces += [model(idx[:, t : t + 1], cache=cache) for t in range(26, 40)]  # 40 > 6 x the window: the short cache slides
    assert torch.allclose(torch.cat(pieces, 1), full, atol=1e-12, rtol=0)
    short, long = cache[0]
    assert len(short.keys) <= 6 and len(long.keys) == (40 if use_long else 0)  # the short cache keeps its window only


def test_cache_starting_with_one_token_and_greedy_generation_with_and_without_cache(device):
    model = tiny(attn_dropout=0.05, resid_dropout=0.05).to(device)  # eval must switch the dropouts off
    prompt = torch.randint(0, 13, (2, 5), device=device)
    cached = model.generate(prompt, 25, temperature=0)
    assert model.training and cached.shape == (2, 30)
    assert torch.equal(cached, model.generate(prompt, 25, temperature=0, use_cache=False))
    model.eval()
    idx = torch.randint(0, 13, (1, 12), device=device)
    cache = model.new_cache()
    steps = torch.cat([model(idx[:, t : t + 1], cache=cache) for t in range(12)], 1)
    assert torch.allclose(steps, model(idx), atol=1e-5)


def test_long_memory_switch_equals_a_model_whose_long_memory_writes_nothing():
    model = tiny().eval()
    idx = torch.randint(0, 13, (2, 30))
    with_long = model(idx)
    model.set_long_memory(False)
    without = model(idx)
    assert not model.config.use_long_memory and not torch.allclose(with_long, without)
    assert torch.equal(with_long[:, :3], without[:, :3])  # lag > m_lo = 2: positions 0..2 read no long pair
    silent = tiny().eval()
    silent.load_state_dict(model.state_dict())
    for block in silent.blocks:
        torch.nn.init.zeros_(block.memory.long.c_proj.weight)
    assert torch.allclose(silent(idx), without, atol=1e-6)
    off_from_config = tiny(use_long_memory=False).eval()
    off_from_config.load_state_dict(model.state_dict())  # same parameters: the switch only skips the read
    assert torch.equal(off_from_config(idx), without)
    model.set_long_memory(True)
    assert torch.equal(model(idx), with_long)


def test_switching_the_long_memory_on_in_the_middle_of_a_cached_stream_is_refused():
    model = tiny(use_long_memory=False).eval()
    idx = torch.randint(0, 13, (1, 10))
    cache = model.new_cache()
    model(idx[:, :5], cache=cache)
    model.set_long_memory(True)
    with pytest.raises(ValueError, match="start a new cache"):
        model(idx[:, 5:], cache=cache)


def test_training_draws_the_long_lag_per_sequence_and_refuses_a_cache():
    model = tiny(long_lag=(1, 6))
    idx = torch.randint(0, 13, (4, 20))
    torch.manual_seed(0)
    outs = [model(idx) for _ in range(4)]
    assert any(not torch.equal(o, outs[0]) for o in outs[1:])
    with pytest.raises(ValueError, match="eval mode"):
        model(idx, cache=model.new_cache())


def test_leaky_chunk_reaches_every_key_and_does_not_change_outputs():
    a = tiny(leaky_chunk=3).double().eval()
    b = tiny(leaky_chunk=64).double().eval()
    b.load_state_dict(a.state_dict())
    assert {m.key.leaky_chunk for blk in a.blocks for m in (blk.memory.short, blk.memory.long)} == {3}
    idx = torch.randint(0, 13, (2, 50))
    assert torch.allclose(a(idx), b(idx), atol=1e-12)
    assert tiny(gated_keys=False, leaky_chunk=5).blocks[1].memory.long.key.leaky_chunk == 5


def test_runs_past_any_training_length_and_every_parameter_learns(device):
    model = tiny().to(device)
    idx = torch.randint(0, 13, (2, 70), device=device)  # > 10 x the window
    logits, loss = model(idx, idx)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.eval().generate(idx[:, :3], 30).shape == (2, 33)


def test_init_recipes():
    gpt2, library = tiny(num_layers=8, dim=64, init="gpt2"), tiny(num_layers=8, dim=64, init="library")
    assert math.isclose(gpt2.blocks[0].ffn.w2.weight.std().item(), 0.02 / 4, rel_tol=0.1)
    assert math.isclose(gpt2.blocks[0].memory.short.value.W_v.weight.std().item(), 0.02, rel_tol=0.1)
    assert math.isclose(library.blocks[0].memory.long.c_proj.weight.std().item(), 1 / math.sqrt(64 * 8), rel_tol=0.1)
    assert gpt2.logit_scale == 1.0 and library.logit_scale == 1 / 8
    assert gpt2.head.weight is gpt2.wte.weight
    gates = gpt2.blocks[0].memory.short.key
    assert torch.allclose(gates.W_lambda.bias, torch.linspace(0.5, 5, 4)) and torch.equal(gates.W_g.bias, torch.zeros(4))


@pytest.mark.parametrize("options, match", [
    (dict(gated_keys=True, adaptive_bandwidth=False), "gated_keys=True needs adaptive_bandwidth=True"),
    (dict(short_window=-4), "short window must be an int >= 2"),
    (dict(long_lag=(-1, 3)), "0 <= m_lo <= m_hi"),
    (dict(long_lag=(5, 2)), "0 <= m_lo <= m_hi"),
    (dict(short_window=4, long_lag=(2, 9)), "m_hi .* must be <= the short window"),
    (dict(leaky_chunk=0), "leaky_chunk must be a positive int"),
    (dict(init="xavier"), "init must be one of"),
    (dict(ffn_hidden=0), "ffn_hidden"),
])
def test_contradicting_or_bad_options_are_one_clear_value_error(options, match):
    with pytest.raises(ValueError, match=match):
        tiny(**options)
