"""Latent thoughts (LT-Tuning stages 2-3): ``<thinking>`` tokens whose input is a latent vector.

Public API:

* :class:`LatentThoughtModel` / :class:`LatentThoughtConfig` — wrapper around any HF causal LM;
  at each ``<thinking>`` position the input embedding is the previous position's last hidden
  state (``mode="hidden"``) or its fusion with the top-p expected embedding (``mode="fusion"``).
* :func:`add_thinking_token` — add the token to a tokenizer, resize, wrap.
* :mod:`latent_env.thoughts.stages` — confidence-driven insertion and :class:`StageManager`.
* :mod:`latent_env.thoughts.reference` — naive no-cache computations used as ground truth.
* ``python -m latent_env.thoughts.train_demo`` — a short stage 1 → 2 → 3 run.

Importing this package registers the model with ``AutoConfig`` / ``AutoModelForCausalLM``, so
saved checkpoints reload through the Auto classes (and TRL's model-name loading).
"""

from transformers import AutoConfig, AutoModelForCausalLM

from latent_env.thoughts.config import THINKING_TOKEN, LatentThoughtConfig
from latent_env.thoughts.model import LatentThoughtModel, add_thinking_token
from latent_env.thoughts.stages import (
    DEFAULT_STAGES,
    InsertionSettings,
    Stage,
    StageExample,
    StageManager,
    StageSpec,
    build_stage_examples,
)

AutoConfig.register(LatentThoughtConfig.model_type, LatentThoughtConfig, exist_ok=True)
AutoModelForCausalLM.register(LatentThoughtConfig, LatentThoughtModel, exist_ok=True)

__all__ = [
    "DEFAULT_STAGES",
    "THINKING_TOKEN",
    "InsertionSettings",
    "LatentThoughtConfig",
    "LatentThoughtModel",
    "Stage",
    "StageExample",
    "StageManager",
    "StageSpec",
    "add_thinking_token",
    "build_stage_examples",
]
