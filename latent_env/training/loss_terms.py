"""Extra loss terms on a TRL trainer's own loss, through its public ``compute_loss`` hook.

A term is a callable ``term(model, inputs) -> (weighted_loss, metrics)``: it sees the model being
trained and the batch TRL is about to pay for, returns a scalar with gradients (already times its
weight) and the metrics to log. :func:`with_loss_terms` subclasses a trainer so that, while the
model trains, every ``compute_loss`` adds each term of ``trainer.loss_terms``, divided by the
gradient-accumulation steps as TRL divides its own loss. Terms in use: the supervised anchor
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
            for term in self.loss_terms:
                extra, metrics = term(model, inputs)
                for name, value in metrics.items():
                    self._metrics["train"][name].append(value)
                loss = loss + extra / self.current_gradient_accumulation_steps
            return loss

    WithLossTerms.__name__ = WithLossTerms.__qualname__ = f"{trainer_cls.__name__}WithLossTerms"
    return WithLossTerms
