"""Reward terms: plain functions of an episode's outcome, each returning a finite float.

The environment builds an :class:`Outcome` once per finished episode and a
:class:`~latent_env.rewards.rubric.Rubric` combines the terms. All terms are in natural units:
nats for the likelihood gain, 0/1 for hits, counts for costs (weights scale them).
"""

from __future__ import annotations

from dataclasses import dataclass

TOOLFORMER_DECAY = 0.2  # Toolformer's weights: w_t = max(0, 1 − 0.2·t), normalised


@dataclass(frozen=True)
class Outcome:
    """Everything a reward term may look at, for one finished episode."""

    token_gains: list[float]  # per continuation token: log p(y_t | c(X,L), y<t) − log p(y_t | X, y<t)
    enriched_is_argmax: list[bool]
    baseline_is_argmax: list[bool]
    answer_tokens: int  # leading continuation tokens that spell the answer (0: unknown)
    latent_tokens: int
    n_tool_calls: int
    n_tool_errors: int
    well_formed: bool
    n_parse_errors: int


def loglik_gain(
    outcome: Outcome,
    reduce: str = "sum",
    weighting: str | None = None,
    first_n: int | None = None,
) -> float:
    """Likelihood gain of the continuation (nats).

    ``reduce``: ``sum`` over tokens or per-token ``mean``. ``weighting="toolformer"`` weights
    token t by max(0, 1 − 0.2·t), normalised (Toolformer's loss weights); ``first_n`` keeps only
    the first n tokens (Quiet-STaR scores the next few true tokens).
    """
    gains = outcome.token_gains[:first_n] if first_n else list(outcome.token_gains)
    if not gains:
        return 0.0
    if weighting == "toolformer":
        weights = [max(0.0, 1.0 - TOOLFORMER_DECAY * t) for t in range(len(gains))]
        total = sum(weights)
        gains = [g * w * len(gains) / total for g, w in zip(gains, weights)]
    elif weighting is not None:
        raise ValueError(f"unknown weighting '{weighting}'; use None or 'toolformer'")
    if reduce == "sum":
        return float(sum(gains))
    if reduce == "mean":
        return float(sum(gains) / len(gains))
    raise ValueError(f"unknown reduce '{reduce}'; use 'sum' or 'mean'")


def answer_hit(outcome: Outcome) -> float:
    """1.0 when greedy decoding with the latent produces the answer exactly, else 0.0."""
    n = outcome.answer_tokens
    return float(n > 0 and all(outcome.enriched_is_argmax[:n]))


def answer_hit_without_latent(outcome: Outcome) -> float:
    """The same check without the latent: the no-latent baseline's accuracy."""
    n = outcome.answer_tokens
    return float(n > 0 and all(outcome.baseline_is_argmax[:n]))


def format_ok(outcome: Outcome) -> float:
    """1.0 for an action with at least one latent block and no parse errors."""
    return float(outcome.well_formed)


def latent_cost(outcome: Outcome) -> float:
    """Tokens of latent data (use a negative weight to charge for length)."""
    return float(outcome.latent_tokens)


def tool_error(outcome: Outcome) -> float:
    """Tool calls that failed (error, timeout, unknown tag, unclosed block)."""
    return float(outcome.n_tool_errors)
