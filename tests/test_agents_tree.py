"""The tree-of-thought policy: selection logic with a scripted base, plumbing with tiny-random."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from latent_env.agents import make_policy
from latent_env.agents.base import Sample
from latent_env.agents.tree import Node, TreePolicy, numeric_answer, select

from latent_env.tools.base import ToolOutput
from latent_env.tools.registry import load_tools
from tests.test_agents import one_torch_thread  # noqa: F401 (autouse: one torch thread)


class ScriptedBase:
    """A deterministic sampling policy: each ``sample`` call returns the next scripted level."""

    name = "scripted"

    def __init__(self, levels: list[list[tuple[str, float]]]) -> None:
        self.levels = levels
        self.prompts: list[list[str]] = []
        self.seeds: list[int | None] = []

    def reset(self, seed: int | None = None) -> None:
        self.seeds.append(seed)

    def act_batch(self, observations, tasks=None):
        raise AssertionError("the tree must only sample from its base")

    def sample(self, observations: Sequence[str], n: int, temperature: float):
        assert temperature > 0
        level = self.levels[len(self.prompts)]
        assert len(level) == n
        self.prompts.append(list(observations))
        return [[Sample(text, lp) for text, lp in level] for _ in observations]


@pytest.fixture(scope="module")
def calc_tools():
    return load_tools(["calc"])


def test_majority_agreement_wins_over_confidence(calc_tools):
    base = ScriptedBase(
        [
            [
                ("<calc>2+2</calc>", -1.0),
                ("<calc>8/2</calc>", -3.0),
                ("<calc>5</calc>", -0.2),
                ("<calc>1+1+1+1</calc>", -2.0),
            ]
        ]
    )
    tree = TreePolicy(base, k=4, depth=1, tools=calc_tools)
    # Three candidates agree on 4; the most confident of them is "2+2" (-1.0), even though the
    # lone "5" is more confident than all of them.
    assert tree.act_batch(["<text>obs</text>"]) == ["<calc>2+2</calc>"]


def test_confidence_breaks_ties_then_order(calc_tools):
    base = ScriptedBase(
        [[("<calc>1</calc>", -2.0), ("<calc>2</calc>", -0.5), ("<calc>3</calc>", -0.5)]]
    )
    tree = TreePolicy(base, k=3, depth=1, tools=calc_tools)
    assert tree.act_batch(["x"]) == ["<calc>2</calc>"]  # all disagree: best log-prob, earliest


def test_candidates_without_a_number_only_win_on_confidence(calc_tools):
    base = ScriptedBase(
        [[("<reason>think</reason>", -0.1), ("<calc>1/0</calc>", -0.2), ("<calc>7</calc>", -5.0)]]
    )
    tree = TreePolicy(base, k=3, depth=1, tools=calc_tools)
    # "7" is the only node with an answer: one vote beats none, despite its low confidence.
    assert tree.act_batch(["x"]) == ["<calc>7</calc>"]


TWO_LEVELS = [
    [("<calc>6*7</calc>", -1.0), ("<calc>40+2</calc>", -1.5), ("<calc>41</calc>", -0.1)],
    [("<calc>42</calc>", -0.3), ("<reason>ok</reason>", -0.2), ("<calc>43</calc>", -0.1)],
]


def test_expansion_continues_the_best_node_given_its_outputs(calc_tools):
    base = ScriptedBase(TWO_LEVELS)
    tree = TreePolicy(base, k=3, depth=2, tools=calc_tools)
    observation = "<text>What is six times seven? It is</text>\n"
    trees = tree.search([observation])
    second_prompt = base.prompts[1][0]
    assert second_prompt == observation + "<calc>6*7</calc><output>42</output>\n"
    actions = [node.action for node in trees[0]]
    assert actions[3:] == [
        "<calc>6*7</calc>\n<calc>42</calc>",
        "<calc>6*7</calc>\n<reason>ok</reason>",
        "<calc>6*7</calc>\n<calc>43</calc>",
    ]
    # Answers: 42, 42, 41 | 42, 42 (inherited), 43. Four votes for 42; the most confident of
    # those by mean log-prob along the path is the "reason" child ((-1.0 - 0.2) / 2 = -0.6).
    tree = TreePolicy(ScriptedBase(TWO_LEVELS), k=3, depth=2, tools=calc_tools)
    assert tree.act_batch([observation]) == ["<calc>6*7</calc>\n<reason>ok</reason>"]


def test_the_tree_never_sees_the_task(calc_tools):
    base = ScriptedBase([[("<calc>1</calc>", -1.0)], [("<calc>2</calc>", -1.0)]])
    tree = TreePolicy(base, k=1, depth=2, tools=calc_tools)
    from latent_env.tasks import FOUNDING_TASK

    tree.act_batch(["<text>X</text>"], tasks=[FOUNDING_TASK])
    flat = " ".join(p for level in base.prompts for p in level)
    assert FOUNDING_TASK.continuation.strip() not in flat and "program" not in flat


def test_reset_reaches_the_base(calc_tools):
    base = ScriptedBase([])
    TreePolicy(base, k=1, depth=1, tools=calc_tools).reset(11)
    assert base.seeds == [11]


@pytest.mark.parametrize(
    "outputs, expected",
    [
        ([ToolOutput("ok", "16")], "16"),
        ([ToolOutput("ok", "16.0")], "16"),
        ([ToolOutput("ok", "a\nresult: 2.50\n")], "2.5"),
        (
            [
                ToolOutput(
                    "ok",
                    "linear trend: y = 10·x + -2e+04; prediction at 2022: 150.3 ± 2.9 "
                    "(95% interval)",
                )
            ],
            "150.3",
        ),
        ([ToolOutput("ok", "3"), ToolOutput("error", "Error: ZeroDivisionError 7")], "3"),
        ([ToolOutput("ok", "no digits")], None),
        ([], None),
    ],
)
def test_numeric_answer(outputs, expected):
    assert numeric_answer(outputs) == expected


def test_select_needs_nodes():
    with pytest.raises(ValueError):
        select([])
    assert select([Node("a", "", (), (-1.0,))]) == 0


def test_tree_over_tiny_random_sampling_is_plumbed_and_seeded(tiny, calc_tools):
    tree = make_policy(
        "tree:hf:tiny-random?k=2&depth=2&max_new_tokens=5&temperature=1.0",
        tools=calc_tools,
        shared_models={"tiny-random": tiny},
    )
    observations = ["<text>Two plus two is</text>\n", "<text>Three times three is</text>\n"]
    tree.reset(5)
    trees = tree.search(observations)
    assert [len(nodes) for nodes in trees] == [4, 4]  # k candidates at each of depth levels
    for nodes in trees:
        parent = nodes[select(nodes[:2])]
        assert all(child.action.startswith(parent.action) for child in nodes[2:])
    tree.reset(5)
    first = tree.act_batch(observations)
    assert [a in [n.action for n in nodes] for a, nodes in zip(first, trees)] == [True, True]
    tree.reset(5)
    assert tree.act_batch(observations) == first
