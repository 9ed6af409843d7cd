"""Reward functions for latent-env: terms, a weighted rubric, and TRL-signature adapters.

* :mod:`latent_env.rewards.terms` — plain functions of an episode :class:`~latent_env.rewards.terms.Outcome`.
* :mod:`latent_env.rewards.rubric` — :class:`~latent_env.rewards.rubric.Rubric`, a weighted sum (weight 0 = logged only).
* :mod:`latent_env.training.reward` — callables with TRL's ``(prompts, completions, **kwargs)`` signature.
"""

from latent_env.rewards.rubric import DEFAULT_WEIGHTS, TERMS, RewardError, Rubric
from latent_env.rewards.terms import Outcome

__all__ = ["DEFAULT_WEIGHTS", "TERMS", "Outcome", "RewardError", "Rubric"]
