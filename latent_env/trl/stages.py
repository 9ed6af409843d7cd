"""One function per pipeline stage: ``(ctx, model_path) -> (final_model_dir, metrics)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latent_env.trl.data import gold_sft_records, rl_records, sft_records, split_tasks
from latent_env.trl.pipeline import RunContext, make_env


def train_tasks(ctx: RunContext, part: str) -> list[Any]:
    """SFT uses the first half of each family's train tasks, RL the second half.

    Keeping them apart means RL rewards are earned on prompts the SFT model never copied.
    """
    n = ctx.pipeline.train_per_family
    tasks = split_tasks(ctx.pipeline.tasks, "train", 2 * n)
    families: dict[str, list[Any]] = {}
    for task in tasks:
        families.setdefault(task.family or "", []).append(task)
    chosen = [t for group in families.values() for t in (group[:n] if part == "sft" else group[n:])]
    return chosen or tasks


def trainer_flags(ctx: RunContext) -> dict[str, Any]:
    """Memory/precision flags the supervised stages share with the RL trainer's config."""
    config = ctx.trl_config
    return {"gradient_checkpointing": bool(getattr(config, "gradient_checkpointing", False)),
            "bf16": bool(getattr(config, "bf16", False))}


def load_policy(ctx: RunContext, model_path: str) -> tuple[Any, Any]:
    from latent_env.models import checkpoint_path, load_model

    # A real path, so trainers that reload the model by name (RLOO's reference model) can.
    model, tokenizer = load_model(checkpoint_path(model_path), threads=ctx.pipeline.threads or None)
    model.train()
    return model, tokenizer


def run_sft_stage(ctx: RunContext, model_path: str) -> tuple[Path, dict]:
    from latent_env.trl.sft import run_sft, sft_config

    env = make_env(ctx)
    tasks = train_tasks(ctx, "sft")
    records = gold_sft_records(env, tasks, style=ctx.sft.sft_trace_style)
    model, tokenizer = load_policy(ctx, model_path)
    out = ctx.run_dir / "sft"
    config = sft_config(
        out, epochs=ctx.sft.sft_epochs, max_steps=ctx.sft.sft_max_steps,
        learning_rate=ctx.sft.sft_learning_rate, batch_size=ctx.sft.sft_batch_size,
        seed=ctx.seed, report_to=ctx.report_to, **trainer_flags(ctx),
    )
    final, metrics = run_sft(model, tokenizer, records, out, config, ctx.pipeline.resume)
    if ctx.sft.bootstrap_k > 0:
        final, metrics["bootstrap"] = run_bootstrap(ctx, final)
    return final, metrics


def run_bootstrap(ctx: RunContext, model_path: Path) -> tuple[Path, dict]:
    """Sample latents from the SFT model, keep those whose gain clears the bar, train on them."""
    from latent_env.trl.bootstrap import sample_and_filter
    from latent_env.trl.sft import run_sft, sft_config

    env = make_env(ctx)
    tasks = train_tasks(ctx, "rl")[: ctx.sft.bootstrap_tasks]
    kept_tasks, kept_latents, stats = sample_and_filter(
        env, str(model_path), tasks, k=ctx.sft.bootstrap_k,
        min_gain=ctx.sft.bootstrap_min_gain, seed=ctx.seed,
    )
    if not kept_tasks:
        return model_path, {**stats, "trained": False}
    model, tokenizer = load_policy(ctx, str(model_path))
    out = ctx.run_dir / "sft-bootstrap"
    config = sft_config(
        out, epochs=1.0, max_steps=-1, learning_rate=ctx.sft.sft_learning_rate / 2,
        batch_size=ctx.sft.sft_batch_size, seed=ctx.seed, report_to=ctx.report_to, **trainer_flags(ctx),
    )
    records = sft_records(env, kept_tasks, kept_latents)
    final, metrics = run_sft(model, tokenizer, records, out, config, ctx.pipeline.resume)
    return final, {**stats, **metrics, "trained": True}


def run_latent_stage(ctx: RunContext, model_path: str, stage: str = "latent") -> tuple[Path, dict]:
    from latent_env.trl.latent_stages import run_latent_tuning

    return run_latent_tuning(ctx, model_path, stage, train_tasks(ctx, "sft"))


def run_fusion_stage(ctx: RunContext, model_path: str) -> tuple[Path, dict]:
    return run_latent_stage(ctx, model_path, stage="fusion")


def run_rl_stage(ctx: RunContext, model_path: str) -> tuple[Path, dict]:
    env = make_env(ctx)
    records = rl_records(env, train_tasks(ctx, "rl"))
    model, tokenizer = load_policy(ctx, model_path)
    out = ctx.run_dir / "rl"
    config = ctx.trl_config
    config.output_dir = str(out)
    config.report_to = ctx.report_to
    if ctx.pipeline.algo == "ppo":
        from latent_env.trl.ppo import run_ppo

        return run_ppo(model_path, tokenizer, env, records, config, out, ctx.pipeline.resume)
    from latent_env.trl.rl import run_online_rl

    return run_online_rl(ctx.pipeline.algo, model, tokenizer, env, records, config, out,
                         ctx.pipeline.resume, anchor=rl_anchor(ctx, env, tokenizer))


def rl_anchor(ctx: RunContext, env: Any, tokenizer: Any) -> Any:
    """The supervised anchor for the RL stage: SFT's gold traces (the same tasks and style), or
    ``None`` when ``--rl_sft_anchor`` is 0."""
    if ctx.rl.rl_sft_anchor <= 0:
        return None
    from latent_env.trl.anchor import TraceBatches

    records = gold_sft_records(env, train_tasks(ctx, "sft"), style=ctx.sft.sft_trace_style)
    return TraceBatches(records, tokenizer, ctx.rl.rl_anchor_batch_size, ctx.rl.rl_sft_anchor,
                        seed=ctx.seed)


RUNNERS = {
    "sft": run_sft_stage,
    "latent": run_latent_stage,
    "fusion": run_fusion_stage,
    "rl": run_rl_stage,
}
