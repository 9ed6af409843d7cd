"""``tree:BASE?k=4&depth=2``: tree-of-thought search over latents (the founding document's future
work), choosing by the model's own agreement and confidence — never by the hidden continuation.

For each observation:

1. sample ``k`` candidate actions from the base policy (which must be able to sample: ``hf:…``);
2. run their tool blocks with the environment's tools, as the episode engine runs an action's
   (``latent_env.episode.run_actions``);
3. for each further level up to ``depth``, take the best node so far and ask the base policy to
   continue it, showing it its own action with the tool outputs (the environment's multi-turn
   transcript format); each of the ``k`` continuations is a child node (parent action + its own);
4. return the best node of the whole tree.

"Best" is self-consistency: a node's *answer* is the number its last successful tool output
produced; nodes whose answer is shared by more nodes of the tree win (majority agreement), ties
go to the higher mean log-prob the model gave its own latent (averaged along the node's path),
then to the earlier node.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from latent_env.agents.base import PolicySpecError, Sample, SamplingPolicy
from latent_env.agents.spec import typed_options

from latent_env.episode import render_turn, run_actions
from latent_env.tasks import Task
from latent_env.tools.base import Tool, ToolOutput

NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
BEFORE_PLUS_MINUS = re.compile(r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*±")
TREE_OPTIONS = {"k": int, "depth": int, "temperature": float}


@dataclass(frozen=True)
class Node:
    """One candidate latent: the full action so far and what its tool blocks returned."""

    action: str
    transcript: str  # the action with ``<output>…</output>`` after each tool block
    outputs: tuple[ToolOutput, ...]
    logprobs: tuple[float, ...]  # the base policy's mean log-prob of each step's text

    @property
    def answer(self) -> str | None:
        return numeric_answer(self.outputs)

    @property
    def confidence(self) -> float:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else float("-inf")


def numeric_answer(outputs: Sequence[ToolOutput]) -> str | None:
    """The number the last successful tool output ends with, normalised (``16.0`` → ``16``).

    A value followed by ``±`` (the predict tool's "prediction: 150.3 ± 2.9") is the answer
    rather than its uncertainty.
    """
    for output in reversed(outputs):
        lines = [line for line in output.output.splitlines() if line.strip()]
        if not output.ok or not lines:
            continue
        last = lines[-1]
        found = BEFORE_PLUS_MINUS.findall(last) or NUMBER.findall(last)
        if found:
            return _normalise(found[-1])
    return None


def _normalise(number: str) -> str:
    value = float(number)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def select(nodes: Sequence[Node]) -> int:
    """Index of the node to keep: most agreed-on answer, then confidence, then earliest."""
    if not nodes:
        raise ValueError("select() needs at least one node")
    votes = Counter(node.answer for node in nodes if node.answer is not None)

    def key(i: int) -> tuple[int, float, int]:
        node = nodes[i]
        agreement = votes[node.answer] if node.answer is not None else 0
        return (agreement, node.confidence, -i)

    return max(range(len(nodes)), key=key)


class TreePolicy:
    """Tree-of-thought over latents on top of a sampling base policy (see module docstring).

    Args:
        base: the policy that proposes actions; must implement ``sample``.
        k: candidates per expansion.
        depth: levels of the tree (1 = best of ``k`` samples).
        temperature: sampling temperature for the candidates.
        tools: ``{tag: Tool}`` to run candidates' blocks (the environment's); the registry's
            ``DEFAULT_TOOLS`` if ``None``.
        name: the policy's name (its SPEC).
    """

    def __init__(
        self,
        base: SamplingPolicy,
        k: int = 4,
        depth: int = 2,
        temperature: float = 0.8,
        tools: Mapping[str, Tool] | None = None,
        name: str | None = None,
    ) -> None:
        if not callable(getattr(base, "sample", None)):
            raise PolicySpecError(
                f"tree: the base policy {base.name!r} cannot sample candidates; use hf:…"
            )
        if k < 1 or depth < 1 or temperature <= 0:
            raise PolicySpecError(
                f"tree: k and depth must be >= 1 and temperature > 0 (got k={k}, depth={depth}, "
                f"temperature={temperature})"
            )
        self.base, self.k, self.depth, self.temperature = base, k, depth, temperature
        self._tools = dict(tools) if tools is not None else None
        self.name = name or f"tree:{base.name}?k={k}&depth={depth}"

    @classmethod
    def from_spec(
        cls,
        target: str,
        options: Mapping[str, Any],
        *,
        tools: Mapping[str, Any] | Collection[str] | None = None,
        shared_models: Mapping[str, tuple[Any, Any]] | None = None,
    ) -> TreePolicy:
        """``tree:BASE_SPEC?options``: ``k``, ``depth`` and ``temperature`` are the tree's, the
        other options go to the base policy."""
        from latent_env.agents.registry import make_policy

        if not target:
            raise PolicySpecError("tree: needs a base policy, e.g. tree:hf:default?k=4&depth=2")
        tree_options = {k: v for k, v in options.items() if k in TREE_OPTIONS}
        base_options = {k: v for k, v in options.items() if k not in TREE_OPTIONS}
        base = make_policy(target, tools=tools, shared_models=shared_models, **base_options)
        if tools is not None and not isinstance(tools, Mapping):
            from latent_env.tools.registry import load_tools

            tools = load_tools(list(tools))
        return cls(base, tools=tools, **typed_options("tree", tree_options, TREE_OPTIONS))

    @property
    def tools(self) -> dict[str, Tool]:
        if self._tools is None:
            from latent_env.tools.registry import load_tools

            self._tools = load_tools()
        return self._tools

    def reset(self, seed: int | None = None) -> None:
        self.base.reset(seed)

    def get_state(self) -> Any:
        """The base policy's state (the tree draws nothing itself), or None if it has none."""
        get_state = getattr(self.base, "get_state", None)
        return get_state() if callable(get_state) else None

    def set_state(self, state: Any) -> None:
        self.base.set_state(state)

    def prepare(self) -> None:
        prepare = getattr(self.base, "prepare", None)
        if callable(prepare):
            prepare()

    def act_batch(self, observations: list[str], tasks: list[Task] | None = None) -> list[str]:
        trees = self.search(observations)
        return [nodes[select(nodes)].action for nodes in trees]

    def search(self, observations: Sequence[str]) -> list[list[Node]]:
        """Every node of each observation's tree, in the order they were made."""
        roots = [Node("", "", (), ()) for _ in observations]
        trees = [self.expand(observations, roots)]
        for _ in range(self.depth - 1):
            parents = [nodes[select(nodes)] for nodes in _per_observation(trees)]
            trees.append(self.expand(observations, parents))
        return _per_observation(trees)

    def expand(self, observations: Sequence[str], parents: Sequence[Node]) -> list[list[Node]]:
        """``k`` children of each parent (one parent per observation)."""
        prompts = [obs + parent.transcript for obs, parent in zip(observations, parents)]
        samples = self.base.sample(prompts, self.k, self.temperature)
        flat = [(parent, s) for parent, group in zip(parents, samples) for s in group]
        children = self.run_candidates(flat)
        return [children[i * self.k : (i + 1) * self.k] for i in range(len(parents))]

    def run_candidates(self, candidates: Sequence[tuple[Node, Sample]]) -> list[Node]:
        """Run every candidate's new blocks in one batch per tool and build the child nodes."""
        runs = run_actions([sample.text for _, sample in candidates], self.tools)
        children = []
        for (parent, sample), (p, outs) in zip(candidates, runs):
            joiner = "\n" if parent.action else ""
            children.append(Node(
                action=parent.action + joiner + sample.text,
                transcript=parent.transcript + render_turn(sample.text, p, outs),
                outputs=parent.outputs + tuple(o for o in outs if o is not None),
                logprobs=parent.logprobs + (sample.mean_logprob,),
            ))
        return children


def _per_observation(levels: list[list[list[Node]]]) -> list[list[Node]]:
    """Turn [level][observation][node] into [observation][node], levels in order."""
    return [[node for level in levels for node in level[i]] for i in range(len(levels[0]))]
