"""The policy protocol: what the benchmark, ``latent-env complete`` and scripts call.

A policy turns observations (the environment's prompt followed by ``<text>X</text>``) into
actions (latent data in the action grammar, see :mod:`latent_env.actions`). Everything it may
look at is the observation; only the oracle also reads ``tasks``, which carry the hidden
continuation and gold program: privileged information no real policy gets.

Policies that can *sample* several candidate latents with their own log-probabilities implement
:class:`SamplingPolicy` as well; the tree-of-thought policy needs that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from latent_env.tasks import Task


class PolicyError(RuntimeError):
    """A policy could not act (server down, model failed to load, …); the message says where."""


class PolicySpecError(ValueError):
    """A policy SPEC string that cannot be parsed or names an unknown policy (a user mistake)."""


@runtime_checkable
class Policy(Protocol):
    """Maps a batch of observations to a batch of actions (same length, same order).

    ``tasks`` is privileged information (the hidden continuation and the gold program); only the
    oracle uses it, every other policy must ignore it. ``reset(seed)`` restarts the policy's
    random stream, so the same seed gives the same actions. A policy may also define
    ``prepare()`` (load weights before the clock starts) and ``close()``.
    """

    name: str

    def act_batch(
        self, observations: list[str], tasks: list[Task] | None = None
    ) -> list[str]: ...

    def reset(self, seed: int | None = None) -> None: ...


@dataclass(frozen=True)
class Sample:
    """One sampled action and the policy's mean log-prob per token of it (its confidence)."""

    text: str
    mean_logprob: float


@runtime_checkable
class SamplingPolicy(Policy, Protocol):
    """A policy that can draw ``n`` candidate actions per observation at a temperature."""

    def sample(
        self, observations: Sequence[str], n: int, temperature: float
    ) -> list[list[Sample]]: ...
