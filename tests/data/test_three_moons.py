import pytest
import torch

from hetmem.data import load_task
from hetmem.errors import ConfigError


def test_training_batches_are_fresh_and_evaluation_batches_fixed():
    task = load_task("three-moons", seed=0, seq_len=40, steps_per_epoch=3, eval_batches=2)
    assert task.objective == "moons" and task.models == ("moon",) and task.max_len == 40
    b = task.train.batch(seed=0, epoch=0, index=0, batch_size=4)
    assert b["x"].shape == b["y"].shape == (4, 40, 6) and torch.equal(b["x"][:, 1:], b["y"][:, :-1])
    assert torch.equal(b["x"], task.train.batch(seed=0, epoch=0, index=0, batch_size=4)["x"])
    assert not torch.equal(b["x"], task.train.batch(seed=0, epoch=1, index=0, batch_size=4)["x"])
    v = [task.val.batch(seed=s, epoch=e, index=0, batch_size=4)["x"] for s, e in ((0, 0), (5, 3))]
    assert torch.equal(v[0], v[1])  # the same held-out sequences for every run and epoch
    assert not torch.equal(v[0], task.tests["test"].batch(seed=0, epoch=0, index=0, batch_size=4)["x"])
    assert task.info["val_lcm_steps"] == pytest.approx(40 / 18 * 6, abs=0.01)


def test_the_held_out_triple_is_not_a_training_triple():
    task = load_task("three-moons", seed=0, seq_len=400)
    val = task.val.batch(seed=0, epoch=0, index=0, batch_size=8)["x"]
    # period 3 time units = 66.7 steps at T = 400: the third moon repeats after 66.7 steps, as in (1, 2, 3) only
    assert torch.allclose(val[:, 0, 4:], val[:, 200, 4:], atol=1e-4)  # 200 = 3 x 66.7 steps


@pytest.mark.parametrize("options, match", [({"seq_len": 0}, "seq_len"), ({"steps_per_epoch": 0}, "steps_per_epoch"),
                                            ({"seq_len": 6000}, r"\[2, 4999\]")])
def test_bad_options(options, match):
    with pytest.raises(ConfigError, match=match):
        load_task("three-moons", seed=0, **options)
