"""Datasets for the training stages, built from tasks through the environment's own prompt.

* SFT traces (prompt-completion, conversational): the observation the environment would show as
  the user turn, a latent as the assistant turn. Gold traces come from tasks' programs.
* RL prompts: the same user turn, plus the task as JSON (column ``task``) for the reward.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from latent_env.env import LatentEnv
from latent_env.tasks import Task, load_tasks
from latent_env.trl.config import TRACE_STYLES

ECHO_WORDS = 6  # measured on 54 train tasks: 2 words +6.02 nats, 3: +6.24, 6: +6.34
FINAL_PRINT = re.compile(r"print\((?P<args>.*)\)\s*$")


def gold_latent(task: Task) -> str:
    """The action an ideal policy writes for a task: its gold program as a python block."""
    return f"<python>\n{task.program.strip()}\n</python>"


def echo_latent(task: Task, words: int = ECHO_WORDS) -> str:
    """The gold program, with its final ``print`` repeating the text's last words first.

    The words come from the text's last line. The output then reads like the text itself
    (``Now he has 15``), so the reward model can
    copy the answer from a matching earlier phrase instead of from a bare number. On the
    default model this raised the gain from +4.92 to +6.34 nats and answer accuracy from 44% to
    93% (54 train tasks, benchmarks/RESULTS.md). Programs without a final ``print`` keep the
    gold form.
    """
    lines = task.program.strip().split("\n")
    match = FINAL_PRINT.match(lines[-1])
    last_line = task.context.strip().split("\n")[-1]
    tail = " ".join(last_line.split()[-words:])
    if not match or not tail:
        return gold_latent(task)
    lines[-1] = f"print({tail!r}, {match.group('args')})"
    return "<python>\n" + "\n".join(lines) + "\n</python>"


def user_turn(env: LatentEnv, task: Task) -> list[dict[str, str]]:
    return [{"role": "user", "content": env.new_episode(task).prompt}]


def sft_records(env: LatentEnv, tasks: Sequence[Task], latents: Sequence[str]) -> list[dict]:
    return [
        {"prompt": user_turn(env, t), "completion": [{"role": "assistant", "content": lat}]}
        for t, lat in zip(tasks, latents)
    ]


def gold_sft_records(env: LatentEnv, tasks: Sequence[Task], style: str = "echo") -> list[dict]:
    """Traces from tasks' gold programs, in ``style`` ``"echo"`` (:func:`echo_latent`) or
    ``"program"`` (the program as written, :func:`gold_latent`)."""
    if style not in TRACE_STYLES:
        raise ValueError(f"trace style must be one of {TRACE_STYLES}, got {style!r}")
    make = echo_latent if style == "echo" else gold_latent
    with_program = [t for t in tasks if t.program]
    return sft_records(env, with_program, [make(t) for t in with_program])


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
