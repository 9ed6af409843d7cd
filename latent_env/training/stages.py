"""One function per pipeline stage: ``(ctx, model_path) -> (final_model_dir, metrics)``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latent_env.training.data import (
    gold_sft_records,
    gold_traces,
    rl_records,
    sft_records,
    take_per_family,
    trace_kinds,
)
from latent_env.training.lora import peft_config
from latent_env.training.run_context import (
    RunContext,
    StageError,
    is_main_process,
    make_env,
    on_main_then_shared,
    text_tasks,
)
from latent_env.training.task_sets import (
    check_disjoint,
    family_shares,
    needed_shares,
    train_share,
    write_task_sets,
)


def train_tasks(ctx: RunContext, part: str) -> list[Any]:
    """SFT's or RL's share of the train split of ``--tasks`` (:func:`train_share`: of each family
    the first n tasks, or the next n), with ``--text`` tasks (from its train passages) shared the
    same way and mixed in.

    Keeping them apart means RL rewards are earned on prompts the SFT model never copied.
    """
    chosen = train_share(ctx.pipeline.tasks, part, ctx.pipeline.train_per_family,
                         ctx.pipeline.per_kind())
    text = text_tasks(ctx, "train")
    per_mode = ctx.pipeline.text_per_mode
    return take_per_family(chosen + family_shares(text, lambda _: per_mode, part), len(chosen))


def record_task_sets(ctx: RunContext) -> None:
    """Write ``RUN/tasks.json``: the ids of the tasks each set of the run holds (sft, rl, eval;
    ``--text`` tasks included), after checking again that no two sets share a task."""
    from latent_env.training.evaluate import eval_tasks

    if not is_main_process():
        return
    sets = {part: train_tasks(ctx, part) for part in needed_shares(ctx.pipeline, ctx.sft, ctx.rl)}
    if ctx.evaluation.eval_per_family > 0:
        sets["eval"] = eval_tasks(ctx)
    try:
        check_disjoint(sets, "task sets")
    except ValueError as exc:
        raise StageError(str(exc)) from None
    write_task_sets(ctx.run_dir, sets, ctx.pipeline.tasks)


def record_task_ids(out: Path, tasks: list[Any]) -> None:
    """``OUT/tasks.json``: the id and family of every task a stage trains on, so a run shows
    which tasks it saw (and that evaluation never saw them)."""
    if is_main_process():
        out.mkdir(parents=True, exist_ok=True)
        listed = [{"id": t.id, "family": t.family} for t in tasks]
        (out / "tasks.json").write_text(json.dumps(listed, indent=1))


def trainer_flags(ctx: RunContext) -> dict[str, Any]:
    """Memory, precision, logging and checkpoint settings the supervised stages take from the RL
    trainer's config, where the preset and the command line put them (``--save_steps``, …)."""
    config = ctx.trl_config
    saving = {name: getattr(config, name) for name in
              ("logging_steps", "save_strategy", "save_steps", "save_total_limit")
              if hasattr(config, name)}
    return {"activation_checkpointing": bool(getattr(config, "activation_checkpointing", False)),
            "bf16": bool(getattr(config, "bf16", False)),
            "use_cpu": bool(getattr(config, "use_cpu", False)), **saving}


def load_policy(ctx: RunContext, model_path: str) -> tuple[Any, Any]:
    from latent_env.models import checkpoint_path, load_model

    # A real path, so trainers that reload the model by name (RLOO's reference model) can, and
    # absolute, so a LoRA adapter records a base that loads from any working directory.
    path = checkpoint_path(model_path)
    path = str(Path(path).resolve()) if Path(path).exists() else path
    model, tokenizer = load_model(path, threads=ctx.pipeline.threads or None)
    model.train()
    return model, tokenizer


def run_sft_stage(ctx: RunContext, model_path: str) -> tuple[Path, dict]:
    from latent_env.training.sft import run_sft, sft_config

    env = make_env(ctx)
    tasks = train_tasks(ctx, "sft")
    out = ctx.run_dir / "sft"
    record_task_ids(out, tasks)
    records = gold_sft_records(env, tasks, style=ctx.sft.sft_trace_style)
    kinds = trace_kinds(records)
    print(f"[sft] {len(records)} traces: " + ", ".join(f"{n} {k}" for k, n in kinds.items()))
    model, tokenizer = load_policy(ctx, model_path)
    config = sft_config(
        out, epochs=ctx.sft.sft_epochs, max_steps=ctx.sft.sft_max_steps,
        learning_rate=ctx.sft.sft_learning_rate, batch_size=ctx.sft.sft_batch_size,
        seed=ctx.seed, report_to=ctx.report_to, micro_batch_size=ctx.sft.sft_micro_batch_size,
        **trainer_flags(ctx),
    )
    final, metrics = run_sft(model, tokenizer, records, out, config, ctx.pipeline.resume,
                             peft_config=peft_config(ctx.lora),
                             save_every_minutes=ctx.pipeline.save_every_minutes,
                             loss_terms=sft_prediction_terms(
                                 ctx, env, lambda: gold_traces(tasks, ctx.sft.sft_trace_style),
                                 tokenizer))
    metrics["traces"] = kinds
    if ctx.sft.bootstrap_k > 0:
        final, metrics["bootstrap"] = run_bootstrap(ctx, final)
    return final, metrics


def run_bootstrap(ctx: RunContext, model_path: Path) -> tuple[Path, dict]:
    """Sample latents from the SFT model, keep those whose gain clears the bar, train on them."""
    from latent_env.training.bootstrap import sample_and_filter
    from latent_env.training.sft import run_sft, sft_config

    env = make_env(ctx)
    tasks = train_tasks(ctx, "rl")[: ctx.sft.bootstrap_tasks]
    kept_tasks, kept_latents, stats = on_main_then_shared(lambda: sample_and_filter(
        env, str(model_path), tasks, k=ctx.sft.bootstrap_k,
        min_gain=ctx.sft.bootstrap_min_gain, seed=ctx.seed,
        max_new_tokens=ctx.evaluation.eval_max_new_tokens,
    ))
    if not kept_tasks:
        return model_path, {**stats, "trained": False}
    model, tokenizer = load_policy(ctx, str(model_path))
    out = ctx.run_dir / "sft-bootstrap"
    config = sft_config(
        out, epochs=1.0, max_steps=-1, learning_rate=ctx.sft.sft_learning_rate / 2,
        batch_size=ctx.sft.sft_batch_size, seed=ctx.seed, report_to=ctx.report_to,
        micro_batch_size=ctx.sft.sft_micro_batch_size, **trainer_flags(ctx),
    )
    records = sft_records(env, kept_tasks, kept_latents)
    terms = sft_prediction_terms(ctx, env, lambda: list(zip(kept_tasks, kept_latents)),
                                 tokenizer)
    final, metrics = run_sft(model, tokenizer, records, out, config, ctx.pipeline.resume,
                             peft_config=peft_config(ctx.lora),
                             save_every_minutes=ctx.pipeline.save_every_minutes,
                             loss_terms=terms)
    return final, {**stats, **metrics, "trained": True}


def sft_prediction_terms(ctx: RunContext, env: Any, traces: Callable[[], list[tuple[Any, str]]],
                         tokenizer: Any) -> list[Any]:
    """``--sft_predictor_loss_weight`` and ``--sft_predictor_plain_weight``'s loss term on
    ``traces()`` ((task, latent action) pairs, built only when a weight is set): each action runs
    once through the tools, and the model is taught Y given c(X, L), and Y given X."""
    weight, plain = ctx.sft.sft_predictor_loss_weight, ctx.sft.sft_predictor_plain_weight
    if weight <= 0 and plain <= 0:
        return []
    pairs = traces()
    if not pairs:
        return []
    from latent_env.context import get_combiner
    from latent_env.training.predictor_loss import FixedTriples, PredictionBatches

    combine = get_combiner(env.combiner)
    latents = env.engine.latents([action for _, action in pairs])
    triples = [(t.context, combine(t.context, lat.text), t.continuation)
               for (t, _), lat in zip(pairs, latents)]
    return [PredictionBatches(FixedTriples(triples), tokenizer, weight, plain_weight=plain,
                              seed=ctx.seed)]


def run_rl_stage(ctx: RunContext, model_path: str) -> tuple[Path, dict]:
    env = make_env(ctx)
    out = ctx.run_dir / "rl"
    tasks, screening = rl_prompt_tasks(ctx, env, model_path, out)
    record_task_ids(out, tasks)
    records = rl_records(env, tasks)
    model, tokenizer = load_policy(ctx, model_path)
    config = ctx.trl_config
    config.output_dir = str(out)
    config.report_to = ctx.report_to
    if ctx.pipeline.algo == "ppo":
        from latent_env.training.ppo import run_ppo

        final, metrics = run_ppo(model, model_path, tokenizer, env, records, config, out,
                                 ctx.pipeline.resume)
    else:
        from latent_env.training.rl import run_online_rl

        final, metrics = run_online_rl(ctx.pipeline.algo, model, tokenizer, env, records, config,
                                       out, ctx.pipeline.resume,
                                       anchor=rl_anchor(ctx, env, tokenizer),
                                       peft_config=peft_config(ctx.lora),
                                       save_every_minutes=ctx.pipeline.save_every_minutes,
                                       turns=ctx.rl.rl_turns, rl=ctx.rl)
    if screening:
        metrics["screening"] = screening
    return final, metrics


def rl_prompt_tasks(ctx: RunContext, env: Any, model_path: str,
                    out: Path) -> tuple[list[Any], dict | None]:
    """The RL stage's tasks: the whole RL half, or with ``--rl_screen_per_family N`` the first N
    of each family that the starting policy answers wrong. The screened ids are saved in
    ``RUN/rl/screening.json`` so a resumed run trains on the same prompts without screening again.
    """
    tasks = train_tasks(ctx, "rl")
    per_family = ctx.rl.rl_screen_per_family
    if per_family <= 0:
        return tasks, None
    candidates = take_per_family(tasks, per_family)
    saved = out / "screening.json"
    if ctx.pipeline.resume and saved.is_file():
        screening = json.loads(saved.read_text())
    else:
        from latent_env.training.screen import greedy_policy, screen_for_misses

        length = getattr(ctx.trl_config, "max_completion_length", None) or getattr(
            ctx.trl_config, "response_length", 160)
        def screen() -> tuple[list[Any], dict]:
            print(f"[rl] screening {len(candidates)} prompts with the starting policy")
            return screen_for_misses(env, greedy_policy(model_path, length), candidates)

        kept, screening = on_main_then_shared(screen)
        screening["kept_ids"] = [t.id for t in kept]
        if is_main_process():
            out.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(screening, indent=2))
    kept_ids = set(screening["kept_ids"])
    if not kept_ids:
        raise StageError(
            f"--rl_screen_per_family {per_family}: the starting policy answered all "
            f"{screening['screened']} screened prompts right, so RL has nothing to learn from; "
            "screen more prompts or set --rl_screen_per_family 0")
    chosen = [t for t in candidates if t.id in kept_ids]
    print(f"[rl] training on {len(chosen)} of {screening['screened']} screened prompts, those the "
          "starting policy answers wrong")
    summary = {k: v for k, v in screening.items() if k != "kept_ids"}
    return chosen, summary


def rl_anchor(ctx: RunContext, env: Any, tokenizer: Any) -> Any:
    """The supervised anchor for the RL stage: SFT's gold traces (the same tasks and style), or
    ``None`` when ``--rl_sft_anchor`` is 0."""
    if ctx.rl.rl_sft_anchor <= 0:
        return None
    from latent_env.training.anchor import TraceBatches

    records = gold_sft_records(env, train_tasks(ctx, "sft"), style=ctx.sft.sft_trace_style)
    return TraceBatches(records, tokenizer, ctx.rl.rl_anchor_batch_size, ctx.rl.rl_sft_anchor,
                        seed=ctx.seed)
