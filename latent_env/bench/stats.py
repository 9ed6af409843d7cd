"""Summaries of benchmark episodes: means with seeded 95% bootstrap intervals.

The interval is the percentile bootstrap of the mean (``N_RESAMPLES`` resamples). Its generator is
seeded from the benchmark seed, the policy SPEC and the family name, so a summary does not change
when other policies or families are added to the run.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

N_RESAMPLES = 2000
CONFIDENCE = 0.95
ALL_FAMILIES = "*"


def bootstrap_ci(
    values: Sequence[float], rng: np.random.Generator, n_resamples: int = N_RESAMPLES
) -> list[float] | None:
    """``[lo, hi]`` percentile-bootstrap interval of the mean; ``None`` for no values."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return None
    if np.all(data == data[0]):
        return [float(data[0]), float(data[0])]  # no spread: the interval is the value itself
    means = data[rng.integers(data.size, size=(n_resamples, data.size))].mean(axis=1)
    tail = (1.0 - CONFIDENCE) / 2
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return [float(lo), float(hi)]


def summary_rng(seed: int, spec: str, family: str) -> np.random.Generator:
    """The bootstrap generator for one (policy, family) cell, stable across processes."""
    key = [seed, zlib.crc32(spec.encode("utf-8")), zlib.crc32(family.encode("utf-8"))]
    return np.random.default_rng(key)


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def summarize(records: Sequence[dict[str, Any]], rng: np.random.Generator) -> dict[str, Any]:
    """Metrics of a group of episode records (see ``results.json`` in the bench docs).

    ``answer_accuracy`` counts tasks that have an answer; ``tool_error_rate`` is failed tool
    calls over all tool calls (``None`` when there were no calls).
    """
    gains = [r["gain"] for r in records]
    hits = [float(r["answer_hit"]) for r in records if r["answer_hit"] is not None]
    hits_without = [
        float(r["answer_hit_without_latent"]) for r in records
        if r["answer_hit_without_latent"] is not None
    ]
    calls = sum(r["tool_calls"] for r in records)
    errors = sum(r["tool_errors"] for r in records)
    return {
        "episodes": len(records),
        "mean_reward": _mean([r["reward"] for r in records]),
        "mean_gain_nats": _mean(gains),
        "gain_ci95": bootstrap_ci(gains, rng),
        "answer_accuracy": _mean(hits),
        "answer_accuracy_ci95": bootstrap_ci(hits, rng),
        "answer_accuracy_without_latent": _mean(hits_without),
        "tool_calls": calls,
        "tool_error_rate": errors / calls if calls else None,
        "mean_latent_tokens": _mean([r["latent_tokens"] for r in records]),
    }


def summarize_policy(
    spec: str,
    records: Sequence[dict[str, Any]],
    seed: int,
    wall_s: float,
    error: str | None,
) -> dict[str, Any]:
    """The ``results.json`` entry of one policy: overall metrics, per-family metrics, status."""
    summary = summarize(records, summary_rng(seed, spec, ALL_FAMILIES))
    summary["episodes_per_s"] = len(records) / wall_s if wall_s > 0 and records else None
    summary["wall_s"] = wall_s
    families: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        families.setdefault(record["family"], []).append(record)
    summary["families"] = {
        family: summarize(group, summary_rng(seed, spec, family))
        for family, group in families.items()
    }
    summary["failed"] = error is not None
    summary["error"] = error
    return summary


def family_names(summaries: Iterable[dict[str, Any]]) -> list[str]:
    """Every family seen in any summary, in first-seen order."""
    names: dict[str, None] = {}
    for summary in summaries:
        names.update(dict.fromkeys(summary.get("families", {})))
    return list(names)
