"""Supervised stages with TRL's SFTTrainer: loss on the completion (the latent) only."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

from latent_env.training.checkpoints import train_and_save
from latent_env.training.cpu_head import plain_head_on_cpu
from latent_env.training.step_timer import step_times


def sft_config(out_dir: Path, *, epochs: float, max_steps: int, learning_rate: float,
               batch_size: int, seed: int, report_to: list[str], max_length: int = 640,
               activation_checkpointing: bool = False, bf16: bool = False,
               micro_batch_size: int = 0, logging_steps: float = 5, save_strategy: str = "steps",
               save_steps: float = 20, save_total_limit: int | None = 1,
               use_cpu: bool = False) -> Any:
    """TRL's SFTConfig for one supervised stage: ``batch_size`` traces a step, in forward passes
    of ``micro_batch_size`` (0: one pass) ordered by :func:`micro_batch_order`. Logging and
    checkpointing follow the arguments (the pipeline passes the preset's and the flags'); the
    device is the RL trainer's (``--use_cpu``, else the accelerator where there is one)."""
    from trl import SFTConfig

    micro = micro_batch_size or batch_size
    if batch_size % micro:
        raise ValueError(f"micro_batch_size {micro} must divide batch_size {batch_size}")
    return SFTConfig(
        output_dir=str(out_dir),
        num_train_epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=5,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=batch_size // micro,
        # With micro-batches, run_sft draws and orders the steps itself (micro_batch_order).
        train_sampling_strategy="sequential" if micro < batch_size else "random",
        logging_steps=logging_steps,
        save_strategy=save_strategy,
        save_steps=save_steps,
        save_total_limit=save_total_limit,
        report_to=report_to,
        seed=seed,
        max_length=max_length,
        completion_only_loss=True,
        bf16=bf16,
        activation_checkpointing=activation_checkpointing,
        use_cpu=use_cpu or _no_accelerator(),
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def micro_batch_order(records: list[dict], step_size: int, seed: int) -> list[dict]:
    """``records`` in random steps of ``step_size``, each step sorted by length.

    Cut into micro-batches in this order, a step's short traces pad among themselves and its long
    ones likewise; transformers sums the step's token losses and divides by its token count, so
    the gradient is that of one random batch. On the default mix (624 traces, 201 tokens on
    average) random batches of 8 pad to 1.43x the tokens the traces hold; micro-batches of 2
    within them pad to 1.05x. Batches of similar length across the whole set pad less (1.01x),
    but then each step holds one kind of trace: twelve steps of nothing but ``<done/>`` took a
    full optimiser step each, and the program families lost half their gain
    (``benchmarks/RESULTS.md``, "Mixed-kind SFT").
    """
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(records))
    steps = [order[i:i + step_size] for i in range(0, len(order), step_size)]
    return [records[i] for step in steps
            for i in sorted(step, key=lambda i: (record_size(records[i]), i))]


def record_size(record: dict) -> int:
    """How long a record is: its tokens when pre-tokenised (the latent stages' ``input_ids``),
    else the characters of its chat turns."""
    if "input_ids" in record:
        return len(record["input_ids"])
    return sum(len(turn["content"]) for turn in record["prompt"] + record["completion"])


def run_sft(model: Any, tokenizer: Any, records: list[dict], out_dir: Path, config: Any,
            resume: bool, peft_config: Any = None,
            save_every_minutes: float = 0.0,
            loss_terms: list[Any] | None = None) -> tuple[Path, dict]:
    """Train on ``records`` (checkpointing as :func:`train_and_save` does); returns the final
    checkpoint dir and the trainer's last log. With ``peft_config``
    (:func:`latent_env.training.lora.peft_config`) only LoRA adapters train; ``loss_terms``
    (:mod:`latent_env.training.loss_terms`) are added to every step's loss."""
    from datasets import Dataset
    from trl import SFTTrainer

    from latent_env.training.loss_terms import with_loss_terms

    examples = len(records)
    if config.train_sampling_strategy == "sequential":  # sft_config with micro-batches
        # The trainer walks this list in order, so each epoch gets its own draw of steps.
        step = config.per_device_train_batch_size * config.gradient_accumulation_steps
        passes = max(1, math.ceil(config.num_train_epochs))
        records = [r for e in range(passes) for r in micro_batch_order(records, step, config.seed + e)]
        config = copy.copy(config)  # the caller's config keeps its epochs
        config.num_train_epochs /= passes

    trainer = with_loss_terms(SFTTrainer)(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    trainer.loss_terms = list(loss_terms or [])
    plain_head_on_cpu(trainer)
    result, final = train_and_save(trainer, tokenizer, out_dir, resume, save_every_minutes)
    history = [h for h in trainer.state.log_history if "loss" in h]
    logged = {name: [h[f"predictor/{name}"] for h in trainer.state.log_history
                     if f"predictor/{name}" in h] for name in ("nll", "plain_nll")}
    return final, {
        **{f"predictor_{name}": {"first": values[0], "last": values[-1]}
           for name, values in logged.items() if values},
        "train_loss": result.training_loss,
        "first_loss": history[0]["loss"] if history else None,
        "last_loss": history[-1]["loss"] if history else None,
        "steps": trainer.state.global_step,
        "examples": examples,
        **step_times(trainer),
    }


def _no_accelerator() -> bool:
    import torch

    return not torch.cuda.is_available()
