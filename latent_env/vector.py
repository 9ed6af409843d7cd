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

from latent_env.env import LatentEnv
from latent_env.episode import fit_observation, run_turns

MAX_OBS = 65_536


class LatentVectorEnv(VectorEnv):
    """``num_envs`` copies of :class:`LatentEnv` sharing one scorer, task list and tool set.

    Keyword arguments are those of :class:`LatentEnv`.
    """

    metadata = {"render_modes": ["ansi"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, **env_kwargs: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        first = LatentEnv(**env_kwargs)
        shared = {"tasks": first.tasks, "tools": first.tools, "scorer": env_kwargs.get("scorer")}
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
    def scorer(self) -> Any:
        return self.share_scorer()

    def share_scorer(self) -> Any:
        """Load the scorer once (in the first sub-env) and hand it to every other sub-env."""
        scorer = self.envs[0].scorer
        for env in self.envs[1:]:
            env._scorer = scorer
        return scorer

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
        texts = [self.envs[i].prepare_action(ep, actions[i]) for i, ep in zip(live, episodes)]
        run_turns(episodes, texts, self.envs[0].tools, self.envs[0].tool_budget)
        ending = []
        for i, ep in zip(live, episodes):
            terminated[i], truncated[i] = self.envs[i].end_flags(ep)
            if terminated[i] or truncated[i]:
                ending.append(i)
            else:
                infos = self._add_info(infos, {"turn": ep.turns}, i)
        self.share_scorer()
        finished = self.envs[0].finish([self.envs[i].episode for i in ending])
        for i, info in zip(ending, finished):
            rewards[i] = info["reward/total"]
            self.envs[i]._last_info = info
            infos = self._add_info(infos, info, i)
        self._needs_reset[:] = False
        self._needs_reset[ending] = True
        observations = tuple(
            fit_observation(env.episode.observation, MAX_OBS) for env in self.envs
        )
        return observations, rewards, terminated, truncated, infos

    def render(self) -> tuple[str | None, ...]:
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        self.envs[0].close()


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
