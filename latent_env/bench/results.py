"""The bench's outputs: the ``results.json`` object, its configuration, and the files and tables
made from it (``report.html``, ``choice.md``, plots, stdout)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from latent_env.bench.common import write_json_atomic

#: The configuration keys a resumed bench must share with the interrupted one: everything that
#: changes an episode's numbers. ``out`` (the folder may have moved) and ``command`` are not.
COMPARED_CONFIG = ("policies", "tasks", "split", "episodes", "seed", "limit", "families", "jobs",
                   "model", "tools", "combiner", "prompt", "oracle_by_kind", "scorer",
                   "latent_env_version")


def assemble_results(
    runs: list[Any], options: Any, n_tasks: int, complete: bool = True
) -> dict[str, Any]:
    """The ``results.json`` object: policies' summaries, the paired comparison, the choice
    metrics (against the oracle by kind when it ran), the configuration, every episode.

    ``complete`` is False while a bench is still running (or was interrupted): ``runs`` then
    holds the policies finished so far.
    """
    from latent_env.bench.choice import ORACLE_BY_KIND, choice_metrics
    from latent_env.bench.paired import paired_against
    from latent_env.bench.stats import summarize_policy

    policies = {
        run.spec: summarize_policy(run.spec, run.records, options.seed, run.wall_s, run.error)
        for run in runs
    }
    episodes = [record for run in runs for record in run.records]
    baseline = runs[0].spec if runs else ""
    compared = [spec for spec, s in policies.items() if not s["failed"]]
    paired = ({} if policies.get(baseline, {}).get("failed", True)
              else paired_against(baseline, compared, episodes, options.seed))
    oracle = next((run.records for run in runs if run.spec == ORACLE_BY_KIND), None)
    choice = choice_metrics({run.spec: run.records for run in runs}, oracle)
    return {
        "complete": complete,
        "policies": policies,
        "paired": {"baseline": baseline, "against": paired},
        "choice": choice,
        "config": bench_config(options, n_tasks),
        "episodes": episodes,
    }


def bench_config(options: Any, n_tasks: int) -> dict[str, Any]:
    """``results.json["config"]``: the arguments, the number of tasks, the version, the command."""
    from latent_env import __version__

    config = {
        "policies": list(options.policies), "tasks": options.tasks, "split": options.split,
        "episodes": n_tasks, "seed": options.seed, "limit": options.limit,
        "families": options.families, "jobs": options.jobs, "model": options.model,
        "tools": options.tools, "combiner": options.combiner, "prompt": options.prompt,
        "out": options.out, "oracle_by_kind": options.oracle_by_kind,
        "scorer": options.scorer, "latent_env_version": __version__,
    }
    config["command"] = bench_command(options)
    return config


def bench_command(options: Any) -> str:
    """The command line that reproduces this run."""
    parts = ["latent-env", "bench"]
    for spec in options.policies:
        parts += ["--policy", spec]
    for flag in ("tasks", "split", "episodes", "limit", "families", "seed", "jobs", "model",
                 "tools", "combiner", "prompt", "out"):
        value = getattr(options, flag)
        if value is not None:
            parts += [f"--{flag}", str(value)]
    if not options.oracle_by_kind:
        parts.append("--no-oracle-by-kind")
    if options.scorer != "frozen":
        parts += ["--scorer", options.scorer]
    return shlex.join(parts)


def write_results(results: dict[str, Any], out: Path) -> None:
    """``OUT/results.json``, atomically (a reader never sees half a file)."""
    write_json_atomic(out / "results.json", results)


def write_outputs(results: dict[str, Any], out: Path, show: bool = True) -> None:
    """``results.json``, the plots, ``report.html``, ``choice.md`` and, with ``--scorer self``,
    ``founding.md``; the tables on stdout when ``show``."""
    from latent_env.bench.choice import choice_markdown, print_choice_table
    from latent_env.bench.founding import founding_markdown
    from latent_env.bench.plots import write_plots
    from latent_env.bench.report import write_report
    from latent_env.bench.table import print_paired, print_tables, wide_console

    write_results(results, out)
    plots = write_plots(results["policies"], results["episodes"], out)
    write_report(results, plots, out / "report.html")
    choice = results.get("choice")
    (out / "choice.md").write_text(choice_markdown(choice or {}), encoding="utf-8")
    founding = results.get("founding")
    if founding:
        (out / "founding.md").write_text(founding_markdown(founding), encoding="utf-8")
    if not show:
        return
    console = wide_console()
    print_tables(results["policies"], console)
    print_choice_table(choice, console)
    print_paired(results["paired"]["baseline"], results["paired"]["against"], console)
    if founding:
        console.print("\nEach policy's own model reading its latents, against --model without "
                      "one (founding.md):", markup=False, highlight=False)
        console.print(founding_markdown(founding), markup=False, highlight=False)
    console.print(f"results: {out / 'results.json'}   report: {out / 'report.html'}",
                  markup=False, highlight=False)
