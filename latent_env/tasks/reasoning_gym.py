"""Optional adapter: reasoning-gym datasets as context/continuation tasks.

``pip install 'latent-env[reasoning-gym]'`` (or ``pip install reasoning-gym``) provides the
package; it is imported only when this adapter is used. Each item
``{"question", "answer", "metadata"}`` of ``reasoning_gym.create_dataset(name, size=, seed=)``
becomes a task with context ``question + " The answer is"`` and continuation ``" " + answer``.
With ``split`` given, only items whose context belongs to that split (see
:func:`latent_env.tasks.suites.split_of`) are kept, so train and test never share a question.
"""

from __future__ import annotations

import importlib
import math
import zlib
from types import ModuleType
from typing import Any

import numpy as np

from latent_env.tasks.splits import SPLITS, context_key, split_of
from latent_env.tasks.task import Task, TaskError

INSTALL_HINT = ("the reasoning-gym adapter needs the optional 'reasoning-gym' package: "
                "pip install 'latent-env[reasoning-gym]' (or: pip install reasoning-gym)")


def _import_reasoning_gym() -> ModuleType:
    try:
        return importlib.import_module("reasoning_gym")
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc


def _json_safe(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps`` accepts (tuples become lists, odd types str)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_json_safe(v) for v in value), key=repr)
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def item_to_task(
    item: dict[str, Any],
    task_id: str,
    dataset: str,
    answer_prefix: str = " The answer is",
    extra_meta: dict[str, Any] | None = None,
) -> Task | None:
    """One reasoning-gym item as a task; ``None`` when it has no usable answer."""
    answer = item.get("answer")
    answer = "" if answer is None else str(answer).strip()
    question = str(item.get("question", "")).rstrip()
    if not answer or not question:
        return None
    return Task(
        id=task_id,
        context=question + answer_prefix,
        continuation=" " + answer,
        answer=answer,
        family=f"reasoning_gym/{dataset}",
        meta={"source": "reasoning_gym", "dataset": dataset,
              "rg_metadata": _json_safe(item.get("metadata", {})), **(extra_meta or {})},
    )


def _create(rg: ModuleType, name: str, size: int, seed: int, config: dict[str, Any]) -> Any:
    try:
        return rg.create_dataset(name, size=size, seed=seed, **config)
    except (KeyError, ValueError, TypeError) as exc:
        raise TaskError(f'reasoning-gym dataset "{name}": {exc}') from None


def tasks_from_reasoning_gym(
    name: str,
    size: int = 25,
    seed: int = 0,
    split: str | None = None,
    answer_prefix: str = " The answer is",
    id_prefix: str | None = None,
    **config: Any,
) -> list[Task]:
    """``size`` tasks from reasoning-gym dataset ``name`` (extra keywords configure it).

    Without ``split`` this is the dataset as generated with ``seed``. With ``split`` in
    train/validation/test, items are drawn in batches from split-specific seeds and only those
    owned by the split are kept (distinct questions). Ids are ``{id_prefix}/NNNN``.
    """
    if split is not None and split not in SPLITS:
        raise TaskError(f'unknown split "{split}" (choose from {", ".join(SPLITS)})')
    rg = _import_reasoning_gym()
    prefix = id_prefix or f"reasoning_gym/{name}" + (f"/{split}" if split else "")
    tasks: list[Task] = []
    seen: set[str] = set()
    rounds = 1 if split is None else 20
    for r in range(rounds):
        batch_seed = seed
        if split is not None:
            # A seed per (split, round): the split's stream never replays another split's.
            seq = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(split.encode()), r))
            batch_seed = int(seq.generate_state(1)[0])
        batch = size if split is None else 5 * size + 10
        for i, item in enumerate(_create(rg, name, batch, batch_seed, config)):
            extra = {"seed": batch_seed, "index": i} | ({"split": split} if split else {})
            task = item_to_task(dict(item), f"{prefix}/{len(tasks):04d}", name, answer_prefix,
                                extra)
            if task is None:
                continue
            key = context_key(task.context)
            if split is not None and (key in seen or split_of(task.context) != split):
                continue
            seen.add(key)
            tasks.append(task)
            if len(tasks) == size:
                return tasks
    return tasks
