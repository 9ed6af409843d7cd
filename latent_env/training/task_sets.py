"""The task sets of a run, disjoint by construction, checked before the run starts and recorded.

    sft    of each family in the train split of ``--tasks``, the first n tasks
    rl     the next n (n: ``--train_per_family``, or ``--train_per_kind``'s count for the kind
           of latent the family's traces teach)
    eval   the first ``--eval_per_family`` tasks of each family in the test split

Suites and directories (``DIR/train.jsonl``, ``DIR/test.jsonl``) bring their own splits; a single
task file is split by each task's ``"split"`` field, or without one by a hash of its context
(:func:`latent_env.tasks.split_task_file`). A family with fewer train tasks than its shares need
is refused, never shared between SFT and RL nor silently cut short. ``RUN/tasks.json`` lists the
ids of every set (``--text`` tasks included).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from latent_env.tasks import Task, context_key, load_split, split_task_file, task_file
from latent_env.tasks.task import group_by_family
from latent_env.training.data import take_per_family, trace_kind

TASK_SETS_FILE = "tasks.json"
SUPERVISED = ("sft", "latent", "fusion")  # the stages that train on the SFT share
FILE_RULE = ('a single task file is split by each task\'s "split" field, or without one by a '
             "hash of its context, 60% train, 20% validation, 20% test; a directory holding "
             "train.jsonl and test.jsonl gives the splits explicitly")


def family_shares(tasks: Sequence[Any], size: Callable[[Any], int], part: str) -> list[Any]:
    """Of each family, the first ``size(task)`` tasks (``part="sft"``) or the next as many
    (``"rl"``); a family's size is that of its first task. Families keep their first-seen order."""
    out = []
    for group in group_by_family(tasks).values():
        n = size(group[0])
        out.extend(group[:n] if part == "sft" else group[n:2 * n])
    return out


def train_share(spec: str, part: str, per_family: int,
                per_kind: dict[str, int] | None = None) -> list[Task]:
    """SFT's (``part="sft"``) or RL's (``"rl"``) share of the train split of ``spec``, balanced
    across families (:func:`take_per_family`). Raises ``ValueError``, one line saying what is
    short and how to fix it, when the split is empty or a family has fewer tasks than the
    share needs (n for SFT; 2n for RL, whose tasks follow SFT's)."""
    per_kind = per_kind or {}
    tasks = load_split(spec, "train")
    if not tasks:
        raise ValueError(f"--tasks {spec}: no train tasks{split_counts(spec)}; give train tasks "
                         f"({how_to_fix(spec)})")
    def size(task: Task) -> int:
        return per_kind.get(trace_kind(task) or "", per_family)

    for family, group in group_by_family(tasks).items():
        n, kind = size(group[0]), trace_kind(group[0]) or ""
        if len(group) < (n if part == "sft" else 2 * n):
            flag = f"--train_per_kind {kind}={n}" if kind in per_kind else f"--train_per_family {n}"
            who = f"SFT needs {n}" if part == "sft" else f"SFT and RL need {n} each"
            raise ValueError(
                f'--tasks {spec}: family "{family}" has {len(group)} train tasks, and {who} '
                f"({flag}); lower it or give more train tasks ({how_to_fix(spec)})")
    chosen = family_shares(tasks, size, part)
    return take_per_family(chosen, len(chosen))


def eval_share(spec: str, per_family: int) -> list[Task]:
    """The first ``per_family`` tasks of each family in the test split of ``spec``; raises
    ``ValueError`` when the split has none."""
    tasks = load_split(spec, "test")
    if not tasks:
        raise ValueError(f"--tasks {spec}: no test tasks to evaluate on{split_counts(spec)}; "
                         f"pass --eval_per_family 0 or give test tasks ({how_to_fix(spec)})")
    return take_per_family(tasks, per_family)


def split_counts(spec: str) -> str:
    """For a task file, how its tasks fall into the splits (``" (its 9 tasks: 0 train, …)"``)."""
    path = task_file(spec)
    if path is None:
        return ""
    splits = split_task_file(path)
    total = sum(len(tasks) for tasks in splits.values())
    return f" (its {total} tasks: " + ", ".join(f"{len(t)} {s}" for s, t in splits.items()) + ")"


def how_to_fix(spec: str) -> str:
    """How splits are given: a file's rule, or (suites, directories) where else to find them."""
    return FILE_RULE if task_file(spec) else (
        "a directory holds them as train.jsonl and test.jsonl; latent-env tasks list shows the "
        "suites")


def needed_shares(pipeline: Any, sft: Any, rl: Any) -> tuple[str, ...]:
    """The train shares the run's stages use: SFT's (the supervised stages, the RL stage's SFT
    anchor) and RL's (the RL stage, SFT's bootstrap round)."""
    stages = pipeline.stage_list
    uses_sft = any(s in stages for s in SUPERVISED) or ("rl" in stages and rl.rl_sft_anchor > 0)
    uses_rl = "rl" in stages or ("sft" in stages and sft.bootstrap_k > 0)
    return ("sft",) * uses_sft + ("rl",) * uses_rl


def check_task_sets(pipeline: Any, sft: Any, rl: Any, evaluation: Any) -> dict[str, list[Task]]:
    """The ``--tasks`` sets the run will use (``--text`` aside), checked before anything is
    written: each share complete and no two sets sharing a task. Raises ``ValueError``."""
    spec = pipeline.tasks
    sets: dict[str, list[Task]] = {
        part: train_share(spec, part, pipeline.train_per_family, pipeline.per_kind())
        for part in needed_shares(pipeline, sft, rl)}
    if evaluation.eval_per_family > 0:
        sets["eval"] = eval_share(spec, evaluation.eval_per_family)
    check_disjoint(sets, f"--tasks {spec}")
    return sets


def check_disjoint(sets: dict[str, Sequence[Any]], where: str) -> None:
    """Raise ``ValueError`` when two sets share a task id, or a training set shares a context
    with the eval set (a directory's train and test files can overlap)."""
    names = list(sets)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            shared = {t.id for t in sets[first]} & {t.id for t in sets[second]}
            if shared:
                raise ValueError(f"{where}: the {first} and {second} tasks overlap "
                                 f"({len(shared)} shared, e.g. {sorted(shared)[0]!r})")
    held_out = {context_key(t.context): t.id for t in sets.get("eval", ())}
    for name in (n for n in names if n != "eval"):
        leaked = [t for t in sets[name] if context_key(t.context) in held_out]
        if leaked:
            raise ValueError(
                f"{where}: {len(leaked)} {name} task(s) share a context with an eval task (e.g. "
                f"{leaked[0].id!r} and {held_out[context_key(leaked[0].context)]!r})")


def write_task_sets(run_dir: Path, sets: dict[str, Sequence[Any]], spec: str) -> Path:
    """``RUN/tasks.json``: ``{"tasks": spec, "sets": {name: [{"id", "family"}, …]}}``."""
    payload = {"tasks": spec,
               "sets": {name: [{"id": t.id, "family": t.family} for t in tasks]
                        for name, tasks in sets.items()}}
    path = run_dir / TASK_SETS_FILE
    path.write_text(json.dumps(payload, indent=1))
    return path
