"""Reward callables with TRL's signature: ``fn(prompts, completions, **columns) -> list[float]``.

TRL's GRPO/RLOO trainers pass the dataset's extra columns as keyword arguments; the dataset built
by ``train_rl.py`` carries ``task`` (the task as JSON or a dict). Each completion is run through the
environment exactly as a single-turn episode would be: tool blocks execute in the sandbox, the
latent is scored, and the rubric's term is returned. Completions of one batch are scored together.

After a multi-turn rollout (:mod:`latent_env.training.rollout`) the columns also carry ``episode``,
the episodes already played, tools run: those are scored as they are, whole, each bound to its
row's task, and the completions' text is not read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from latent_env.engine import EpisodeEngine


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
    """A TRL reward function backed by an :class:`~latent_env.engine.EpisodeEngine`: the one of
    ``source`` (a :class:`~latent_env.env.LatentEnv` or anything with an ``engine``), or
    ``source`` itself.

    With ``tokenizer`` (the policy's) and TRL's ``completion_ids`` among the columns, the
    completions are decoded from their ids with :func:`latent_env.tokens.decode_action`, which
    keeps ``<thinking>`` (TRL's own text drops special tokens, thoughts among them).

    ``term`` picks what is returned: ``"total"`` (the rubric's weighted sum) or a term name such as
    ``"loglik_gain"`` or ``"answer_hit"``. ``last_infos`` keeps the per-episode infos of the last
    call for logging; ``calls`` counts the calls and :meth:`scored_triples` gives the last
    call's (X, c(X, L), Y), what the predictor loss trains on.
    """

    def __init__(self, source: EpisodeEngine | Any, term: str = "total",
                 tokenizer: Any = None) -> None:
        self.engine: EpisodeEngine = getattr(source, "engine", source)
        self.tokenizer = tokenizer
        self.term = term
        self.__name__ = f"latent_env_{term}"
        self.last_infos: list[dict[str, Any]] = []
        self.last_tasks: list[Any] = []
        self.calls = 0

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any):
        from latent_env.env import as_task

        tasks = columns.get("task")
        if tasks is None:
            raise KeyError("the dataset needs a 'task' column (the task as a dict)")
        tasks = [as_task(_decode(t)) for t in tasks]
        episodes = columns.get("episode")
        if episodes is not None:
            self.last_infos = self.engine.finish([bind(ep, t) for ep, t in zip(episodes, tasks)])
        else:
            self.last_infos = self.engine.run(tasks, self._texts(completions, columns))
        self.last_tasks = tasks
        self.calls += 1
        return [float(info[f"reward/{self.term}"]) for info in self.last_infos]

    def _texts(self, completions: Sequence[Any], columns: dict[str, Any]) -> list[str]:
        ids = columns.get("completion_ids")
        if self.tokenizer is None or ids is None:
            return [completion_text(c) for c in completions]
        from latent_env.tokens import decode_action

        return [decode_action(self.tokenizer, row) for row in ids]

    def scored_triples(self) -> list[tuple[str, str, str]]:
        """(X, c(X, L), Y) of each episode the last call scored, c the scorer's combiner."""
        from latent_env.context import get_combiner

        # LogLikScorer and SelfPredictor carry their combiner; another scorer, the default's.
        combine = get_combiner(getattr(self.engine.scorer, "combiner", None))
        return [(t.context, combine(t.context, info["latent"]), t.continuation)
                for t, info in zip(self.last_tasks, self.last_infos)]


def bind(episode: Any, task: Any) -> Any:
    """``episode`` to be scored on ``task``: its row's task, which must have the same context
    (a rollout finds a prompt's task by its text, so two tasks may share one prompt)."""
    if episode.task.context != task.context:
        raise ValueError(f"episode of task {episode.task.id} was played on another text than "
                         f"its row's task {task.id}")
    episode.task = task
    return episode
