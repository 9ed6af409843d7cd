"""Named task suites with fixed seeds and train/validation/test splits that never overlap.

How splits stay disjoint: every split draws from its own random stream (a ``SeedSequence``
keyed by the split and family names), and — the real guarantee — a context *belongs* to exactly
one split, decided by a hash of its whitespace-normalised text (:func:`split_of`): 20% of the
hash space is test, 20% validation, 60% train. A generated task whose context hashes into another
split is discarded and the generator draws again. So a train set made with any size, seed,
difficulty or family filter never contains a context of any test set, and a task file can be
checked after the fact. The founding example is reserved for test.

Families cut from a real corpus set ``meta["split_key"]`` (the passage the context was cut from):
the split then follows the passage, not the context, so a test passage's text never appears in
any train context, however the contexts overlap.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from latent_env.tasks.families import FAMILIES, check_difficulty, check_family
from latent_env.tasks.jsonl import load_jsonl
from latent_env.tasks.splits import SPLITS, context_key, split_of
from latent_env.tasks.task import Task, TaskError, TaskFormatError
from latent_env.tasks.textspec import is_text_spec, load_text_spec

FOUNDING_TASK = Task(
    id="founding/test/average/0000",
    context=("The names of the students are John, Mary, and Peter. John is 15 years old, "
             "Mary is 16 years old, and Peter is 17 years old. Their average age is"),
    continuation=" 16",
    answer="16",
    program=("from statistics import mean\n\npeter = 17\nmary = 16\njohn = 15\n"
             "average_age = mean([peter, mary, john])\nprint(average_age)"),
    family="average",
    meta={"split": "test", "suite": "founding", "difficulty": 1, "template": "average/founding",
          "source": "fine-tuned-latent-llms.md section 4.1 (typo 'John its' read as 'John is')"},
)


@dataclass(frozen=True)
class Suite:
    """A named suite: tasks per family for each split, drawn with a fixed seed."""

    name: str
    description: str
    sizes: dict[str, int] = field(default_factory=dict)  # tasks per family, by split
    seed: int = 0
    fixed: tuple[Task, ...] = ()  # hand-written suites list their (test) tasks instead


SUITES: dict[str, Suite] = {
    "founding": Suite("founding", "the founding document's students' average-age example "
                      "(one test task)", {"train": 0, "validation": 0, "test": 1},
                      fixed=(FOUNDING_TASK,)),
    "synthetic-small": Suite("synthetic-small", "all synthetic families, 4 tasks per family "
                             "and split (a prefix of 'synthetic')",
                             {"train": 4, "validation": 4, "test": 4}, seed=2024),
    "synthetic": Suite("synthetic", "all synthetic families, difficulties 1-3 in turn",
                       {"train": 200, "validation": 20, "test": 25}, seed=2024),
}


def list_suites() -> list[str]:
    """Names of the built-in suites (details in :data:`SUITES`)."""
    return list(SUITES)


_RESERVED_FOR_TEST = frozenset({context_key(FOUNDING_TASK.context)})


def _stable_key(name: str) -> int:
    # zlib.crc32 is stable across processes, unlike hash() on str.
    return zlib.crc32(name.encode("utf-8"))


def _check_split(split: str, allow_all: bool = False) -> None:
    choices = SPLITS + (("all",) if allow_all else ())
    if split not in choices:
        raise TaskError(f'unknown split "{split}" (choose from {", ".join(choices)})')


def _family_tasks(
    suite: str, family: str, split: str, n: int, seed: int, difficulty: int | None
) -> list[Task]:
    """``n`` tasks of one family owned by ``split``, all with distinct contexts."""
    generate = check_family(family)
    seq = np.random.SeedSequence(seed, spawn_key=(_stable_key(split), _stable_key(family)))
    rng = np.random.default_rng(seq)
    tasks: list[Task] = []
    seen: set[str] = set()
    budget = 100 * n + 1000  # expected draws are 1.7-5 per task; this is far beyond
    for _ in range(budget):
        if len(tasks) == n:
            break
        level = difficulty or len(tasks) % 3 + 1  # cycle 1, 2, 3 for an even mix
        task = generate(rng, level)
        key = context_key(task.context)
        if key in seen or split_of(task.meta.get("split_key") or task.context) != split:
            continue
        if split != "test" and key in _RESERVED_FOR_TEST:
            continue
        seen.add(key)
        meta = {**task.meta, "split": split, "suite": suite, "seed": seed}
        tasks.append(replace(task, id=f"{suite}/{split}/{family}/{len(tasks):04d}", meta=meta))
    if len(tasks) < n:
        raise TaskError(f'family "{family}" produced only {len(tasks)} distinct {split} tasks '
                        f"of the {n} asked for (difficulty {difficulty})")
    return tasks


def make_suite(
    name: str = "synthetic",
    split: str = "test",
    n_per_family: int | None = None,
    families: Sequence[str] | None = None,
    difficulty: int | None = None,
    seed: int | None = None,
) -> list[Task]:
    """The tasks of suite ``name`` for ``split`` (``"all"`` = train, validation, then test).

    ``n_per_family``, ``families``, ``difficulty`` (1..3; default: cycle through all three) and
    ``seed`` override the suite's defaults. Splits stay disjoint whatever the overrides.
    Raises :class:`TaskError` for an unknown suite, split, family or difficulty.
    """
    suite = _get_suite(name)
    _check_split(split, allow_all=True)
    if split == "all":
        return [t for s in SPLITS for t in make_suite(name, s, n_per_family, families,
                                                      difficulty, seed)]
    chosen = list(dict.fromkeys(families)) if families is not None else list(FAMILIES)
    for family in chosen:
        check_family(family)
    if difficulty is not None:
        check_difficulty(difficulty)
    if n_per_family is not None and n_per_family < 0:
        raise TaskError(f"n_per_family must be >= 0, got {n_per_family}")
    if suite.fixed:
        return [t for t in suite.fixed if t.meta.get("split") == split and t.family in chosen
                and (difficulty is None or t.meta.get("difficulty") == difficulty)]
    n = suite.sizes.get(split, 0) if n_per_family is None else n_per_family
    seed = suite.seed if seed is None else seed
    return [t for family in chosen
            for t in _family_tasks(suite.name, family, split, n, seed, difficulty)]


def _get_suite(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise TaskError(f'unknown suite "{name}" (known: {", ".join(SUITES)})') from None


def task_file(spec: str | os.PathLike[str]) -> Path | None:
    """The path when ``spec`` names one task file (not a suite, a directory or reasoning-gym)."""
    text = os.fspath(spec)
    if (text in SUITES or text.startswith("reasoning_gym:") or is_text_spec(text)
            or not Path(text).is_file()):
        return None
    return Path(text)


def split_task_file(path: str | os.PathLike[str]) -> dict[str, list[Task]]:
    """A task file's tasks by split, each in file order (keys: :data:`SPLITS`).

    A task's split is its ``"split"`` field when it has one, else the split its context (or
    ``meta["split_key"]``) hashes into (:func:`split_of`: 60% train, 20% validation, 20% test),
    the rule the suites use, so a file of suite tasks keeps the suite's splits. Raises
    :class:`TaskFormatError` (``file:line``) for a ``"split"`` that is none of :data:`SPLITS`.
    """
    out: dict[str, list[Task]] = {split: [] for split in SPLITS}
    for index, task in enumerate(load_jsonl(path)):
        split = task.meta.get("split")
        if split is None:
            split = split_of(task.meta.get("split_key") or task.context)
        elif split not in out:
            raise TaskFormatError(f'"split" must be one of {", ".join(SPLITS)} (or absent: '
                                  f"split by a hash of the context), got {split!r}",
                                  f"{os.fspath(path)}:{_line_number(path, index)}")
        out[split].append(task)
    return out


def _line_number(path: str | os.PathLike[str], index: int) -> int:
    """The line of the ``index``-th task in a file (:func:`load_jsonl` skips blank lines)."""
    with open(path, "rb") as fh:
        lines = [n for n, raw in enumerate(fh, start=1) if raw.strip()]
    return lines[index]


def load_split(spec: str | os.PathLike[str], split: str) -> list[Task]:
    """The tasks of ``split`` only: :func:`load_tasks`, except that one task file is split by
    :func:`split_task_file`, so its train and test tasks never overlap. Raw text is refused: its
    tasks are cuts of one text, whose later contexts hold the earlier continuations."""
    if is_text_spec(os.fspath(spec)):
        raise TaskError(f"{os.fspath(spec)}: raw text has no train and test splits to keep apart; "
                        "train on it with train_rl.py --text FILE, which splits its passages "
                        "by a hash, or cut tasks into a .jsonl file with a \"split\" field")
    path = task_file(spec)
    if path is None:
        return load_tasks(spec, split)
    _check_split(split)
    return split_task_file(path)[split]


def load_tasks(spec: str | os.PathLike[str], split: str = "test") -> list[Task]:
    """Tasks from a suite name, a ``.jsonl`` file, or a directory holding ``SPLIT.jsonl``.

    A file is loaded whole (``split`` does not filter it; :func:`load_split` does); a directory
    written by ``latent-env tasks make --split all --out DIR`` is read as ``DIR/<split>.jsonl``.
    ``reasoning_gym:NAME`` builds tasks from a reasoning-gym dataset (optional dependency).
    Raw text is cut into tasks (:mod:`.textspec`): a ``.txt``/``.md`` file, or ``hf:PATH``, a
    local Hugging Face dataset read at ``split`` when it has splits, each optionally followed by
    ``?key=value&...`` (e.g. ``notes.txt?mode=random``). Every CLI's ``--tasks`` comes here.
    """
    text = os.fspath(spec)
    if text in SUITES:
        return make_suite(text, split)
    if text.startswith("reasoning_gym:"):
        from latent_env.tasks.reasoning_gym import tasks_from_reasoning_gym

        _check_split(split)
        size = SUITES["synthetic"].sizes[split]
        return tasks_from_reasoning_gym(text.partition(":")[2], size=size, split=split)
    if is_text_spec(text):
        return load_text_spec(text, split)
    path = Path(text)
    if path.is_dir():
        _check_split(split)
        return load_jsonl(path / f"{split}.jsonl")
    if path.is_file():
        return load_jsonl(path)
    if text.endswith(".jsonl"):
        raise TaskError(f"{text}: no such task file")
    raise TaskError(f'"{text}" is neither a suite ({", ".join(SUITES)}) nor a task file '
                    "(.jsonl, a directory of <split>.jsonl, .txt/.md text, hf:PATH)")
