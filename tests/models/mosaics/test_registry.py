import pytest

from hetmem.models.mosaics import GPTLM, MemoryMosaicLM, create_sequence_model, list_sequence_models


def test_names_and_classes():
    assert list_sequence_models() == ["gpt", "llama", "mosaic", "mosaic2"]
    assert isinstance(create_sequence_model("mosaic", 7, dim=8, num_heads=2, num_layers=1), MemoryMosaicLM)
    assert isinstance(create_sequence_model("gpt", 7, dim=8, num_heads=2, num_layers=1, block_size=16), GPTLM)


def test_one_option_set_builds_every_model_of_about_the_same_size():
    options = dict(dim=64, num_heads=4, num_layers=2, block_size=128, dropout=0.1)
    mm, gpt, mm2, llama = (create_sequence_model(name, 65, **options) for name in ("mosaic", "gpt", "mosaic2", "llama"))
    for model in (mm, gpt, mm2, llama):
        assert model.config.attn_dropout == model.config.resid_dropout == 0.1
    assert abs(mm.num_parameters() + 128 * 64 - gpt.num_parameters()) < 0.01 * gpt.num_parameters()
    assert mm2.max_length is None and llama.max_length is None and gpt.max_length == 128
    assert 1.1 < mm2.num_parameters() / llama.num_parameters() < 1.2  # 15 d^2 vs 13 d^2 per block


def test_bad_names_and_options():
    with pytest.raises(ValueError, match="unknown sequence model 'lstm'; choose from gpt, llama, mosaic, mosaic2"):
        create_sequence_model("lstm", 7)
    with pytest.raises(ValueError, match="unknown option.*n_embd"):
        create_sequence_model("mosaic", 7, n_embd=8)
    with pytest.raises(ValueError, match="unknown option.*pmem_size"):
        create_sequence_model("gpt", 7, pmem_size=8)
    with pytest.raises(ValueError, match="unknown option.*pmem_size"):
        create_sequence_model("mosaic2", 7, pmem_size=8)
    with pytest.raises(ValueError, match="divisible"):
        create_sequence_model("gpt", 7, dim=10, num_heads=3)
