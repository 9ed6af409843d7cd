"""The founding question, asked of a trained model θ against the model θ0 it started from.

For each episode a policy played (its record: context X, continuation Y, answer, latent L):

| column | value |
|---|---|
| ``own_minus_start`` | log p_θ(Y \\| c(X, L)) − log p_θ0(Y \\| X): the trained model reading its own latent, against the starting model without one ("does the fine-tuned latent LLM predict better?") |
| ``plain_minus_start`` | log p_θ(Y \\| X) − log p_θ0(Y \\| X): what training did to prediction without a latent |
| ``start_view`` | log p_θ0(Y \\| c(X, L)) − log p_θ0(Y \\| X): the same latent read by θ0 (what a frozen scorer pays) |
| ``accuracy`` | greedy decoding under θ after c(X, L) starts with the answer (``None`` without an answer) |

:func:`founding_table` averages them per family and overall, with 95% bootstrap intervals. The
latents are the records' own: the tools are not run again. Used by ``train_rl.py``'s evaluation
and ``benchmarks/bench_self_prediction.py``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

COLUMNS = ("own_minus_start", "plain_minus_start", "start_view")


def founding_scores(records: Sequence[dict[str, Any]], theta: Any, theta0: Any) -> list[dict]:
    """Per record, the columns of the module docstring; ``theta`` and ``theta0`` are
    :class:`~latent_env.scoring.LogLikScorer` s of θ and θ0 (θ's combiner forms c(X, L))."""
    xs = [r["context"] for r in records]
    ys = [r["continuation"] for r in records]
    enriched = [theta.combiner(x, r["latent"]) for x, r in zip(xs, records)]
    own, plain = theta.score(enriched, ys), theta.score(xs, ys)
    start_plain, start_view = theta0.score(xs, ys), theta0.score(enriched, ys)
    rows = []
    for i, r in enumerate(records):
        answer = r.get("answer")
        n = theta.prefix_tokens(r["continuation"], f" {answer}") if answer else 0
        rows.append({
            "task_id": r["task_id"], "family": r["family"], "latent": r["latent"],
            "own_minus_start": own[i].total - start_plain[i].total,
            "plain_minus_start": plain[i].total - start_plain[i].total,
            "start_view": start_view[i].total - start_plain[i].total,
            "accuracy": float(own[i].greedy_prefix(n)) if n else None,
        })
    return rows


def founding_table(rows: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{family or "all": {"tasks", column: [mean, low, high], "accuracy"}}``."""
    import numpy as np

    from latent_env.bench.stats import bootstrap_ci

    table: dict[str, dict[str, Any]] = {}
    families = sorted({r["family"] for r in rows})
    for family in [*families, "all"]:
        chosen = [r for r in rows if family in ("all", r["family"])]
        cell: dict[str, Any] = {"tasks": len(chosen)}
        for column in COLUMNS:
            values = [r[column] for r in chosen]
            low, high = bootstrap_ci(values, np.random.default_rng(seed))
            cell[column] = [statistics.fmean(values), low, high]
        hits = [r["accuracy"] for r in chosen if r["accuracy"] is not None]
        cell["accuracy"] = statistics.fmean(hits) if hits else None
        table[family] = cell
    return table


def founding_markdown(tables: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One markdown table: a row per (policy, family), the overall row of each policy first."""
    lines = ["| policy | family | tasks | own latent − start (nats) | no latent − start "
             "| θ0 reading the latent | accuracy (own latent) |", "|---|---|---|---|---|---|---|"]
    for label, table in tables.items():
        for family in ["all", *(f for f in table if f != "all")]:
            cell = table[family]
            accuracy = "–" if cell["accuracy"] is None else f"{cell['accuracy']:.0%}"
            cols = " | ".join(_interval(cell[c]) for c in COLUMNS)
            lines.append(f"| {label} | {family} | {cell['tasks']} | {cols} | {accuracy} |")
    return "\n".join(lines) + "\n"


def _interval(value: Sequence[float]) -> str:
    mean, low, high = value
    return f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]"
