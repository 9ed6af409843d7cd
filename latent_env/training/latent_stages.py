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
    from latent_env.thoughts import InsertionSettings, build_stage_examples
    from latent_env.training.sft import run_sft, sft_config

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
    # SFT's micro-batches (length-sorted within each step): a row's k thoughts cost k + 1
    # decoder passes, each as wide as the batch's longest segment, so rows of similar length
    # waste fewer filler columns (benchmarks/RESULTS.md, "Latent-stage step time").
    config = sft_config(
        out, epochs=1.0, max_steps=args.latent_steps, learning_rate=args.latent_learning_rate,
        batch_size=ctx.sft.sft_batch_size, seed=ctx.seed, report_to=ctx.report_to,
        micro_batch_size=ctx.sft.sft_micro_batch_size, **trainer_flags(ctx),
    )
    final, metrics = run_sft(model, tokenizer, [e.as_processed() for e in examples], out,
                             config, ctx.pipeline.resume,
                             save_every_minutes=ctx.pipeline.save_every_minutes)
    metrics.pop("examples", None)
    inserted = sum(len(e.thinking_positions) for e in examples)
    return final, {
        "mode": mode, "alpha": alpha, "threshold": threshold,
        "traces": len(examples), "thinking_tokens_inserted": inserted, **metrics,
    }


def run_latent_stage(ctx: RunContext, model_path: str, stage: str = "latent") -> tuple[Path, dict]:
    return run_latent_tuning(ctx, model_path, stage, train_tasks(ctx, "sft"))


def run_fusion_stage(ctx: RunContext, model_path: str) -> tuple[Path, dict]:
    return run_latent_stage(ctx, model_path, stage="fusion")
