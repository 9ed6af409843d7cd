"""Family ``count_items``: counting things in a list, occurrences, letters and words."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from latent_env.tasks.families._common import (
    NAMES,
    chance,
    join_list,
    make_task,
    number_word,
    pick,
    possessive,
    program,
    pronoun,
    randint,
    sample,
)
from latent_env.tasks.task import Task

# (template id, context, answer, tail, program)
_Parts = tuple[str, str, str, str, str]

_PACKABLE = (
    ("pen", "pens"), ("notebook", "notebooks"), ("apple", "apples"),
    ("water bottle", "water bottles"),
    ("sweater", "sweaters"), ("book", "books"), ("sandwich", "sandwiches"), ("towel", "towels"),
    ("pair of socks", "pairs of socks"), ("phone charger", "phone chargers"), ("map", "maps"),
    ("flashlight", "flashlights"), ("banana", "bananas"), ("scarf", "scarves"), ("hat", "hats"),
    ("umbrella", "umbrellas"),
)
_WORDS = (
    "banana", "mississippi", "strawberry", "bookkeeper", "committee", "parallel", "assessment",
    "referee", "possession", "abracadabra", "engineering", "tennessee", "necessary",
    "occurrence", "successful", "independence", "hippopotamus", "entertainment",
)
_OUTCOMES = (
    ("The spinner landed on", ("red", "blue", "green", "yellow"), "It landed on {x}", True),
    ("The coin flips came out", ("heads", "tails"), "The number of {x} was", False),
    ("The traffic light log shows", ("red", "green", "amber"), "The light was {x}", True),
    ("Customers ordered", ("tea", "coffee", "juice", "water"), "The number of {x} orders was",
     False),
)


def _times(count: int) -> str:
    return " time." if count == 1 else " times."


def _with_article(single: str) -> str:
    return f"an {single}" if single[0] in "aeiou" else f"a {single}"


def _packing(rng: np.random.Generator, d: int) -> _Parts:
    k = randint(rng, *((3, 4), (4, 6), (6, 9))[d - 1])
    top = (1, 3, 5)[d - 1]
    things = sample(rng, _PACKABLE, k)
    counts = [1 if chance(rng, 0.5) else randint(rng, 1, top) for _ in things]
    phrases = [_with_article(s) if c == 1 else f"{number_word(c)} {p}"
               for (s, p), c in zip(things, counts, strict=True)]
    name = pick(rng, NAMES)
    pairs = ", ".join(f'"{s}": {c}' for (s, _), c in zip(things, counts, strict=True))
    code = program(f"items = {{{pairs}}}", "print(sum(items.values()))")
    total = str(sum(counts))
    if chance(rng):
        context = (f"For the weekend trip {name} packed {join_list(rng, phrases)}. "
                   f"Counting every single thing, {pronoun(name)} packed")
        return "packing", context, total, " items.", code
    lines = "\n".join(f"- {c} {p if c > 1 else s}"
                      for (s, p), c in zip(things, counts, strict=True))
    context = f"Shopping list for {possessive(name)} party:\n{lines}\nTotal number of items:"
    return "shopping_list", context, total, "", code


def _occurrences(rng: np.random.Generator, d: int) -> _Parts:
    intro, outcomes, ask, says_times = pick(rng, _OUTCOMES)
    n = randint(rng, *((4, 6), (7, 12), (13, 20))[d - 1])
    seq = [pick(rng, outcomes) for _ in range(n)]
    target = pick(rng, seq)
    context = f"{intro} {', '.join(seq)}. {ask.format(x=target)}"
    code = program(f"outcomes = {seq!r}".replace("'", '"'), f'print(outcomes.count("{target}"))')
    count = seq.count(target)
    return "occurrences", context, str(count), _times(count) if says_times else ".", code


def _letters(rng: np.random.Generator, d: int) -> _Parts:
    if d < 3:
        words = [w for w in _WORDS if (len(w) <= 9) == (d == 1)]
        text = pick(rng, words)
    else:
        text = " ".join(sample(rng, _WORDS, 3))
    letter = pick(rng, sorted({c for c in text if c != " " and text.count(c) > 1}))
    kind = "word" if " " not in text else "phrase"
    if chance(rng):
        context = f'The {kind} "{text}" contains the letter "{letter}"'
        tail = _times(text.count(letter))
    else:
        context = f'Q: How many times does the letter "{letter}" appear in "{text}"?\nA:'
        tail = ""
    code = program(f'{kind} = "{text}"', f'print({kind}.count("{letter}"))')
    return "letters", context, str(text.count(letter)), tail, code


def _guests(rng: np.random.Generator, d: int) -> _Parts:
    k = randint(rng, *((3, 5), (6, 9), (10, 14))[d - 1])
    invited = sample(rng, NAMES, k)
    absent = sample(rng, invited, randint(rng, 1, max(1, k // 3)))
    host = pick(rng, [n for n in NAMES if n not in invited])
    context = (f"{host} invited {join_list(rng, invited)} to dinner. "
               f"{join_list(rng, absent)} could not come, so the number of guests at the table "
               f"(not counting {host}) was")
    code = program(f"invited = {invited!r}".replace("'", '"'),
                   f"absent = {absent!r}".replace("'", '"'),
                   "print(len(invited) - len(absent))")
    return "guests", context, str(k - len(absent)), ".", code


def _word_count(rng: np.random.Generator, d: int) -> _Parts:
    name, friend = sample(rng, NAMES, 2)
    things = [p for _, p in sample(rng, _PACKABLE, (1, 2, 4)[d - 1])]
    sentence = (f"{name} and {friend} carried {join_list(rng, things)} up the hill "
                f"before the sun went down")
    if d == 3:
        sentence += f" and then {pronoun(friend)} counted the stars"
    context = f'The sentence "{sentence}" has'
    code = program(f'sentence = "{sentence}"', "print(len(sentence.split()))")
    return "word_count", context, str(len(sentence.split())), " words.", code


_SCENARIOS: tuple[Callable[[np.random.Generator, int], _Parts], ...] = (
    _packing, _occurrences, _letters, _guests, _word_count,
)


def count_items(rng: np.random.Generator, difficulty: int) -> Task:
    """Counting: things packed, outcomes in a list, letters in a word, guests, words."""
    template, context, answer, tail, code = pick(rng, _SCENARIOS)(rng, difficulty)
    return make_task("count_items", template, difficulty, context, answer, code, tail)
