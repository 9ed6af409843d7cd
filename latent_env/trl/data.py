"""Datasets for the training stages, built from tasks through the environment's own prompt.

* SFT traces (prompt-completion, conversational): the observation the environment would show as
  the user turn, a latent as the assistant turn. Gold traces come from tasks' programs.
* RL prompts: the same user turn, plus the task as JSON (column ``task``) for the reward.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from latent_env.env import LatentEnv
from latent_env.tasks import Task, load_tasks


def gold_latent(task: Task) -> str:
    """The action an ideal policy writes for a task: its gold program as a python block."""
    return f"<python>\n{task.program.strip()}\n</python>"


def user_turn(env: LatentEnv, task: Task) -> list[dict[str, str]]:
    return [{"role": "user", "content": env.new_episode(task).prompt}]


def sft_records(env: LatentEnv, tasks: Sequence[Task], latents: Sequence[str]) -> list[dict]:
    return [
        {"prompt": user_turn(env, t), "completion": [{"role": "assistant", "content": lat}]}
        for t, lat in zip(tasks, latents)
    ]


def gold_sft_records(env: LatentEnv, tasks: Sequence[Task]) -> list[dict]:
    with_program = [t for t in tasks if t.program]
    return sft_records(env, with_program, [gold_latent(t) for t in with_program])


def rl_records(env: LatentEnv, tasks: Sequence[Task]) -> list[dict[str, Any]]:
    return [{"prompt": user_turn(env, t), "task": json.dumps(t.to_dict())} for t in tasks]


def take_per_family(tasks: Sequence[Task], per_family: int) -> list[Task]:
    """The first ``per_family`` tasks of each family, interleaved so any prefix is balanced."""
    by_family: dict[str, list[Task]] = {}
    for task in tasks:
        bucket = by_family.setdefault(task.family or "", [])
        if len(bucket) < per_family:
            bucket.append(task)
    out: list[Task] = []
    for i in range(per_family):
        out.extend(bucket[i] for bucket in by_family.values() if i < len(bucket))
    return out


def split_tasks(spec: str, split: str, per_family: int) -> list[Task]:
    return take_per_family(load_tasks(spec, split=split), per_family)
