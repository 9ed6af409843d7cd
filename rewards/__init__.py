"""Reward functions for latent-env: terms, a weighted rubric, and TRL-signature adapters.

* :mod:`rewards.terms` — plain functions of an episode :class:`~rewards.terms.Outcome`.
* :mod:`rewards.rubric` — :class:`~rewards.rubric.Rubric`, a weighted sum (weight 0 = logged only).
* :mod:`rewards.trl` — callables with TRL's ``(prompts, completions, **kwargs)`` signature.
"""

from rewards.rubric import DEFAULT_WEIGHTS, TERMS, RewardError, Rubric
from rewards.terms import Outcome

__all__ = ["DEFAULT_WEIGHTS", "TERMS", "Outcome", "RewardError", "Rubric"]
