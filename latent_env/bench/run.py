"""The benchmark as a function: :func:`run_bench` (``latent-env bench`` is a thin CLI over it).

Every policy walks the same tasks through :class:`~latent_env.vector.LatentVectorEnv` with one
shared scorer. Then, unless ``oracle_by_kind=False``, the *oracle by kind* runs every task's gold
latents (code, reasoning, empty; see :mod:`latent_env.bench.choice`) and keeps the best: it is
one more policy, ``"oracle by kind"``, and the reference of ``results.json["choice"]``.

Progress is kept as it is made: each batch of episodes goes to ``OUT/checkpoint/`` (see
:mod:`latent_env.bench.checkpoint`) and ``OUT/results.json`` is rewritten, atomically, after each
finished policy (``"complete": false`` until the end), so an interrupt loses at most the batch in
flight, and ``resume=True`` continues from there with the numbers an uninterrupted run gives.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latent_env.bench.checkpoint import (
    CHECKPOINT_DIR,
    Checkpoint,
    checkpoint_meta,
    config_differences,
)
from latent_env.bench.common import (
    DEFAULT_JOBS,
    DEFAULT_TOOLS,
    BenchUsageError,
    load_scorer,
    load_tool_set,
    output_dir,
)
from latent_env.bench.results import (
    assemble_results,
    bench_command,
    bench_config,
    write_outputs,
    write_results,
)
from latent_env.prompt import DEFAULT_PROMPT

SCORERS = ("frozen", "self")


class BenchInterrupted(KeyboardInterrupt):
    """An interrupted bench; the message says what was kept and the command that continues."""


@dataclass(frozen=True)
class BenchOptions:
    """The arguments of one bench, as :func:`run_bench` takes them (see there)."""

    policies: tuple[str, ...]
    tasks: str
    split: str
    episodes: int | None
    seed: int
    out: str
    limit: int | None
    families: str | None
    jobs: int
    model: str
    tools: str
    combiner: str
    prompt: str
    oracle_by_kind: bool
    scorer: str


def run_bench(
    policies: Sequence[str],
    *,
    tasks: str | os.PathLike[str] = "synthetic",
    split: str = "test",
    episodes: int | None = None,
    seed: int = 0,
    out: str | os.PathLike[str] = "bench-out",
    limit: int | None = None,
    families: str | Sequence[str] | None = None,
    jobs: int = DEFAULT_JOBS,
    model: str = "default",
    tools: str | Sequence[str] = DEFAULT_TOOLS,
    combiner: str = "prefix",
    prompt: str = DEFAULT_PROMPT,
    oracle_by_kind: bool = True,
    scorer: str = "frozen",
    resume: bool = False,
    show: bool = True,
) -> dict[str, Any]:
    """Benchmark ``policies`` (SPEC strings, see :func:`latent_env.agents.make_policy`) and write
    ``out``.

    Args mirror ``latent-env bench``'s flags: ``tasks`` is a suite name or a JSONL file,
    ``split`` a named suite's split, ``episodes`` the episodes per policy (default: every
    selected task once), ``limit`` the tasks per family, ``families`` those to keep, ``jobs``
    the sub-envs stepped together (the policies' batch size), ``model`` the scorer,
    ``tools`` the environment's tools, ``combiner`` how c(X, L) is formed, ``prompt`` the
    environment's prompt template, ``oracle_by_kind`` whether to run the oracle by kind.
    ``scorer="self"`` adds the founding table (:mod:`latent_env.bench.founding`): each ``hf:``
    policy's own model reading the latents it wrote, against ``model`` without a latent
    (``results.json["founding"]``, ``founding.md``); the main table stays scored by ``model``.

    ``out`` is created if missing and receives ``results.json``, ``report.html``,
    ``choice.md`` and the plots. ``resume`` continues the interrupted bench in ``out`` (its
    arguments must be these); without it, an ``out`` holding an interrupted bench is refused.
    ``show`` prints progress on stderr and the tables on stdout.

    Returns the ``results.json`` object. For the same arguments it is the same, interrupted and
    resumed or not, except the timing fields ``episodes_per_s`` and ``wall_s``. Raises
    :class:`~latent_env.bench.common.BenchUsageError` (or another ``ValueError`` /
    ``FileNotFoundError``) for a user mistake, before any policy runs, and
    :class:`BenchInterrupted` (a ``KeyboardInterrupt``) on Ctrl-C, once what finished is saved.
    """
    options = BenchOptions(
        policies=tuple(policies), tasks=os.fspath(tasks), split=split, episodes=episodes,
        seed=seed, out=os.fspath(out), limit=limit, families=_joined(families), jobs=jobs,
        model=model, tools=_joined(tools) or "", combiner=combiner, prompt=prompt,
        oracle_by_kind=oracle_by_kind, scorer=scorer,
    )
    tool_set = _check_options(options)
    try:
        return _bench(options, tool_set, resume, show)
    finally:
        for tool in tool_set.values():
            tool.close()


def bench_exit_status(results: dict[str, Any]) -> int:
    """0 when at least one asked-for policy ran to the end, else 1 (the oracle by kind, which
    cannot fail, does not count)."""
    asked = results["config"]["policies"]
    return 0 if any(not results["policies"][spec]["failed"] for spec in asked) else 1


def _joined(value: str | Sequence[str] | None) -> str | None:
    return value if value is None or isinstance(value, str) else ",".join(value)


def _check_options(options: BenchOptions) -> dict[str, Any]:
    """The tools, once every SPEC builds: a bad SPEC fails before anything heavy loads."""
    from latent_env.agents import make_policy

    if not options.policies:
        raise BenchUsageError("name at least one policy (--policy SPEC)")
    for i, spec in enumerate(options.policies):
        if spec in options.policies[:i]:
            raise BenchUsageError(f"--policy {spec} is given twice")
    if options.jobs < 1:
        raise BenchUsageError(f"--jobs must be at least 1, got {options.jobs}")
    if options.scorer not in SCORERS:
        raise BenchUsageError(f"--scorer must be frozen or self, got {options.scorer!r}")
    tool_set = load_tool_set(options.tools)
    try:
        made = [make_policy(spec, tools=tool_set) for spec in options.policies]
        if options.scorer == "self" and not any(_own_model(p) for p in made):
            raise BenchUsageError("--scorer self needs an hf: policy: it scores each policy with "
                                  "its own model")
    except BaseException:
        for tool in tool_set.values():
            tool.close()
        raise
    return tool_set


def _bench(options: BenchOptions, tools: dict, resume: bool, show: bool) -> dict[str, Any]:
    from latent_env.agents import make_policy
    from latent_env.bench.episodes import select_tasks
    from latent_env.tasks import load_tasks

    families = ([f.strip() for f in options.families.split(",") if f.strip()]
                if options.families else None)
    tasks = select_tasks(load_tasks(options.tasks, split=options.split), families,
                         options.limit, options.episodes, source=options.tasks)
    out = output_dir(options.out)
    config = bench_config(options, len(tasks))
    if resume and (done := _complete_results(out, config)) is not None:
        if show:
            print(f"nothing to resume: {out / 'results.json'} is complete", file=sys.stderr)
        return done
    checkpoint = Checkpoint.open(out, checkpoint_meta(config, tasks), resume)
    scorer = load_scorer(options.model, options.combiner)
    # Baselines log p(Y | X) are cached by the scorer: computing them now means no policy's
    # episodes/s pays for them just because it ran first.
    scorer.baseline([t.context for t in tasks], [t.continuation for t in tasks])
    shared = {options.model: (scorer.model, scorer.tokenizer)}
    policies = [make_policy(spec, tools=tools, shared_models=shared) for spec in options.policies]
    runs: list[Any] = []
    try:
        _run_all(policies, tasks, scorer, tools, options, checkpoint, runs, show)
    except KeyboardInterrupt as exc:
        expected = len(policies) + int(options.oracle_by_kind)
        kept = f" are in {out / 'results.json'}" if runs else ""
        raise BenchInterrupted(
            f"interrupted: {len(runs)} of {expected} runs finished{kept}; continue with: "
            f"{bench_command(options)} --resume"
        ) from exc
    results = assemble_results(runs, options, len(tasks))
    if options.scorer == "self":
        results["founding"] = _founding(policies, results, scorer, show)
    write_outputs(results, out, show)
    checkpoint.remove()
    return results


def _own_model(policy: Any) -> str | None:
    """The model an ``hf:`` policy writes with (``None`` for policies without one)."""
    return getattr(policy, "model_spec", None) if hasattr(policy, "model_and_tokenizer") else None


def _founding(policies: list[Any], results: dict[str, Any], start: Any,
              show: bool) -> dict[str, Any]:
    """``{spec: founding table}`` for each ``hf:`` policy that ran: its own model reading its
    latents, against the bench's scorer (``--model``) without one."""
    from latent_env.bench.founding import founding_scores, founding_table
    from latent_env.scoring import LogLikScorer

    tables = {}
    for policy, spec in zip(policies, results["config"]["policies"]):
        records = [r for r in results["episodes"] if r["policy"] == spec]
        if not _own_model(policy) or results["policies"][spec]["failed"] or not records:
            continue
        if show:
            print(f"[self] {spec}: its own model reads its latents", file=sys.stderr)
        theta = LogLikScorer(*policy.model_and_tokenizer(), combiner=start.combiner)
        tables[spec] = founding_table(founding_scores(records, theta, start),
                                      results["config"]["seed"])
    return tables


def _complete_results(out: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The finished bench already in ``out`` (nothing to resume), or None when there is none;
    one made with other arguments is refused, not overwritten."""
    path = out / "results.json"
    if (out / CHECKPOINT_DIR / "meta.json").is_file() or not path.is_file():
        return None
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict) or results.get("complete") is not True:
        return None
    changed = config_differences(results.get("config", {}), config)
    if changed:
        raise BenchUsageError(
            f"--resume: the arguments differ from the finished bench in {out}: "
            f"{'; '.join(changed)}. Rerun with the same arguments, or choose another --out")
    return results


def _run_all(policies: list[Any], tasks: list[Any], scorer: Any, tools: dict,
             options: BenchOptions, checkpoint: Checkpoint, runs: list, show: bool) -> None:
    """Run (or read back) every policy, then the oracle by kind, appending to ``runs``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from latent_env.bench.choice import ORACLE_BY_KIND, gold_actions, run_oracle_by_kind
    from latent_env.bench.runner import EpisodeStepper, PolicyRun

    stepper = EpisodeStepper(scorer, tools, min(options.jobs, len(tasks)), prompt=options.prompt)
    stepper.warm_tools()
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not show) as progress:
        for index, policy in enumerate(policies):
            runs.append(_run_one(index, policy, tasks, stepper, options.seed, checkpoint,
                                 progress))
            write_results(assemble_results(runs, options, len(tasks), complete=False),
                          Path(options.out))
        if not options.oracle_by_kind:
            return
        index = len(policies)
        saved = checkpoint.load(index, ORACLE_BY_KIND)
        if saved is not None and saved.finished:
            runs.append(PolicyRun(ORACLE_BY_KIND, saved.records, saved.wall_s, saved.error))
            return
        # No generation: one scoring batch per width of candidates, and one unit to redo.
        bar = progress.add_task(ORACLE_BY_KIND, total=sum(len(gold_actions(t)) for t in tasks))
        run = run_oracle_by_kind(tasks, stepper, options.seed,
                                 on_batch=lambda n: progress.advance(bar, n))
        checkpoint.save_finished(index, run.spec, run.records, run.wall_s, run.error)
        runs.append(run)


def _run_one(index: int, policy: Any, tasks: list[Any], stepper: Any, seed: int,
             checkpoint: Checkpoint, progress: Any) -> Any:
    """One policy's run: read back if it finished before, continued from its saved batches if
    its state was saved with them, else run from its first episode; saved as it goes."""
    from latent_env.bench.runner import PolicyRun, run_policy

    label = policy.name.replace("[", r"\[")
    saved = checkpoint.load(index, policy.name)
    done = len(saved.records) if saved is not None else 0
    bar = progress.add_task(label, total=len(tasks), completed=done)
    if saved is not None and saved.finished:
        return PolicyRun(policy.name, saved.records, saved.wall_s, saved.error)

    def save(run: PolicyRun, first: int, state: Any) -> None:
        if state is not None and _json_ready(state):
            checkpoint.save_batch(index, run.spec, run.records[first:], first, run.wall_s, state)

    partial = PolicyRun(policy.name, saved.records, saved.wall_s) if saved is not None else None
    run = run_policy(policy, tasks, stepper, seed,
                     on_batch=lambda n: progress.advance(bar, n), resume=partial,
                     resume_state=saved.state if saved is not None else None, after_batch=save)
    if run.failed:
        progress.update(bar, description=f"{label} FAILED")
    checkpoint.save_finished(index, run.spec, run.records, run.wall_s, run.error)
    return run


def _json_ready(state: Any) -> bool:
    """A state that cannot be written only costs this policy a rerun from its first episode."""
    try:
        json.dumps(state, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
