"""Terminal tables of benchmark summaries (rich), and the number formats shared with the report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from latent_env.bench.stats import family_names

MISSING = "—"


def fmt_num(value: float | None, digits: int = 3, signed: bool = True) -> str:
    if value is None:
        return MISSING
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_ci(ci: list[float] | None, digits: int = 3, signed: bool = True) -> str:
    if ci is None:
        return MISSING
    return f"[{fmt_num(ci[0], digits, signed)}, {fmt_num(ci[1], digits, signed)}]"


def fmt_pct(value: float | None, digits: int = 1) -> str:
    return MISSING if value is None else f"{100 * value:.{digits}f}%"


def fmt_pct_ci(ci: list[float] | None) -> str:
    return MISSING if ci is None else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]%"


def summary_rows(policies: Mapping[str, dict[str, Any]]) -> list[list[str]]:
    """One row per policy: the columns of :data:`SUMMARY_COLUMNS`."""
    rows = []
    for spec, s in policies.items():
        rate = s.get("episodes_per_s")
        status = "FAILED" if s["failed"] else "ok"
        rows.append([
            spec, str(s["episodes"]), fmt_num(s["mean_gain_nats"]), fmt_ci(s["gain_ci95"]),
            fmt_pct(s["answer_accuracy"]), fmt_pct_ci(s["answer_accuracy_ci95"]),
            fmt_pct(s["tool_error_rate"]), MISSING if rate is None else f"{rate:.2f}", status,
        ])
    return rows


SUMMARY_COLUMNS = ["policy", "episodes", "mean gain (nats)", "gain 95% CI", "answer acc.",
                   "acc. 95% CI", "tool errors", "episodes/s", "status"]


def family_rows(policies: Mapping[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Mean gain [95% CI] per family (rows) and policy (columns)."""
    families = family_names(policies.values())
    header = ["family", *policies]
    rows = []
    for family in families:
        row = [family]
        for summary in policies.values():
            cell = summary["families"].get(family)
            row.append(MISSING if cell is None else
                       f"{fmt_num(cell['mean_gain_nats'])} {fmt_ci(cell['gain_ci95'], 2)}")
        rows.append(row)
    return header, rows


PAIRED_COLUMNS = ["policy", "tasks", "gain Δ (nats)", "Δ 95% CI", "accuracy Δ", "fixed",
                  "broken", "sign test p", "latents changed"]


def paired_rows(paired: Mapping[str, dict[str, Any]]) -> list[list[str]]:
    """One row per policy compared with the baseline: the columns of :data:`PAIRED_COLUMNS`."""
    rows = []
    for spec, d in paired.items():
        acc = d["accuracy_delta"]
        rows.append([
            spec, str(d["episodes"]), fmt_num(d["mean_gain_delta"]), fmt_ci(d["gain_delta_ci95"]),
            MISSING if acc is None else f"{100 * acc:+.1f} pts", str(d["fixed"]),
            str(d["broken"]), f"{d['sign_test_p']:.3f}", str(d["latents_changed"]),
        ])
    return rows


def print_paired(baseline: str, paired: Mapping[str, dict[str, Any]],
                 console: Console | None = None) -> None:
    """The paired table: every policy against ``baseline`` on the same tasks."""
    if not paired:
        return
    console = console or wide_console()
    table = Table(title=f"paired against {baseline} (same tasks)")
    for i, column in enumerate(PAIRED_COLUMNS):
        # Fold, not crop, the policy names: checkpoints often differ only at the end.
        table.add_column(column, justify="left" if i == 0 else "right",
                         overflow="fold" if i == 0 else "ellipsis")
    for row in paired_rows(paired):
        table.add_row(*map(Text, row))
    console.print(table)


def wide_console() -> Console:
    """A stdout console; when writing to a file or pipe, wide enough to keep SPECs whole."""
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 160)
    return console


def failures(policies: Mapping[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """``(spec, error)`` of every failed policy."""
    return [(spec, s["error"] or "") for spec, s in policies.items() if s["failed"]]


def print_tables(policies: Mapping[str, dict[str, Any]], console: Console | None = None) -> None:
    """Print the policy summary, failures, and the per-family gains."""
    console = console or wide_console()
    table = Table(title="latent-env bench: policies")
    for i, column in enumerate(SUMMARY_COLUMNS):
        table.add_column(column, justify="left" if i in (0, 8) else "right")
    for row in summary_rows(policies):
        # Text, not markup: SPECs and error messages may contain brackets.
        table.add_row(*map(Text, row), style="red" if row[-1] != "ok" else None)
    console.print(table)
    for spec, error in failures(policies):
        console.print(Text(f"FAILED {spec}: {error}", style="red"))
    header, rows = family_rows(policies)
    if rows:
        per_family = Table(title="mean gain (nats) [95% CI] per family")
        for i, column in enumerate(header):
            per_family.add_column(column, justify="left" if i == 0 else "right")
        for row in rows:
            per_family.add_row(*map(Text, row))
        console.print(per_family)
