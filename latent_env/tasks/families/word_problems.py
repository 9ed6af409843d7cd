"""Families ``multi_step`` (products and totals over several steps) and ``percent``."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from math import gcd

import numpy as np

from latent_env.tasks.families._common import (
    NAMES,
    chance,
    fmt_num,
    make_task,
    pick,
    program,
    pronoun,
    randint,
)
from latent_env.tasks.task import Task

# (template id, context, answer, tail, program)
_Parts = tuple[str, str, str, str, str]

_BOXED = (("pencil", "pencils"), ("marker", "markers"), ("candle", "candles"),
          ("tennis ball", "tennis balls"), ("light bulb", "light bulbs"))


def _boxes(rng: np.random.Generator, d: int) -> _Parts:
    item, items = pick(rng, _BOXED)
    boxes = randint(rng, *((2, 5), (3, 12), (5, 30))[d - 1])
    per_box = randint(rng, *((6, 12), (10, 24), (12, 48))[d - 1])
    price = randint(rng, *((1, 3), (2, 9), (2, 15))[d - 1])
    shipping = randint(rng, 5, 25) if d == 3 else 0
    total = boxes * per_box * price + shipping
    stem = items.replace(" ", "_")
    code = [f"boxes = {boxes}", f"{stem}_per_box = {per_box}",
            f"price_per_{item.replace(' ', '_')} = {price}"]
    formula = f"boxes * {stem}_per_box * price_per_{item.replace(' ', '_')}"
    if shipping:
        code.append(f"shipping = {shipping}")
        formula += " + shipping"
    code += [f"total = {formula}", "print(total)"]
    if chance(rng):
        name = pick(rng, NAMES)
        ship = f" Shipping added {shipping} dollars." if shipping else ""
        context = (f"{name} bought {boxes} boxes of {items} for the school. Each box holds "
                   f"{per_box} {items}, and each {item} costs {price} dollars.{ship} "
                   f"Altogether {pronoun(name)} spent")
        return "boxes", context, str(total), " dollars.", program(*code)
    ship = f", plus a shipping fee of {shipping} dollars" if shipping else ""
    context = (f"Question: A box holds {per_box} {items} and each {item} costs {price} dollars. "
               f"How much do {boxes} boxes cost{ship}?\nAnswer:")
    return "boxes_qa", context, str(total), " dollars", program(*code)


def _seats(rng: np.random.Generator, d: int) -> _Parts:
    rows = randint(rng, *((5, 12), (10, 30), (20, 60))[d - 1])
    per_row = randint(rng, *((8, 15), (12, 30), (20, 50))[d - 1])
    capacity = rows * per_row
    sold = randint(rng, capacity // 3, capacity - 2)
    walk_ins = randint(rng, 1, capacity - sold - 1) if d == 3 else 0
    extra = f" and {walk_ins} more people bought tickets at the door" if walk_ins else ""
    context = (f"The concert hall has {rows} rows of {per_row} seats. For tonight's show {sold} "
               f"tickets were sold in advance{extra}, so the number of empty seats is")
    code = [f"rows = {rows}", f"seats_per_row = {per_row}", f"sold = {sold}"]
    if walk_ins:
        code += [f"walk_ins = {walk_ins}",
                 "empty = rows * seats_per_row - sold - walk_ins"]
    else:
        code.append("empty = rows * seats_per_row - sold")
    code.append("print(empty)")
    return "seats", context, str(capacity - sold - walk_ins), ".", program(*code)


def _packs(rng: np.random.Generator, d: int) -> _Parts:
    items, purpose, sizes = pick(rng, (("eggs", "a cake", (6, 10, 12, 18, 30)),
                                       ("bread rolls", "sandwiches", (4, 6, 8, 12)),
                                       ("muffins", "a bake sale", (4, 6, 12)),
                                       ("batteries", "the toys", (4, 8, 12, 24))))
    packs = randint(rng, *((2, 4), (3, 9), (6, 20))[d - 1])
    # Real pack sizes; harder tasks may use the larger ones.
    per_pack = pick(rng, sizes[: (2, 3, len(sizes))[d - 1]])
    loose = randint(rng, 1, per_pack - 1)
    used = randint(rng, 1, packs * per_pack // 2)
    name = pick(rng, NAMES)
    he = pronoun(name)
    context = (f"{name} bought {packs} packs of {per_pack} {items} and {loose} loose ones, "
               f"then used {used} for {purpose}. {he.capitalize()} now has")
    var = items.replace(" ", "_")
    code = program(f"packs = {packs}", f"per_pack = {per_pack}", f"loose = {loose}",
                   f"used = {used}", f"{var} = packs * per_pack + loose - used", f"print({var})")
    return "packs", context, str(packs * per_pack + loose - used), f" {items}.", code


def _change(rng: np.random.Generator, d: int) -> _Parts:
    qty = randint(rng, *((2, 4), (3, 8), (4, 15))[d - 1])
    price = randint(rng, *((2, 4), (2, 9), (3, 19))[d - 1])
    pen = randint(rng, 1, 5)
    cost = qty * price + pen
    name = pick(rng, NAMES)
    pays = f"{pronoun(name).capitalize()} pays with a {{}}-dollar bill"
    bill = next((b for b in (10, 20, 50, 100) if b > cost), None)
    if bill is None:  # too much for one bill: hand over a round sum instead
        bill = (cost // 50 + 1) * 50
        pays = f"{pronoun(name).capitalize()} hands over {{}} dollars"
    context = (f"{name} buys {qty} notebooks at {price} dollars each and a pen for {pen} dollars. "
               f"{pays.format(bill)} and gets back")
    code = program(f"notebooks = {qty} * {price}", f"pen = {pen}", f"paid = {bill}",
                   "change = paid - (notebooks + pen)", "print(change)")
    return "change", context, str(bill - cost), " dollars.", code


def _rate(rng: np.random.Generator, d: int) -> _Parts:
    per_hour = randint(rng, *((10, 60), (25, 150), (40, 400))[d - 1])
    hours = randint(rng, 2, 12)
    if d == 1:
        context = f"A machine fills {per_hour} bottles per hour. In {hours} hours it fills"
        code = program(f"bottles_per_hour = {per_hour}", f"hours = {hours}",
                       "print(bottles_per_hour * hours)")
        return "rate", context, str(per_hour * hours), " bottles.", code
    days = randint(rng, 2, 7)
    rejected = randint(rng, 1, per_hour) if d == 3 else 0
    reject = (f" About {rejected} bottles a day fail inspection and are thrown away."
              if rejected else "")
    context = (f"A machine fills {per_hour} bottles per hour and runs {hours} hours a day.{reject} "
               f"Over {days} days the number of good bottles it produces is")
    code = [f"bottles_per_hour = {per_hour}", f"hours_per_day = {hours}", f"days = {days}"]
    if rejected:
        code += [f"rejected_per_day = {rejected}",
                 "good = (bottles_per_hour * hours_per_day - rejected_per_day) * days"]
    else:
        code.append("good = bottles_per_hour * hours_per_day * days")
    code.append("print(good)")
    return "rate", context, str((per_hour * hours - rejected) * days), ".", program(*code)


def _split(rng: np.random.Generator, d: int) -> _Parts:
    friends = randint(rng, *((2, 4), (3, 6), (4, 9))[d - 1])
    pizzas = randint(rng, *((1, 3), (2, 6), (3, 12))[d - 1])
    price = randint(rng, *((8, 12), (9, 18), (11, 25))[d - 1])
    # Choose the salad's price so the bill divides evenly among the friends.
    each = -(-(pizzas * price + 3) // friends)
    salad = each * friends - pizzas * price
    context = (f"{friends} friends ordered {pizzas} pizzas at {price} dollars each and a salad for "
               f"{salad} dollars, then split the bill evenly. Each friend paid")
    code = program(f"pizzas = {pizzas} * {price}", f"salad = {salad}", f"friends = {friends}",
                   "each = (pizzas + salad) // friends", "print(each)")
    return "split", context, str(each), " dollars.", code


_SCENARIOS: tuple[Callable[[np.random.Generator, int], _Parts], ...] = (
    _boxes, _seats, _packs, _change, _rate, _split,
)


def multi_step(rng: np.random.Generator, difficulty: int) -> Task:
    """Multi-step products and totals: boxes of pencils at a price, seats left, change, ..."""
    template, context, answer, tail, code = pick(rng, _SCENARIOS)(rng, difficulty)
    return make_task("multi_step", template, difficulty, context, answer, code, tail)


def _percent_and_base(
    rng: np.random.Generator, d: int, limit: int, whole: bool = False
) -> tuple[int, int]:
    """A percentage and a base whose product / 100 is exact.

    It is an integer, except at difficulty 3 where one decimal is allowed unless ``whole``.
    """
    if d == 1:
        p = pick(rng, (10, 20, 25, 50))
    elif d == 2:
        p = 5 * randint(rng, 1, 19)
    else:
        p = randint(rng, 1, 99)
    step = 10 // gcd(p, 10) if d == 3 and not whole else 100 // gcd(p, 100)
    base = step * randint(rng, max(1, 20 // step), max(2, limit // step))
    return p, base


def _rounded(expr: str, value: Fraction) -> str:
    """``print`` call that shows ``value`` exactly: an integer or one decimal."""
    return f"print(round({expr}))" if value.denominator == 1 else f"print(round({expr}, 1))"


_GROUPS = (("students", "the school", "walk to school"),
           ("employees", "the company", "work from home"),
           ("members", "the gym", "come every day"),
           ("passengers", "the train", "had reserved a seat"))
_GOODS = ("jacket", "bicycle", "lamp", "backpack", "pair of boots", "desk chair")


def _part(rng: np.random.Generator, d: int) -> _Parts:
    people, place, verb = pick(rng, _GROUPS)
    p, n = _percent_and_base(rng, d, (200, 1000, 5000)[d - 1], whole=True)  # whole people
    value = Fraction(n * p, 100)
    context = f"Of the {n} {people} at {place}, {p}% {verb}. That is"
    code = program(f"{people} = {n}", f"percent = {p}",
                   _rounded(f"{people} * percent / 100", value))
    return "part", context, fmt_num(value), f" {people}.", code


def _discount(rng: np.random.Generator, d: int) -> _Parts:
    item = pick(rng, _GOODS)
    p, price = _percent_and_base(rng, d, (200, 600, 2000)[d - 1])
    if chance(rng):
        value = Fraction(price * (100 - p), 100)
        context = (f"A {item} that normally costs {price} dollars is on sale for {p}% off. "
                   f"The sale price is")
        code = program(f"price = {price}", f"discount = {p}",
                       "sale_price = price * (100 - discount) / 100",
                       _rounded("sale_price", value))
        return "discount", context, fmt_num(value), " dollars.", code
    value = Fraction(price * p, 100)
    context = f"The {item} costs {price} dollars, and with the {p}% member discount you save"
    code = program(f"price = {price}", f"discount = {p}", _rounded("price * discount / 100", value))
    return "saving", context, fmt_num(value), " dollars.", code


def _increase(rng: np.random.Generator, d: int) -> _Parts:
    # whole=True: members come in whole numbers.
    p, n = _percent_and_base(rng, d, (200, 2000, 9000)[d - 1], whole=True)
    value = Fraction(n * (100 + p), 100)
    club = pick(rng, ("chess club", "choir", "running club", "library"))
    context = (f"Last year the {club} had {n} members. Since then membership has grown by "
               f"{p}%, to")
    code = program(f"members = {n}", f"growth = {p}",
                   _rounded("members * (1 + growth / 100)", value))
    return "increase", context, fmt_num(value), " members.", code


def _score(rng: np.random.Generator, d: int) -> _Parts:
    p, total = _percent_and_base(rng, min(d, 2), (40, 80, 200)[d - 1])
    correct = total * p // 100
    name = pick(rng, NAMES)
    context = (f"On the test {name} answered {correct} of the {total} questions correctly, "
               f"a score of")
    code = program(f"correct = {correct}", f"total = {total}",
                   "print(round(correct / total * 100))")
    return "score", context, str(p), "%.", code


def _drop(rng: np.random.Generator, d: int) -> _Parts:
    p, old = _percent_and_base(rng, min(d, 2), (200, 600, 3000)[d - 1])
    new = old * (100 - p) // 100
    item = pick(rng, _GOODS)
    context = f"The price of the {item} fell from {old} dollars to {new} dollars, a drop of"
    code = program(f"old = {old}", f"new = {new}", "print(round((old - new) / old * 100))")
    return "drop", context, str(p), "%.", code


def _tip(rng: np.random.Generator, d: int) -> _Parts:
    p = pick(rng, ((10, 15, 20), (10, 12, 15, 18, 20, 25), tuple(range(5, 31)))[d - 1])
    step = 100 // gcd(p, 100) if d < 3 else 10 // gcd(p, 10)
    bill = step * randint(rng, max(1, 20 // step), (100, 300, 900)[d - 1] // step)
    value = Fraction(bill * p, 100)
    context = f"The dinner bill came to {bill} dollars and they added a {p}% tip, which is"
    code = program(f"bill = {bill}", f"tip_percent = {p}",
                   _rounded("bill * tip_percent / 100", value))
    return "tip", context, fmt_num(value), " dollars.", code


_PERCENT_SCENARIOS: tuple[Callable[[np.random.Generator, int], _Parts], ...] = (
    _part, _discount, _increase, _score, _drop, _tip,
)


def percent(rng: np.random.Generator, difficulty: int) -> Task:
    """Percentages and discounts: a share of a group, a sale price, growth, a test score, ..."""
    template, context, answer, tail, code = pick(rng, _PERCENT_SCENARIOS)(rng, difficulty)
    return make_task("percent", template, difficulty, context, answer, code, tail)
