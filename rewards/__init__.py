"""Reward functions for latent-env: terms and a weighted rubric.

* :mod:`latent_env.rewards.terms`: plain functions of an episode's
  :class:`~latent_env.rewards.terms.Outcome`.
* :mod:`latent_env.rewards.rubric`: :class:`~latent_env.rewards.rubric.Rubric`, a weighted sum
  (weight 0 = logged only).

They import nothing from the engine; the TRL adapter, callables with TRL's
``(prompts, completions, **kwargs)`` signature, is :mod:`latent_env.training.reward`.
"""

from latent_env.rewards.rubric import DEFAULT_WEIGHTS, TERMS, RewardError, Rubric
from latent_env.rewards.terms import Outcome

__all__ = ["DEFAULT_WEIGHTS", "TERMS", "Outcome", "RewardError", "Rubric"]
