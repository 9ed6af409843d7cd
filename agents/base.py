"""The policy protocol: what the benchmark, ``latent-env complete`` and scripts call.

A policy turns observations (the environment's prompt followed by ``<text>X</text>``) into
actions (latent data in the action grammar, see :mod:`latent_env.actions`). Everything it may
look at is the observation; only the oracle also reads ``tasks``, which carry the hidden
continuation and gold program: privileged information no real policy gets.

Policies that can *sample* several candidate latents with their own log-probabilities implement
:class:`SamplingPolicy` as well; the tree-of-thought policy needs that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

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
    ``prepare()`` (load weights before the clock starts), ``close()``, and the pair
    ``get_state() -> JSON-ready object`` / ``set_state(state)``: its random stream between two
    ``act_batch`` calls, so that ``latent-env bench --resume`` continues it mid-run with the
    actions an uninterrupted run would take (``{}`` for a policy whose actions depend only on its
    observations; without the pair, or when ``get_state`` returns ``None``, an interrupted policy
    is rerun from its first episode).

    A class registered under the ``latent_env.policies`` entry-point group, or named as
    ``MODULE:CLASS`` / ``FILE.py:CLASS``, is built from its SPEC
    (:mod:`latent_env.agents.registry`) by a class method
    ``from_spec(target, options, *, tools, shared_models)`` when it has one, else by its
    constructor with the SPEC's options as keyword arguments.
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


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """A numpy Generator's state as JSON-ready data (for a policy's ``get_state``)."""
    return rng.bit_generator.state


def rng_from_state(state: Mapping[str, Any]) -> np.random.Generator:
    """The Generator :func:`rng_state` described, continuing where it stopped."""
    import numpy as np

    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = dict(state)
    except (TypeError, ValueError, KeyError) as exc:
        raise PolicyError(f"cannot restore the policy's random state: {exc}") from exc
    return rng
