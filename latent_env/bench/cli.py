"""``latent-env bench``: run policies over a task suite and report gains, accuracy and speed.

Every policy walks the same tasks through :class:`~latent_env.vector.LatentVectorEnv` with one
shared scorer. Then, unless ``--no-oracle-by-kind``, the *oracle by kind* runs every task's gold
latents (code, reasoning, empty; see :mod:`latent_env.bench.choice`) and keeps the best: it is
one more policy, ``"oracle by kind"``, and the reference of ``results.json["choice"]`` (each
policy's choice of latent kind, its gain per kind and its regret). Results go to
``OUT/results.json`` (summary per policy and family with seeded 95% bootstrap intervals, every
later policy paired with the first on the same tasks, the choice metrics, the configuration,
every episode), ``OUT/report.html``, ``OUT/choice.md``, two PNG plots, and tables on stdout. For
the same arguments the results are the same, except the timing fields ``episodes_per_s`` and
``wall_s``.

Exit status: 0 when at least one ``--policy`` ran to the end, 1 when every one failed (each failure
is in ``results.json``), 2 for a user mistake (unknown SPEC, missing or malformed task file, …).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latent_env.context import COMBINERS
from latent_env.tools.registry import DEFAULT_TOOLS as REGISTRY_DEFAULT_TOOLS

DEFAULT_TOOLS = ",".join(REGISTRY_DEFAULT_TOOLS)
DEFAULT_JOBS = 8
TIMING_FIELDS = ("episodes_per_s", "wall_s")


class BenchUsageError(ValueError):
    """A user mistake in bench/complete arguments (reported as one line, exit status 2)."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except ``None`` ones and required options (their help says it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.required:
            return action.help
        return super()._get_help_string(action)


def add_bench_subparser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark policies on a task suite",
        description=(
            "Run each policy over the tasks (one episode per task, batched through the vector "
            "env with one shared scorer) and write results.json, report.html and plots to OUT. "
            "Every later policy is also paired with the first on the same tasks (gain difference "
            "with its own interval, answers fixed and broken, sign test). The oracle by kind "
            "(each task's best gold latent: code, reasoning or empty) measures every policy's "
            "choice of latent kind. "
            "Policy SPECs: none, random, oracle, hf:PATH_OR_ID|default, "
            "openai:BASE_URL#MODEL, tree:BASE_SPEC; options as SPEC?key=value&key=value."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--policy", action="append", required=True, metavar="SPEC",
                        help="a policy to run; repeat for several (the first is the paired baseline)")
    parser.add_argument("--tasks", default="synthetic",
                        help="suite name (synthetic, synthetic-small, founding), FILE.jsonl, a "
                        "directory of <split>.jsonl files, raw text FILE.txt|FILE.md (cut right "
                        "before each number; 'FILE.txt?mode=random&max_tasks=N' for word "
                        "boundaries), or hf:PATH, a local Hugging Face dataset (its 'text' "
                        "column); README 'Raw text as tasks' lists the options")
    parser.add_argument("--split", default="test",
                        help="split of a named suite, a directory or an hf: dataset with splits")
    parser.add_argument("--episodes", type=int, default=None,
                        help="episodes per policy (default: every selected task once); tasks "
                        "are interleaved by family, and reused from the start when N is larger")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the policies, the env resets and the bootstrap")
    parser.add_argument("--out", default="bench-out", help="output directory")
    parser.add_argument("--limit", type=int, default=None,
                        help="at most N tasks per family (default: all)")
    parser.add_argument("--families", default=None,
                        help="comma-separated families to keep (default: all)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help="sub-envs stepped together = the policy's batch size")
    parser.add_argument("--model", default="default",
                        help="scorer model: default, tiny-random, a local path or a HF id")
    parser.add_argument("--tools", default=DEFAULT_TOOLS,
                        help="comma-separated tools the env runs")
    parser.add_argument("--combiner", default="prefix", choices=sorted(COMBINERS),
                        help="how c(X, L) is formed")
    parser.add_argument("--no-oracle-by-kind", dest="oracle_by_kind", action="store_false",
                        help="skip the oracle by kind (each task's best gold latent: code, "
                        "reasoning or empty) and the regret it gives the choice metrics")
    add_prompt_argument(parser)
    parser.set_defaults(func=run_bench)


def add_prompt_argument(parser: argparse.ArgumentParser) -> None:
    """``--prompt``: the environment's instruction template the policy reads."""
    from latent_env.env import DEFAULT_PROMPT, PROMPTS

    parser.add_argument("--prompt", default=DEFAULT_PROMPT, choices=sorted(PROMPTS),
                        help="the environment's prompt template around the text")


def run_bench(args: argparse.Namespace) -> int:
    """The ``bench`` command; returns the exit status (see the module docstring)."""
    from agents import make_policy
    from latent_env.bench.episodes import select_tasks
    from latent_env.tasks import load_tasks

    specs = _check_specs(args.policy)
    if args.jobs < 1:
        raise BenchUsageError(f"--jobs must be at least 1, got {args.jobs}")
    tools = load_tool_set(args.tools)
    for spec in specs:  # fail on a bad SPEC before loading anything heavy
        make_policy(spec, tools=tools)
    families = [f.strip() for f in args.families.split(",") if f.strip()] if args.families else None
    tasks = select_tasks(load_tasks(args.tasks, split=args.split), families, args.limit,
                         args.episodes, source=args.tasks)
    out = _output_dir(args.out)
    scorer = load_scorer(args.model, args.combiner)
    # Baselines log p(Y | X) are cached by the scorer: computing them now means no policy's
    # episodes/s pays for them just because it ran first.
    scorer.baseline([t.context for t in tasks], [t.continuation for t in tasks])
    shared = {args.model: (scorer.model, scorer.tokenizer)}
    policies = [make_policy(spec, tools=tools, shared_models=shared) for spec in specs]
    try:
        runs = _run_all(policies, tasks, scorer, tools, args)
    finally:
        for tool in tools.values():
            tool.close()
    results = assemble_results(runs, args, len(tasks))
    _write_outputs(results, out)
    # The oracle by kind cannot fail: only the asked-for policies decide the exit status.
    return 0 if any(not results["policies"][s]["failed"] for s in specs) else 1


def _check_specs(specs: Sequence[str]) -> list[str]:
    seen: list[str] = []
    for spec in specs:
        if spec in seen:
            raise BenchUsageError(f"--policy {spec} is given twice")
        seen.append(spec)
    return seen


def load_tool_set(names: str) -> dict[str, Any]:
    """``{tag: Tool}`` for a comma-separated list of tool names."""
    from latent_env.tools.registry import ToolRegistryError, load_tools

    wanted = [n.strip() for n in names.split(",") if n.strip()]
    try:
        return load_tools(wanted)
    except ToolRegistryError as exc:
        raise BenchUsageError(f"--tools: {exc}") from None


def load_scorer(model_spec: str, combiner: str = "prefix") -> Any:
    """The shared :class:`LogLikScorer`; a model that cannot be found is a user mistake."""
    from latent_env.models import ModelNotFoundError, load_model
    from latent_env.scoring import LogLikScorer

    try:
        model, tokenizer = load_model(model_spec)
    except (ModelNotFoundError, OSError) as exc:
        raise BenchUsageError(f"--model {model_spec}: {exc}") from None
    return LogLikScorer(model, tokenizer, combiner=combiner)


def _output_dir(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchUsageError(f"--out {path}: cannot create the directory ({exc.strerror})") from None
    return out


def _run_all(policies: list[Any], tasks: list[Any], scorer: Any, tools: dict, args) -> list:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from latent_env.bench.choice import ORACLE_BY_KIND, gold_actions, run_oracle_by_kind
    from latent_env.bench.runner import EpisodeStepper, run_policy

    stepper = EpisodeStepper(scorer, tools, min(args.jobs, len(tasks)), prompt=args.prompt)
    stepper.warm_tools()
    runs = []
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        for policy in policies:
            bar = progress.add_task(policy.name.replace("[", r"\["), total=len(tasks))
            run = run_policy(policy, tasks, stepper, args.seed,
                             on_batch=lambda n, bar=bar: progress.advance(bar, n))
            if run.failed:
                progress.update(bar, description=f"{policy.name} FAILED".replace("[", r"\["))
            runs.append(run)
        if args.oracle_by_kind:  # no generation: one scoring batch per width of candidates
            n_candidates = sum(len(gold_actions(t)) for t in tasks)
            bar = progress.add_task(ORACLE_BY_KIND, total=n_candidates)
            runs.append(run_oracle_by_kind(tasks, stepper, args.seed,
                                           on_batch=lambda n, bar=bar: progress.advance(bar, n)))
    return runs


def assemble_results(runs: list[Any], args: argparse.Namespace, n_tasks: int) -> dict[str, Any]:
    """The ``results.json`` object: policies' summaries, the paired comparison, the choice
    metrics (against the oracle by kind when it ran), the configuration, every episode."""
    from latent_env.bench.choice import ORACLE_BY_KIND, choice_metrics
    from latent_env.bench.paired import paired_against
    from latent_env.bench.stats import summarize_policy

    policies = {
        run.spec: summarize_policy(run.spec, run.records, args.seed, run.wall_s, run.error)
        for run in runs
    }
    episodes = [record for run in runs for record in run.records]
    baseline = runs[0].spec if runs else ""
    compared = [spec for spec, s in policies.items() if not s["failed"]]
    paired = ({} if policies.get(baseline, {}).get("failed", True)
              else paired_against(baseline, compared, episodes, args.seed))
    oracle = next((run.records for run in runs if run.spec == ORACLE_BY_KIND), None)
    choice = choice_metrics({run.spec: run.records for run in runs}, oracle)
    return {
        "policies": policies,
        "paired": {"baseline": baseline, "against": paired},
        "choice": choice,
        "config": bench_config(args, n_tasks),
        "episodes": episodes,
    }


def bench_config(args: argparse.Namespace, n_tasks: int) -> dict[str, Any]:
    from latent_env import __version__

    config = {
        "policies": list(args.policy), "tasks": args.tasks, "split": args.split,
        "episodes": n_tasks, "seed": args.seed, "limit": args.limit,
        "families": args.families, "jobs": args.jobs, "model": args.model,
        "tools": args.tools, "combiner": args.combiner, "prompt": args.prompt, "out": args.out,
        "oracle_by_kind": args.oracle_by_kind, "latent_env_version": __version__,
    }
    config["command"] = bench_command(args)
    return config


def bench_command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run."""
    parts = ["latent-env", "bench"]
    for spec in args.policy:
        parts += ["--policy", spec]
    for flag in ("tasks", "split", "episodes", "limit", "families", "seed", "jobs", "model",
                 "tools", "combiner", "prompt", "out"):
        value = getattr(args, flag)
        if value is not None:
            parts += [f"--{flag}", str(value)]
    if not args.oracle_by_kind:
        parts.append("--no-oracle-by-kind")
    return shlex.join(parts)


def _write_outputs(results: dict[str, Any], out: Path) -> None:
    from latent_env.bench.choice import choice_markdown, print_choice_table
    from latent_env.bench.plots import write_plots
    from latent_env.bench.report import write_report
    from latent_env.bench.table import print_paired, print_tables, wide_console

    write_json_atomic(out / "results.json", results)
    plots = write_plots(results["policies"], results["episodes"], out)
    write_report(results, plots, out / "report.html")
    choice = results.get("choice")
    (out / "choice.md").write_text(choice_markdown(choice or {}), encoding="utf-8")
    console = wide_console()
    print_tables(results["policies"], console)
    print_choice_table(choice, console)
    print_paired(results["paired"]["baseline"], results["paired"]["against"], console)
    console.print(f"results: {out / 'results.json'}   report: {out / 'report.html'}",
                  markup=False, highlight=False)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, ensure_ascii=False, allow_nan=False)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def strip_timing(results: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``results`` without the fields that measure time (for comparisons)."""
    copy = json.loads(json.dumps(results))
    for summary in copy["policies"].values():
        for key in TIMING_FIELDS:
            summary.pop(key, None)
    return copy
