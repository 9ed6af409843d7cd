"""The policy's choice of latent kind: what it wrote, and what choosing well would have gained.

Every episode record has a ``kind`` (:data:`latent_env.latent.LATENT_KINDS`). The *oracle by
kind* runs, for each task, every gold latent the task has — its ``program`` as code, its
``reason`` as reasoning, and always the empty latent — through the benchmark's own
:class:`~latent_env.bench.runner.EpisodeStepper`, and keeps the best one. Its gain is the upper
bound of choosing among the gold kinds; :func:`choice_metrics` measures each policy against it:

* ``kind_share`` / ``kind_gain``: how often the policy wrote each kind, and its mean gain then;
* ``best_kind_share``: how often each kind's gold was the best one;
* ``regret``: the mean, over the policy's episodes whose task the oracle ran, of
  (best gold gain on that task − the gain of the policy's own latent). It is 0 for the oracle by
  kind itself and can be negative when a policy's latent beats every gold one;
* ``choice_match``: the share of those episodes whose kind is the oracle's best kind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from latent_env.bench.stats import ALL_FAMILIES
from latent_env.bench.table import MISSING, fmt_num, fmt_pct
from latent_env.latent import LATENT_KINDS
from latent_env.tasks import Task

if TYPE_CHECKING:  # the runner pulls in the vector env; the report only needs the rendering
    from latent_env.bench.runner import EpisodeStepper, PolicyRun

ORACLE_BY_KIND = "oracle by kind"
# Ties between gold candidates (and for the majority kind) go to the first kind here: an empty
# latent wins ties, since writing nothing costs nothing.
TIE_ORDER: tuple[str, ...] = ("empty", "code", "reasoning", "thinking")
ALWAYS_SHOWN: frozenset[str] = frozenset({"code", "empty"})
ALL_LABEL = "all"
NO_EXPECTATION = "–"


def gold_actions(task: Task) -> dict[str, str]:
    """``{kind: action}`` for every kind the task has gold for; ``"empty"`` is always there.

    The code action is the one :class:`latent_env.agents.simple.OraclePolicy` writes.
    """
    actions: dict[str, str] = {}
    if task.program:
        actions["code"] = f"<python>{task.program}</python>"
    if task.reason:
        actions["reasoning"] = f"<reason>{task.reason}</reason>"
    actions["empty"] = ""
    return actions


def run_oracle_by_kind(
    tasks: Sequence[Task],
    stepper: EpisodeStepper,
    seed: int,
    on_batch: Callable[[int], None] | None = None,
) -> PolicyRun:
    """Run every gold action of every task and keep, per task, the one with the highest gain.

    All (task, action) candidates go through ``stepper`` in batches of its width; task ``i``'s
    candidates reset with seed ``seed + i``, as in :func:`~latent_env.bench.runner.run_policy`.
    Each returned record is the best candidate's (``episode`` = task index) plus
    ``kind_gains``: every candidate's gain by gold kind. ``on_batch`` gets candidates done.
    """
    from latent_env.bench.runner import PolicyRun, episode_record

    run = PolicyRun(ORACLE_BY_KIND)
    start = time.perf_counter()
    candidates = [
        (i, kind, action) for i, task in enumerate(tasks)
        for kind, action in gold_actions(task).items()
    ]
    tokenizer = stepper.scorer.tokenizer
    scored: list[dict[str, dict[str, Any]]] = [{} for _ in tasks]
    for first in range(0, len(candidates), stepper.width):
        batch = candidates[first : first + stepper.width]
        stepper.reset([tasks[i] for i, _, _ in batch], [seed + i for i, _, _ in batch])
        infos = stepper.step([action for _, _, action in batch])
        for (i, kind, action), info in zip(batch, infos):
            scored[i][kind] = episode_record(ORACLE_BY_KIND, i, tasks[i], action, info, tokenizer)
        if on_batch is not None:
            on_batch(len(batch))
    run.records = [best_candidate(by_kind) for by_kind in scored]
    run.wall_s = time.perf_counter() - start
    return run


def best_candidate(records_by_kind: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The highest-gain record of one task's candidates (ties: :data:`TIE_ORDER`), with
    ``kind_gains`` added."""
    order = [kind for kind in TIE_ORDER if kind in records_by_kind]
    best = order[0]
    for kind in order[1:]:
        if records_by_kind[kind]["gain"] > records_by_kind[best]["gain"]:
            best = kind
    gains = {k: records_by_kind[k]["gain"] for k in LATENT_KINDS if k in records_by_kind}
    return {**records_by_kind[best], "kind_gains": gains}


# ---- metrics ------------------------------------------------------------------------------------


def choice_metrics(
    records_by_policy: Mapping[str, Sequence[dict[str, Any]]],
    oracle_records: Sequence[dict[str, Any]] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{policy: {"*": cell, family: cell, …}}``, a cell as in :func:`choice_cell`.

    Episodes are matched to ``oracle_records`` (the oracle by kind's) by ``task_id``; a task the
    oracle ran twice counts with its first record. Families keep their first-seen order.
    """
    best: dict[str, dict[str, Any]] = {}
    for record in oracle_records or ():
        best.setdefault(record["task_id"], record)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for spec, records in records_by_policy.items():
        families: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            families.setdefault(record["family"], []).append(record)
        cells = {ALL_FAMILIES: choice_cell(records, best)}
        cells.update({family: choice_cell(group, best) for family, group in families.items()})
        out[spec] = cells
    return out


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _share(kinds: Sequence[str]) -> dict[str, float | None]:
    return {k: (kinds.count(k) / len(kinds) if kinds else None) for k in LATENT_KINDS}


def majority_kind(kinds: Sequence[str]) -> str | None:
    """The most frequent kind (ties: :data:`TIE_ORDER`); ``None`` for no episodes."""
    counts = {k: kinds.count(k) for k in TIE_ORDER}
    top = max(counts.values(), default=0)
    return next((k for k in TIE_ORDER if counts[k] == top), None) if top else None


def choice_cell(
    records: Sequence[dict[str, Any]], best: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """Choice metrics of one group of a policy's episodes; ``best`` maps task ids to the oracle
    by kind's records. The oracle fields are ``None`` when no episode has an oracle record."""
    kinds = [r["kind"] for r in records]
    matched = [(r, best[r["task_id"]]) for r in records if r["task_id"] in best]
    best_kinds = [o["kind"] for _, o in matched]
    has_oracle = bool(matched)
    gold: dict[str, list[float]] = {k: [] for k in LATENT_KINDS}
    for _, o in matched:
        for kind, gain in o.get("kind_gains", {}).items():
            gold[kind].append(gain)
    return {
        "episodes": len(records),
        "kind_share": _share(kinds),
        "kind_gain": {
            k: _mean([r["gain"] for r in records if r["kind"] == k]) for k in LATENT_KINDS
        },
        "majority_kind": majority_kind(kinds),
        "oracle_episodes": len(matched),
        "best_kind_share": _share(best_kinds) if has_oracle else None,
        "gold_gain": {k: _mean(v) for k, v in gold.items()} if has_oracle else None,
        "oracle_gain": _mean([o["gain"] for _, o in matched]),
        "regret": _mean([o["gain"] - r["gain"] for r, o in matched]),
        "choice_match": _mean([float(r["kind"] == o["kind"]) for r, o in matched]),
    }


# ---- rendering ----------------------------------------------------------------------------------


def shown_kinds(choice: Mapping[str, Mapping[str, dict[str, Any]]]) -> list[str]:
    """Kinds some policy wrote or some task's best gold had, plus code and empty always."""
    seen = set(ALWAYS_SHOWN)
    for cells in choice.values():
        cell = cells.get(ALL_FAMILIES, {})
        for field in ("kind_share", "best_kind_share"):
            seen.update(k for k, v in (cell.get(field) or {}).items() if v)
    return [k for k in LATENT_KINDS if k in seen]


def expected_kinds(family: str) -> str:
    """The family's expected kinds (``EXPECTED_KINDS``), ``–`` when unknown or for "all"."""
    from latent_env.tasks.families import EXPECTED_KINDS

    kinds = EXPECTED_KINDS.get(family) if family != ALL_FAMILIES else None
    return ", ".join(kinds) if kinds else NO_EXPECTATION


def choice_rows(
    choice: Mapping[str, Mapping[str, dict[str, Any]]],
) -> tuple[list[str], list[list[str]]]:
    """Header and rows (policy × family, overall first) shared by the terminal, markdown and
    HTML tables."""
    kinds = shown_kinds(choice)
    header = ["policy", "family", "episodes", *(f"{k} %" for k in kinds),
              *(f"gain {k}" for k in kinds), "majority", "expected", "match", "regret"]
    rows = []
    for spec, cells in choice.items():
        for family, cell in cells.items():
            rows.append([
                spec, ALL_LABEL if family == ALL_FAMILIES else family, str(cell["episodes"]),
                *(fmt_pct(cell["kind_share"][k]) for k in kinds),
                *(fmt_num(cell["kind_gain"][k]) for k in kinds),
                cell["majority_kind"] or MISSING, expected_kinds(family),
                fmt_pct(cell["choice_match"]), fmt_num(cell["regret"]),
            ])
    return header, rows


CHOICE_TITLE = "choice of latent kind"
CHOICE_NOTE = ("kind % = share of episodes; gain KIND = mean gain (nats) of those episodes; "
               "match = share choosing the oracle by kind's best kind; regret = mean of (best "
               "gold gain − the policy's gain) on the same task")


def print_choice_table(
    choice: Mapping[str, Mapping[str, dict[str, Any]]] | None, console: Console | None = None
) -> None:
    """The choice table on the terminal (nothing for no choice metrics)."""
    if not choice:
        return
    from latent_env.bench.table import wide_console

    console = console or wide_console()
    header, rows = choice_rows(choice)
    table = Table(title=CHOICE_TITLE, caption=CHOICE_NOTE)
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i < 2 else "right",
                         overflow="fold" if i == 0 else "ellipsis")
    for row in rows:
        table.add_row(*map(Text, row))  # Text, not markup: SPECs may hold brackets
    console.print(table)


def choice_markdown(choice: Mapping[str, Mapping[str, dict[str, Any]]]) -> str:
    """The choice table as GitHub markdown (``|`` in cells escaped); ``""`` for none."""
    if not choice:
        return ""
    header, rows = choice_rows(choice)

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |"

    rule = ["---" if i < 2 else "---:" for i in range(len(header))]
    return "\n".join([line(header), "|" + "|".join(rule) + "|", *map(line, rows)]) + "\n"
