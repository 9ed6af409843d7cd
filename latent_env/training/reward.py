"""Reward callables with TRL's signature: ``fn(prompts, completions, **columns) -> list[float]``.

TRL's GRPO/RLOO trainers pass the dataset's extra columns as keyword arguments; the dataset built
by ``train_rl.py`` carries ``task`` (the task as JSON or a dict). Each completion is run through the
environment exactly as a single-turn episode would be: tool blocks execute in the sandbox, the
latent is scored, and the rubric's term is returned. Completions of one batch are scored together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from latent_env.episode import Episode, run_turns, sanitize_text, score_episodes


def _decode(task: Any) -> Any:
    """Dataset columns hold tasks as JSON strings (Arrow needs one schema); dicts work too."""
    return json.loads(task) if isinstance(task, str) else task


def completion_text(completion: Any) -> str:
    """Plain text of a completion: a string, or chat messages (the assistant's contents)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
    return str(completion)


class EnvReward:
    """A TRL reward function backed by a :class:`~latent_env.env.LatentEnv`'s tools and scorer.

    ``term`` picks what is returned: ``"total"`` (the rubric's weighted sum) or a term name such as
    ``"loglik_gain"`` or ``"answer_hit"``. ``last_infos`` keeps the per-episode infos of the last
    call for logging.
    """

    def __init__(self, env: Any, term: str = "total") -> None:
        self.env = env
        self.term = term
        self.__name__ = f"latent_env_{term}"
        self.last_infos: list[dict[str, Any]] = []

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any):
        from latent_env.env import as_task

        tasks = columns.get("task")
        if tasks is None:
            raise KeyError("the dataset needs a 'task' column (the task as a dict)")
        episodes = [Episode(task=as_task(_decode(t)), prompt="") for t in tasks]
        actions = [
            sanitize_text(completion_text(c), self.env.max_action_chars)[0] for c in completions
        ]
        run_turns(episodes, actions, self.env.tools, self.env.tool_budget)
        self.last_infos = score_episodes(episodes, self.env.scorer, self.env.rubric)
        return [float(info[f"reward/{self.term}"]) for info in self.last_infos]
