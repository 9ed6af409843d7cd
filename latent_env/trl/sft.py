"""Supervised stages with TRL's SFTTrainer: loss on the completion (the latent) only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latent_env.trl.checkpoints import train_and_save
from latent_env.trl.cpu_head import plain_head_on_cpu


def sft_config(out_dir: Path, *, epochs: float, max_steps: int, learning_rate: float,
               batch_size: int, seed: int, report_to: list[str], max_length: int = 640,
               activation_checkpointing: bool = False, bf16: bool = False,
               length_buckets: bool = False) -> Any:
    """TRL's SFTConfig for one supervised stage; ``length_buckets`` batches traces of similar
    length together, in a shuffled order (:func:`length_buckets_order`)."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(out_dir),
        num_train_epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=5,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=1,
        # With length buckets, run_sft orders the records itself (see length_buckets).
        train_sampling_strategy="sequential" if length_buckets else "random",
        logging_steps=5,
        save_strategy="steps",
        save_steps=20,
        save_total_limit=1,
        report_to=report_to,
        seed=seed,
        max_length=max_length,
        completion_only_loss=True,
        bf16=bf16,
        activation_checkpointing=activation_checkpointing,
        use_cpu=_use_cpu(),
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def length_buckets_order(records: list[dict], batch_size: int, seed: int) -> list[dict]:
    """``records`` in batches of similar length, the batches in a seeded random order.

    Traces of different kinds differ in length (``<done/>`` after a long passage, a program
    after a short story): padding random batches of the default mix to their longest member cost
    43% more tokens than the traces hold, batches of similar length ~5%. transformers'
    ``group_by_length`` sampler saves the same padding but walks each mega-batch from the longest
    trace to the shortest, so kinds of similar length arrive in runs; here only the members of a
    batch are alike, and the batches come in random order.
    """
    import numpy as np

    def chars(record: dict) -> int:
        return sum(len(turn["content"]) for turn in record["prompt"] + record["completion"])

    by_length = sorted(range(len(records)), key=lambda i: (chars(records[i]), i))
    batches = [by_length[i:i + batch_size] for i in range(0, len(by_length), batch_size)]
    # The data loader cuts the list every batch_size records, so a short batch must stay last.
    short = batches.pop() if batches and len(batches[-1]) < batch_size else []
    order = np.random.default_rng(seed).permutation(len(batches))
    return [records[i] for b in order for i in batches[int(b)]] + [records[i] for i in short]


def run_sft(model: Any, tokenizer: Any, records: list[dict], out_dir: Path, config: Any,
            resume: bool) -> tuple[Path, dict]:
    """Train on ``records``; returns the final checkpoint dir and the trainer's last log."""
    from datasets import Dataset
    from trl import SFTTrainer

    if config.train_sampling_strategy == "sequential":  # sft_config(length_buckets=True)
        records = length_buckets_order(records, config.per_device_train_batch_size, config.seed)

    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
    )
    plain_head_on_cpu(trainer)
    result, final = train_and_save(trainer, tokenizer, out_dir, resume)
    history = [h for h in trainer.state.log_history if "loss" in h]
    return final, {
        "train_loss": result.training_loss,
        "first_loss": history[0]["loss"] if history else None,
        "last_loss": history[-1]["loss"] if history else None,
        "steps": trainer.state.global_step,
        "examples": len(records),
    }


def _use_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()
