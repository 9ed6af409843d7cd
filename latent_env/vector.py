"""LatentVectorEnv: N episodes stepped together — tools run concurrently, scoring is one batch.

Gymnasium's sync/async vectorisation steps sub-environments one by one, so N episodes cost N
scorer calls and N sequential sandbox round-trips. Here every tool block of every sub-env goes to
the sandbox pool at once (``Tool.run_batch``) and all episodes that end on a step are scored in one
batched ``LogLikScorer.gain`` call. Used by ``gymnasium.make_vec(..., vectorization_mode=
"vector_entry_point")`` and directly.

``reset(options={"tasks": [...]})`` pins one task per sub-env (benchmarks walk a suite this way).
Autoreset follows Gymnasium's default ``NEXT_STEP`` mode: the step after a sub-env ends resets it
(its action is ignored, reward 0) and returns the new episode's first observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from latent_env.engine import EpisodeEngine, Scorer
from latent_env.env import LatentEnv


class LatentVectorEnv(VectorEnv):
    """``num_envs`` slots, each a :class:`LatentEnv` (its own episode and random generator),
    all on one :class:`~latent_env.engine.EpisodeEngine` and one task list.

    Keyword arguments are those of :class:`LatentEnv`.
    """

    metadata = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, **env_kwargs: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        first = LatentEnv(**env_kwargs)
        self.engine: EpisodeEngine = first.engine
        shared = {"tasks": first.tasks, "engine": self.engine}
        self.envs = [first] + [
            LatentEnv(**{**env_kwargs, **shared}) for _ in range(num_envs - 1)
        ]
        self.num_envs = num_envs
        self.single_action_space = first.action_space
        self.single_observation_space = first.observation_space
        # Tuple spaces of the sub-envs' own Text spaces: batch_space would deep-copy the 63k-char
        # charset once per sub-env (~0.2 s each).
        self.action_space = spaces.Tuple([env.action_space for env in self.envs])
        self.observation_space = spaces.Tuple([env.observation_space for env in self.envs])
        self.render_mode = env_kwargs.get("render_mode")
        self._needs_reset = np.zeros(num_envs, dtype=bool)

    @property
    def scorer(self) -> Scorer:
        return self.engine.scorer

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None):
        seeds = _seeds(seed, self.num_envs)
        per_env = _per_env_options(options, self.num_envs)
        observations, infos = [], {}
        for i, (env, s) in enumerate(zip(self.envs, seeds)):
            obs, info = env.reset(seed=s, options=per_env[i])
            observations.append(obs)
            infos = self._add_info(infos, info, i)
        self._needs_reset[:] = False
        return tuple(observations), infos

    def step(self, actions: Sequence[Any]):
        if len(actions) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got {len(actions)}")
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        live = [i for i in range(self.num_envs) if not self._needs_reset[i]]
        for i in np.flatnonzero(self._needs_reset):
            _, info = self.envs[i].reset()
            infos = self._add_info(infos, info, int(i))
        episodes = [self.envs[i].episode for i in live]
        turns = self.engine.act(episodes, [actions[i] for i in live])
        ending = []
        for i, ep, turn in zip(live, episodes, turns):
            terminated[i], truncated[i] = turn.terminated, turn.truncated
            if turn.terminated or turn.truncated:
                ending.append(i)
            else:
                infos = self._add_info(infos, {"turn": ep.turns}, i)
        finished = self.engine.finish([self.envs[i].episode for i in ending])
        for i, info in zip(ending, finished):
            rewards[i] = info["reward/total"]
            infos = self._add_info(infos, info, i)
        self._needs_reset[:] = False
        self._needs_reset[ending] = True
        observations = tuple(self.engine.observe(env.episode) for env in self.envs)
        return observations, rewards, terminated, truncated, infos

    def render(self) -> tuple[str | None, ...]:
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        self.engine.close()


def _per_env_options(options: dict | None, n: int) -> list[dict | None]:
    """``options={"tasks": [t0, t1, …]}`` pins one task per sub-env; other options are shared."""
    if not options or "tasks" not in options:
        return [options] * n
    tasks = list(options["tasks"])
    if len(tasks) != n:
        raise ValueError(f"options['tasks'] needs {n} tasks (one per sub-env), got {len(tasks)}")
    shared = {k: v for k, v in options.items() if k != "tasks"}
    return [{**shared, "task": task} for task in tasks]


def _seeds(seed: int | Sequence[int | None] | None, n: int) -> list[int | None]:
    if seed is None:
        return [None] * n
    if isinstance(seed, int):
        return [seed + i for i in range(n)]
    seeds = list(seed)
    if len(seeds) != n:
        raise ValueError(f"expected {n} seeds, got {len(seeds)}")
    return seeds
