"""Short LT-Tuning run: explicit SFT → dynamic latent tokens → context-prediction fusion.

    python -m latent_env.thoughts.train_demo --steps 240            # default model, ~15 min CPU
    python -m latent_env.thoughts.train_demo --model tiny-random --steps 12 --train 16 --eval 4

Each stage's data is rebuilt with the model as trained so far (:class:`StageManager`) and trained
with TRL's ``SFTTrainer`` (pre-tokenised prompt-completion data, completion-only loss,
``<thinking>`` in the labels). Reported (also written as JSON with ``--out``):

* the loss at the start and end of each stage, and whether every logged loss was finite;
* on held-out traces, *low-confidence positions*: completion positions whose gold token got
  probability < ``--eval-threshold`` from the model before the latent stages; the fraction of
  them where the model's argmax next token is ``<thinking>`` (teacher-forced on the explicit
  trace) before vs after, and the same fraction on the other positions (it should stay low);
* greedy generations on held-out prompts: ``<thinking>`` tokens emitted and answer accuracy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from latent_env.thoughts.model import LatentThoughtModel, add_thinking_token
from latent_env.thoughts.stages import (
    DEFAULT_STAGES,
    InsertionSettings,
    StageManager,
    completion_logprobs,
    tokenize_trace,
)
from latent_env.thoughts.traces import arithmetic_traces, task_traces


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="load_model spec (default SmolLM2)")
    parser.add_argument("--steps", type=int, default=240, help="optimizer steps over all stages")
    parser.add_argument("--stages", default="1,2,3", help="stages to run, 1-based (e.g. 2,3)")
    parser.add_argument(
        "--source",
        choices=("auto", "tasks", "arithmetic"),
        default="auto",
        help="traces: latent_env.tasks programs if importable, else arithmetic",
    )
    parser.add_argument("--train", type=int, default=256, help="training traces")
    parser.add_argument("--eval", type=int, default=32, help="held-out traces")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--eval-threshold", type=float, default=0.2)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core VM)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the report as JSON here")
    return parser.parse_args(argv)


def load_traces(source: str, n_train: int, n_eval: int, seed: int) -> tuple[list, list, str]:
    """Train and held-out traces (disjoint), and the source actually used."""
    if source in ("auto", "tasks"):
        try:
            from latent_env.tasks import make_suite

            train = task_traces(make_suite("synthetic", split="train", difficulty=1, seed=seed))
            held = task_traces(make_suite("synthetic", split="test", difficulty=1, seed=seed))
            rng = np.random.default_rng(seed)
            train = [train[i] for i in rng.permutation(len(train))[:n_train]]
            held = [held[i] for i in rng.permutation(len(held))[:n_eval]]
            if len(train) >= n_train and len(held) >= n_eval:
                return train, held, "tasks"
        except ImportError:
            if source == "tasks":
                raise
    traces = arithmetic_traces(n_train + n_eval, seed)
    return traces[:n_train], traces[n_train:], "arithmetic"


def train_stage(model: Any, tokenizer: Any, dataset: Any, steps: int, args: Any) -> list[float]:
    """Train one stage with TRL's SFTTrainer; returns the logged losses."""
    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="lt-demo-"),
        max_steps=steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=min(10, steps // 5),
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        completion_only_loss=True,
        use_cpu=True,
        activation_checkpointing=False,  # TRL turns it on by default; memory is no issue here
        seed=args.seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer
    )
    trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def emission_stats(
    model: LatentThoughtModel, tokenizer: Any, traces: Sequence[dict], low: list[np.ndarray]
) -> dict[str, float]:
    """How often the argmax next token is ``<thinking>`` on low- vs high-confidence positions."""
    sequences = [tokenize_trace(tokenizer, t["prompt"], t["completion"]) for t in traces]
    tid = model.config.thinking_token_id
    hits = {"low": [], "high": []}
    mass = {"low": [], "high": []}
    for logprobs, low_mask in zip(
        completion_logprobs(model, sequences, tokenizer.pad_token_id), low, strict=True
    ):
        emits = (logprobs.argmax(-1) == tid).numpy()
        p_think = logprobs[:, tid].exp().numpy()
        for name, where in (("low", low_mask), ("high", ~low_mask)):
            hits[name].extend(emits[where].tolist())
            mass[name].extend(p_think[where].tolist())
    return {
        "emit_rate_low_conf": float(np.mean(hits["low"])) if hits["low"] else math.nan,
        "emit_rate_high_conf": float(np.mean(hits["high"])) if hits["high"] else math.nan,
        "p_thinking_low_conf": float(np.mean(mass["low"])) if mass["low"] else math.nan,
        "p_thinking_high_conf": float(np.mean(mass["high"])) if mass["high"] else math.nan,
        "n_low_conf": len(hits["low"]),
        "n_high_conf": len(hits["high"]),
    }


@torch.no_grad()
def greedy_stats(
    model: LatentThoughtModel, tokenizer: Any, traces: Sequence[dict], max_new_tokens: int
) -> dict[str, Any]:
    """Greedy generations: ``<thinking>`` tokens per answer, answer accuracy, one sample."""
    model.eval()
    tokenizer.padding_side = "left"
    tid = model.config.thinking_token_id
    thinking, correct, sample = [], [], ""
    for first in range(0, len(traces), 8):
        batch = traces[first : first + 8]
        enc = tokenizer([t["prompt"] for t in batch], return_tensors="pt", padding=True)
        out = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
        for trace, row in zip(batch, out[:, enc.input_ids.shape[1] :], strict=True):
            ids = [t for t in row.tolist() if t != tokenizer.pad_token_id]
            thinking.append(sum(t == tid for t in ids))
            text = tokenizer.decode([t for t in ids if t != tid], skip_special_tokens=True)
            correct.append(f"<output>{trace['answer']}</output>" in text)
            sample = sample or tokenizer.decode(ids)
    return {
        "thinking_per_answer": float(np.mean(thinking)),
        "accuracy": float(np.mean(correct)),
        "sample": sample,
    }


def low_confidence_masks(
    model: Any, tokenizer: Any, traces: Sequence[dict], threshold: float
) -> list[np.ndarray]:
    sequences = [tokenize_trace(tokenizer, t["prompt"], t["completion"]) for t in traces]
    masks = []
    for (_, completion), logprobs in zip(
        sequences, completion_logprobs(model, sequences, tokenizer.pad_token_id), strict=True
    ):
        gold = logprobs.gather(-1, torch.tensor(completion).unsqueeze(-1)).squeeze(-1).exp()
        masks.append((gold < threshold).numpy())
    return masks


def run_stage(
    manager: StageManager, index: int, steps: int, args: argparse.Namespace, started: float
) -> dict[str, Any]:
    """Build stage ``index`` with the current model, train it, summarise its losses."""
    stage = manager.build(index)
    losses = train_stage(manager.model, manager.tokenizer, stage.dataset(), steps, args)
    window = max(1, len(losses) // 10)
    return {
        "stage": index + 1,
        "mode": stage.spec.mode,
        "alpha": stage.spec.alpha,
        "threshold": stage.spec.threshold,
        "thinking_tokens_inserted": stage.thinking_tokens,
        "loss_start": float(np.mean(losses[:window])),
        "loss_end": float(np.mean(losses[-window:])),
        "all_finite": bool(np.all(np.isfinite(losses))),
        "elapsed_s": time.time() - started,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the stages and the evaluations; returns (and optionally writes) the report."""
    args = parse_args(argv)
    from latent_env.models import load_model

    torch.manual_seed(args.seed)
    base, tokenizer = load_model(args.model, threads=args.threads)
    model = add_thinking_token(base, tokenizer)
    train, held, source = load_traces(args.source, args.train, args.eval, args.seed)
    stage_numbers = [int(s) for s in args.stages.split(",")]
    steps = max(1, args.steps // len(stage_numbers))
    manager = StageManager(
        model, tokenizer, train, DEFAULT_STAGES, InsertionSettings(seed=args.seed)
    )
    shown = sys.argv[1:] if argv is None else list(argv)
    report: dict[str, Any] = {
        "command": "python -m latent_env.thoughts.train_demo " + shlex.join(shown),
        "source": source,
        "n_train": len(train),
        "n_eval": len(held),
        "steps_per_stage": steps,
        "stages": [],
    }
    started, low = time.time(), None
    for number in stage_numbers:
        index = number - 1
        if low is None and DEFAULT_STAGES[index].threshold > 0:  # model before the latent stages
            low = low_confidence_masks(model, tokenizer, held, args.eval_threshold)
            report["before"] = {
                **emission_stats(model, tokenizer, held, low),
                **greedy_stats(model, tokenizer, held, args.max_new_tokens),
            }
        report["stages"].append(run_stage(manager, index, steps, args, started))
        print(json.dumps(report["stages"][-1]), flush=True)
    if low is not None:
        report["after"] = {
            **emission_stats(model, tokenizer, held, low),
            **greedy_stats(model, tokenizer, held, args.max_new_tokens),
        }
    report["elapsed_s"] = time.time() - started
    print(json.dumps({k: v for k, v in report.items() if k != "stages"}, indent=1), flush=True)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=1)
    return report


if __name__ == "__main__":
    main()
