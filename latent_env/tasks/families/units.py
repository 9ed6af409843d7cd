"""Family ``unit_convert``: exact conversions between units (km/m, hours/minutes, kg/g, ...)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latent_env.tasks.families._common import NAMES, chance, make_task, pick, program, randint
from latent_env.tasks.task import Task


@dataclass(frozen=True)
class _Pair:
    """A big unit and a small unit with an exact integer factor between them."""

    big: str  # singular: "kilometer"
    bigs: str  # plural: "kilometers"
    small: str
    smalls: str
    factor: int
    subjects: tuple[str, ...]  # sentences that state a quantity "{q}"; "{name}" is optional
    decimals: bool = True  # whether "2.5 big units" reads naturally (not for dollars)


_PAIRS: tuple[_Pair, ...] = (
    _Pair("kilometer", "kilometers", "meter", "meters", 1000,
          ("The hiking trail is {q} long", "{name} cycled {q} to work")),
    _Pair("meter", "meters", "centimeter", "centimeters", 100,
          ("The rope is {q} long", "The shelf measures {q} across")),
    _Pair("hour", "hours", "minute", "minutes", 60,
          ("The flight took {q}", "{name} worked for {q} on Saturday")),
    _Pair("minute", "minutes", "second", "seconds", 60,
          ("The song lasts {q}", "{name} held the plank for {q}")),
    _Pair("day", "days", "hour", "hours", 24,
          ("The festival lasted {q}", "The power was out for {q}")),
    _Pair("week", "weeks", "day", "days", 7,
          ("The course runs for {q}", "{name} stayed with friends for {q}")),
    _Pair("kilogram", "kilograms", "gram", "grams", 1000,
          ("The suitcase weighs {q}", "The bag holds {q} of rice")),
    _Pair("foot", "feet", "inch", "inches", 12,
          ("The fence is {q} tall", "The boat is {q} long")),
    _Pair("yard", "yards", "foot", "feet", 3,
          ("The garden path is {q} long", "{name} bought {q} of fabric")),
    _Pair("liter", "liters", "milliliter", "milliliters", 1000,
          ("The tank holds {q} of water", "{name} drank {q} of juice")),
    _Pair("dollar", "dollars", "cent", "cents", 100,
          ("{name} has {q} in a piggy bank", "The ticket costs {q}"), decimals=False),
    _Pair("gallon", "gallons", "quart", "quarts", 4,
          ("The aquarium holds {q}", "The pot of soup holds {q}")),
    _Pair("pound", "pounds", "ounce", "ounces", 16,
          ("The turkey weighs {q}", "The box of books weighs {q}")),
    _Pair("year", "years", "month", "months", 12,
          ("{name} lived abroad for {q}", "The lease ran for {q}")),
)

# Two-step chains for difficulty 3, as pairs whose factor is the product of two steps.
_CHAINS: tuple[tuple[_Pair, tuple[int, int]], ...] = (
    (_Pair("hour", "hours", "second", "seconds", 3600,
           ("The race lasted {q}", "{name} practised the piano for {q}")), (60, 60)),
    (_Pair("day", "days", "minute", "minutes", 1440,
           ("The conference lasted {q}", "The storm went on for {q}")), (24, 60)),
    (_Pair("kilometer", "kilometers", "centimeter", "centimeters", 100000,
           ("The cable is {q} long", "The canal runs for {q}")), (1000, 100)),
    (_Pair("week", "weeks", "hour", "hours", 168,
           ("The project took {q}", "{name} was on holiday for {q}")), (7, 24)),
)


def _q(value: str, unit: str, units: str) -> str:
    """"1 hour" / "3 hours": the quantity with the unit in the right number."""
    return f"{value} {unit if value == '1' else units}"


def _phrase(rng: np.random.Generator, pair: _Pair, quantity: str, target: str) -> tuple[str, str]:
    """Context that ends right before the converted number, and the template id."""
    template = pick(rng, ("which", "in_units", "qa", "equation", "fact"))
    subject = pick(rng, pair.subjects).format(q=quantity, name=pick(rng, NAMES))
    if template == "which":
        return f"{subject}, which is", template
    if template == "in_units":
        return f"{subject}. In {target}, that comes to", template
    if template == "qa":
        return f"Q: How many {target} are there in {quantity}?\nA:", template
    if template == "equation":
        return f"Convert {quantity} to {target}: {quantity} =", template
    return f"Useful fact for the trip: {quantity} is the same as", template


def _down(rng: np.random.Generator, pair: _Pair, difficulty: int) -> tuple[str, str, str, str]:
    """Big unit to small unit: multiply (by a decimal amount at difficulty 2+)."""
    tenths = difficulty >= 2 and pair.decimals and (pair.factor * 5) % 10 == 0 and chance(rng)
    whole = randint(rng, *((1, 12), (2, 60), (10, 500))[difficulty - 1])
    if tenths:
        value = whole * 10 + pick(rng, (5,) if pair.factor % 10 else (1, 2, 3, 4, 5, 6, 7, 8, 9))
        amount = f"{value // 10}.{value % 10}"
        result = value * pair.factor // 10
        code = program(f"{pair.bigs} = {amount}", f"{pair.smalls} = {pair.bigs} * {pair.factor}",
                       f"print(round({pair.smalls}))")
    else:
        amount, result = str(whole), whole * pair.factor
        code = program(f"{pair.bigs} = {amount}", f"{pair.smalls} = {pair.bigs} * {pair.factor}",
                       f"print({pair.smalls})")
    return _q(amount, pair.big, pair.bigs), pair.smalls, str(result), code


def _up(rng: np.random.Generator, pair: _Pair, difficulty: int) -> tuple[str, str, str, str]:
    """Small unit to big unit: divide (the result may have one decimal at difficulty 2+)."""
    whole = randint(rng, *((1, 9), (2, 40), (5, 300))[difficulty - 1])
    tenths = 0
    if difficulty >= 2 and pair.decimals and (pair.factor * 5) % 10 == 0 and chance(rng):
        tenths = 5 if pair.factor % 10 else randint(rng, 1, 9)
    value = whole * pair.factor + pair.factor * tenths // 10
    result = f"{whole}.{tenths}" if tenths else str(whole)
    op = "/" if tenths else "//"
    code = program(f"{pair.smalls} = {value}", f"{pair.bigs} = {pair.smalls} {op} {pair.factor}",
                   f"print({pair.bigs})")
    return _q(str(value), pair.small, pair.smalls), pair.bigs, result, code


def _compound(rng: np.random.Generator, pair: _Pair) -> tuple[str, str, str, str]:
    """"3 hours and 25 minutes" in minutes."""
    big = randint(rng, 1, 30)
    small = randint(rng, 1, pair.factor - 1)
    quantity = f"{_q(str(big), pair.big, pair.bigs)} and {_q(str(small), pair.small, pair.smalls)}"
    code = program(f"{pair.bigs} = {big}", f"{pair.smalls} = {small}",
                   f"total_{pair.smalls} = {pair.bigs} * {pair.factor} + {pair.smalls}",
                   f"print(total_{pair.smalls})")
    return quantity, pair.smalls, str(big * pair.factor + small), code


def _chain(
    rng: np.random.Generator, pair: _Pair, steps: tuple[int, int]
) -> tuple[str, str, str, str]:
    """Two conversion steps: hours to seconds, days to minutes, ..."""
    amount = randint(rng, 2, 30)
    f1, f2 = steps
    code = program(f"{pair.bigs} = {amount}", f"{pair.smalls} = {pair.bigs} * {f1} * {f2}",
                   f"print({pair.smalls})")
    return _q(str(amount), pair.big, pair.bigs), pair.smalls, str(amount * pair.factor), code


def unit_convert(rng: np.random.Generator, difficulty: int) -> Task:
    """Exact unit conversions in running text ("The trail is 7 kilometers long, which is")."""
    pair = pick(rng, _PAIRS)
    kind = pick(rng, ("down", "down", "up") if difficulty < 3 else ("down", "up", "mix", "chain"))
    if kind == "down":
        quantity, target, answer, code = _down(rng, pair, difficulty)
    elif kind == "up":
        quantity, target, answer, code = _up(rng, pair, difficulty)
    elif kind == "mix":
        quantity, target, answer, code = _compound(rng, pair)
    else:
        pair, steps = pick(rng, _CHAINS)
        quantity, target, answer, code = _chain(rng, pair, steps)
    context, template = _phrase(rng, pair, quantity, target)
    tail = "" if template == "qa" else f" {target}."
    return make_task("unit_convert", template, difficulty, context, answer, code, tail)
