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
SFT, RL and eval sets, disjoint by construction (:mod:`latent_env.trl.task_sets`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from latent_env.trl.checkpoints import RunState, prune_checkpoints
from latent_env.trl.config import (
    EvalArguments,
    LatentArguments,
    LoraArguments,
    PipelineArguments,
    RLArguments,
    SFTArguments,
)


class StageError(RuntimeError):
    """A stage cannot go on with what it was given; finished stages stay saved for ``--resume``."""


@dataclass
class RunContext:
    """Everything the stages share: arguments, the run directory, the environment."""

    pipeline: PipelineArguments
    sft: SFTArguments
    latent: LatentArguments
    evaluation: EvalArguments
    trl_config: Any
    run_dir: Path
    state: RunState
    rl: RLArguments = field(default_factory=RLArguments)
    lora: LoraArguments = field(default_factory=LoraArguments)
    env: Any = None
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    metrics: dict[str, Any] = field(default_factory=dict)
    text_cache: dict[str, list[Any]] = field(default_factory=dict)  # --text tasks by split

    @property
    def seed(self) -> int:
        return int(getattr(self.trl_config, "seed", 0))


def is_main_process() -> bool:
    """Rank 0 under ``accelerate launch`` (or a plain run): it alone writes run files."""
    return int(os.environ.get("RANK", "0")) == 0


def resolve_run_dir(run_dir: str, resume: bool, root: Path = Path("runs")) -> Path:
    """An explicit directory, else the newest run under ``runs/`` (resume) or a new dated one."""
    if run_dir:
        return Path(run_dir)
    if resume:
        runs = sorted(p for p in root.glob("*") if (p / "state.json").is_file())
        if not runs:
            raise ValueError(f"--resume: no run with a state.json under {root}/; pass --run_dir")
        return runs[-1]
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Every rank must pick the same name; they share the launcher as parent process.
        return root / f"{time.strftime('%Y%m%d')}-launch{os.getppid()}"
    return root / time.strftime("%Y%m%d-%H%M%S")


def build_context(pipeline: PipelineArguments, sft: SFTArguments, latent: LatentArguments,
                  evaluation: EvalArguments, trl_config: Any,
                  rl: RLArguments | None = None, lora: LoraArguments | None = None,
                  flags: list[str] | None = None) -> RunContext:
    """The run's context, after every check that needs no model; writes ``config.json`` and
    ``state.json`` (with ``flags``, the command line that gave this configuration)."""
    from latent_env.trl.extras import require_reporters
    from latent_env.trl.lora import check_lora

    rl, lora = rl or RLArguments(), lora or LoraArguments()
    check_lora(lora, pipeline.stage_list, pipeline.algo)
    if rl.rl_sft_anchor > 0 and pipeline.algo == "ppo":
        raise ValueError("--rl_sft_anchor works with --algo grpo or rloo; PPO's trainer has no "
                         "loss hook for it (set --rl_sft_anchor 0)")
    from latent_env.trl.task_sets import check_task_sets

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


def resolved_config(pipeline: Any, sft: Any, latent: Any, evaluation: Any, rl: Any,
                    trl_config: Any, lora: Any = None) -> dict[str, Any]:
    """Every option after the preset and the flags: what ``config.json`` and
    ``train_rl.py --print_config`` show."""
    return {
        "pipeline": asdict(pipeline),
        "sft": asdict(sft),
        "latent": asdict(latent),
        "eval": asdict(evaluation),
        "rl": asdict(rl),
        "lora": asdict(lora or LoraArguments()),
        "trl": trl_config.to_dict() if hasattr(trl_config, "to_dict") else {},
    }


def write_resolved_config(ctx: RunContext) -> dict[str, Any]:
    resolved = resolved_config(ctx.pipeline, ctx.sft, ctx.latent, ctx.evaluation, ctx.rl,
                               ctx.trl_config, ctx.lora)
    (ctx.run_dir / "config.json").write_text(json.dumps(resolved, indent=2, default=str))
    return resolved


def make_env(ctx: RunContext) -> Any:
    """The environment that pays the reward: the configured tools, and a reward model that is a
    separate copy of ``--reward_model`` (default: the starting model), loaded on first use and
    never trained (scoring runs under ``torch.inference_mode``)."""
    from latent_env.env import LatentEnv

    if ctx.env is None:
        ctx.env = LatentEnv(
            tasks=None,
            model=ctx.pipeline.reward_model or ctx.pipeline.model,
            tools=[t for t in ctx.pipeline.tools.split(",") if t],
            reward=ctx.pipeline.reward,
        )
    return ctx.env


def text_tasks(ctx: RunContext, split: str) -> list[Any]:
    """Tasks cut from ``--text`` in the passages ``split`` owns (none without ``--text``).

    The train split gives ``2 × text_per_mode`` per mode (SFT takes the first half of each family,
    RL the second); the test split ``eval_per_family`` per mode. High-loss positions are found with
    the reward model, so a run cuts the same tasks on resume. Cached on ``ctx``.
    """
    if not ctx.pipeline.text:
        return []
    if split not in ctx.text_cache:
        from latent_env.tasks.corpus import corpus_tasks, read_texts

        n = (2 * ctx.pipeline.text_per_mode if split == "train"
             else ctx.evaluation.eval_per_family)
        scorer = make_env(ctx).scorer
        print(f"[text] cutting up to {n} tasks per mode from the {split} passages of "
              f"{ctx.pipeline.text}")
        tasks = corpus_tasks(
            read_texts(ctx.pipeline.text), split, numbers=n, random=n, loss=n, scorer=scorer,
            tokenizer=scorer.tokenizer, seed=ctx.seed, id_prefix="text")
        # Families of their own (text:numbers, text:random, text:loss), so the tables show the
        # user's text apart from the bundled corpus families.
        ctx.text_cache[split] = [replace(t, family=f"text:{t.meta['mode']}") for t in tasks]
    return ctx.text_cache[split]


def report_pruned(stage: str, count: int, freed: int) -> None:
    if count:
        print(f"[{stage}] finished; removed {count} Trainer checkpoint(s), {freed / 1e9:.2f} GB "
              "(--keep_checkpoints keeps them)")


def run_pipeline(ctx: RunContext) -> dict[str, Any]:
    from latent_env.trl import stages

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
        final, metrics = stages.RUNNERS[stage](ctx, model_path)
        metrics["seconds"] = round(time.perf_counter() - t0, 1)
        if is_main_process():
            ctx.state.mark(stage, final, metrics)
            if not ctx.pipeline.keep_checkpoints:
                report_pruned(stage, *prune_checkpoints(ctx.run_dir, stage))
        ctx.metrics[stage] = metrics
        model_path = str(final)
    ctx.metrics["train_seconds"] = round(time.perf_counter() - started, 1)
    if not is_main_process():
        return ctx.metrics  # evaluation and run files belong to rank 0
    if ctx.evaluation.eval_per_family > 0:
        from latent_env.trl.evaluate import before_after

        ctx.metrics["eval"] = before_after(ctx, model_path)
    ctx.metrics["total_seconds"] = round(time.perf_counter() - started, 1)
    (ctx.run_dir / "metrics.json").write_text(json.dumps(ctx.metrics, indent=2, default=str))
    return ctx.metrics
