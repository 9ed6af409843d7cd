"""Datasets for the training stages, built from tasks through the environment's own prompt.

* SFT traces (prompt-completion, conversational): the observation the environment would show as
  the user turn, a latent as the assistant turn. Gold traces come from each task's gold of the
  kind its family needs (:func:`trace_latent`): a program, a reason, or the empty latent
  ``<done/>`` where nothing helps, so SFT teaches the choice as well as the writing.
* RL prompts: the same user turn, plus the task as JSON (column ``task``) for the reward.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from latent_env.actions import DONE_TOKEN
from latent_env.env import LatentEnv
from latent_env.tasks import Task, load_split
from latent_env.tasks.families import EXPECTED_KINDS
from latent_env.tasks.task import group_by_family, interleave
from latent_env.training.config import TRACE_STYLES

ECHO_WORDS = 6  # measured on 54 train tasks: 2 words +6.02 nats, 3: +6.24, 6: +6.34
FINAL_PRINT = re.compile(r"print\((?P<args>.*)\)\s*$")


def expects_nothing(task: Task) -> bool:
    """True for no-help positions: the task's family expects only the empty latent to help, or
    the task was cut from raw text and has no gold of any kind."""
    if task.program or task.reason:
        return False
    if task.family in EXPECTED_KINDS:
        return EXPECTED_KINDS[task.family] == ("empty",)
    return task.meta.get("source") in ("rawtext", "corpus")


def trace_kind(task: Task) -> str | None:
    """The kind of latent :func:`trace_latent` teaches for ``task`` (code, reasoning, empty),
    or ``None`` when it teaches nothing."""
    if task.program:
        return "code"
    if task.reason:
        return "reasoning"
    return "empty" if expects_nothing(task) else None


def trace_latent(task: Task, style: str = "echo") -> str | None:
    """The latent SFT teaches for ``task``, or ``None`` when it has nothing to teach.

    A gold program wins (in ``style``: :func:`echo_latent` or :func:`gold_latent`), then a gold
    reason as ``<reason>…</reason>``, then ``<done/>`` (write nothing) for no-help positions
    (:func:`expects_nothing`). A task of an unknown family with no gold teaches nothing.
    """
    if style not in TRACE_STYLES:
        raise ValueError(f"trace style must be one of {TRACE_STYLES}, got {style!r}")
    if task.program:
        return echo_latent(task) if style == "echo" else gold_latent(task)
    if task.reason:
        return f"<reason>{task.reason.strip()}</reason>"
    return DONE_TOKEN if expects_nothing(task) else None


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


def gold_traces(tasks: Sequence[Task], style: str = "echo") -> list[tuple[Task, str]]:
    """``(task, gold latent action)`` for each task with something to teach
    (:func:`trace_latent`; programs in ``style`` ``"echo"`` or ``"program"``)."""
    pairs = [(t, trace_latent(t, style)) for t in tasks]
    return [(t, latent) for t, latent in pairs if latent is not None]


def gold_sft_records(env: LatentEnv, tasks: Sequence[Task], style: str = "echo") -> list[dict]:
    """Traces from tasks' gold latents (:func:`gold_traces`)."""
    kept = gold_traces(tasks, style)
    return sft_records(env, [t for t, _ in kept], [latent for _, latent in kept])


def trace_kinds(records: Sequence[dict]) -> dict[str, int]:
    """How many traces of each latent kind a record list holds (code, reasoning, empty)."""
    counts = {"code": 0, "reasoning": 0, "empty": 0}
    for record in records:
        content = record["completion"][0]["content"]
        kind = ("empty" if content == DONE_TOKEN else
                "reasoning" if content.startswith("<reason>") else "code")
        counts[kind] += 1
    return counts


def rl_records(env: LatentEnv, tasks: Sequence[Task]) -> list[dict[str, Any]]:
    return [{"prompt": user_turn(env, t), "task": json.dumps(t.to_dict())} for t in tasks]


def take_per_family(tasks: Sequence[Task], per_family: int) -> list[Task]:
    """The first ``per_family`` tasks of each family, interleaved so any prefix is balanced."""
    return interleave([group[:per_family] for group in group_by_family(tasks).values()])


def split_tasks(spec: str, split: str, per_family: int) -> list[Task]:
    """The first ``per_family`` tasks of each family in ``split`` of ``spec`` (a suite, a
    directory of split files, or one task file split by :func:`~latent_env.tasks.load_split`)."""
    return take_per_family(load_split(spec, split), per_family)
