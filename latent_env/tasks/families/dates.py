"""Family ``date_arith``: calendar and clock arithmetic (end dates, weekdays, spans, ages)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

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

# (template id, context, answer, tail, program)
_Parts = tuple[str, str, str, str, str]
_IMPORT = "from datetime import date, timedelta"


def _random_date(rng: np.random.Generator, first: int = 1990, last: int = 2030) -> date:
    start = date(first, 1, 1).toordinal()
    return date.fromordinal(start + randint(rng, 0, date(last, 12, 31).toordinal() - start))


def _fmt(rng_style: bool, day: date, year: bool = True) -> str:
    """"March 3, 2021" or the day-first "3 March 2021" (the style is chosen per task)."""
    month = MONTHS[day.month - 1]
    if rng_style:
        return f"{day.day} {month} {day.year}" if year else f"{day.day} {month}"
    return f"{month} {day.day}, {day.year}" if year else f"{month} {day.day}"


def _code_date(var: str, day: date) -> str:
    return f"{var} = date({day.year}, {day.month}, {day.day})"


def _end_day(rng: np.random.Generator, d: int, uk: bool) -> _Parts:
    start = _random_date(rng)
    if d == 1:
        # Stay inside the month so only the day of the month changes.
        start = start.replace(day=randint(rng, 1, 12))
        n = randint(rng, 2, 15)
    else:
        n = randint(rng, *((10, 60), (30, 400))[d - 2])
    end = start + timedelta(days=n)
    month = MONTHS[end.month - 1]
    name = pick(rng, NAMES)
    when = _fmt(uk, start)
    if chance(rng):
        context = f"{name} set off on {when} and came back {n} days later, on {month}"
        template = "trip_end"
    else:
        context = (f"The invoice is dated {when}, and payment is due {n} days later, "
                   f"on {month}")
        template = "due_date"
    code = program(_IMPORT, "", _code_date("start", start),
                   f"end = start + timedelta(days={n})", "print(end.day)")
    return template, context, str(end.day), ".", code


def _weekday_after(rng: np.random.Generator, d: int, uk: bool) -> _Parts:
    start = _random_date(rng)
    n = randint(rng, *((1, 6), (7, 60), (61, 1000))[d - 1])
    end = start + timedelta(days=n)
    weekday = start.strftime("%A")
    if chance(rng):
        context = f"{_fmt(uk, start)} was a {weekday}. {n} days later it was a"
        template = "weekday_after"
    else:
        context = (f"The parcel was shipped on {weekday}, {_fmt(uk, start)}, and arrived "
                   f"{n} days later, on a")
        template = "shipping_weekday"
    code = program(_IMPORT, "", _code_date("shipped", start),
                   f"arrived = shipped + timedelta(days={n})", 'print(arrived.strftime("%A"))')
    return template, context, end.strftime("%A"), ".", code


def _weekday_of(rng: np.random.Generator, d: int, uk: bool) -> _Parts:
    day = _random_date(rng)
    name = pick(rng, NAMES)
    if chance(rng):
        context = f"{name} was born on {_fmt(uk, day)}, which was a"
        template = "birth_weekday"
    else:
        context = f"Looking it up in an old calendar, {_fmt(uk, day)} fell on a"
        template = "calendar_weekday"
    code = program("from datetime import date", "", _code_date("day", day),
                   'print(day.strftime("%A"))')
    return template, context, day.strftime("%A"), ".", code


def _between(rng: np.random.Generator, d: int, uk: bool) -> _Parts:
    first = _random_date(rng)
    if d == 1:
        first = first.replace(day=randint(rng, 1, 10))
        n = randint(rng, 3, 17)
    else:
        n = randint(rng, *((15, 120), (100, 900))[d - 2])
    last = first + timedelta(days=n)
    same_year = first.year == last.year
    span = f"{_fmt(uk, first, year=not same_year)} to {_fmt(uk, last)}"
    if chance(rng):
        context = f"The exhibition ran from {span}. Counting the days between those dates gives"
        template = "exhibition_span"
    else:
        context = f"From {span} is a span of"
        template = "span"
    code = program("from datetime import date", "", _code_date("start", first),
                   _code_date("end", last), "print((end - start).days)")
    return template, context, str(n), " days.", code


def _age(rng: np.random.Generator, d: int, uk: bool) -> _Parts:
    born = _random_date(rng, 1940, 2005)
    on = _random_date(rng, born.year + 5, 2030)
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    name = pick(rng, NAMES)
    context = (f"{name} was born on {_fmt(uk, born)}. On {_fmt(uk, on)}, "
               f"{pronoun(name)} was")
    code = program("from datetime import date", "", _code_date("born", born),
                   _code_date("today", on),
                   "age = today.year - born.year - ((today.month, today.day) < "
                   "(born.month, born.day))",
                   "print(age)")
    return "age", context, str(age), " years old.", code


def _clock(rng: np.random.Generator, d: int, uk: bool) -> _Parts:
    hour, minute = randint(rng, 7, 15), randint(rng, 0, 59)
    n = randint(rng, *((5, 50), (30, 180), (100, 480))[d - 1])
    end_minutes = hour * 60 + minute + n
    answer = f"{end_minutes // 60}:{end_minutes % 60:02d}"
    what = pick(rng, ("The meeting", "The exam", "The rehearsal", "The football match"))
    context = f"{what} started at {hour}:{minute:02d} and lasted {n} minutes, so it ended at"
    code = program("from datetime import datetime, timedelta", "",
                   f"start = datetime(2024, 1, 1, {hour}, {minute})",
                   f"end = start + timedelta(minutes={n})",
                   'print(f"{end.hour}:{end.minute:02d}")')
    return "clock", context, answer, ".", code


_SCENARIOS: dict[int, tuple[Callable[[np.random.Generator, int, bool], _Parts], ...]] = {
    1: (_end_day, _weekday_after, _between, _clock),
    2: (_end_day, _weekday_after, _weekday_of, _between, _age, _clock),
    3: (_end_day, _weekday_after, _weekday_of, _between, _age, _clock),
}


def date_arith(rng: np.random.Generator, difficulty: int) -> Task:
    """Date and duration arithmetic: end dates, weekdays, day spans, ages, clock times."""
    scenario = pick(rng, _SCENARIOS[difficulty])
    template, context, answer, tail, code = scenario(rng, difficulty, chance(rng, 0.3))
    return make_task("date_arith", template, difficulty, context, answer, code, tail)
