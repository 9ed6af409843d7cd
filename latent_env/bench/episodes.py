"""Which tasks a benchmark runs, in which order.

Tasks are filtered by family, capped per family (``limit``), then interleaved family by family
(the first task of each family, then the second of each, …) so that cutting the list at
``episodes`` keeps the families balanced. Asking for more episodes than there are tasks walks the
list again from the start.
"""

from __future__ import annotations

from collections.abc import Sequence

from latent_env.tasks import Task, TaskError
from latent_env.tasks.task import family_of, group_by_family, interleave

__all__ = ["family_of", "interleave", "select_tasks"]


def select_tasks(
    tasks: Sequence[Task],
    families: Sequence[str] | None = None,
    limit: int | None = None,
    episodes: int | None = None,
    source: str = "the tasks",
) -> list[Task]:
    """The tasks to run, one per episode (see the module docstring).

    Raises :class:`TaskError` for a family with no tasks in ``source``, a non-positive
    ``limit``/``episodes``, or an empty selection.
    """
    if limit is not None and limit < 1:
        raise TaskError(f"--limit must be at least 1, got {limit}")
    if episodes is not None and episodes < 1:
        raise TaskError(f"--episodes must be at least 1, got {episodes}")
    by_family = group_by_family(tasks)
    if families:
        missing = [f for f in families if f not in by_family]
        if missing:
            known = ", ".join(by_family) or "none"
            raise TaskError(f'no tasks of family "{missing[0]}" in {source} (families: {known})')
        by_family = {f: by_family[f] for f in dict.fromkeys(families)}
    if limit is not None:
        by_family = {f: group[:limit] for f, group in by_family.items()}
    ordered = interleave(list(by_family.values()))
    if not ordered:
        raise TaskError(f"{source} holds no tasks to run")
    if episodes is None:
        return ordered
    return [ordered[i % len(ordered)] for i in range(episodes)]

