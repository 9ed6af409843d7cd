"""Families ``sequence`` (next term of a pattern) and ``trend`` (linear extrapolation)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from latent_env.tasks.families._common import (
    MONTHS,
    NAMES,
    chance,
    make_task,
    pick,
    program,
    pronoun,
    randint,
)
from latent_env.tasks.task import Task


def _terms(rng: np.random.Generator, difficulty: int) -> tuple[str, list[int]]:
    """A kind of sequence and its shown terms plus the next one (the last element)."""
    shown = randint(rng, 4, 5) if difficulty == 1 else randint(rng, 4, 6)
    kinds = {1: ("arithmetic",), 2: ("arithmetic", "geometric"),
             3: ("geometric", "quadratic", "fibonacci")}[difficulty]
    kind = pick(rng, kinds)
    n = shown + 1
    if kind == "arithmetic":
        start = randint(rng, *((1, 20), (-30, 200))[min(difficulty, 2) - 1])
        step = randint(rng, 1, 9) if difficulty == 1 else pick(rng, (-1, 1)) * randint(rng, 3, 25)
        return kind, [start + i * step for i in range(n)]
    if kind == "geometric":
        ratio = randint(rng, 2, 3 if difficulty == 2 else 5)
        start = randint(rng, 1, 9)
        return kind, [start * ratio**i for i in range(n)]
    if kind == "quadratic":
        a, b, c = randint(rng, 1, 4), randint(rng, 0, 6), randint(rng, -5, 10)
        return kind, [a * i * i + b * i + c for i in range(1, n + 1)]
    terms = [randint(rng, 1, 5), randint(rng, 2, 9)]
    while len(terms) < n + 1:
        terms.append(terms[-1] + terms[-2])
    return kind, terms[1:]


def _sequence_program(kind: str, var: str, shown: list[int]) -> str:
    """The gold program: find the rule from the shown terms and print the next one."""
    lines = [f"{var} = {shown}"]
    if kind == "arithmetic":
        lines += [f"step = {var}[1] - {var}[0]", f"print({var}[-1] + step)"]
    elif kind == "geometric":
        lines += [f"ratio = {var}[1] // {var}[0]", f"print({var}[-1] * ratio)"]
    elif kind == "quadratic":
        lines += [f"diffs = [b - a for a, b in zip({var}, {var}[1:])]",
                  f"print({var}[-1] + diffs[-1] + (diffs[-1] - diffs[-2]))"]
    else:
        lines.append(f"print({var}[-1] + {var}[-2])")
    return program(*lines)


def _listing(values: list[int], label: str, unit: str = "") -> str:
    """"5 dollars in week 1, 8 in week 2 and 11 in week 3"."""
    parts = [f"{values[0]}{unit} in {label} 1"]
    parts += [f"{v} in {label} {i}" for i, v in enumerate(values[1:], start=2)]
    return ", ".join(parts[:-1]) + f" and {parts[-1]}"


def sequence(rng: np.random.Generator, difficulty: int) -> Task:
    """Next term of arithmetic, geometric, quadratic or Fibonacci-like sequences in text."""
    kind, terms = _terms(rng, difficulty)
    shown, answer = terms[:-1], str(terms[-1])
    growing = all(0 < a < b for a, b in zip(terms, terms[1:], strict=False))
    templates = ("next_in", "raw", "qa") + (("savings", "plant") if growing else ())
    template = pick(rng, templates)
    listed = ", ".join(map(str, shown))
    var, tail = "terms", "."
    if template == "next_in":
        context = f"The next number in the sequence {listed} is"
    elif template == "raw":
        context = f"{pick(rng, ('Keep counting', 'Continue the pattern', 'Pattern'))}: {listed},"
        tail = ","
    elif template == "qa":
        context = f"Q: What number comes next in {listed}?\nA:"
        tail = ""
    elif template == "savings":
        name = pick(rng, NAMES)
        context = (f"{name} saves a little more each week: {_listing(shown, 'week', ' dollars')}. "
                   f"Keeping the same pattern, in week {len(terms)} {pronoun(name)} will save")
        var, tail = "savings", " dollars."
    else:
        context = (f"A seedling measured {_listing(shown, 'day', ' mm')}. If it keeps growing the "
                   f"same way, on day {len(terms)} it will measure")
        var, tail = "heights", " mm."
    code = _sequence_program(kind, var, shown)
    return make_task("sequence", template, difficulty, context, answer, code, tail)


@dataclass(frozen=True)
class _Series:
    """A quantity that grows roughly linearly over time."""

    noun: str  # column title and variable name
    unit: str  # the word after the predicted number
    prose: str  # how one observation is written: "{v} visitors in {t}"
    expect: str  # sentence that ends right before the prediction; "{when}" is the target
    base: tuple[int, int]


_SERIES = (
    _Series("visitors", "visitors", "{v} visitors in {t}",
            "Following the straight-line trend, in {when} the museum can expect about",
            (800, 5000)),
    _Series("residents", "residents", "{v} residents in {t}",
            "If the trend continues, the town's population in {when} will be about",
            (2000, 9000)),
    _Series("rides", "rides", "{v} rides in {t}",
            "Extrapolating the linear trend, in {when} the bike-share scheme should log about",
            (300, 3000)),
    _Series("loaves", "loaves", "{v} loaves in {t}",
            "If sales follow the same straight line, in {when} the bakery will sell about",
            (200, 2000)),
    _Series("subscribers", "subscribers", "{v} subscribers in {t}",
            "On a linear fit, in {when} the newsletter should have about", (100, 4000)),
)


def _trend_values(
    rng: np.random.Generator, difficulty: int, series: _Series, xs: list[int], target: int
) -> tuple[list[int], int]:
    """Noisy linear values and the rounded least-squares prediction at ``target``."""
    while True:  # a few draws at most: only predictions too close to a .5 tie are redrawn
        base = randint(rng, *series.base)
        slope = randint(rng, 5, 20 + 40 * difficulty) * (1 if difficulty < 3 or chance(rng, 0.8)
                                                         else -1)
        noise = max(1, abs(slope) * (1, 3, 5)[difficulty - 1] // 10)
        ys = [base + slope * (x - xs[0]) + randint(rng, -noise, noise) for x in xs]
        if min(ys) <= 0:
            continue
        prediction = _least_squares(xs, ys, target)
        # Keep clear of .5 so float round-off in any solver cannot flip the rounding.
        if abs(prediction - int(prediction) - Fraction(1, 2)) > Fraction(1, 20) and prediction > 0:
            return ys, round(prediction)


def _least_squares(xs: list[int], ys: list[int], target: int) -> Fraction:
    """Exact ordinary least-squares prediction of a straight line at ``target``."""
    n = len(xs)
    mx, my = Fraction(sum(xs), n), Fraction(sum(ys), n)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    return my + sxy / sxx * (target - mx)


def _trend_program(
    axis: str, xs: list[int], var: str, ys: list[int], target: int, numpy: bool
) -> str:
    """Fit a line with numpy.polyfit or statistics.linear_regression and print the forecast."""
    if numpy:
        fit = ["import numpy as np", "", f"{axis} = {xs}", f"{var} = {ys}",
               f"slope, intercept = np.polyfit({axis}, {var}, 1)"]
    else:
        fit = ["from statistics import linear_regression", "", f"{axis} = {xs}", f"{var} = {ys}",
               f"slope, intercept = linear_regression({axis}, {var})"]
    return program(*fit, f"print(round(slope * {target} + intercept))")


def trend(rng: np.random.Generator, difficulty: int) -> Task:
    """Extrapolate a table of yearly (or monthly) values with a linear trend plus noise."""
    series = pick(rng, _SERIES)
    points = {1: 4, 2: randint(rng, 5, 6), 3: randint(rng, 6, 8)}[difficulty]
    ahead = {1: 1, 2: randint(rng, 1, 2), 3: randint(rng, 1, 3)}[difficulty]
    monthly = chance(rng, 0.3)
    # Months are numbered 1..12 in the program and named in the text; years are themselves.
    first = randint(rng, 1, 12 - points - ahead + 1) if monthly else randint(rng, 2000, 2018)
    xs = list(range(first, first + points))
    target = xs[-1] + ahead

    def stamp(x: int) -> str:
        return MONTHS[x - 1] if monthly else str(x)

    ys, answer = _trend_values(rng, difficulty, series, xs, target)
    when = stamp(target)
    template = pick(rng, ("table", "prose", "listing", "qa"))
    tail = f" {series.unit}."
    listed = ", ".join(f"{stamp(x)}: {y}" for x, y in zip(xs, ys, strict=True))
    if template == "table":
        rows = "\n".join(f"{stamp(x)} | {y}" for x, y in zip(xs, ys, strict=True))
        head = "Month" if monthly else "Year"
        context = (f"{head} | {series.noun.capitalize()}\n{rows}\n"
                   f"{series.expect.format(when=when)}")
    elif template == "prose":
        obs = [series.prose.format(v=y, t=stamp(x)) for x, y in zip(xs, ys, strict=True)]
        context = (f"The records show {', '.join(obs[:-1])} and {obs[-1]}. "
                   f"{series.expect.format(when=when)}")
    elif template == "listing":
        period = "month" if monthly else "year"
        context = f"{series.noun.capitalize()} by {period}: {listed}. Linear projection for {when}:"
        tail = ""
    else:
        context = (f"Question: The number of {series.noun} was {listed}. Fitting a straight line, "
                   f"about how many {series.noun} do you expect in {when}?\nAnswer: About")
    axis = "months" if monthly else "years"
    code = _trend_program(axis, xs, series.noun, ys, target, numpy=chance(rng, 0.6))
    return make_task("trend", template, difficulty, context, str(answer), code, tail)
