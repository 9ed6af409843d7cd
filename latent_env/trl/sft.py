"""Supervised stages with TRL's SFTTrainer: loss on the completion (the latent) only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latent_env.trl.checkpoints import train_and_save
from latent_env.trl.cpu_head import plain_head_on_cpu


def sft_config(out_dir: Path, *, epochs: float, max_steps: int, learning_rate: float,
               batch_size: int, seed: int, report_to: list[str], max_length: int = 640,
               activation_checkpointing: bool = False, bf16: bool = False) -> Any:
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
        # Traces of different kinds differ in length (an empty latent after a long passage, a
        # program after a short story): padding random batches to their longest member cost 43%
        # more tokens on the default mix; batches of similar length cost ~5%.
        train_sampling_strategy="group_by_length",
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


def run_sft(model: Any, tokenizer: Any, records: list[dict], out_dir: Path, config: Any,
            resume: bool) -> tuple[Path, dict]:
    """Train on ``records``; returns the final checkpoint dir and the trainer's last log."""
    from datasets import Dataset
    from trl import SFTTrainer

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
