import pytest

from hetmem.models.massl.schedules import (
    MaSSLSchedule,
    cosine_schedule,
    learning_rate,
    teacher_momentum,
    teacher_temperature,
    weight_decay,
)


def test_cosine_schedule_endpoints_and_midpoint():
    assert cosine_schedule(0, 11, 1.0, 0.2) == pytest.approx(1.0)
    assert cosine_schedule(5, 11, 1.0, 0.2) == pytest.approx(0.6)  # halfway: the mean
    assert cosine_schedule(10, 11, 1.0, 0.2) == pytest.approx(0.2)  # the last step
    assert cosine_schedule(50, 11, 1.0, 0.2) == pytest.approx(0.2)  # past the end: stays


def test_cosine_schedule_with_warmup():
    values = [cosine_schedule(t, 20, 1.0, 0.0, warmup_steps=4, warmup_start=0.2) for t in range(20)]
    assert values[0] == pytest.approx(0.2) and values[2] == pytest.approx(0.6) and values[4] == pytest.approx(1.0)
    assert values[-1] == pytest.approx(0.0)
    assert all(a < b for a, b in zip(values[:4], values[1:5]))  # rising warm-up
    assert all(a > b for a, b in zip(values[4:-1], values[5:]))  # falling cosine


def test_learning_rate_warms_up_from_zero_then_decays_to_min():
    lrs = [learning_rate(t, 100, base_lr=1e-3, min_lr=1e-6, warmup_steps=10) for t in range(100)]
    assert lrs[0] == 0.0 and lrs[10] == pytest.approx(1e-3) and lrs[99] == pytest.approx(1e-6)
    assert max(lrs) == pytest.approx(1e-3)


def test_weight_decay_rises_on_a_cosine():
    wds = [weight_decay(t, 50) for t in range(50)]
    assert wds[0] == pytest.approx(0.04) and wds[-1] == pytest.approx(0.4)
    assert all(a <= b for a, b in zip(wds, wds[1:]))


def test_teacher_momentum_reaches_one():
    ms = [teacher_momentum(t, 30, base=0.992) for t in range(30)]
    assert ms[0] == pytest.approx(0.992) and ms[-1] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(ms, ms[1:]))


def test_teacher_temperature_warms_up_linearly_then_stays():
    assert teacher_temperature(0, 10) == pytest.approx(0.04)
    assert teacher_temperature(5, 10) == pytest.approx(0.055)
    assert teacher_temperature(10, 10) == pytest.approx(0.07)
    assert teacher_temperature(1000, 10) == pytest.approx(0.07)
    assert teacher_temperature(0, 0) == pytest.approx(0.07)  # no warm-up


def test_single_step_run_is_at_its_end_values():
    assert cosine_schedule(0, 1, 1.0, 0.0) == 0.0
    assert teacher_momentum(0, 1) == 1.0


def test_schedule_from_epochs_counts_steps():
    s = MaSSLSchedule.from_epochs(
        steps_per_epoch=4, max_epochs=10, warmup_epochs=2, teacher_temp_warmup_epochs=5, base_lr=0.1, min_lr=0.0
    )
    assert (s.total_steps, s.warmup_steps, s.teacher_temp_warmup_steps) == (40, 8, 20)
    first, warm, last = s.at(0), s.at(8), s.at(39)
    assert first.lr == 0.0 and warm.lr == pytest.approx(0.1) and last.lr == pytest.approx(0.0)
    assert first.weight_decay == pytest.approx(0.04) and last.weight_decay == pytest.approx(0.4)
    assert first.momentum == pytest.approx(0.996) and last.momentum == pytest.approx(1.0)
    assert first.teacher_temp == pytest.approx(0.04) and s.at(20).teacher_temp == pytest.approx(0.07)


def test_warmup_longer_than_the_run_is_capped_for_the_learning_rate_only():
    s = MaSSLSchedule.from_epochs(steps_per_epoch=2, max_epochs=3, warmup_epochs=10, teacher_temp_warmup_epochs=30, base_lr=1.0)
    assert s.warmup_steps == 5 and s.teacher_temp_warmup_steps == 60
    assert s.at(4).lr == pytest.approx(0.8) and s.at(5).lr == pytest.approx(1e-6)  # the last step ends the cosine
    assert s.at(5).teacher_temp < 0.07


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cosine_schedule(0, 0, 1.0, 0.0), "total_steps"),
        (lambda: cosine_schedule(0, 5, 1.0, 0.0, warmup_steps=5), "warmup_steps"),
        (lambda: MaSSLSchedule(total_steps=0, base_lr=1.0), "total_steps"),
        (lambda: MaSSLSchedule.from_epochs(steps_per_epoch=0, max_epochs=1, base_lr=1.0), "steps_per_epoch"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
