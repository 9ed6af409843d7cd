"""LT-Tuning stages 2 and 3 inside the pipeline: ``<thinking>`` tokens in the policy's traces.

Stage ``latent`` wraps the policy in :class:`~latent_env.thoughts.LatentThoughtModel` (adding the
``<thinking>`` token), runs it over the explicit traces, inserts ``<thinking>`` where its
confidence in the gold next token is below ``--latent_threshold``, and trains on that data with
the thinking embedding taken from the previous hidden state. Stage ``fusion`` rebuilds the data
with the stage-2 model at ``--fusion_threshold`` and trains with context-prediction fusion
(α = ``--fusion_alpha``). ``<thinking>`` stays in the labels, so the policy learns where to think.

The traces are the SFT stage's (:func:`~latent_env.training.data.gold_traces`, in
``--sft_trace_style``, every kind: programs, reasons and ``<done/>``), so a latent stage refines
what SFT taught instead of teaching another trace style. A stage trains ``--latent_steps`` ×
``--sft_batch_size`` traces, so only that many, drawn at random (seeded per stage), go through
the model to find where to think: the insertion pass over every SFT trace cost more than the
training itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latent_env.training.checkpoints import train_and_save
from latent_env.training.data import gold_traces, user_turn
from latent_env.training.run_context import RunContext, make_env
from latent_env.training.stages import train_tasks, trainer_flags


def chat_traces(env: Any, tokenizer: Any, tasks: list[Any],
                style: str = "echo") -> list[dict[str, str]]:
    """Explicit traces as text: the chat-formatted prompt and the task's SFT latent."""
    return [
        {
            "prompt": tokenizer.apply_chat_template(
                user_turn(env, t), tokenize=False, add_generation_prompt=True
            ),
            "completion": latent,
        }
        for t, latent in gold_traces(tasks, style)
    ]


def stage_sample(traces: list[Any], steps: int, batch_size: int, seed: int) -> list[Any]:
    """The ``steps × batch_size`` traces one stage trains on, drawn without replacement in a
    seeded order (every trace when there are fewer, or when ``steps`` is not positive)."""
    import numpy as np

    wanted = steps * batch_size
    if steps <= 0 or wanted >= len(traces):
        return traces
    picked = np.random.default_rng(seed).permutation(len(traces))[:wanted]
    return [traces[i] for i in sorted(picked)]


def load_latent_policy(model_path: str, threads: int | None) -> tuple[Any, Any]:
    from latent_env.models import load_model
    from latent_env.thoughts import LatentThoughtModel, add_thinking_token

    model, tokenizer = load_model(model_path, threads=threads)
    if not isinstance(model, LatentThoughtModel):
        model = add_thinking_token(model, tokenizer)
    model.train()
    return model, tokenizer


def run_latent_tuning(ctx: RunContext, model_path: str, stage: str,
                      tasks: list[Any]) -> tuple[Path, dict[str, Any]]:
    from datasets import Dataset
    from trl import SFTTrainer

    from latent_env.thoughts import InsertionSettings, build_stage_examples
    from latent_env.training.cpu_head import plain_head_on_cpu
    from latent_env.training.sft import sft_config
    from latent_env.training.step_timer import step_times

    args = ctx.latent
    mode, alpha, threshold, index = (
        ("hidden", args.latent_alpha, args.latent_threshold, 1) if stage == "latent"
        else ("fusion", args.fusion_alpha, args.fusion_threshold, 2)
    )
    model, tokenizer = load_latent_policy(model_path, ctx.pipeline.threads or None)
    model.set_latent_mode(mode=mode, alpha=alpha)
    traces = stage_sample(chat_traces(make_env(ctx), tokenizer, tasks, ctx.sft.sft_trace_style),
                          args.latent_steps, ctx.sft.sft_batch_size, ctx.seed + index)
    settings = InsertionSettings(max_thinking=args.latent_max_insertions, seed=ctx.seed)
    examples = build_stage_examples(model, tokenizer, traces, threshold, settings, index)
    out = ctx.run_dir / stage
    config = sft_config(
        out, epochs=1.0, max_steps=args.latent_steps, learning_rate=args.latent_learning_rate,
        batch_size=ctx.sft.sft_batch_size, seed=ctx.seed, report_to=ctx.report_to,
        **trainer_flags(ctx),
    )
    dataset = Dataset.from_list([e.as_processed() for e in examples])
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset,
                         processing_class=tokenizer)
    plain_head_on_cpu(trainer)
    result, final = train_and_save(trainer, tokenizer, out, ctx.pipeline.resume,
                                   ctx.pipeline.save_every_minutes)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    inserted = sum(len(e.thinking_positions) for e in examples)
    return final, {
        "mode": mode, "alpha": alpha, "threshold": threshold,
        "traces": len(examples), "thinking_tokens_inserted": inserted,
        "train_loss": result.training_loss,
        "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
        "steps": trainer.state.global_step,
        **step_times(trainer),
    }


def run_latent_stage(ctx: RunContext, model_path: str, stage: str = "latent") -> tuple[Path, dict]:
    return run_latent_tuning(ctx, model_path, stage, train_tasks(ctx, "sft"))


def run_fusion_stage(ctx: RunContext, model_path: str) -> tuple[Path, dict]:
    return run_latent_stage(ctx, model_path, stage="fusion")
