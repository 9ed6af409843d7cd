"""Run-directory bookkeeping: finished-stage markers, last checkpoints, final models."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from latent_env.training.lora import is_peft_model, save_merged

STATE_FILE = "state.json"


def last_checkpoint(out_dir: Path) -> Path | None:
    """The newest ``checkpoint-N`` directory a Trainer left in ``out_dir``, if any."""
    found = [p for p in out_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    complete = [p for p in found if (p / "trainer_state.json").is_file()]
    return max(complete, key=lambda p: int(p.name.split("-")[-1])) if complete else None


def prune_checkpoints(run_dir: Path, stage: str) -> tuple[int, int]:
    """Delete the Trainer checkpoints a finished stage left in ``RUN/<stage>`` and
    ``RUN/<stage>-*`` (SFT's bootstrap round); returns (checkpoints, bytes) freed.

    A checkpoint holds the model and its optimiser state, three times the model's size, and
    ``--resume`` never reads it once the stage is marked finished: for the default model it is
    1.6 GB of a stage's 2.1 GB.
    """
    stage_dirs = [run_dir / stage, *sorted(run_dir.glob(f"{stage}-*"))]
    checkpoints = [c for d in stage_dirs if d.is_dir() for c in d.glob("checkpoint-*")
                   if c.is_dir()]
    freed = sum(f.stat().st_size for c in checkpoints for f in c.rglob("*") if f.is_file())
    for checkpoint in checkpoints:
        shutil.rmtree(checkpoint)
    return len(checkpoints), freed


def save_final(trainer: Any, tokenizer: Any, out_dir: Path) -> Path:
    """Save the stage's model to ``out_dir/final`` atomically (a kill leaves no half model).

    Every rank calls ``trainer.save_model``: under FSDP and DeepSpeed gathering the full state
    dict is a collective that every rank must join (called on the main process alone, the run
    hangs at its first save), and the Trainer writes from the main process only. The tokenizer,
    a merged LoRA model and the final rename are the main process's.
    """
    final = out_dir / "final"
    tmp = out_dir / "final.tmp"
    # Trainers switch the KV cache off for training and save that setting; a saved policy is for
    # generation, where running without the cache made GRPO steps 10-30x slower here.
    model = trainer.accelerator.unwrap_model(trainer.model)
    config = getattr(model, "config", None)
    if config is not None:
        config.use_cache = True
    main = trainer.accelerator.is_main_process
    if is_peft_model(model):
        if main:
            save_merged(model, tokenizer, tmp)
    else:
        trainer.save_model(str(tmp))
    if main:
        tokenizer.save_pretrained(str(tmp))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    trainer.accelerator.wait_for_everyone()
    return final


def train_and_save(trainer: Any, tokenizer: Any, out_dir: Path, resume: bool,
                   save_every_minutes: float = 0.0) -> tuple[Any, Path]:
    """Train (from the last checkpoint when resuming), then save ``out_dir/final``.

    Besides the trainer's own step-based saves, a checkpoint is written after every
    ``save_every_minutes`` of training (:class:`~latent_env.training.timed_save.SaveEveryMinutes`;
    0 turns that off). ``trainer.step_timer`` times every step
    (:mod:`latent_env.training.step_timer`).
    """
    from latent_env.training.step_timer import StepTimer
    from latent_env.training.timed_save import SaveEveryMinutes

    trainer.step_timer = StepTimer()  # the stage's metrics report its step times
    trainer.add_callback(trainer.step_timer)
    if save_every_minutes > 0 and trainer.args.save_strategy != "no":  # "no" means none at all
        trainer.add_callback(SaveEveryMinutes(save_every_minutes))
    checkpoint = last_checkpoint(out_dir) if resume else None
    if checkpoint:
        print(f"resuming from {checkpoint}")
    elif resume:
        print(f"no checkpoint in {out_dir}: training from the first step")
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    return result, save_final(trainer, tokenizer, out_dir)


class RunState:
    """``state.json`` in the run directory: the resolved configuration, the stage running now
    (``running``; null between stages), which stages finished and where their models are.

    It is written when the run starts, before any work, so ``--resume`` finds a run however
    early it was killed.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / STATE_FILE
        self.data: dict[str, Any] = {"stages": {}, "running": None}
        if self.path.is_file():
            self.data = {**self.data, **json.loads(self.path.read_text())}

    def begin(self, config: dict[str, Any], flags: list[str] | None = None) -> None:
        """Record the configuration this (possibly resumed) run goes on with and the command-line
        flags that gave it (``--resume`` reads them back), and save."""
        self.data["config"] = config
        if flags is not None:
            self.data["flags"] = list(flags)
        self.save()

    def start(self, stage: str) -> None:
        self.data["running"] = stage
        self.save()

    def finished(self, stage: str) -> dict[str, Any] | None:
        entry = self.data["stages"].get(stage)
        if entry and Path(entry["model"]).is_dir():
            return entry
        return None

    def mark(self, stage: str, model: Path, metrics: dict[str, Any]) -> None:
        self.data["stages"][stage] = {"model": str(model), "metrics": metrics}
        self.data["running"] = None
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str))
        os.replace(tmp, self.path)
