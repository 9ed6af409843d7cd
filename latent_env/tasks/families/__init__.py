"""Synthetic task families: seeded generators of short word problems in running text.

Each family is a function ``generate(rng: numpy.random.Generator, difficulty: int) -> Task``
(difficulty 1..3 grows number sizes, item counts and steps). A task's continuation is
``" " + answer`` plus at most a couple of words; its ``program`` is gold Python that prints
exactly the answer; ``meta["template"]`` names the surface template used.
The corpus families ``prose`` and ``text_numbers`` (:mod:`.corpus_positions`) are real text
instead: longer continuations, no gold, and the empty latent expected.
The reasoning families ``order`` and ``where_now`` (:mod:`.relations`) have no program;
their gold is ``reason`` text that combines facts spread through the story.

:data:`EXPECTED_KINDS` states, for every family, which kinds of latent data
(:data:`latent_env.latent.LATENT_KINDS`) are expected to help its predictions. The claim is
checked, not assumed: ``latent-env bench`` measures each kind's gold with its "oracle by kind"
(``benchmarks/RESULTS.md`` records the measurement).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from latent_env.tasks.families.arithmetic import average, sum_diff
from latent_env.tasks.families.corpus_positions import prose, text_numbers
from latent_env.tasks.families.counting import count_items
from latent_env.tasks.families.dates import date_arith
from latent_env.tasks.families.patterns import sequence, trend
from latent_env.tasks.families.relations import order, where_now
from latent_env.tasks.families.units import unit_convert
from latent_env.tasks.families.word_problems import multi_step, percent
from latent_env.tasks.task import Task, TaskError

Generator = Callable[[np.random.Generator, int], Task]

DIFFICULTIES: tuple[int, ...] = (1, 2, 3)

FAMILIES: dict[str, Generator] = {
    "average": average,
    "sum_diff": sum_diff,
    "multi_step": multi_step,
    "percent": percent,
    "unit_convert": unit_convert,
    "date_arith": date_arith,
    "count_items": count_items,
    "sequence": sequence,
    "trend": trend,
    "prose": prose,
    "text_numbers": text_numbers,
    "order": order,
    "where_now": where_now,
}


# Which latent kinds are expected to help each family (see the module docstring).
EXPECTED_KINDS: dict[str, tuple[str, ...]] = {
    "average": ("code",),
    "sum_diff": ("code",),
    "multi_step": ("code",),
    "percent": ("code",),
    "unit_convert": ("code",),
    "date_arith": ("code",),
    "count_items": ("code",),
    "sequence": ("code",),
    "trend": ("code",),
    "prose": ("empty",),
    "text_numbers": ("empty",),
    "order": ("reasoning",),
    "where_now": ("reasoning",),
}


def family_description(name: str) -> str:
    """First line of a family generator's docstring."""
    doc = FAMILIES[name].__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def check_family(name: str) -> Generator:
    """The generator for ``name``; :class:`TaskError` listing the known names otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        known = ", ".join(FAMILIES)
        raise TaskError(f'unknown family "{name}" (known: {known})') from None


def check_difficulty(difficulty: int) -> int:
    """``difficulty`` itself when it is 1, 2 or 3; :class:`TaskError` otherwise."""
    if isinstance(difficulty, bool) or difficulty not in DIFFICULTIES:
        raise TaskError(f"difficulty must be 1, 2 or 3, got {difficulty!r}")
    return int(difficulty)


def generate_task(family: str, rng: np.random.Generator, difficulty: int = 1) -> Task:
    """One task of ``family`` drawn from ``rng`` at ``difficulty`` (1..3)."""
    return check_family(family)(rng, check_difficulty(difficulty))


__all__ = [
    "DIFFICULTIES", "EXPECTED_KINDS", "FAMILIES", "Generator", "check_difficulty", "check_family",
    "family_description", "generate_task",
]
