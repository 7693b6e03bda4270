import pytest

from hetmem.models.hma import VARIANTS, HMAConfig


def test_variant_table_matches_the_paper_names():
    assert set(VARIANTS) == {"none", "param", "rma", "abd", "abd+rma", "abd+syn", "hma"}
    assert HMAConfig(num_classes=2).components == (True, True, True)
    assert HMAConfig(num_classes=2, variant="abd+syn").uses_queue is False


@pytest.mark.parametrize("kwargs, match", [
    ({"variant": "moco"}, "variant must be one of"),
    ({"num_classes": 0}, "num_classes must be a positive int"),
    ({"queue_size": -4}, "queue_size must be a positive int"),
    ({"slots_per_class": 0}, "slots_per_class"),
    ({"label_dim": 2.5}, "label_dim"),
    ({"num_heads": 0}, "num_heads"),
    ({"head_dim": 0}, "head_dim"),
    ({"dropout": 1.0}, "dropout"),
    ({"momentum": -0.1}, "momentum"),
    ({"eval_context": "global"}, "eval_context must be 'batch' or 'single'"),
    ({"train_context": "x"}, "train_context"),
    ({"momentum_buffers": "avg"}, "momentum_buffers"),
    ({"slot_init": "uniform"}, "slot_init"),
    ({"queue_labels": "never"}, "queue_labels"),
    ({"width": 0}, "width must be positive or None"),
    ({"width": 2.5}, r"width \(a positive int or None\)"),
    ({"ff_mult": 0}, "ff_mult must be a positive int"),
    ({"layer_scale": -1.0}, "layer_scale must be positive or None"),
    ({"scores": "euclid"}, "scores must be one of"),
    ({"score_scale": "row"}, "score_scale must be one of"),
    ({"keys": "labels"}, "keys must be one of"),
    ({"slot_keys": "x"}, "slot_keys must be one of"),
    ({"label_dropout": 1.0}, r"label_dropout must be in \[0, 1\)"),
    ({"slot_init": "kmeans"}, "slot_init"),
])
def test_bad_fields_name_themselves(kwargs, match):
    args = {"num_classes": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        HMAConfig(**args)


def test_to_dict_round_trip():
    cfg = HMAConfig(num_classes=4, variant="abd", queue_size=64)
    assert HMAConfig(**cfg.to_dict()) == cfg


def test_presets():
    paper = HMAConfig.paper(num_classes=3, queue_size=64)
    assert paper.queue_size == 64 and paper.queue_labels == "write" and paper.width is None
    assert HMAConfig.from_preset("default", num_classes=3) == HMAConfig(num_classes=3)
    with pytest.raises(ValueError, match="preset must be one of"):
        HMAConfig.from_preset("nope", num_classes=3)


def test_the_run_config_selects_a_preset_with_hma_preset():
    from hetmem.errors import ConfigError
    from hetmem.train.config import resolve_config

    cfg = resolve_config({"task": "digits", "hma": {"preset": "paper", "queue_size": 64}})
    assert cfg.hma_config(10) == HMAConfig.paper(num_classes=10, queue_size=64, slots_per_class=8)
    with pytest.raises(ConfigError, match="preset must be one of"):
        resolve_config({"task": "digits", "hma": {"preset": "nope"}})
