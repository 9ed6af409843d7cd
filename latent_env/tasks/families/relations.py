"""Families ``order`` and ``where_now``: answers that follow from combining scattered facts.

Nothing here needs arithmetic, so code does not help: what helps is a ``<reason>`` that states
the combined fact (the whole order, or the tracked object's path) and then repeats the text's
last sentence followed by the answer. The frozen scorer copies an answer after a phrase that
matches the text's last words far more reliably than after a bare statement, so every gold
reason ends with that echo. These families have no gold program (``program`` is ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np

from latent_env.tasks.families._common import (
    NAMES,
    chance,
    join_list,
    make_task,
    number_word,
    pick,
    randint,
    sample,
)
from latent_env.tasks.task import Task

# ---- order ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _OrderTemplate:
    """One surface form of a total order over people (first in the order = "top")."""

    name: str
    intro: tuple[str, ...]  # "{names}" is the list of people
    above: str  # "A {above} B." puts A before B
    below: str  # "A {below} B." puts A after B
    top: str  # noun phrase for the first in the order
    bottom: str  # ... and for the last
    ask: tuple[str, ...]  # "{group}" is e.g. "the three", "{who}" is top or bottom
    label: str  # "{first} to {last}" wording for the reason's list


_ORDER_TEMPLATES: tuple[_OrderTemplate, ...] = (
    _OrderTemplate("ages", ("{names} are cousins.", "{names} grew up on the same street."),
                   "is older than", "is younger than", "the oldest", "the youngest",
                   ("Of {group}, {who} is", "So {who} of {group} is"), "oldest to youngest"),
    _OrderTemplate("heights", ("{names} play on the same team.", "{names} lined up for a photo."),
                   "is taller than", "is shorter than", "the tallest", "the shortest",
                   ("Of {group}, {who} is", "So {who} of {group} is"), "tallest to shortest"),
    _OrderTemplate("arrival", ("{names} came to the party.", "{names} met at the station."),
                   "arrived before", "arrived after", "the first to arrive",
                   "the last to arrive", ("Of {group}, {who} was", "So {who} was"),
                   "first to last"),
    _OrderTemplate("race", ("{names} ran a race in the park.", "{names} swam a race at the lake."),
                   "finished ahead of", "finished behind", "the winner", "the one who came last",
                   ("Of {group}, {who} was", "In the end, {who} was"), "first to last"),
    _OrderTemplate("scores", ("{names} took the same test.", "{names} played a quiz game."),
                   "scored higher than", "scored lower than", "the top scorer",
                   "the lowest scorer", ("Of {group}, {who} was", "So {who} was"),
                   "highest to lowest"),
)

# Sentences about the people that carry no order information.
_ASIDES: tuple[str, ...] = (
    "{n} likes to paint.", "{n} has a small dog.", "{n} wore a blue jacket.",
    "{n} enjoys reading comics.", "{n} plays the guitar.", "{n} lives near the river.",
    "{n} had soup for lunch.", "{n} told a funny story.", "{n} collects old coins.",
    "{n} forgot an umbrella.", "{n} is learning to cook.", "{n} wants to visit Japan.",
)
# Comparisons of a relation no template asks about: traps for a solver that reads any "than".
_OTHER_RELATIONS: tuple[str, ...] = (
    "sings better than", "has more stamps than", "lives closer to the school than",
    "reads more books than",
)


def _order_facts(rng: np.random.Generator, tpl: _OrderTemplate, ranked: list[str]) -> list[str]:
    """One sentence per adjacent pair (enough to fix the order), in random direction and order."""
    facts = []
    for hi, lo in pairwise(ranked):
        facts.append(f"{hi} {tpl.above} {lo}." if chance(rng) else f"{lo} {tpl.below} {hi}.")
    return [facts[int(i)] for i in rng.permutation(len(facts))]


def _interleave(rng: np.random.Generator, facts: list[str], extras: list[str]) -> list[str]:
    """``facts`` in their order with ``extras`` dropped at random places between them."""
    out = list(facts)
    for extra in extras:
        out.insert(randint(rng, 1, len(out)), extra)
    return out


def order(rng: np.random.Generator, difficulty: int) -> Task:
    """Ordering: who is oldest/tallest/first from pairwise comparisons spread through a story."""
    tpl = pick(rng, _ORDER_TEMPLATES)
    n = difficulty + 2
    ranked = sample(rng, NAMES, n)
    extras = [pick(rng, _ASIDES).format(n=pick(rng, ranked)) for _ in range(difficulty)]
    if difficulty == 3:
        a, b = sample(rng, ranked, 2)
        extras.append(f"{a} {pick(rng, _OTHER_RELATIONS)} {b}.")
    story = _interleave(rng, _order_facts(rng, tpl, ranked), extras)
    intro = pick(rng, tpl.intro).format(names=join_list(rng, sample(rng, ranked, n)))
    ask_top = chance(rng)
    answer = ranked[0] if ask_top else ranked[-1]
    ask = pick(rng, tpl.ask).format(group=f"the {number_word(n)}",
                                    who=tpl.top if ask_top else tpl.bottom)
    context = " ".join([intro, *story, ask])
    first, last = tpl.label.split(" to ")
    reason = f"From {first} to {last}: {', '.join(ranked)}.\n{ask} {answer}."
    return _reasoning_task("order", tpl.name, difficulty, context, answer, reason)


# ---- where_now -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _TrackTemplate:
    """One surface form of things moving between places.

    Placeholders: ``{E}``/``{e}`` the tracked thing (capitalised / as is), ``{m}`` a person
    who is not tracked, ``{a}`` where it was, ``{b}`` where it goes, ``{c}`` any place.
    """

    name: str
    things: tuple[str, ...]  # empty: the tracked things are people from NAMES
    places: tuple[str, ...]
    start: tuple[str, ...]
    moves: tuple[str, ...]
    asides: tuple[str, ...]  # sentences that mention a place but move nothing tracked
    ask: tuple[str, ...]
    path: str  # how the reason writes one step of the path: "the box" or "Rome"


_TRACK_TEMPLATES: tuple[_TrackTemplate, ...] = (
    _TrackTemplate(
        "containers",
        ("the key", "the ring", "the coin", "the letter", "the watch", "the ticket",
         "the marble", "the wallet"),
        ("drawer", "box", "basket", "bag", "cupboard", "jar", "suitcase", "backpack", "tin",
         "bucket"),
        ("{m} put {e} in the {b}.", "{m} left {e} in the {b}."),
        ("{m} moved {e} from the {a} to the {b}.",
         "{m} took {e} out of the {a} and put it in the {b}.",
         "Later, {m} moved {e} from the {a} to the {b}."),
        ("{m} looked inside the {c} but found nothing.", "{m} cleaned the {c}."),
        ("After all that, {e} is in the", "Where is {e} now? {E} is in the"), "the {p}"),
    _TrackTemplate(
        "rooms", (),
        ("kitchen", "garden", "hallway", "bedroom", "office", "garage", "attic", "cellar",
         "bathroom", "library"),
        ("{E} was in the {b}.", "{E} started the day in the {b}."),
        ("{E} walked from the {a} to the {b}.", "{E} left the {a} and went to the {b}.",
         "Then {e} went from the {a} to the {b}."),
        ("{m} read a book in the {c}.", "The lights in the {c} were off."),
        ("Right now, {e} is in the", "Where is {e} now? {E} is in the"), "the {p}"),
    _TrackTemplate(
        "travel", (),
        ("Paris", "Rome", "Berlin", "Madrid", "Vienna", "Prague", "Lisbon", "Dublin", "Oslo",
         "Athens", "Cairo", "Lima", "Tokyo", "Seoul", "Delhi", "Nairobi", "Toronto", "Boston"),
        ("{E} started the trip in {b}.", "{E} woke up in {b} on Monday."),
        ("{E} took a train from {a} to {b}.", "{E} flew from {a} to {b}.",
         "Next, {e} drove from {a} to {b}."),
        ("{m} sent a postcard from {c}.", "It rained all week in {c}."),
        ("{E} is now in the city of", "Where is {e} now? {E} is in"), "{p}"),
    _TrackTemplate(
        "pets",
        ("the cat", "the dog", "the kitten", "the puppy", "the parrot", "the rabbit"),
        ("sofa", "bed", "table", "chair", "rug", "windowsill", "shelf", "stool", "bench",
         "cushion", "desk", "mat"),
        ("{E} was asleep on the {b}.", "{E} sat on the {b}."),
        ("{E} jumped from the {a} onto the {b}.", "{E} moved from the {a} to the {b}.",
         "Later, {e} hopped from the {a} to the {b}."),
        ("{m} put a book on the {c}.", "{m} dusted the {c}."),
        ("In the end, {e} is on the", "Where is {e} now? {E} is on the"), "the {p}"),
)


def _fill(fmt: str, thing: str, **places: str) -> str:
    return fmt.format(E=thing[0].upper() + thing[1:], e=thing, **places)


def _schedule(rng: np.random.Generator, k: int, n_moves: int, target_last: bool) -> list[int]:
    """Which thing (0 = the target) makes each move: the target at least once; unless
    ``target_last``, another thing moves after the target's last move, so the place named
    last is not the answer."""
    movers = [0] + [randint(rng, 0, k - 1) for _ in range(n_moves - 1)]
    movers = [movers[int(i)] for i in rng.permutation(n_moves)]
    if not target_last and k > 1:
        movers.append(randint(rng, 1, k - 1))
    return movers


def _track_story(
    rng: np.random.Generator, tpl: _TrackTemplate, things: list[str], movers: list[str],
    schedule: list[int],
) -> tuple[list[str], list[str]]:
    """Sentences placing and moving ``things``, and the target's path of places."""
    at = sample(rng, tpl.places, len(things))
    sentences = [_fill(pick(rng, tpl.start), t, b=p, m=pick(rng, movers))
                 for t, p in zip(things, at, strict=True)]
    path = [at[0]]
    for who in schedule:
        dest = pick(rng, [p for p in tpl.places if p != at[who]])
        sentences.append(_fill(pick(rng, tpl.moves), things[who], a=at[who], b=dest,
                               m=pick(rng, movers)))
        at[who] = dest
        if who == 0:
            path.append(dest)
    return sentences, path


def where_now(rng: np.random.Generator, difficulty: int) -> Task:
    """Object tracking: where a thing (or person) ends up after moves between places."""
    tpl = pick(rng, _TRACK_TEMPLATES)
    k = (2, 2, 3)[difficulty - 1]
    n_moves = (randint(rng, 1, 2), randint(rng, 3, 4), randint(rng, 4, 6))[difficulty - 1]
    people = sample(rng, NAMES, k + 2)
    things, movers = (sample(rng, tpl.things, k), people) if tpl.things else (
        people[:k], people[k:])
    schedule = _schedule(rng, k, n_moves, target_last=difficulty == 1 and chance(rng))
    sentences, path = _track_story(rng, tpl, things, movers, schedule)
    asides = [_fill(pick(rng, tpl.asides), things[0], c=pick(rng, tpl.places),
                    m=pick(rng, movers)) for _ in range(difficulty - 1)]
    story = sentences[:k] + _interleave(rng, sentences[k:], asides)
    ask = _fill(pick(rng, tpl.ask), things[0])
    answer = path[-1]
    steps = [tpl.path.format(p=p) for p in path]
    route = f"{steps[0]} to {steps[1]}" + "".join(f", then to {s}" for s in steps[2:])
    reason = f"{_fill('{E}', things[0])} went from {route}.\n{ask} {answer}."
    context = " ".join([*story, ask])
    return _reasoning_task("where_now", tpl.name, difficulty, context, answer, reason)


def _reasoning_task(
    family: str, template: str, difficulty: int, context: str, answer: str, reason: str
) -> Task:
    """A task whose gold latent is reasoning text: no program, ``reason`` set, tail "."."""
    task = make_task(family, template, difficulty, context, answer, "", ".")
    return replace(task, program=None, reason=reason)
