"""What every training stage shares: the run's context, its directory, its environment.

The bottom of :mod:`latent_env.training`: stages, evaluation and the pipeline import it, and it
imports none of them.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from latent_env.training.checkpoints import RunState
from latent_env.training.config import (
    EvalArguments,
    LatentArguments,
    LoraArguments,
    PipelineArguments,
    RLArguments,
    SFTArguments,
)

#: Padded tokens per reward forward pass: sized for host RAM and two cores on the CPU, for an
#: accelerator's memory on a GPU (a 135M model's fp32 logits at 32k tokens are ~6 GB).
CPU_REWARD_BATCH_TOKENS = 4096
GPU_REWARD_BATCH_TOKENS = 32768


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


def on_main_then_shared(compute: Any) -> Any:
    """``compute()`` on rank 0 alone, its result sent to every rank (torch.distributed's object
    broadcast); without a process group (a plain run, or before any trainer started one), every
    process computes it. For work that is the same on every rank: sampling and screening."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return compute()
    box = [compute() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


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
            scorer=lambda: reward_scorer(ctx.pipeline),
            tools=[t for t in ctx.pipeline.tools.split(",") if t],
            reward=ctx.pipeline.reward,
        )
    return ctx.env


def reward_scorer(pipeline: PipelineArguments) -> Any:
    """The frozen reward model on this rank's accelerator, in ``--reward_dtype``, scoring
    ``--reward_batch_tokens`` per pass (0: sized for the device)."""
    from latent_env.devices import accelerator, resolve_dtype
    from latent_env.models import load_model
    from latent_env.scoring import LogLikScorer

    device = accelerator()
    model, tokenizer = load_model(pipeline.reward_model or pipeline.model,
                                  dtype=resolve_dtype(pipeline.reward_dtype, device), device=device)
    batch_tokens = pipeline.reward_batch_tokens or (
        GPU_REWARD_BATCH_TOKENS if device.type == "cuda" else CPU_REWARD_BATCH_TOKENS)
    return LogLikScorer(model, tokenizer, batch_tokens=batch_tokens)


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
