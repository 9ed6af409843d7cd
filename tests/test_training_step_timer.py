"""StepTimer: one duration per optimiser step, the median without the warm-up step."""

from __future__ import annotations

from latent_env.training.step_timer import StepTimer, step_times


def test_steps_are_timed_from_begin_to_end_and_summarised():
    ticks = iter([0.0, 9.0, 10.0, 12.0, 20.0, 23.0, 30.0, 34.0])
    timer = StepTimer(clock=lambda: next(ticks))
    timer.on_step_end(None, None, None)  # an end without a begin is not a step
    for _ in range(4):
        timer.on_step_begin(None, None, None)
        timer.on_step_end(None, None, None)
    assert timer.seconds == [9.0, 2.0, 3.0, 4.0]
    assert timer.summary() == {"step_seconds": {"median": 3.0, "first": 9.0, "steps": 4}}


def test_no_steps_no_summary():
    assert StepTimer().summary() == {}
    assert step_times(object()) == {}
