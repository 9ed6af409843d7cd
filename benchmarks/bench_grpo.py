"""GRPO step time with the environment's reward vs a constant reward: same model, same batch.

    python benchmarks/bench_grpo.py [--model default|PATH] [--steps 6] [--threads 2] [--turns N]

Pass an SFT checkpoint (``RUN/sft/final``) as ``--model`` to time completions that really carry
code: the untrained default model mostly writes prose, so its sandbox hardly runs.

Both runs use TRL's GRPOTrainer with identical configs and prompts (the environment's observations
for synthetic train tasks); only the reward differs. The environment's reward executes each
completion's tool blocks in the sandbox and scores the continuation with a frozen copy of the
model. The learning rate is 0, so both runs sample exactly the same completions (same seed, same
weights) and the step times differ by the reward alone; the optimiser step still runs. Reports the
median step time of each (the first step, which warms up, is excluded).

With ``--turns N`` (N > 1) the two runs are instead single-turn and multi-turn episodes, both paid
by the environment (``--rl_turns 1`` against ``--rl_turns N`` in ``train_rl.py``): the same
prompts, seed and number of completions, but multi-turn completions see their tool outputs, so
they differ after the first block. Their mean completion lengths are printed with the times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def constant_reward(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
    return [1.0] * len(completions)


class StepTimer:
    """A TrainerCallback recording wall time per optimiser step."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        self.times.append(time.perf_counter() - self._start)


def run(model_spec: str, reward_funcs: list[Any], records: list[dict], steps: int,
        max_new: int, rollout_func: Any = None, use_cpu: bool = True,
        bf16: bool = False) -> tuple[list[float], float]:
    """Median-ready step times (first excluded) and the mean completion length (tokens the
    policy wrote). ``use_cpu=False`` trains on the accelerator (``gpu_check.py``)."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from latent_env.models import load_model

    model, tokenizer = load_model(model_spec)
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-grpo-"), max_steps=steps,
        per_device_train_batch_size=8, num_generations=4, max_completion_length=max_new,
        learning_rate=0.0, beta=0.0, logging_steps=1, save_strategy="no", report_to=[],
        use_cpu=use_cpu, bf16=bf16, activation_checkpointing=False, seed=0, disable_tqdm=True,
    )
    timer = StepTimer()
    callback = type("Timer", (TrainerCallback,), {
        "on_step_begin": timer.on_step_begin, "on_step_end": timer.on_step_end})()
    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=config,
                          train_dataset=Dataset.from_list(records), processing_class=tokenizer,
                          callbacks=[callback], rollout_func=rollout_func)
    trainer.train()
    lengths = [h["completions/mean_length"] for h in trainer.state.log_history
               if "completions/mean_length" in h]
    return timer.times[1:], statistics.fmean(lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new", type=int, default=160, help="max completion tokens")
    parser.add_argument("--turns", type=int, default=1,
                        help="above 1: time single-turn against multi-turn episodes")
    args = parser.parse_args()

    from latent_env.env import LatentEnv
    from latent_env.models import configure_threads, load_model
    from latent_env.scoring import LogLikScorer
    from latent_env.training.data import rl_records, split_tasks
    from latent_env.training.rl import multi_turn_rollout, reward_functions

    configure_threads(args.threads)
    frozen, tokenizer = load_model(args.model)
    env = LatentEnv(tasks=None, scorer=LogLikScorer(frozen, tokenizer),
                    tools=["python", "calc", "predict"])
    records = rl_records(env, split_tasks("synthetic", "train", 8))
    env_funcs, _ = reward_functions(env)
    if args.turns > 1:
        rollout = multi_turn_rollout(env, records, args.turns)
        names = ("environment, single-turn", f"environment, multi-turn (--rl_turns {args.turns})")
        first = run(args.model, env_funcs[:1], records, args.steps, args.max_new)
        second = run(args.model, env_funcs[:1], records, args.steps, args.max_new, rollout)
        target = "multi-turn / single-turn", 1.5
    else:
        names = ("constant", "environment (sandbox + frozen-model scoring)")
        first = run(args.model, [constant_reward], records, args.steps, args.max_new)
        second = run(args.model, env_funcs[:1], records, args.steps, args.max_new)
        target = "environment / constant", 1.15
    a, b = statistics.median(first[0]), statistics.median(second[0])
    print(f"model={args.model} steps={args.steps} (first excluded) threads={args.threads} "
          f"batch=8 completions (2 prompts x 4 generations), {args.max_new} new tokens max")
    print("| reward | median step (s) | steps timed | mean completion tokens |")
    print("|---|---|---|---|")
    for name, (times, length) in zip(names, (first, second)):
        print(f"| {name} | {statistics.median(times):.2f} | {len(times)} | {length:.1f} |")
    print(f"ratio {target[0]}: {b / a:.3f} (target <= {target[1]})")


if __name__ == "__main__":
    main()
