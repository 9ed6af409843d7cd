"""Extra loss terms on a TRL trainer's own loss, through its public ``compute_loss`` hook.

A term is a callable ``term(model, inputs) -> (weighted_loss, metrics)``: it sees the model being
trained and the batch TRL is about to pay for, returns a scalar with gradients (already times its
weight) and the metrics to log. :func:`with_loss_terms` subclasses a trainer so that, while the
model trains, every ``compute_loss`` adds each term of ``trainer.loss_terms``, scaled for
gradient accumulation as the trainer's own loss is: divided by the accumulation steps where
``compute_loss`` returns a loss already scaled (GRPO, RLOO; SFT with ``num_items_in_batch``),
left for ``Trainer.training_step`` to divide otherwise. Terms in use: the supervised anchor
(:mod:`latent_env.training.anchor`) and the predictor loss
(:mod:`latent_env.training.predictor_loss`).
"""

from __future__ import annotations

from typing import Any, Protocol


class LossTerm(Protocol):
    def __call__(self, model: Any, inputs: Any) -> tuple[Any, dict[str, float]]:
        """``(weight × loss with gradients, {metric: value})`` for this batch."""


def with_loss_terms(trainer_cls: type) -> type:
    """``trainer_cls`` whose loss adds ``trainer.loss_terms`` (empty: its loss unchanged)."""

    class WithLossTerms(trainer_cls):  # type: ignore[misc, valid-type]
        loss_terms: list[LossTerm] = []

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if not self.loss_terms or not model.training:
                return loss
            steps = self.current_gradient_accumulation_steps if scaled_for_accumulation(
                self, num_items_in_batch) else 1
            for term in self.loss_terms:
                extra, metrics = term(model, inputs)
                for name, value in metrics.items():
                    self._metrics["train"][name].append(value)
                loss = loss + extra / steps
            return loss

    WithLossTerms.__name__ = WithLossTerms.__qualname__ = f"{trainer_cls.__name__}WithLossTerms"
    return WithLossTerms


def scaled_for_accumulation(trainer: Any, num_items_in_batch: Any) -> bool:
    """Does ``trainer.compute_loss`` return a loss already scaled for gradient accumulation?
    The rule of ``transformers.Trainer.training_step``, which divides the loss when it is not."""
    flag = getattr(trainer, "loss_is_scaled_for_ga", None)
    if flag is not None:
        return bool(flag)
    return bool((getattr(trainer, "model_accepts_loss_kwargs", False)
                 and num_items_in_batch is not None)
                or getattr(trainer, "compute_loss_func", None) is not None)
