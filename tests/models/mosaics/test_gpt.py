import pytest
import torch

from hetmem.models.mosaics import GPTConfig, GPTLM, create_sequence_model

OPTIONS = dict(dim=16, num_heads=4, num_layers=2, block_size=24, dropout=0.0)


def test_llama_is_rope_and_swiglu_of_hidden_3d_without_a_position_table():
    llama = create_sequence_model("llama", 13, **OPTIONS)
    assert (llama.config.position, llama.config.mlp, llama.config.hidden) == ("rope", "swiglu", 48)
    assert llama.wpe is None and llama.max_length is None
    swiglu = llama.blocks[0].mlp.swiglu
    assert swiglu.w1.weight.shape == (48, 16) and swiglu.w2.weight.shape == (16, 48)
    d, L, V = 16, 2, 13
    assert llama.num_parameters() == V * d + L * (4 * d * d + 3 * d * 48 + 2 * d) + d
    gpt = create_sequence_model("gpt", 13, **OPTIONS)
    assert gpt.config.hidden == 64 and gpt.num_parameters() == V * d + 24 * d + L * (4 * d * d + 2 * d * 64 + 2 * d) + d
    assert create_sequence_model("llama", 13, **OPTIONS, ffn_hidden=20).blocks[0].mlp.swiglu.w1.out_features == 20


@pytest.mark.parametrize("position", ["rope", "none"])
def test_positions_without_a_table_run_past_block_size_and_stay_causal(position, device):
    model = create_sequence_model("gpt", 13, **OPTIONS, position=position, mlp="swiglu").to(device).eval()
    idx = torch.randint(0, 13, (2, 60), device=device)  # 2.5 x block_size
    base = model(idx)
    moved = idx.clone()
    moved[:, 30] = (moved[:, 30] + 1) % 13
    out = model(moved)
    assert torch.equal(out[:, :30], base[:, :30]) and not torch.allclose(out[:, 30:], base[:, 30:])
    assert model.generate(idx[:, :4], 40).shape == (2, 44)


def test_rope_makes_attention_depend_on_relative_position():
    one_layer = {**OPTIONS, "num_layers": 1}
    llama = create_sequence_model("llama", 13, **one_layer).eval()
    nope = create_sequence_model("gpt", 13, **one_layer, position="none", mlp="swiglu").eval()
    nope.load_state_dict(llama.state_dict())
    idx = torch.tensor([[3, 5, 3, 7, 3, 5]])
    assert not torch.allclose(llama(idx), nope(idx))  # same weights: the rotation is what differs


def test_rope_kv_cache_is_exact_in_float64(device):
    model = create_sequence_model("llama", 13, **OPTIONS).double().to(device).eval()
    idx = torch.randint(0, 13, (2, 40), device=device)
    cache = model.new_cache()
    pieces = [model(idx[:, a:b], cache=cache) for a, b in ((0, 11), (11, 12), (12, 30))]
    pieces += [model(idx[:, t : t + 1], cache=cache) for t in range(30, 40)]
    assert torch.allclose(torch.cat(pieces, 1), model(idx), atol=1e-12, rtol=0)


def test_learned_positions_still_refuse_more_than_block_size():
    with pytest.raises(ValueError, match="block_size 24"):
        create_sequence_model("gpt", 13, **OPTIONS)(torch.zeros(1, 25, dtype=torch.long))


@pytest.mark.parametrize("options, match", [
    (dict(position="alibi"), "position must be one of"),
    (dict(mlp="relu"), "mlp must be one of"),
    (dict(ffn_hidden=0), "ffn_hidden"),
    (dict(position="rope", dim=12, num_heads=4), "even head width"),
])
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        GPTLM(GPTConfig(vocab_size=13, **{**dict(dim=16, num_heads=4, num_layers=1), **options}))


def test_llama_refuses_the_choices_that_make_it_a_gpt():
    with pytest.raises(ValueError, match="llama is the GPT model with position='rope'"):
        create_sequence_model("llama", 13, position="learned")
    assert create_sequence_model("llama", 13, dim=8, num_heads=2, num_layers=1, position="rope").config.mlp == "swiglu"
