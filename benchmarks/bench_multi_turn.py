"""Sampled episodes, single-turn against multi-turn: same policy, prompts and sampling seeds.

    python benchmarks/bench_multi_turn.py --policy RUN/sft/final [--per-family 15] [--turns 4]

Single-turn: the policy writes its whole completion, then its tool blocks run (what GRPO trains
on with ``--rl_turns 1``). Multi-turn: each tool block runs as soon as the policy closes it, the
output is appended, and the policy goes on (``--rl_turns N``, ``latent_env.training.rollout``).
Both sample at ``--temperature`` (1 by default; 0 is greedy) with the same seed per batch, up to
``--max-new`` tokens, from the prompts of the synthetic test split, and are scored by the same frozen reward model. Reports per
mode: the tool error rate (errored calls / calls, and episodes with an error), mean gain with a
95% bootstrap interval, answer accuracy, and the episodes' turns; then the task-paired gain
difference. ``--out FILE`` writes every episode as JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from collections import Counter
from typing import Any

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def sample_single(model: Any, tokenizer: Any, prompt_ids: list[list[int]], config: Any,
                  max_new: int) -> list[str]:
    """Whole completions to end-of-sequence, as GRPO's own generation writes them."""
    import torch

    width = max(len(p) for p in prompt_ids)
    pad = config.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompt_ids])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids])
    config = copy.deepcopy(config)
    config.max_new_tokens = max_new
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    return tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)


def interval(values: list[float]) -> list[float]:
    import numpy as np

    from latent_env.bench.stats import bootstrap_ci

    return bootstrap_ci(values, np.random.default_rng(0))


def summarise(infos: list[dict], seconds: float) -> dict[str, Any]:
    gains = [i["reward/loglik_gain"] for i in infos]
    calls = sum(i["tool/calls"] for i in infos)
    errors = sum(i["tool/errors"] for i in infos)
    low, high = interval(gains)
    return {
        "episodes": len(infos), "gain": statistics.fmean(gains), "gain_ci": [low, high],
        "accuracy": statistics.fmean(i["reward/answer_hit"] for i in infos),
        "tool_calls": calls, "tool_errors": errors,
        "tool_error_rate": errors / calls if calls else 0.0,
        "episodes_with_error": sum(i["tool/errors"] > 0 for i in infos) / len(infos),
        "turns": dict(sorted(Counter(i["episode/turns"] for i in infos).items())),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--policy", required=True, help="policy checkpoint (e.g. RUN/sft/final)")
    parser.add_argument("--scorer", default="default", help="frozen reward model")
    parser.add_argument("--per-family", type=int, default=15, help="test tasks per family")
    parser.add_argument("--turns", type=int, default=4, help="max actions, multi-turn")
    parser.add_argument("--max-new", type=int, default=160, help="completion tokens")
    parser.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="", help="write every episode's info here (JSON)")
    args = parser.parse_args()

    import torch
    from transformers import GenerationConfig

    from latent_env.env import LatentEnv
    from latent_env.models import configure_threads, load_model
    from latent_env.scoring import LogLikScorer
    from latent_env.training.data import split_tasks
    from latent_env.training.rollout import multi_turn_engine, play, prompt_token_ids

    configure_threads(args.threads)
    policy, tokenizer = load_model(args.policy)
    policy.eval()
    env = LatentEnv(tasks=None, scorer=LogLikScorer(*load_model(args.scorer)))
    single, multi = env.engine, multi_turn_engine(env.engine, args.turns)
    tasks = split_tasks("synthetic", "test", args.per_family)
    sampling = {"do_sample": True, "temperature": args.temperature, "top_p": 1.0, "top_k": 0}
    config = GenerationConfig(**(sampling if args.temperature > 0 else {"do_sample": False}),
                              pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=tokenizer.eos_token_id)
    infos: dict[str, list[dict]] = {"single": [], "multi": []}
    seconds = {"single": 0.0, "multi": 0.0}
    for start in range(0, len(tasks), args.batch):
        batch = tasks[start : start + args.batch]
        prompts = [[{"role": "user", "content": ep.prompt}] for ep in single.start(batch)]
        prompt_ids = [prompt_token_ids(tokenizer, p) for p in prompts]
        t0 = time.perf_counter()
        torch.manual_seed(args.seed + start)
        texts = sample_single(policy, tokenizer, prompt_ids, config, args.max_new)
        infos["single"] += single.run(batch, texts)
        t1 = time.perf_counter()
        torch.manual_seed(args.seed + start)
        played = play(policy, tokenizer, multi, multi.start(batch), prompt_ids, config,
                      args.max_new)
        infos["multi"] += multi.finish([r.episode for r in played])
        seconds["single"] += t1 - t0
        seconds["multi"] += time.perf_counter() - t1
        print(f"{start + len(batch)}/{len(tasks)} tasks", flush=True)
    rows = {mode: summarise(infos[mode], seconds[mode]) for mode in infos}
    diffs = [m["reward/loglik_gain"] - s["reward/loglik_gain"]
             for s, m in zip(infos["single"], infos["multi"])]
    paired = {"mean": statistics.fmean(diffs), "ci": interval(diffs)}
    print(f"policy={args.policy} tasks={len(tasks)} turns={args.turns} max_new={args.max_new} "
          f"seed={args.seed} temperature={args.temperature}")
    print("| mode | tool error rate | episodes with an error | gain (nats) [95% CI] | accuracy "
          "| turns | seconds |")
    print("|---|---|---|---|---|---|---|")
    for mode, r in rows.items():
        print(f"| {mode} | {r['tool_error_rate']:.1%} ({r['tool_errors']}/{r['tool_calls']}) "
              f"| {r['episodes_with_error']:.1%} | {r['gain']:+.2f} [{r['gain_ci'][0]:+.2f}, "
              f"{r['gain_ci'][1]:+.2f}] | {r['accuracy']:.1%} | {r['turns']} | {r['seconds']} |")
    print(f"paired gain, multi - single: {paired['mean']:+.2f} [{paired['ci'][0]:+.2f}, "
          f"{paired['ci'][1]:+.2f}]")
    if args.out:
        keep = ("task_id", "family", "latent", "tool/calls", "tool/errors", "episode/turns",
                "reward/loglik_gain", "reward/answer_hit")
        episodes = {m: [{k: i[k] for k in keep} for i in infos[m]] for m in infos}
        with open(args.out, "w") as f:
            json.dump({"summary": rows, "paired": paired, "episodes": episodes}, f, indent=1)


if __name__ == "__main__":
    main()
