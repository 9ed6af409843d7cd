"""The before/after table: base model, stage checkpoints, oracle and none on the test split,
then the choice table: which kind of latent each policy wrote, per family, against the oracle
by kind (:mod:`latent_env.bench.choice`), and the founding table: each trained checkpoint reading
its own latents against the base model without one (:mod:`latent_env.bench.founding`).

Runs through the same machinery as ``latent-env bench`` (vector env, one frozen reward model,
batched scoring) and writes ``RUN/eval/results.json``, ``RUN/eval/table.md`` and the plots.
Policies act greedily, with their own latent; the continuation is never shown to them. The
trained policy is also paired, task by task, with the checkpoint its last stage started from
(:mod:`latent_env.bench.paired`): in the default pipeline, what RL added over SFT alone.
"""

from __future__ import annotations

from typing import Any

from latent_env.training.data import take_per_family
from latent_env.training.run_context import RunContext, make_env, text_tasks
from latent_env.training.task_sets import eval_share

TABLE_HEADER = (
    "| policy | mean gain (nats) [95% CI] | answer accuracy | no-latent accuracy | "
    "tool error rate | episodes |"
)


AFTER, TRAINED = "after ", "trained "  # label prefixes: a stage's checkpoint, the final policy


def policies_to_compare(ctx: RunContext, final_model: str) -> dict[str, str]:
    """``{label: policy spec}``: none, the base model, the model after SFT and after the last
    supervised stage (what RL started from), the trained model, and the oracle."""
    out = {"none (no latent)": "none", f"base ({ctx.pipeline.model})": f"hf:{ctx.pipeline.model}"}
    stages = ctx.pipeline.stage_list
    supervised = [s for s in stages if s != "rl" and ctx.state.finished(s)]
    for stage in dict.fromkeys(supervised[:1] + supervised[-1:]):
        if stage != stages[-1]:
            out[f"{AFTER}{stage}"] = f"hf:{ctx.state.finished(stage)['model']}"
    out[f"{TRAINED}({'+'.join(stages)})"] = f"hf:{final_model}"
    out["oracle (gold program)"] = "oracle"
    return out


def before_after(ctx: RunContext, final_model: str) -> dict[str, Any]:
    """Run every policy of :func:`policies_to_compare`; ``{"policies": headline per label,
    "paired": trained against the last checkpoint before it (empty if there is none)}``."""
    from latent_env.agents.registry import make_policy
    from latent_env.bench.choice import ORACLE_BY_KIND, choice_metrics, run_oracle_by_kind
    from latent_env.bench.runner import EpisodeStepper, run_policy
    from latent_env.bench.stats import summarize_policy
    from latent_env.devices import free_memory

    env = make_env(ctx)
    tasks = eval_tasks(ctx)
    stepper = EpisodeStepper(env.scorer, env.tools, min(ctx.evaluation.eval_batch_size,
                                                        len(tasks)), prompt=env.prompt)
    summaries: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    for label, spec in policies_to_compare(ctx, final_model).items():
        options = ({"max_new_tokens": ctx.evaluation.eval_max_new_tokens,
                    "batch_size": ctx.evaluation.eval_batch_size,
                    "dtype": ctx.evaluation.eval_dtype}
                   if spec.startswith("hf:") else {})
        policy = make_policy(spec, tools=env.tools, **options)
        print(f"[eval] {label}: {len(tasks)} test tasks")
        run = run_policy(policy, tasks, stepper, seed=ctx.seed)
        for record in run.records:
            record["policy"] = label
        summaries[label] = summarize_policy(label, run.records, ctx.seed, run.wall_s, run.error)
        records.extend(run.records)
        del policy  # free the policy's model before loading the next
        free_memory()
    print(f"[eval] {ORACLE_BY_KIND}: every gold kind and the empty latent on each task")
    oracle = run_oracle_by_kind(tasks, stepper, seed=ctx.seed)
    summaries[ORACLE_BY_KIND] = summarize_policy(ORACLE_BY_KIND, oracle.records, ctx.seed,
                                                 oracle.wall_s, oracle.error)
    by_label = {label: [r for r in records if r["policy"] == label] for label in summaries}
    by_label[ORACLE_BY_KIND] = oracle.records
    choice = choice_metrics(by_label, oracle.records)
    records.extend(oracle.records)
    paired = last_stage_paired(summaries, records, ctx.seed)
    founding = founding_tables(ctx, policies_to_compare(ctx, final_model), records)
    write_eval(ctx, summaries, records, paired, choice, founding)
    return {"policies": {label: _headline(s) for label, s in summaries.items()},
            "paired": paired, "choice": {label: cells.get("*") for label, cells in choice.items()},
            "founding": {label: table["all"] for label, table in founding.items()}}


def founding_tables(ctx: RunContext, specs: dict[str, str],
                    records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The founding question (:mod:`latent_env.bench.founding`) for each checkpoint the run
    trained: that checkpoint reading its own latents, against the base model without one."""
    from latent_env.bench.founding import founding_scores, founding_table
    from latent_env.devices import accelerator, resolve_dtype
    from latent_env.models import load_model
    from latent_env.scoring import LogLikScorer

    trained = {label: spec[3:] for label, spec in specs.items()
               if label.startswith((AFTER, TRAINED)) and spec.startswith("hf:")}
    if not trained:
        return {}
    combiner = ctx.env.scorer.combiner
    device = accelerator()
    dtype = resolve_dtype(ctx.evaluation.eval_dtype, device)
    start = LogLikScorer(*load_model(ctx.pipeline.model, dtype, device=device), combiner=combiner)
    tables = {}
    for label, path in trained.items():
        played = [r for r in records if r["policy"] == label]
        if not played:
            continue
        print(f"[eval] {label}: its own model reading its own latents")
        theta = LogLikScorer(*load_model(path, dtype, device=device), combiner=combiner)
        tables[label] = founding_table(founding_scores(played, theta, start), ctx.seed)
        del theta
    return tables


def eval_tasks(ctx: RunContext) -> list[Any]:
    """The held-out tasks: ``eval_per_family`` test tasks of each ``--tasks`` family
    (:func:`eval_share`), and as many of each ``--text`` family from its test passages."""
    per_family = ctx.evaluation.eval_per_family
    return (eval_share(ctx.pipeline.tasks, per_family)
            + take_per_family(text_tasks(ctx, "test"), per_family))


def last_stage_paired(summaries: dict[str, Any], records: list[dict[str, Any]],
                      seed: int) -> dict[str, Any]:
    """The trained policy against the checkpoint its last stage started from, task by task:
    what that stage (RL, in the default pipeline) added over SFT alone. Empty if there is none."""
    from latent_env.bench.paired import paired_against

    labels = list(summaries)
    before = [label for label in labels if label.startswith(AFTER)]
    trained = [label for label in labels if label.startswith(TRAINED)]
    if not before or not trained or any(summaries[x]["failed"] for x in (before[-1], trained[0])):
        return {}
    diff = paired_against(before[-1], [trained[0]], records, seed)[trained[0]]
    return {"baseline": before[-1], "candidate": trained[0], **diff}


def scoring_setup(ctx: RunContext) -> dict[str, str]:
    """What the eval's gains were measured with, as ``latent-env bench`` records it (its
    ``--model``, ``--combiner``, ``--prompt``, ``--tools``), so ``compare`` can check it."""
    from latent_env.context import COMBINERS

    scorer, prompt = ctx.env.scorer, ctx.env.prompt
    combiner = next((n for n, c in COMBINERS.items() if c is scorer.combiner), "custom")
    return {"model": ctx.pipeline.reward_model or ctx.pipeline.model, "combiner": combiner,
            "prompt": prompt if isinstance(prompt, str) else "custom",
            "tools": ctx.pipeline.tools}


def write_eval(ctx: RunContext, summaries: dict[str, Any], records: list[dict[str, Any]],
               paired: dict[str, Any] | None = None, choice: dict[str, Any] | None = None,
               founding: dict[str, Any] | None = None) -> None:
    from latent_env.bench.choice import choice_markdown, print_choice_table
    from latent_env.bench.common import write_json_atomic
    from latent_env.bench.founding import founding_markdown
    from latent_env.bench.paired import describe
    from latent_env.bench.plots import write_plots
    from latent_env.bench.table import print_tables

    out = ctx.run_dir / "eval"
    out.mkdir(parents=True, exist_ok=True)
    payload = {"policies": summaries, "paired": paired or {}, "choice": choice or {},
               "founding": founding or {}, "episodes": records,
               "config": {"tasks": ctx.pipeline.tasks, "split": "test",
                          "per_family": ctx.evaluation.eval_per_family, **scoring_setup(ctx)}}
    write_json_atomic(out / "results.json", payload, default=str)  # as bench writes its own
    footer = describe(paired["baseline"], paired["candidate"], paired) if paired else ""
    table = markdown_table(summaries)
    (out / "table.md").write_text(table + (f"\n{footer}\n" if footer else ""))
    (out / "choice.md").write_text(choice_markdown(choice or {}))
    if founding:
        (out / "founding.md").write_text(founding_markdown(founding))
    write_plots(summaries, records, out)
    print_tables(summaries)
    if footer:
        print(footer)
    if choice:
        print_choice_table(choice)
    if founding:
        print("\nThe trained models reading their own latents, against the base model without "
              "one (RUN/eval/founding.md):")
        print(founding_markdown(founding))


def markdown_table(summaries: dict[str, Any]) -> str:
    lines = [TABLE_HEADER, "|---|---|---|---|---|---|"]
    for label, s in summaries.items():
        ci = s.get("gain_ci95") or [None, None]
        gain = _num(s.get("mean_gain_nats"))
        lines.append(
            f"| {label} | {gain} [{_num(ci[0])}, {_num(ci[1])}] | "
            f"{_pct(s.get('answer_accuracy'))} | {_pct(s.get('answer_accuracy_without_latent'))} "
            f"| {_pct(s.get('tool_error_rate'))} | {s.get('episodes')} |"
        )
    return "\n".join(lines) + "\n"


def _headline(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("episodes", "mean_gain_nats", "gain_ci95", "answer_accuracy",
            "answer_accuracy_without_latent", "tool_error_rate", "failed", "error")
    return {k: summary.get(k) for k in keys}


def _num(value: float | None) -> str:
    from latent_env.bench.table import fmt_num

    return fmt_num(value, digits=2)


def _pct(value: float | None) -> str:
    from latent_env.bench.table import fmt_pct

    return fmt_pct(value, digits=0)
