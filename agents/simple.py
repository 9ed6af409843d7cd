"""Reference policies: ``none`` (the baseline), ``random`` (the floor), ``oracle`` (the ceiling).

* :class:`NonePolicy` writes nothing, so its gain is exactly 0 nats: every other policy's gain is
  measured against it.
* :class:`RandomPolicy` writes well-formed but meaningless blocks — random arithmetic over the
  numbers in the text — to show what a policy gets from format alone.
* :class:`OraclePolicy` runs each task's gold ``program``. It reads the task itself, which no
  real policy may do, so it is an upper bound for program-bearing tasks, not a competitor.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
from latent_env.agents.base import PolicyError, rng_from_state, rng_state

from latent_env.tasks import Task

NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
TEXT_BLOCK = re.compile(r"<text>(.*)</text>", re.DOTALL)
OPERATORS = ("+", "-", "*", "/")
BLOCK_KINDS = ("python", "calc", "reason")
MAX_OPERANDS = 4


def observed_text(observation: str) -> str:
    """The text X inside the observation's last ``<text>…</text>``, else the whole observation.

    The instruction prompt above it mentions example numbers; a policy reading "the text"
    should not pick those up.
    """
    matches = TEXT_BLOCK.findall(observation)
    return matches[-1] if matches else observation


class NonePolicy:
    """Writes an empty latent: the no-latent baseline (gain exactly 0)."""

    name = "none"

    def act_batch(self, observations: list[str], tasks: list[Task] | None = None) -> list[str]:
        return ["" for _ in observations]

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset: the policy has no state."""

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Nothing to restore: the policy has no state."""


class RandomPolicy:
    """Random well-formed blocks over the numbers of the text, from a seeded numpy Generator.

    Args:
        tools: tags of the tools the environment has; blocks for missing tools are not written
            (``reason`` is always possible). ``None`` means ``python`` and ``calc``.
        seed: the generator's seed until :meth:`reset` gives another.
    """

    name = "random"

    def __init__(self, tools: Collection[str] | None = None, seed: int | None = 0) -> None:
        tags = {"python", "calc"} if tools is None else set(tools)
        self.kinds = [kind for kind in BLOCK_KINDS if kind in tags or kind == "reason"]
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def get_state(self) -> dict[str, Any]:
        return rng_state(self.rng)

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.rng = rng_from_state(state)

    def act_batch(self, observations: list[str], tasks: list[Task] | None = None) -> list[str]:
        return [self.act(observation) for observation in observations]

    def act(self, observation: str) -> str:
        """One or two random blocks for one observation."""
        numbers = NUMBER.findall(observed_text(observation))
        n_blocks = int(self.rng.integers(1, 3))
        return "".join(self._block(numbers) for _ in range(n_blocks))

    def _block(self, numbers: list[str]) -> str:
        kind = self.kinds[int(self.rng.integers(len(self.kinds)))]
        expression = self.random_expression(numbers)
        if kind == "python":
            return f"<python>print({expression})</python>"
        if kind == "calc":
            return f"<calc>{expression}</calc>"
        return f"<reason>Combine the numbers: {expression}.</reason>"

    def random_expression(self, numbers: list[str]) -> str:
        """An arithmetic expression over 2–4 of ``numbers`` (random small integers if none)."""
        pool = numbers or [str(int(v)) for v in self.rng.integers(1, 21, size=3)]
        n_operands = int(self.rng.integers(2, MAX_OPERANDS + 1))
        operands = [pool[int(i)] for i in self.rng.integers(len(pool), size=n_operands)]
        parts = [operands[0]]
        for operand in operands[1:]:
            op = OPERATORS[int(self.rng.integers(len(OPERATORS)))]
            if op == "/" and float(operand) == 0:
                op = "+"  # keep the block well-formed: no division by zero
            parts += [op, operand]
        if len(parts) > 3 and self.rng.random() < 0.5:
            parts = ["(", *parts[:3], ")", *parts[3:]]  # sometimes group the first operation
        return " ".join(parts).replace("( ", "(").replace(" )", ")")


class OraclePolicy:
    """Runs the task's gold program as ``<python>{program}</python>`` (privileged: reads tasks).

    Tasks without a program get an empty latent (gain 0). Without ``tasks`` the oracle cannot
    act and raises :class:`PolicyError`.
    """

    name = "oracle"

    def act_batch(self, observations: list[str], tasks: list[Task] | None = None) -> list[str]:
        if tasks is None or len(tasks) != len(observations):
            raise PolicyError(
                "the oracle needs the tasks themselves (their gold programs), one per "
                "observation; it cannot act on free text"
            )
        return [f"<python>{task.program}</python>" if task.program else "" for task in tasks]

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset: the policy is deterministic."""

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Nothing to restore: the policy is deterministic."""
