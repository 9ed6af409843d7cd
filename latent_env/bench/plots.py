"""Benchmark plots as PNG files, drawn with matplotlib's Agg canvas.

Figures are built with :class:`matplotlib.figure.Figure` directly (no ``pyplot``), so nothing
touches the process-wide backend or leaks open figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from latent_env.bench.stats import family_names

DPI = 110
PNG_METADATA = {"Software": None}  # no version stamp: the same data gives the same file


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI, metadata=PNG_METADATA)
    return path


def plot_gain_by_family(policies: Mapping[str, dict[str, Any]], path: Path) -> Path:
    """Grouped bars: mean gain per family (groups) and policy (bars), 95% CI whiskers."""
    families = family_names(policies.values())
    specs = [spec for spec, summary in policies.items() if summary["families"]]
    fig = Figure(figsize=(max(7.0, 1.0 * len(families) + 4), 4.4), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(specs))
    x = np.arange(len(families))
    for j, spec in enumerate(specs):
        cells = [policies[spec]["families"].get(f) for f in families]
        means = [c["mean_gain_nats"] if c else np.nan for c in cells]
        lo = [c["mean_gain_nats"] - c["gain_ci95"][0] if c else 0.0 for c in cells]
        hi = [c["gain_ci95"][1] - c["mean_gain_nats"] if c else 0.0 for c in cells]
        ax.bar(x + (j - (len(specs) - 1) / 2) * width, means, width, label=spec,
               yerr=[lo, hi], capsize=2, error_kw={"linewidth": 0.8})
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xticks(x, families, rotation=30, ha="right")
    ax.set_ylabel("mean log-likelihood gain (nats)")
    ax.set_title("Gain per family (95% bootstrap CI)")
    if specs:
        fig.legend(loc="outside right upper", fontsize="small")
    return _save(fig, path)


def plot_gain_vs_latent_length(
    records: Sequence[dict[str, Any]], specs: Sequence[str], path: Path
) -> Path:
    """Scatter: gain of each episode against the length of its latent (tokens), per policy."""
    fig = Figure(figsize=(8.0, 4.4), layout="constrained")
    ax = fig.add_subplot()
    for spec in specs:
        mine = [r for r in records if r["policy"] == spec]
        if mine:
            ax.scatter([r["latent_tokens"] for r in mine], [r["gain"] for r in mine],
                       s=14, alpha=0.7, label=spec)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xlabel("latent length (tokens)")
    ax.set_ylabel("log-likelihood gain (nats)")
    ax.set_title("Gain vs latent length")
    if records:
        fig.legend(loc="outside right upper", fontsize="small")
    return _save(fig, path)


def write_plots(
    policies: Mapping[str, dict[str, Any]], records: Sequence[dict[str, Any]], out: Path
) -> dict[str, Path]:
    """Both plots into ``out``; returns ``{name: path}``."""
    return {
        "gain_by_family": plot_gain_by_family(policies, out / "gain_by_family.png"),
        "gain_vs_latent_length": plot_gain_vs_latent_length(
            records, list(policies), out / "gain_vs_latent_length.png"
        ),
    }
