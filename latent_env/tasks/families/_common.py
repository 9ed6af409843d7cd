"""Helpers shared by the synthetic task families.

Every family is a function ``generate(rng, difficulty) -> Task``. The helpers here keep the
families short: drawing from a ``numpy.random.Generator`` deterministically, naming things,
joining lists the way people write them, and assembling the final :class:`Task`.
"""

from __future__ import annotations

import hashlib
import keyword
import re
from collections.abc import Sequence
from fractions import Fraction
from typing import TypeVar

import numpy as np

from latent_env.tasks.task import Task

T = TypeVar("T")

# Plain ASCII first names from many cultures; all are valid Python identifiers once lowercased
# and none shadows a builtin, so gold programs can use them as variable names.
NAMES: tuple[str, ...] = (
    "John", "Mary", "Peter", "Aisha", "Carlos", "Mei", "Olga", "Raj", "Fatima", "Liam",
    "Sofia", "Kenji", "Amara", "Lucas", "Priya", "Noah", "Elena", "Omar", "Hannah", "Diego",
    "Yuki", "Grace", "Ivan", "Zoe", "Tariq", "Ingrid", "Mateo", "Leila", "Samuel", "Nadia",
    "Tom", "Anna", "Kwame", "Lina", "Pablo", "Chloe", "Arjun", "Maya", "Felix", "Rosa",
    "Hugo", "Nina", "Emeka", "Clara", "Jonas", "Sara", "Ali", "Julia", "Marco", "Ada",
)

# Pronouns keyed by name so stories stay grammatical; unlisted names use "they".
_SHE = {
    "Mary", "Aisha", "Mei", "Olga", "Fatima", "Sofia", "Amara", "Priya", "Elena", "Hannah",
    "Yuki", "Grace", "Zoe", "Ingrid", "Leila", "Nadia", "Anna", "Lina", "Chloe", "Maya",
    "Rosa", "Nina", "Clara", "Sara", "Julia", "Ada",
}

MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)

_SMALL_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve",
)


def randint(rng: np.random.Generator, lo: int, hi: int) -> int:
    """A uniform integer in ``[lo, hi]`` (both ends included), as a plain ``int``."""
    return int(rng.integers(lo, hi + 1))


def pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    """One element of ``items``, chosen uniformly."""
    return items[int(rng.integers(len(items)))]


def sample(rng: np.random.Generator, items: Sequence[T], k: int) -> list[T]:
    """``k`` distinct elements of ``items`` in random order."""
    return [items[int(i)] for i in rng.choice(len(items), size=k, replace=False)]


def chance(rng: np.random.Generator, p: float = 0.5) -> bool:
    """True with probability ``p``."""
    return bool(rng.random() < p)


def pronoun(name: str) -> str:
    """Subject pronoun for a name from :data:`NAMES`."""
    return "she" if name in _SHE else "he"


def possessive(name: str) -> str:
    """Possessive pronoun for a name from :data:`NAMES`."""
    return "her" if name in _SHE else "his"


def number_word(n: int) -> str:
    """``"two"`` for 2 … ``"twelve"`` for 12; larger numbers stay digits."""
    return _SMALL_WORDS[n] if 0 <= n < len(_SMALL_WORDS) else str(n)


def join_list(rng: np.random.Generator, items: Sequence[str]) -> str:
    """Join as people write lists: "A, B, and C" or "A, B and C" (the comma style varies)."""
    items = list(items)
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    comma = "," if chance(rng) else ""
    return ", ".join(items[:-1]) + f"{comma} and {items[-1]}"


def ident(text: str) -> str:
    """A readable Python identifier made from ``text`` ("water bottle" -> "water_bottle")."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", text.strip().lower()).strip("_") or "x"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"n_{name}"
    return name


def fmt_num(x: Fraction | int) -> str:
    """An exact value as the text shows it: "16", "15.5" (at most one decimal, never "16.0")."""
    x = Fraction(x)
    if x.denominator == 1:
        return str(x.numerator)
    tenths = x * 10
    if tenths.denominator != 1:
        raise ValueError(f"{x} needs more than one decimal")
    sign = "-" if tenths < 0 else ""
    whole, digit = divmod(abs(tenths.numerator), 10)
    return f"{sign}{whole}.{digit}"


def program(*lines: str) -> str:
    """Join program lines (already indented) into one source string."""
    return "\n".join(lines)


def make_task(
    family: str,
    template: str,
    difficulty: int,
    context: str,
    answer: str,
    program_src: str,
    tail: str = "",
) -> Task:
    """Assemble a family's task; the continuation is ``" " + answer + tail``.

    The id is a placeholder derived from the context (suites replace it with their own
    ``suite/split/family/NNNN`` ids); ``meta`` records the template so variety can be measured.
    """
    digest = hashlib.sha1(context.encode("utf-8")).hexdigest()[:12]
    return Task(
        id=f"{family}/{digest}",
        context=context,
        continuation=f" {answer}{tail}",
        answer=answer,
        program=program_src,
        family=family,
        meta={"template": f"{family}/{template}", "difficulty": difficulty},
    )
