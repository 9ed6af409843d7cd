"""Run one policy over a list of tasks through :class:`~latent_env.vector.LatentVectorEnv`.

Tasks go in batches of ``jobs``: one vector-env reset pins a batch's tasks, the policy acts on
all observations at once, and one step runs every tool block and scores every episode in a
single batched scorer call. Each episode becomes a JSON-ready record. A policy that raises stops
its own run (``PolicyRun.error``); the records made before stay. A run can report every batch as
it ends and continue from saved batches (``latent-env bench --resume``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from latent_env.bench.episodes import family_of
from latent_env.tasks import Task
from latent_env.tools.base import Tool
from latent_env.vector import LatentVectorEnv

# Tool-call fields that measure time: left out of records so results are reproducible.
TIMING_KEYS = frozenset({"duration_s"})


@dataclass
class PolicyRun:
    """What one policy did: per-episode records, wall time, and the error that stopped it."""

    spec: str
    records: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


class EpisodeStepper:
    """One :class:`LatentVectorEnv` of ``width`` sub-envs that runs batches of up to ``width``.

    A shorter batch (the last one) fills the spare sub-envs with copies of its first task and
    an empty action: no tool runs and no model call (an empty latent's gain is the cached
    baseline's), and their results are dropped. One env is built once because building one
    costs about a second per sub-env (Gymnasium copies the Text spaces' large charsets).
    """

    def __init__(
        self, scorer: Any, tools: Mapping[str, Tool], width: int, prompt: str | None = None
    ) -> None:
        if width < 1:
            raise ValueError(f"width must be at least 1, got {width}")
        self.scorer, self.tools, self.width = scorer, dict(tools), width
        self.env = LatentVectorEnv(width, tasks=[], scorer=scorer, tools=self.tools,
                                   prompt=prompt)
        self._live = 0

    def warm_tools(self) -> None:
        """Start the tools' worker pools now, not in the first policy's time."""
        for tool in self.tools.values():
            tool.run_batch([""])

    def reset(self, tasks: Sequence[Task], seeds: Sequence[int]) -> list[str]:
        """Pin ``tasks`` (at most ``width``); returns their observations."""
        if not 0 < len(tasks) <= self.width:
            raise ValueError(f"a batch holds 1 to {self.width} tasks, got {len(tasks)}")
        spare = self.width - len(tasks)
        padded_tasks = list(tasks) + [tasks[0]] * spare
        padded_seeds = list(seeds) + [seeds[0]] * spare
        observations, _ = self.env.reset(seed=padded_seeds, options={"tasks": padded_tasks})
        self._live = len(tasks)
        return list(observations[: self._live])

    def step(self, actions: Sequence[str]) -> list[dict[str, Any]]:
        """Run the actions of the live sub-envs; returns each one's final ``info``."""
        if len(actions) != self._live:
            raise ValueError(f"expected {self._live} actions, got {len(actions)}")
        padded = list(actions) + [""] * (self.width - self._live)
        _, _, terminated, truncated, infos = self.env.step(padded)
        if not all(terminated | truncated):
            raise RuntimeError("bench episodes must end in one step (single mode)")
        return [
            {key: value[i] for key, value in infos.items() if not key.startswith("_")}
            for i in range(self._live)
        ]


def run_policy(
    policy: Any,
    tasks: Sequence[Task],
    stepper: EpisodeStepper,
    seed: int,
    on_batch: Callable[[int], None] | None = None,
    resume: PolicyRun | None = None,
    resume_state: Any = None,
    after_batch: Callable[[PolicyRun, int, Any], None] | None = None,
) -> PolicyRun:
    """Run ``policy`` on ``tasks`` (one episode each) in batches of ``stepper.width``.

    Episode ``i`` resets its env with seed ``seed + i`` whatever the batch size. Any exception
    raised by the policy marks the run failed with a one-line message.

    ``resume`` (the records and wall time of batches already run, a whole number of batches)
    and ``resume_state`` (what the policy's ``get_state()`` gave after them) continue an
    interrupted run: the policy is reset, its state restored, and the remaining batches run, so
    the result equals an uninterrupted run's. ``after_batch(run, first, state)`` is called after
    each batch (``first``: its first episode; ``state``: the policy's ``get_state()``, or None).
    """
    run = PolicyRun(policy.name)
    if resume is not None:  # kept even if the policy now fails to start
        run.records, run.wall_s = list(resume.records), resume.wall_s
    try:
        policy.reset(seed)
        if resume is not None:
            policy.set_state(resume_state)
        prepare = getattr(policy, "prepare", None)
        if callable(prepare):
            prepare()  # load weights before the clock starts
    except Exception as exc:  # the policy's failure, not the benchmark's
        run.error = _describe(exc)
        return run
    start = time.perf_counter() - run.wall_s
    tokenizer = stepper.scorer.tokenizer
    for first in range(len(run.records), len(tasks), stepper.width):
        batch = list(tasks[first : first + stepper.width])
        observations = stepper.reset(batch, [seed + first + i for i in range(len(batch))])
        try:
            actions = _act(policy, observations, batch)
        except Exception as exc:
            run.error = _describe(exc)
            break
        infos = stepper.step(actions)
        for i, (task, action, info) in enumerate(zip(batch, actions, infos)):
            run.records.append(episode_record(run.spec, first + i, task, action, info, tokenizer))
        run.wall_s = time.perf_counter() - start
        if after_batch is not None:
            after_batch(run, first, policy_state(policy))
        if on_batch is not None:
            on_batch(len(batch))
    run.wall_s = time.perf_counter() - start
    return run


def policy_state(policy: Any) -> Any:
    """``policy.get_state()``, or None for a policy without a usable one: such a run is rerun
    from its first episode rather than continued."""
    get_state = getattr(policy, "get_state", None)
    if not callable(get_state) or not callable(getattr(policy, "set_state", None)):
        return None
    try:
        return get_state()
    except Exception:  # a state that cannot be taken only costs the rerun of this policy
        return None


def _act(policy: Any, observations: list[str], tasks: list[Task]) -> list[str]:
    actions = policy.act_batch(observations, tasks=tasks)
    if len(actions) != len(observations):
        raise RuntimeError(
            f"act_batch returned {len(actions)} actions for {len(observations)} observations"
        )
    return [a if isinstance(a, str) else str(a) for a in actions]


def _describe(exc: BaseException) -> str:
    from latent_env.agents.base import PolicyError

    if isinstance(exc, PolicyError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def episode_record(
    spec: str, index: int, task: Task, action: str, info: Mapping[str, Any], tokenizer: Any
) -> dict[str, Any]:
    """One episode as JSON-ready data (numpy scalars become Python numbers)."""
    tools = [
        {k: v for k, v in call.items() if k not in TIMING_KEYS} for call in info["tools"]
    ]
    return {
        "policy": spec,
        "episode": index,
        "task_id": task.id,
        "family": family_of(task),
        "context": task.context,
        "continuation": task.continuation,
        "answer": task.answer,
        "action": action,
        "latent": str(info["latent"]),
        "kind": str(info["latent/kind"]),
        "tools": tools,
        "reward": float(info["reward/total"]),
        "gain": float(info["reward/loglik_gain"]),
        "answer_hit": bool(info["reward/answer_hit"]) if task.answer else None,
        "answer_hit_without_latent": (
            bool(info["reward/answer_hit_without_latent"]) if task.answer else None
        ),
        "tool_calls": int(info["tool/calls"]),
        "tool_errors": int(info["tool/errors"]),
        "latent_tokens": int(info["tokens/latent"]),
        "logp_with_latent": float(info["score/logp_with_latent"]),
        "logp_without_latent": float(info["score/logp_without_latent"]),
        "tokens": [tokenizer.convert_tokens_to_string([t]) for t in info["score/tokens"]],
        "token_gains": [float(g) for g in info["score/token_gains"]],
    }
