"""``--predictor self`` in the RL stage: the trainer's own policy scores the reward.

:func:`attach_self_predictor` is called once the TRL trainer exists (so a PEFT-wrapped policy is
the one that scores) and before it trains:

1. a :class:`~latent_env.predictor.SelfPredictor` on ``trainer.model`` becomes the scorer of the
   RL engine (a derived engine: the shared environment keeps its frozen scorer for evaluation);
2. the ``initial`` baseline is primed on every RL task, with the weights as loaded: the stage's
   starting model, also on ``--resume`` (the trainer loads its checkpoint only in ``train``);
3. an :class:`EmaUpdate` callback moves the ``ema`` teacher after every optimiser step. On
   ``--resume`` the teacher starts again from the starting weights; its state is not saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import TrainerCallback

from latent_env.engine import EpisodeEngine
from latent_env.predictor import SelfPredictor


def attach_self_predictor(trainer: Any, engine: EpisodeEngine, tokenizer: Any, rl: Any,
                          combiner: Any, tasks: Sequence[Any]) -> SelfPredictor:
    """Make ``engine`` score with ``trainer``'s live policy (see the module docstring)."""
    predictor = SelfPredictor(trainer.model, tokenizer, rl.predictor_baseline,
                              ema_decay=rl.predictor_ema_decay, combiner=combiner)
    predictor.prime([t.context for t in tasks], [t.continuation for t in tasks])
    engine.scorer = predictor
    trainer.add_callback(EmaUpdate(predictor))
    return predictor


class EmaUpdate(TrainerCallback):
    """Moves ``predictor``'s EMA teacher at the end of every optimiser step."""

    def __init__(self, predictor: SelfPredictor) -> None:
        self.predictor = predictor

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.predictor.update()
