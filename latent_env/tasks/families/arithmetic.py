"""Families ``average`` and ``sum_diff``: means of a few values, and running totals in stories."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from latent_env.tasks.families._common import (
    NAMES,
    chance,
    fmt_num,
    ident,
    join_list,
    make_task,
    pick,
    possessive,
    program,
    pronoun,
    randint,
    sample,
)
from latent_env.tasks.task import Task


@dataclass(frozen=True)
class _Theme:
    """One kind of averaged quantity: how a value is stated and how the average is asked."""

    group: str  # "students"
    stmt: str  # "{name} is {v} years old"
    var: str  # "age": the Python variable stem and the noun of the question
    many: str  # "ages": the name of a dict holding everyone's values
    leads: tuple[str, ...]  # sentence openings that end right before the average
    tail: str  # words after the number: " years old."
    header: str  # title of the list-style template
    ranges: tuple[tuple[int, int], ...]  # value range per difficulty 1..3


_THEMES: tuple[_Theme, ...] = (
    _Theme("students", "{name} is {v} years old", "age", "ages",
           ("Their average age is", "On average, the students are", "The mean age of the group is"),
           " years old.", "Ages", ((10, 20), (8, 40), (18, 75))),
    _Theme("players", "{name} scored {v} points", "score", "scores",
           ("On average, each player scored", "Their average score was", "The mean score is"),
           " points.", "Points scored", ((5, 30), (10, 90), (40, 400))),
    _Theme("friends", "{name} is {v} cm tall", "height", "heights",
           ("Their average height is", "On average, the friends are", "The mean height is"),
           " cm.", "Heights in cm", ((150, 190), (120, 200), (100, 210))),
    _Theme("runners", "{name} ran {v} km", "distance", "distances",
           ("On average, each runner covered", "The average distance was", "The mean distance is"),
           " km.", "Distance run (km)", ((3, 15), (5, 45), (10, 120))),
    _Theme("members of the book club", "{name} read {v} books", "books", "books",
           ("On average, each member read", "The average number of books read was",
            "The club's mean is"),
           " books.", "Books read this year", ((2, 12), (1, 40), (5, 90))),
    _Theme("cousins", "{name} saved {v} dollars", "savings", "savings",
           ("On average, each cousin saved", "Their average savings came to",
            "The mean amount saved is"),
           " dollars.", "Savings in dollars", ((10, 50), (20, 300), (100, 2000))),
)


def _average_values(rng: np.random.Generator, n: int, lo: int, hi: int, decimal: bool) -> list[int]:
    """``n`` values in ``[lo, hi]`` whose mean is an integer, or has exactly one decimal."""
    values = [randint(rng, lo, hi) for _ in range(n)]
    rest = sum(values[:-1])

    def fits(last: int) -> bool:
        total = rest + last
        if decimal:
            return total % n != 0 and (10 * total) % n == 0
        return total % n == 0

    # Nudge the last value to the nearest one that makes the mean come out as wanted; every
    # range above spans more than n values, so a fitting one always exists.
    for delta in range(hi - lo + 1):
        for last in (values[-1] + delta, values[-1] - delta):
            if lo <= last <= hi and fits(last):
                values[-1] = last
                return values
    raise AssertionError(f"no value in [{lo}, {hi}] gives the requested mean")


def _average_program(
    names: list[str], values: list[int], theme: _Theme, decimal: bool, named: bool
) -> str:
    """Either one variable per person (as in the founding example) or a dict of values."""
    var, many = theme.var, theme.many
    if named:
        lines = ["from statistics import mean", ""]
        lines += [f"{ident(n)} = {v}" for n, v in zip(names, values, strict=True)]
        lines.append(f"average_{var} = mean([{', '.join(ident(n) for n in names)}])")
        shown = f"round(average_{var}, 1)" if decimal else f"average_{var}"
        return program(*lines, f"print({shown})")
    pairs = ", ".join(f'"{n}": {v}' for n, v in zip(names, values, strict=True))
    return program(
        f"{many} = {{{pairs}}}",
        f"average = sum({many}.values()) / len({many})",
        f"print({'round(average, 1)' if decimal else 'round(average)'})",
    )


def average(rng: np.random.Generator, difficulty: int) -> Task:
    """Average of a few people's ages, scores, heights, ... ("Their average age is" -> " 16")."""
    theme = pick(rng, _THEMES)
    n = {1: 3, 2: randint(rng, 4, 5), 3: randint(rng, 5, 6)}[difficulty]
    lo, hi = theme.ranges[difficulty - 1]
    decimal = difficulty == 3 and chance(rng)
    names = sample(rng, NAMES, n)
    values = _average_values(rng, n, lo, hi, decimal)
    answer = fmt_num(Fraction(sum(values), n))
    said = [theme.stmt.format(name=a, v=v) for a, v in zip(names, values, strict=True)]
    stmts = join_list(rng, said)
    lead = pick(rng, theme.leads)
    template = pick(rng, ("intro", "list", "qa", "table", "story"))
    tail = theme.tail
    if template == "intro":
        context = f"The names of the {theme.group} are {join_list(rng, names)}. {stmts}. {lead}"
    elif template == "list":
        context = f"{stmts}. {lead}"
    elif template == "qa":
        noun = theme.var if theme.var != "books" else "number of books"
        context = f"Question: {stmts}. What is the average {noun}?\nAnswer:"
        tail = ""
    elif template == "table":
        rows = "\n".join(f"- {a}: {v}" for a, v in zip(names, values, strict=True))
        context = f"{theme.header}:\n{rows}\nAverage:"
        tail = ""
    else:
        context = (f"Last month we compared notes with {n} {theme.group}. {stmts}. "
                   f"Adding it all up and dividing by {n}, {lead[0].lower()}{lead[1:]}")
    code = _average_program(names, values, theme, decimal, named=chance(rng))
    return make_task("average", template, difficulty, context, answer, code, tail)


_OBJECTS: tuple[tuple[str, str], ...] = (
    ("apple", "apples"), ("marble", "marbles"), ("sticker", "stickers"), ("cookie", "cookies"),
    ("stamp", "stamps"), ("seashell", "seashells"), ("trading card", "trading cards"),
    ("coin", "coins"), ("pencil", "pencils"), ("balloon", "balloons"),
)
_GAINS = ("bought {n} more", "found {n} more", "got {n} more from {other}",
          "picked up {n} more", "received {n} as a gift")
_LOSSES = ("gave {n} to {other}", "lost {n}", "sold {n}", "traded away {n}", "gave away {n}")
_SIZES = {1: (5, 20, 1, 9), 2: (20, 100, 5, 40), 3: (100, 999, 10, 300)}


def _story_ops(rng: np.random.Generator, difficulty: int, start: int) -> list[int]:
    """Signed changes for a story; the running count never drops below one."""
    n_ops = {1: randint(rng, 1, 2), 2: 3, 3: randint(rng, 4, 5)}[difficulty]
    _, _, lo, hi = _SIZES[difficulty]
    ops, count = [], start
    for _ in range(n_ops):
        amount = randint(rng, lo, hi)
        if chance(rng) and amount < count:
            amount = -amount
        ops.append(amount)
        count += amount
    return ops


def _phrase(rng: np.random.Generator, amount: int, name: str) -> str:
    """One step of a story, e.g. "gave 8 to Tom" (someone other than ``name``)."""
    pattern = pick(rng, _GAINS if amount > 0 else _LOSSES)
    other = pick(rng, [n for n in NAMES if n != name]) if "{other}" in pattern else ""
    return pattern.format(n=abs(amount), other=other)


def _running_total(rng: np.random.Generator, difficulty: int, template: str, plural: str) -> Task:
    """Story, shop and Q/A templates: a start value changed by several steps."""
    name = pick(rng, NAMES)
    lo, hi, _, _ = _SIZES[difficulty]
    start = randint(rng, lo, hi)
    ops = _story_ops(rng, difficulty, start)
    var = ident(plural)
    code = [f"{var} = {start}"]
    code += [f"{var} {'+' if op > 0 else '-'}= {abs(op)}" for op in ops]
    code.append(f"print({var})")
    answer = str(start + sum(ops))
    if template == "shop":
        steps = [f"sold {-op}" if op < 0 else f"took a delivery of {op} more" for op in ops]
        context = (f"A small shop opened on Monday with {start} {plural} in stock. During the week "
                   f"it {join_list(rng, steps)}. At closing time on Friday the shop had")
        return make_task("sum_diff", template, difficulty, context, answer, program(*code),
                         f" {plural} left.")
    steps = [_phrase(rng, op, name) for op in ops]
    he = pronoun(name)
    if template == "qa":
        context = (f"Question: {name} has {start} {plural}. {he.capitalize()} "
                   f"{join_list(rng, steps)}. How many {plural} does {he} have now?\nAnswer:")
        tail = ""
    else:
        context = (f"{name} had {start} {plural} in {possessive(name)} collection. Then "
                   f"{he} {join_list(rng, steps)}. Now {he} has")
        tail = f" {plural}."
    return make_task("sum_diff", template, difficulty, context, answer, program(*code), tail)


def sum_diff(rng: np.random.Generator, difficulty: int) -> Task:
    """Sums and differences over a story: things bought, given away, compared, put together."""
    template = pick(rng, ("story", "qa", "shop", "compare", "together"))
    _, plural = pick(rng, _OBJECTS)
    if template in ("story", "qa", "shop"):
        return _running_total(rng, difficulty, template, plural)
    lo, hi, _, _ = _SIZES[difficulty]
    if template == "compare":
        a, b = sample(rng, NAMES, 2)
        x, y = sorted(sample(rng, range(lo, hi + 1), 2), reverse=True)
        context = (f"Over the summer {a} collected {x} {plural} and {b} collected {y}. "
                   f"That means {a} collected")
        code = program(f"{ident(a)} = {x}", f"{ident(b)} = {y}",
                       f"print({ident(a)} - {ident(b)})")
        return make_task("sum_diff", template, difficulty, context, str(x - y), code, " more.")
    k = {1: 2, 2: 3, 3: randint(rng, 4, 5)}[difficulty]
    people = sample(rng, NAMES, k)
    counts = [randint(rng, lo, hi) for _ in people]
    parts = [f"{people[0]} has {counts[0]} {plural}"]
    parts += [f"{p} has {c}" for p, c in zip(people[1:], counts[1:], strict=True)]
    context = f"{join_list(rng, parts)}. Together they have"
    code = program(*[f"{ident(p)} = {c}" for p, c in zip(people, counts, strict=True)],
                   f"print({' + '.join(ident(p) for p in people)})")
    return make_task("sum_diff", template, difficulty, context, str(sum(counts)), code,
                     f" {plural}.")
