"""Wall time of every optimiser step, so a stage's metrics say what one step costs.

:class:`StepTimer` is a plain ``transformers.TrainerCallback`` that
:func:`~latent_env.training.checkpoints.train_and_save` attaches to every stage's trainer. A step
runs from ``on_step_begin`` to ``on_step_end``: every micro-batch's forward and backward, the
optimiser step, and for GRPO/RLOO the generation and the reward, but not a checkpoint save. The
stage's metrics get :meth:`StepTimer.summary`: the median step (the first one apart, since it
pays for warm-up) and the first.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    """Collects the seconds of each optimiser step in ``seconds``."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.seconds: list[float] = []
        self._started: float | None = None

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = self.clock()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._started is not None:
            self.seconds.append(self.clock() - self._started)
            self._started = None

    def summary(self) -> dict[str, Any]:
        """``{"step_seconds": {"median", "first", "steps"}}`` (empty before any step); the
        median leaves out the first step when there are others."""
        if not self.seconds:
            return {}
        rest = self.seconds[1:] or self.seconds
        return {"step_seconds": {"median": round(statistics.median(rest), 3),
                                 "first": round(self.seconds[0], 3), "steps": len(self.seconds)}}


def step_times(trainer: Any) -> dict[str, Any]:
    """The :class:`StepTimer` summary of ``trainer`` (empty when it has none)."""
    timer = getattr(trainer, "step_timer", None)
    return timer.summary() if timer is not None else {}
