"""Explicit reasoning traces (TRL prompt-completion items) for latent-thought training.

A trace is ``{"prompt": question, "completion": worked answer}``; the completion shows its work
as a tool call, e.g.::

    prompt:     "Tom has 12 apples and buys 7 more. How many apples does he have?"
    completion: "\\n<python>\\nprint(12 + 7)\\n</python><output>19</output> He has 19 apples."

:func:`arithmetic_traces` makes small word problems of that shape; :func:`task_traces` turns
``latent_env.tasks`` items (context, continuation, answer, program) into the same format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

_NAMES = ("Tom", "Ann", "Raj", "Mia", "Leo", "Zoe", "Sam", "Ivy")
_THINGS = ("apples", "pens", "stickers", "books", "marbles", "coins")


def _add(rng: np.random.Generator) -> tuple[str, str, int]:
    name, thing = rng.choice(_NAMES), rng.choice(_THINGS)
    a, b = int(rng.integers(2, 60)), int(rng.integers(2, 40))
    question = f"{name} has {a} {thing} and buys {b} more. How many {thing} does {name} have?"
    return question, f"{a} + {b}", a + b


def _subtract(rng: np.random.Generator) -> tuple[str, str, int]:
    name, thing = rng.choice(_NAMES), rng.choice(_THINGS)
    a = int(rng.integers(20, 90))
    b = int(rng.integers(1, a))
    question = f"{name} has {a} {thing} and gives away {b}. How many {thing} are left?"
    return question, f"{a} - {b}", a - b


def _multiply(rng: np.random.Generator) -> tuple[str, str, int]:
    thing = rng.choice(_THINGS)
    boxes, per_box = int(rng.integers(2, 12)), int(rng.integers(2, 15))
    question = f"There are {boxes} boxes with {per_box} {thing} in each. How many {thing} in all?"
    return question, f"{boxes} * {per_box}", boxes * per_box


_TEMPLATES: tuple[Callable[[np.random.Generator], tuple[str, str, int]], ...] = (
    _add,
    _subtract,
    _multiply,
)


def format_trace(question: str, program: str, answer: str, tail: str) -> dict[str, str]:
    """A prompt-completion item whose completion runs ``program`` then states the answer."""
    completion = f"\n<python>\n{program}\n</python><output>{answer}</output>{tail}"
    return {"prompt": question, "completion": completion, "answer": answer}


def arithmetic_traces(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` one-step arithmetic word problems with explicit python traces (seeded)."""
    rng = np.random.default_rng(seed)
    traces = []
    for _ in range(n):
        template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
        question, expression, value = template(rng)
        traces.append(
            format_trace(question, f"print({expression})", str(value), f" The answer is {value}.")
        )
    return traces


def task_traces(tasks: list[Any]) -> list[dict[str, str]]:
    """Traces from ``latent_env.tasks`` items that carry a gold ``program`` and ``answer``."""
    traces = []
    for task in tasks:
        program = getattr(task, "program", None)
        answer = getattr(task, "answer", None)
        if not program or answer is None:
            continue
        traces.append(format_trace(task.context, program.strip(), answer, task.continuation))
    return traces
