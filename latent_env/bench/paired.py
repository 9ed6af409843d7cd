"""Paired comparison of two policies run on the same tasks.

Two checkpoints of one model (after SFT, after SFT+RL) agree on most tasks, so their separate
95% intervals overlap even when one is consistently better. The paired view looks at each task
once: the gain difference ``candidate - baseline`` has its own bootstrap interval, and answers are
counted as *fixed* (baseline missed, candidate hit) or *broken* (the reverse). The sign test asks
whether fixed against broken could be a coin toss. Tasks are matched by ``task_id``; a task one
side lacks is left out, and ``episodes`` says how many were compared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from latent_env.bench.stats import bootstrap_ci, summary_rng


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test: the chance of a split at least this uneven if each changed
    answer were a fair coin (ties, i.e. unchanged answers, are left out). 1.0 with no changes."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_difference(
    baseline: Sequence[dict[str, Any]],
    candidate: Sequence[dict[str, Any]],
    rng: np.random.Generator,
) -> dict[str, Any]:
    """What ``candidate`` changed over ``baseline`` on the tasks both ran (episode records)."""
    first = {r["task_id"]: r for r in baseline}
    pairs = [(first[r["task_id"]], r) for r in candidate if r["task_id"] in first]
    deltas = [b["gain"] - a["gain"] for a, b in pairs]
    with_answer = [
        (a, b) for a, b in pairs if a["answer_hit"] is not None and b["answer_hit"] is not None
    ]
    fixed = sum(1 for a, b in with_answer if b["answer_hit"] and not a["answer_hit"])
    broken = sum(1 for a, b in with_answer if a["answer_hit"] and not b["answer_hit"])
    return {
        "episodes": len(pairs),
        "mean_gain_delta": float(np.mean(deltas)) if deltas else None,
        "gain_delta_ci95": bootstrap_ci(deltas, rng),
        "accuracy_delta": (fixed - broken) / len(with_answer) if with_answer else None,
        "fixed": fixed,
        "broken": broken,
        "sign_test_p": sign_test_p(fixed, broken),
        "latents_changed": sum(1 for a, b in pairs if a.get("latent") != b.get("latent")),
    }


def paired_against(
    baseline: str, others: Iterable[str], records: Sequence[dict[str, Any]], seed: int
) -> dict[str, dict[str, Any]]:
    """``{policy: paired_difference(baseline, policy)}`` from records tagged with ``policy``."""
    by_policy: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_policy.setdefault(record["policy"], []).append(record)
    base = by_policy.get(baseline, [])
    return {
        name: paired_difference(
            base, by_policy.get(name, []), summary_rng(seed, f"{baseline}\n{name}", "paired")
        )
        for name in others
        if name != baseline
    }


def describe(baseline: str, candidate: str, diff: dict[str, Any]) -> str:
    """One sentence for a table's footer or a log line."""
    if not diff["episodes"]:
        return f"{candidate} vs {baseline}: no task in common"
    ci = diff["gain_delta_ci95"]
    acc = diff["accuracy_delta"]
    acc_text = "" if acc is None else f", accuracy {100 * acc:+.0f} points"
    return (
        f"{candidate} vs {baseline} on the same {diff['episodes']} tasks: gain "
        f"{diff['mean_gain_delta']:+.2f} nats [{ci[0]:+.2f}, {ci[1]:+.2f}]{acc_text} "
        f"({diff['fixed']} answers fixed, {diff['broken']} broken, sign test "
        f"p={diff['sign_test_p']:.2f}; {diff['latents_changed']} latents changed)"
    )
