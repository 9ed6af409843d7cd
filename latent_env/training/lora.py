"""LoRA for the sft and rl stages: TRL's trainers take the adapter config (``peft_config``).

A stage trained with LoRA saves two things (:func:`save_merged`): ``final/`` is the adapter
merged into its base, a plain checkpoint that the next stage, evaluation, PPO's model loaders and
``hf:`` read as any other; ``final/adapter/`` is the adapter alone (a few MB), recording the
absolute path of the model it was trained on, which ``hf:PATH/final/adapter`` loads it onto.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latent_env.training.config import LoraArguments
from latent_env.training.extras import require_peft

#: Stages whose trainers take ``peft_config``; the latent stages train LatentThoughtModel's
#: own loop, and TRL's PPOTrainer builds its reference and value models from full copies.
LORA_STAGES = ("sft", "rl")


def check_lora(lora: LoraArguments, stages: list[str], algo: str) -> None:
    """Reject a run LoRA cannot cover, in one line saying what to change."""
    if lora.lora_r == 0:
        return
    require_peft()
    full = [s for s in stages if s not in LORA_STAGES]
    if full:
        raise ValueError(f"--lora_r applies to the sft and rl stages; {','.join(full)} train "
                         "every weight: drop them from --stages or set --lora_r 0")
    if algo == "ppo" and "rl" in stages:
        raise ValueError("--lora_r works with --algo grpo or rloo; PPO trains full copies of "
                         "the policy and value model (set --lora_r 0)")


def peft_config(lora: LoraArguments) -> Any:
    """peft's ``LoraConfig`` for a causal LM, or ``None`` when ``--lora_r`` is 0."""
    if lora.lora_r == 0:
        return None
    peft = require_peft()
    return peft.LoraConfig(
        r=lora.lora_r,
        lora_alpha=lora.lora_alpha or 2 * lora.lora_r,
        lora_dropout=lora.lora_dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )


def is_peft_model(model: Any) -> bool:
    return hasattr(model, "merge_and_unload") and hasattr(model, "peft_config")


def save_merged(model: Any, tokenizer: Any, target: Path) -> None:
    """``target/adapter`` (the adapter alone), then ``target`` (merged into the base, in place:
    the stage is over and the trainer's model is not used again)."""
    adapter = target / "adapter"
    model.save_pretrained(str(adapter))
    tokenizer.save_pretrained(str(adapter))
    merged = model.merge_and_unload()
    merged.config.use_cache = True  # saved for generation (see checkpoints.save_final)
    merged.save_pretrained(str(target))
