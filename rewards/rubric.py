"""A weighted sum of reward terms; weight 0 logs a term without paying it (verifiers-style)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from latent_env.rewards import terms
from latent_env.rewards.terms import Outcome

TermFn = Callable[[Outcome], float]

TERMS: dict[str, TermFn] = {
    "loglik_gain": terms.loglik_gain,
    "loglik_gain_mean": partial(terms.loglik_gain, reduce="mean"),
    "loglik_gain_toolformer": partial(terms.loglik_gain, weighting="toolformer"),
    "loglik_gain_first4": partial(terms.loglik_gain, first_n=4),
    "answer_hit": terms.answer_hit,
    "answer_hit_without_latent": terms.answer_hit_without_latent,
    "format": terms.format_ok,
    "latent_cost": terms.latent_cost,
    "tool_error": terms.tool_error,
}
DEFAULT_WEIGHTS: dict[str, float] = {
    "loglik_gain": 1.0,
    "answer_hit": 0.0,
    "answer_hit_without_latent": 0.0,
    "format": 0.0,
    "latent_cost": 0.0,
    "tool_error": 0.0,
}


class RewardError(ValueError):
    """A term produced a non-finite value, or a rubric was configured wrongly."""


@dataclass
class Rubric:
    """``weights`` maps term names (see ``TERMS``) or callables' names to weights.

    ``compute`` returns ``{"reward/<term>": value, …, "reward/total": Σ weight·value}``.
    """

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    extra_terms: Mapping[str, TermFn] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = {**TERMS, **self.extra_terms}
        for name, weight in self.weights.items():
            if name not in known:
                raise RewardError(
                    f"unknown reward term '{name}'; known terms: {', '.join(sorted(known))}"
                )
            if not math.isfinite(weight):
                raise RewardError(f"weight of '{name}' must be finite, got {weight}")
        self._terms = {name: known[name] for name in self.weights}

    def compute(self, outcome: Outcome, where: str = "") -> dict[str, float]:
        values: dict[str, float] = {}
        total = 0.0
        for name, fn in self._terms.items():
            value = float(fn(outcome))
            if not math.isfinite(value):
                place = f" ({where})" if where else ""
                raise RewardError(f"reward term '{name}' is not finite: {value}{place}")
            values[f"reward/{name}"] = value
            total += self.weights[name] * value
        values["reward/total"] = total
        return values

    @classmethod
    def from_spec(cls, spec: str | Mapping[str, float] | None) -> Rubric:
        """``"loglik_gain=1,answer_hit=0.5"`` or a mapping; unmentioned defaults are logged (0)."""
        if spec is None or isinstance(spec, Rubric):
            return spec or cls()
        if isinstance(spec, str):
            pairs = [p.split("=", 1) for p in spec.split(",") if p.strip()]
            if any(len(p) != 2 for p in pairs):
                raise RewardError(f"reward spec '{spec}' must look like 'term=weight,term=weight'")
            spec = {k.strip(): _weight(k.strip(), v, spec) for k, v in pairs}
        weights = {name: 0.0 for name in DEFAULT_WEIGHTS}
        weights.update(spec)
        return cls(weights)


def _weight(term: str, text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RewardError(
            f"reward spec '{spec}': the weight of '{term}' must be a number, got '{text.strip()}'"
        ) from None
    if not math.isfinite(value):
        raise RewardError(f"reward spec '{spec}': the weight of '{term}' must be finite")
    return value
