import pytest

from hetmem.errors import ConfigError
from hetmem.train.config import TrainConfig, load_yaml, parse_overrides, resolve_config
from hetmem.train.defaults import TASK_DEFAULTS


def test_task_defaults_fill_what_the_user_left_out():
    cfg = resolve_config({"task": "colored-mnist"})
    d = TASK_DEFAULTS["colored-mnist"]
    assert cfg.backbone == d["backbone"] and cfg.epochs == d["epochs"] and cfg.batch_size == d["batch_size"]
    assert cfg.hma["queue_size"] == d["hma"]["queue_size"]
    assert cfg.variant == "hma" and cfg.seeds == [0]


def test_later_layers_win_and_nested_groups_merge():
    cfg = resolve_config(
        {"task": "colored-mnist", "optim": {"lr": 0.5}, "hma": {"slots_per_class": 4}},
        {"epochs": 3},
        parse_overrides(["optim.lr=0.01", "hma.queue_size=300"]),
    )
    assert cfg.optim.lr == 0.01 and cfg.optim.name == "adam"  # lr overridden, name from the task default
    assert cfg.hma == {"queue_size": 300, "slots_per_class": 4}
    assert cfg.epochs == 3


def test_yaml_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("task: digits\nbackbone: mlp\nepochs: 2\nseeds: [1, 2]\noptim:\n  lr: 0.002\n")
    cfg = resolve_config(load_yaml(f))
    assert cfg.seeds == [1, 2] and cfg.optim.lr == 0.002 and cfg.epochs == 2


@pytest.mark.parametrize("layer, match", [
    ({"task": "digits", "epoch": 3}, "unknown config field 'epoch'"),
    ({"task": "digits", "optim": {"lrr": 1}}, "unknown config field 'optim.lrr'"),
    ({"task": "digits", "epochs": "many"}, "config field 'epochs'.*got 'many'"),
    ({"task": "digits", "epochs": 0}, "config field 'epochs'"),
    ({"task": "digits", "optim": {"name": "lamb"}}, "config field 'optim.name'"),
    ({"task": "digits", "seeds": [1, 1]}, "seeds must be distinct"),
    ({"task": "nope"}, "unknown task 'nope'"),
    ({"task": "digits", "backbone": "nope"}, "unknown backbone 'nope'"),
    ({"task": "digits", "variant": "moco"}, "variant must be one of"),
    ({"task": "digits", "hma": {"queue_sise": 3}}, "unknown config field 'hma.queue_sise'"),
    ({"task": "digits", "hma": {"queue_size": 0}}, "queue_size must be a positive int"),
    ({"task": "digits", "task_options": {"split": "x"}}, "unknown config field 'task_options.split'"),
    ({"task": "digits", "backbone": "_toy_mlp", "backbone_options": {"width": 3}}, "backbone_options.width"),
    ({}, "'task' is required"),
    ({"task": "digits", "batch_size": 64, "hma": {"queue_size": 32}}, r"'hma.queue_size' \(32\) is smaller than batch_size \(64\)"),
])
def test_bad_configs_are_one_clear_error(layer, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config(layer)


def test_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: digits\n  epochs: [3\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_yaml(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_yaml(listy)


def test_parse_overrides():
    assert parse_overrides(["a.b=1", "a.c=x", "d=[1, 2]", "e=true"]) == {"a": {"b": 1, "c": "x"}, "d": [1, 2], "e": True}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["epochs"])


def test_round_trip_through_dict():
    cfg = resolve_config({"task": "digits", "seeds": [3]})
    assert TrainConfig(**cfg.to_dict()) == cfg


def test_a_small_queue_is_fine_when_the_variant_has_no_queue():
    assert resolve_config({"task": "digits", "variant": "abd+syn", "batch_size": 64, "hma": {"queue_size": 8}}).hma["queue_size"] == 8
