"""Checkpoints by wall time: the callback's decisions, and the checkpoints a Trainer writes by it."""

from __future__ import annotations

import copy
from types import SimpleNamespace

from transformers import TrainerControl, TrainerState

from latent_env.training.checkpoints import last_checkpoint
from latent_env.training.sft import run_sft, sft_config
from latent_env.training.timed_save import SaveEveryMinutes


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def step_end(callback: SaveEveryMinutes) -> bool:
    """Whether the callback asks for a save at the end of a step (the Trainer clears the flag
    at every step's start)."""
    control = TrainerControl()
    callback.on_step_end(SimpleNamespace(device="cpu"), TrainerState(), control)
    return control.should_save


def test_a_save_is_asked_for_once_the_interval_has_passed_since_the_last_save():
    clock = FakeClock()
    callback = SaveEveryMinutes(2, clock=clock)
    clock.now += 500  # loading the model and building data before training is not counted
    callback.on_train_begin(None, TrainerState(), TrainerControl())
    clock.now += 119
    assert not step_end(callback)
    clock.now += 1
    assert step_end(callback)
    callback.on_save(None, TrainerState(), TrainerControl())
    clock.now += 60
    assert not step_end(callback)  # the interval restarts at every save
    clock.now += 30
    callback.on_save(None, TrainerState(), TrainerControl())  # a step-based save restarts it too
    clock.now += 100
    assert not step_end(callback)
    clock.now += 20
    assert step_end(callback)


def test_zero_minutes_never_asks_for_a_save():
    clock = FakeClock()
    callback = SaveEveryMinutes(0, clock=clock)
    clock.now += 1e6
    assert not step_end(callback)


def record(i: int) -> dict:
    return {"prompt": [{"role": "user", "content": f"task {i}"}],
            "completion": [{"role": "assistant", "content": "<done/>"}]}


def checkpoints_after_three_steps(tiny, out, save_every_minutes: float) -> list[str]:
    model, tokenizer = tiny
    config = sft_config(out, epochs=1, max_steps=3, learning_rate=1e-4, batch_size=2, seed=0,
                        report_to=[], save_steps=1000, save_total_limit=None)
    config.disable_tqdm = True
    run_sft(copy.deepcopy(model), tokenizer, [record(i) for i in range(6)], out, config,
            resume=False, save_every_minutes=save_every_minutes)
    return sorted(p.name for p in out.glob("checkpoint-*"))


def test_the_trainer_writes_timed_checkpoints_between_its_step_based_ones(tiny, tmp_path):
    # save_steps 1000: the only step-based checkpoint is the one at the last step.
    assert checkpoints_after_three_steps(tiny, tmp_path / "steps", 0) == ["checkpoint-3"]
    # An interval shorter than a step: a checkpoint after every step, each one resumable.
    timed = checkpoints_after_three_steps(tiny, tmp_path / "timed", 1e-9)
    assert timed == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    assert last_checkpoint(tmp_path / "timed") == tmp_path / "timed" / "checkpoint-3"
