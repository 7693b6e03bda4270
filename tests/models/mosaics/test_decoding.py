import pytest
import torch

from hetmem.models.mosaics import create_sequence_model, loss_by_position

OPTIONS = dict(dim=16, num_heads=4, num_layers=3, block_size=40)  # dropout at its 0.05 default: eval must switch it off
MODELS = ["mosaic", "gpt", "mosaic2", "llama"]
EXTRA = {"mosaic2": dict(short_window=8, long_lag=(3, 6))}  # both memories read within the tests' lengths


def build(name):
    return create_sequence_model(name, 13, **OPTIONS, **EXTRA.get(name, {}))


@pytest.mark.parametrize("name", MODELS)
def test_cached_decoding_token_by_token_equals_the_full_pass(name):
    model = build(name).eval()
    idx = torch.randint(0, 13, (3, 30))
    full = model(idx)
    cache = model.new_cache()
    steps = [model(idx[:, :1], cache=cache)] + [model(idx[:, t : t + 1], cache=cache) for t in range(1, 30)]
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_cached_decoding_in_uneven_chunks_equals_the_full_pass(name):
    model = build(name).eval()
    idx = torch.randint(0, 13, (2, 25))
    cache = model.new_cache()
    pieces = [model(idx[:, a:b], cache=cache) for a, b in ((0, 7), (7, 8), (8, 20), (20, 25))]
    assert torch.allclose(torch.cat(pieces, 1), model(idx), atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_greedy_generation_with_cache_equals_recomputation(name):
    model = build(name)
    prompt = torch.randint(0, 13, (2, 6))
    cached = model.generate(prompt, 12, temperature=0)
    assert model.training  # restored after generation
    assert cached.shape == (2, 18) and torch.equal(cached[:, :6], prompt)
    assert torch.equal(cached, model.generate(prompt, 12, temperature=0, use_cache=False))
    g = torch.Generator().manual_seed(3)
    sampled = model.generate(prompt, 12, temperature=0.8, top_k=4, generator=g)
    assert torch.equal(sampled, model.generate(prompt, 12, temperature=0.8, top_k=4, generator=torch.Generator().manual_seed(3)))


def test_top_k_one_is_greedy_and_zero_new_tokens_is_the_prompt():
    model = create_sequence_model("mosaic", 13, **OPTIONS)
    prompt = torch.randint(0, 13, (2, 4))
    assert torch.equal(model.generate(prompt, 5, top_k=1), model.generate(prompt, 5, temperature=0))
    assert torch.equal(model.generate(prompt, 0), prompt)


def test_gpt_refuses_sequences_beyond_block_size_and_mosaic_does_not():
    gpt = create_sequence_model("gpt", 13, **OPTIONS)
    with pytest.raises(ValueError, match="block_size 40"):
        gpt(torch.zeros(1, 41, dtype=torch.long))
    with pytest.raises(ValueError, match="block_size 40"):
        gpt.generate(torch.zeros(1, 30, dtype=torch.long), 12)
    assert gpt.generate(torch.zeros(1, 30, dtype=torch.long), 11).shape == (1, 41)  # the last token is not fed back
    mosaic = create_sequence_model("mosaic", 13, **OPTIONS)
    assert mosaic.generate(torch.zeros(1, 30, dtype=torch.long), 20).shape == (1, 50)


@pytest.mark.parametrize("name", MODELS)
def test_loss_by_position(name):
    model = build(name)
    idx, targets = torch.randint(0, 13, (4, 20)), torch.randint(0, 13, (4, 20))
    targets[:, 5] = -1
    targets[0, 6] = -1
    curve = loss_by_position(model, idx, targets)
    assert curve.shape == (20,) and model.training
    assert torch.isnan(curve[5]) and torch.isfinite(curve[torch.arange(20) != 5]).all()
    model.eval()
    with torch.no_grad():
        logits = model(idx)
    manual = torch.nn.functional.cross_entropy(logits[1:, 6], targets[1:, 6])
    assert torch.allclose(curve[6], manual, atol=1e-6)


def test_loss_by_position_extrapolates_for_every_model_without_a_position_table():
    idx = torch.randint(0, 13, (1, 4 * 40))
    for name in ("mosaic", "mosaic2", "llama"):
        assert loss_by_position(build(name), idx, idx).shape == (160,), name
    with pytest.raises(ValueError, match="block_size"):
        loss_by_position(create_sequence_model("gpt", 13, **OPTIONS), idx, idx)


def test_bad_generation_arguments():
    model = create_sequence_model("mosaic", 13, **OPTIONS)
    prompt = torch.zeros(1, 3, dtype=torch.long)
    for kwargs, match in ((dict(max_new_tokens=-1), "max_new_tokens"), (dict(max_new_tokens=2, temperature=-1.0), "temperature"),
                          (dict(max_new_tokens=2, top_k=0), "top_k")):
        with pytest.raises(ValueError, match=match):
            model.generate(prompt, **kwargs)
    with pytest.raises(ValueError, match="T = 0"):
        model.generate(torch.zeros(1, 0, dtype=torch.long), 2)
