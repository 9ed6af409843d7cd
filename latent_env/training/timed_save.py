"""Trainer checkpoints by wall time as well as by steps, so a kill loses minutes, not a stage.

Step-based saves alone leave a long stage bare until its first ``save_steps``: a default run
killed 14 steps (15 minutes) into SFT had nothing to resume from. :class:`SaveEveryMinutes` is a
plain ``transformers.TrainerCallback``: it asks the Trainer for a checkpoint (``should_save``) at
the end of the first optimiser step that comes ``minutes`` after the last save or the start of
training, and the Trainer saves it as it does a step-based one (same directory, same
``save_total_limit`` rotation, same ``--resume``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback


class SaveEveryMinutes(TrainerCallback):
    """Set ``control.should_save`` once ``minutes`` of training have passed since the last save
    (of any kind) or since training began; ``minutes <= 0`` never asks for one.

    Under several processes the decision is rank 0's, broadcast to the others each step: a
    checkpoint is a collective operation, and ranks whose clocks disagreed would deadlock in it.
    ``clock`` returns seconds (``time.monotonic``; tests pass a fake one).
    """

    def __init__(self, minutes: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = minutes * 60.0
        self.clock = clock
        self.last_save = clock()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.last_save = self.clock()  # model loading and data building are not training time

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.interval_s <= 0:
            return control
        due = self.clock() - self.last_save >= self.interval_s
        if _agreed(due, getattr(args, "device", None)):
            control.should_save = True
        return control

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.last_save = self.clock()  # a step-based save restarts the interval too


def _agreed(due: bool, device: Any) -> bool:
    """``due`` as rank 0 sees it, on every rank (unchanged in a single process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return due
    import torch

    flag = torch.tensor([int(due)], device=device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())
