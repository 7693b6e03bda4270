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
])
def test_bad_fields_name_themselves(kwargs, match):
    args = {"num_classes": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        HMAConfig(**args)


def test_to_dict_round_trip():
    cfg = HMAConfig(num_classes=4, variant="abd", queue_size=64)
    assert HMAConfig(**cfg.to_dict()) == cfg
