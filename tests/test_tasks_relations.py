"""Tests for the reasoning families ``order`` and ``where_now`` (latent_env.tasks.families.relations).

The answers are re-derived from the context by small solvers written here, independently of the
generator: they read only the text, so a generator that states facts inconsistent with its
answer fails.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from latent_env.tasks import generate_task, make_suite, split_of
from latent_env.tasks.families import EXPECTED_KINDS, FAMILIES, family_description

RELATIONS = ("order", "where_now")
SEEDS = range(40)

# Relation phrases by question noun phrase: (phrase meaning "before", "after", asks for first).
ASKS: dict[str, tuple[str, str, bool]] = {
    "the oldest": ("is older than", "is younger than", True),
    "the youngest": ("is older than", "is younger than", False),
    "the tallest": ("is taller than", "is shorter than", True),
    "the shortest": ("is taller than", "is shorter than", False),
    "the first to arrive": ("arrived before", "arrived after", True),
    "the last to arrive": ("arrived before", "arrived after", False),
    "the winner": ("finished ahead of", "finished behind", True),
    "the one who came last": ("finished ahead of", "finished behind", False),
    "the top scorer": ("scored higher than", "scored lower than", True),
    "the lowest scorer": ("scored higher than", "scored lower than", False),
}


def sentences(context: str) -> list[str]:
    return re.split(r"(?<=\.)\s+", context)


def solve_order(context: str) -> str:
    """The person asked about, from the comparisons of the asked relation only."""
    *story, question = sentences(context)
    asked = [k for k in ASKS if k in question]
    assert len(asked) == 1, question
    before, after, first = ASKS[asked[0]]
    edges = set()  # (earlier, later)
    for s in story:
        for a, rel, b in re.findall(rf"(\w+) ({before}|{after}) (\w+)\.", s):
            edges.add((a, b) if rel == before else (b, a))
    people = {p for e in edges for p in e}
    names = set(re.findall(r"[A-Z]\w+", story[0]))
    assert names == people, (names, people)  # everyone introduced is compared
    # The facts must fix a total order: Kahn's algorithm never has a choice to make.
    ranked: list[str] = []
    left = set(people)
    while left:
        free = [p for p in left if not any(b == p and a in left for a, b in edges)]
        assert len(free) == 1, (free, context)
        ranked.append(free[0])
        left.remove(free[0])
    return ranked[0] if first else ranked[-1]


def asked_thing(question: str) -> str:
    """``the key`` from "After all that, the key is in the", ``Ada`` from "Ada is now in ..."."""
    clause = re.split(r", |\? ", question)[-1]
    match = re.match(r"(.+?) (?:is|was) ", clause)
    assert match, question
    return match.group(1).lower()


def place_of(sentence: str) -> str | None:
    """Where a sentence leaves something: after "to"/"onto" if it says so, else "in"/"on"."""
    moved = re.findall(r"\b(?:to|onto) (?:the )?([A-Za-z]+)", sentence)
    if moved:
        return moved[-1]
    found = re.findall(r"\b(?:in|on) (?:the )?([A-Za-z]+)", sentence)
    return found[0] if found else None


def mentions(sentence: str, thing: str) -> bool:
    return re.search(rf"\b{re.escape(thing)}\b", sentence.lower()) is not None


def solve_where(context: str) -> str:
    """The place named in the last sentence that puts the asked thing somewhere."""
    *story, question = sentences(context)
    thing = asked_thing(question)
    places = [place_of(s) for s in story if mentions(s, thing)]
    places = [p for p in places if p]
    assert places, context
    return places[-1]


SOLVERS = {"order": solve_order, "where_now": solve_where}


def tasks_of(family: str, difficulty: int) -> list:
    return [generate_task(family, np.random.default_rng(s), difficulty) for s in SEEDS]


@pytest.mark.parametrize("family", RELATIONS)
def test_registered_as_reasoning_families(family):
    assert family in FAMILIES
    assert EXPECTED_KINDS[family] == ("reasoning",)
    assert family_description(family)


@pytest.mark.parametrize("family", RELATIONS)
@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_answers_follow_from_the_facts(family, difficulty):
    for task in tasks_of(family, difficulty):
        assert SOLVERS[family](task.context) == task.answer, task.context
        assert task.continuation == f" {task.answer}."
        assert task.meta["difficulty"] == difficulty
        assert task.program is None


@pytest.mark.parametrize("family", RELATIONS)
@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_reason_states_the_fact_and_echoes_the_question(family, difficulty):
    for task in tasks_of(family, difficulty):
        reason = task.reason
        assert reason and reason.endswith(f" {task.answer}.")
        fact, echo = reason.split("\n")
        question = sentences(task.context)[-1]
        assert echo == f"{question} {task.answer}."  # the text's last words, then the answer
        assert task.answer in fact
        assert len(reason.split()) < 40  # short: sequence length is training time


def test_order_fact_lists_everyone_in_the_solved_order():
    for d in (1, 2, 3):
        for task in tasks_of("order", d):
            listed = task.reason.split("\n")[0].split(": ")[1].rstrip(".").split(", ")
            assert len(listed) == d + 2  # difficulty grows the number of people
            assert task.answer in (listed[0], listed[-1])


def test_where_now_path_ends_at_the_answer():
    for d in (1, 2, 3):
        for task in tasks_of("where_now", d):
            fact = task.reason.split("\n")[0]
            last_step = re.split(r" to |, then to ", fact.rstrip("."))[-1]
            assert last_step.split()[-1] == task.answer


def test_where_now_last_move_is_not_the_asked_thing():
    """From difficulty 2 on, the place named last in a move is not the answer's move, so a
    reader cannot copy the most recent place."""
    for d in (2, 3):
        for task in tasks_of("where_now", d):
            *story, question = sentences(task.context)
            moves = [s for s in story if re.search(r"\b(?:to|onto) ", s)]
            assert not mentions(moves[-1], asked_thing(question)), task.context


def test_difficulty_grows_the_story():
    for family in RELATIONS:
        lengths = [np.mean([len(sentences(t.context)) for t in tasks_of(family, d)])
                   for d in (1, 2, 3)]
        assert lengths[0] < lengths[1] < lengths[2], (family, lengths)


@pytest.mark.parametrize("family", RELATIONS)
def test_deterministic_for_a_seed(family):
    first = [generate_task(family, np.random.default_rng(3), d).to_dict() for d in (1, 2, 3)]
    again = [generate_task(family, np.random.default_rng(3), d).to_dict() for d in (1, 2, 3)]
    assert first == again
    contexts = {generate_task(family, np.random.default_rng(s), 1).context for s in range(20)}
    assert len(contexts) == 20


@pytest.mark.parametrize("family", RELATIONS)
def test_template_variety(family):
    tasks = [t for d in (1, 2, 3) for t in tasks_of(family, d)]
    templates = {t.meta["template"] for t in tasks}
    assert len(templates) >= 4 and all(t.startswith(f"{family}/") for t in templates)
    assert len({sentences(t.context)[-1].split()[0] for t in tasks}) >= 3  # question wordings


@pytest.mark.parametrize("family", RELATIONS)
def test_suites_have_enough_distinct_tasks(family):
    train = make_suite("synthetic", "train", 200, families=[family])
    test = make_suite("synthetic", "test", 25, families=[family])
    assert len({t.context for t in train}) == 200
    assert len({t.context for t in test}) == 25
    assert all(split_of(t.context) == "train" for t in train)
    assert all(split_of(t.context) == "test" for t in test)
    assert all(SOLVERS[family](t.context) == t.answer for t in train + test)
