import pytest

from hetmem.errors import ConfigError
from hetmem.experiments.grids import EXPERIMENTS, get_experiment
from hetmem.train.pretrain import resolve_pretrain_config
from hetmem.train.config import resolve_config

NAMES = ["hma-defaults", "colored-mnist", "ablation", "molecules-ood", "memory-sweep", "capacity", "scarcity", "inference",
         "efficiency", "massl", "moons", "regbench", "charlm"]
RICH = ["rich-e1", "rich-e2", "rich-e3", "rich-h1", "rich-e1-cpu", "rich-e2-cpu", "rich-e3-cpu", "rich-h1-cpu"]  # kind "rich": no config layers (tests/experiments/test_rich.py)


def resolve(cell):
    """Pretraining cells of the massl experiment are PretrainConfigs; every other cell a TrainConfig."""
    if cell.params.get("stage") == "pretrain":
        return resolve_pretrain_config(*cell.layers)
    return resolve_config(*cell.layers)


def test_the_issue_names_every_experiment():
    assert list(EXPERIMENTS) == NAMES + RICH


@pytest.mark.parametrize("name", NAMES)
def test_every_cell_resolves_to_a_valid_config(name):
    cells = get_experiment(name).cells(False)
    assert cells
    keys = {tuple(sorted(c.params.items())) for c in cells}
    assert len(keys) == len(cells)  # no two cells share coordinates
    for cell in cells:
        resolve(cell)


def test_grid_sizes_follow_the_issue():
    assert len(get_experiment("colored-mnist").cells(False)) == 3 * 2 * 3  # (backbone, size) x p x (none, paper, hma)
    assert len(get_experiment("ablation").cells(False)) == 3 * 5
    assert len(get_experiment("hma-defaults").cells(False)) == 5 * 7  # tasks x recipes
    assert len(get_experiment("memory-sweep").cells(False)) == 4 * 6
    assert [c.params["slots_per_class"] for c in get_experiment("capacity").cells(False)] == [2, 4, 8, 16, 32, 64, 128]
    assert sorted({c.params["per_class"] for c in get_experiment("scarcity").cells(False)}) == [1, 2, 5, 10, 50]


def test_memory_sweep_zero_means_the_component_is_off():
    variants = {(c.params["queue"], c.params["slots_per_class"]): resolve_config(*c.layers).variant for c in get_experiment("memory-sweep").cells(False)}
    assert variants[("0x batch", 0)] == "abd" and variants[("1x batch", 0)] == "abd+rma"
    assert variants[("0x batch", 8)] == "abd+syn" and variants[("4x batch", 64)] == "hma"


@pytest.mark.parametrize("name", NAMES)
def test_tiny_versions_are_small(name):
    tiny = get_experiment(name).cells(True)
    assert 1 <= len(tiny) <= 2
    assert all(resolve(c).epochs == 1 for c in tiny)


def test_colored_mnist_scores_the_final_model_and_the_baseline_cells_of_version_1_are_reused():
    for cell in get_experiment("colored-mnist").cells(False):
        assert resolve(cell).select == "last"
    none = [c.params for c in get_experiment("scarcity").cells(False) if c.params["variant"] == "none"]
    assert none and all("v" not in p for p in none)  # the baseline's code path did not change: its rows stay valid
    hma = [c.params for c in get_experiment("scarcity").cells(False) if c.params["variant"] != "none"]
    assert all(p["v"] == 2 for p in hma)  # keyed apart from version 1's rows (hetmem 0.1's HMA)


def test_paper_cells_use_the_paper_preset_and_hma_cells_the_defaults():
    from hetmem.models.hma import HMAConfig

    for cell in get_experiment("ablation").cells(False):
        hma = resolve(cell).hma_config(10)
        if cell.params["variant"] == "paper":
            assert hma == HMAConfig.paper(num_classes=10, queue_size=hma.queue_size, slots_per_class=hma.slots_per_class)
        elif cell.params["variant"] == "hma":
            assert (hma.width, hma.scores, hma.keys) == (HMAConfig(10).width, HMAConfig(10).scores, HMAConfig(10).keys)


def test_unknown_experiment():
    with pytest.raises(ConfigError, match="unknown experiment 'nope'"):
        get_experiment("nope")


def test_massl_pretrains_before_its_low_shot_cells():
    stages = [c.params["stage"] for c in get_experiment("massl").cells(False)]
    assert stages == sorted(stages, key=lambda s: s != "pretrain")  # every pretraining first
    assert stages.count("pretrain") == 2 * 3 and stages.count("lowshot") == 2 * 3 * 3  # (none, paper, hma)


def test_regbench_gives_every_number_of_languages_the_same_steps():
    import math

    cells = get_experiment("regbench").cells(False)
    assert sorted({c.params["train_languages"] for c in cells}) == [100, 500, 1000]
    assert {c.params["model"] for c in cells} == {"mosaic", "gpt"}
    steps = {(cfg := resolve_config(*c.layers)).epochs * math.ceil(c.params["train_languages"] / cfg.batch_size) for c in cells}
    assert steps == {320}


def test_moons_compares_one_and_three_heads_at_two_lengths_of_training():
    cells = get_experiment("moons").cells(False)
    cfgs = [resolve_config(*c.layers) for c in cells]
    assert [(c.params["heads"], c.params["steps"]) for c in cells] == [(1, 500), (3, 500), (1, 1500), (3, 1500)]
    assert [c.backbone_options["num_heads"] for c in cfgs] == [1, 3, 1, 3] and {c.backbone for c in cfgs} == {"moon"}
    assert [c.epochs * c.task_options.get("steps_per_epoch", 50) for c in cfgs] == [500, 500, 1500, 1500]
