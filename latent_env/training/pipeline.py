"""The training pipeline behind ``train_rl.py``: stages in order, each resumable and skippable.

    sft     explicit traces: gold programs, then (optionally) self-generated latents kept when their
            likelihood gain clears a threshold (STaR / Toolformer bootstrapping)
    latent  LT-Tuning stage 2: dynamic <thinking> tokens at low-confidence positions
    fusion  LT-Tuning stage 3: context-prediction fusion of those tokens' embeddings
    rl      GRPO (default), RLOO or PPO on the environment's reward

Every stage reads the model the previous stage wrote and writes ``RUN/<stage>/final``;
``RUN/state.json``, written before any work, records the configuration, the stage running and the
finished stages, so ``--resume`` skips finished stages and restarts an interrupted one from its
last Trainer checkpoint (saved every ``save_steps`` and every ``--save_every_minutes``). The run
ends with a before/after table on the test split. ``RUN/tasks.json`` records the task ids of the
SFT, RL and eval sets, disjoint by construction (:mod:`latent_env.training.task_sets`).
"""

from __future__ import annotations

import json
import time
from typing import Any

from latent_env.devices import free_memory
from latent_env.training import latent_stages, stages
from latent_env.training.checkpoints import RunState, prune_checkpoints
from latent_env.training.config import (
    EvalArguments,
    LatentArguments,
    LoraArguments,
    PipelineArguments,
    RLArguments,
    SFTArguments,
)
from latent_env.training.run_context import (
    RunContext,
    is_main_process,
    resolve_run_dir,
    write_resolved_config,
)

#: The stages in the order ``--stages`` must keep; each ``(ctx, model_path) -> (final, metrics)``.
RUNNERS = {
    "sft": stages.run_sft_stage,
    "latent": latent_stages.run_latent_stage,
    "fusion": latent_stages.run_fusion_stage,
    "rl": stages.run_rl_stage,
}


def build_context(pipeline: PipelineArguments, sft: SFTArguments, latent: LatentArguments,
                  evaluation: EvalArguments, trl_config: Any,
                  rl: RLArguments | None = None, lora: LoraArguments | None = None,
                  flags: list[str] | None = None) -> RunContext:
    """The run's context, after every check that needs no model; writes ``config.json`` and
    ``state.json`` (with ``flags``, the command line that gave this configuration)."""
    from latent_env.training.extras import require_reporters
    from latent_env.training.lora import check_lora

    rl, lora = rl or RLArguments(), lora or LoraArguments()
    check_lora(lora, pipeline.stage_list, pipeline.algo)
    if rl.rl_sft_anchor > 0 and pipeline.algo == "ppo":
        raise ValueError("--rl_sft_anchor works with --algo grpo or rloo; PPO's trainer has no "
                         "loss hook for it (set --rl_sft_anchor 0)")
    check_rl_turns(rl, pipeline, trl_config)
    check_predictor(rl, pipeline)
    check_engines(pipeline, trl_config)
    from latent_env.training.task_sets import check_task_sets

    check_task_sets(pipeline, sft, rl, evaluation)  # a short or overlapping set writes nothing
    run_dir = resolve_run_dir(pipeline.run_dir, pipeline.resume)
    pipeline.run_dir = str(run_dir)
    fresh_needed = is_main_process() and not pipeline.resume
    if fresh_needed and run_dir.exists() and any(run_dir.iterdir()):
        raise ValueError(
            f"run directory {run_dir} is not empty; pass --resume to continue it or choose "
            "another --run_dir"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    report_to = list(getattr(trl_config, "report_to", None) or ["tensorboard"])
    require_reporters(report_to)
    ctx = RunContext(pipeline, sft, latent, evaluation, trl_config, run_dir, RunState(run_dir),
                     rl=rl, lora=lora, report_to=[r for r in report_to if r != "none"])
    if is_main_process():
        # state.json before any work, so --resume finds the run however early it is killed.
        ctx.state.begin(write_resolved_config(ctx), flags)
    return ctx


def check_rl_turns(rl: RLArguments, pipeline: PipelineArguments, trl_config: Any) -> None:
    """Multi-turn RL (``--rl_turns`` > 1) needs GRPO's rollout hook and transformers' generate."""
    if rl.rl_turns == 1:
        return
    if pipeline.algo != "grpo":
        raise ValueError(f"--rl_turns {rl.rl_turns} needs --algo grpo: TRL's "
                         f"{pipeline.algo.upper()} trainer has no rollout hook (rollout_func) to "
                         "run tools mid-completion; use --algo grpo, or --rl_turns 1")
    if getattr(trl_config, "use_vllm", False):
        raise ValueError(f"--rl_turns {rl.rl_turns} does not work with --use_vllm: multi-turn "
                         "rollouts generate with transformers, stopping at each tool block; drop "
                         "--use_vllm, or use --rl_turns 1")


def check_engines(pipeline: PipelineArguments, trl_config: Any) -> None:
    """vLLM and PPO's value model load plain causal LMs. After the latent stages the policy is a
    latent-thought model (its own architecture, a ``<thinking>`` input fed from a hidden state),
    which neither can load: refused here, before any stage runs."""
    from latent_env.models import local_model_type
    from latent_env.thoughts.config import LatentThoughtConfig

    latent = [s for s in pipeline.stage_list if s in ("latent", "fusion")]
    if local_model_type(pipeline.model) == LatentThoughtConfig.model_type:
        latent = latent or [f"--model {pipeline.model} (a latent-thought checkpoint)"]
    if not latent or "rl" not in pipeline.stage_list:
        return
    if getattr(trl_config, "use_vllm", False):
        raise ValueError(f"--use_vllm cannot generate for a latent-thought policy (from "
                         f"{', '.join(latent)}): vLLM loads neither its architecture nor its "
                         "<thinking> inputs; drop --use_vllm, or run --stages sft,rl with vLLM")
    if pipeline.algo == "ppo":
        raise ValueError(f"--algo ppo cannot train a latent-thought policy (from "
                         f"{', '.join(latent)}): its value model is a sequence classifier, which "
                         "that architecture has none of; use --algo grpo or rloo, or run "
                         "--stages sft,rl with PPO")


def check_predictor(rl: RLArguments, pipeline: PipelineArguments) -> None:
    """``--predictor self`` and the predictor loss hook into GRPO/RLOO; self scores with the
    policy, so a separate ``--reward_model`` would be ignored."""
    if rl.predictor == "self" and pipeline.reward_model:
        raise ValueError(f"--predictor self scores with the policy's own weights, so "
                         f"--reward_model {pipeline.reward_model} would be ignored; drop one")
    if pipeline.algo == "ppo" and (rl.predictor == "self" or rl.predictor_loss):
        raise ValueError("--predictor self and --predictor_loss_weight/--predictor_plain_weight "
                         "work with --algo grpo or rloo; PPO's reward model is a separate "
                         "module (use --predictor frozen and weights 0)")


def report_pruned(stage: str, count: int, freed: int) -> None:
    if count:
        print(f"[{stage}] finished; removed {count} Trainer checkpoint(s), {freed / 1e9:.2f} GB "
              "(--keep_checkpoints keeps them)")


def run_pipeline(ctx: RunContext) -> dict[str, Any]:
    model_path = ctx.pipeline.model
    started = time.perf_counter()
    stages.record_task_sets(ctx)
    for stage in ctx.pipeline.stage_list:
        done = ctx.state.finished(stage)
        if done:
            print(f"[{stage}] finished earlier: {done['model']}")
            model_path = done["model"]
            ctx.metrics[stage] = done["metrics"]
            continue
        print(f"[{stage}] starting from {model_path}")
        if is_main_process():
            ctx.state.start(stage)
        t0 = time.perf_counter()
        final, metrics = RUNNERS[stage](ctx, model_path)
        metrics["seconds"] = round(time.perf_counter() - t0, 1)
        if is_main_process():
            ctx.state.mark(stage, final, metrics)
            if not ctx.pipeline.keep_checkpoints:
                report_pruned(stage, *prune_checkpoints(ctx.run_dir, stage))
        ctx.metrics[stage] = metrics
        model_path = str(final)
        free_memory()  # the stage's trainer, optimiser and model are garbage now
    ctx.metrics["train_seconds"] = round(time.perf_counter() - started, 1)
    if not is_main_process():
        return ctx.metrics  # evaluation and run files belong to rank 0
    if ctx.evaluation.eval_per_family > 0:
        from latent_env.training.evaluate import before_after

        ctx.metrics["eval"] = before_after(ctx, model_path)
    ctx.metrics["total_seconds"] = round(time.perf_counter() - started, 1)
    (ctx.run_dir / "metrics.json").write_text(json.dumps(ctx.metrics, indent=2, default=str))
    return ctx.metrics
