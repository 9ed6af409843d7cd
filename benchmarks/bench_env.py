"""Where an episode's time goes, and vector-env throughput.

    python benchmarks/bench_env.py [--model default] [--episodes 64] [--threads 2]

1. Single-turn episodes with one ``<python>`` block (each task's gold program): the time of
   ``LatentEnv.step`` split into LM scoring (the scorer's forward passes) and everything else
   (parsing, sandbox round trip, latent assembly, reward terms, bookkeeping).
2. ``LatentVectorEnv`` throughput (episodes/s) with 1, 4 and 16 sub-envs on the same tasks.
Medians over episodes; threads pinned.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any


class TimedScorer:
    """Wraps a scorer and accumulates the wall time spent in its ``gain`` calls."""

    def __init__(self, scorer: Any) -> None:
        self.scorer, self.seconds = scorer, 0.0

    def gain(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.scorer.gain(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start

    def __getattr__(self, name: str) -> Any:
        return getattr(self.scorer, name)


def split_single_env(scorer: Any, tasks: list[Any]) -> dict[str, float]:
    from latent_env.env import LatentEnv

    timed = TimedScorer(scorer)
    env = LatentEnv(tasks=tasks, scorer=timed, tools=["python", "calc", "predict"])
    env.reset(options={"task": tasks[0]})
    env.step(f"<python>\n{tasks[0].program}\n</python>")  # warm the sandbox and the model
    totals, lm = [], []
    for task in tasks:
        timed.scorer.clear_cache()  # a fresh task: its baseline is not cached yet
        env.reset(options={"task": task})
        before = timed.seconds
        start = time.perf_counter()
        env.step(f"<python>\n{task.program}\n</python>")
        totals.append(time.perf_counter() - start)
        lm.append(timed.seconds - before)
    other = [t - m for t, m in zip(totals, lm)]
    return {
        "episode_ms": 1e3 * statistics.median(totals),
        "lm_ms": 1e3 * statistics.median(lm),
        "other_ms": 1e3 * statistics.median(other),
        "other_share": sum(other) / sum(totals),
    }


def vector_throughput(scorer: Any, tasks: list[Any], num_envs: int) -> float:
    from latent_env.vector import LatentVectorEnv

    vec = LatentVectorEnv(num_envs, tasks=tasks, scorer=scorer,
                          tools=["python", "calc", "predict"])
    done = 0
    start = time.perf_counter()
    for first in range(0, len(tasks) - num_envs + 1, num_envs):
        batch = tasks[first : first + num_envs]
        scorer.clear_cache()
        vec.reset(options={"tasks": batch})
        vec.step([f"<python>\n{t.program}\n</python>" for t in batch])
        done += len(batch)
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from latent_env.models import load_model
    from latent_env.scoring import LogLikScorer
    from latent_env.tasks import load_tasks

    model, tokenizer = load_model(args.model, threads=args.threads)
    scorer = LogLikScorer(model, tokenizer)
    tasks = load_tasks("synthetic", split="test")[: args.episodes]
    split = split_single_env(scorer, tasks)
    print(f"model={args.model} episodes={len(tasks)} threads={args.threads}")
    print("| episode (median) | LM scoring | everything else | non-LM share of total time |")
    print("|---|---|---|---|")
    print(f"| {split['episode_ms']:.1f} ms | {split['lm_ms']:.1f} ms | {split['other_ms']:.2f} ms "
          f"| {100 * split['other_share']:.2f}% |")
    print()
    print("| sub-envs | episodes/s |")
    print("|---|---|")
    for n in (1, 4, 16):
        print(f"| {n} | {vector_throughput(scorer, tasks, n):.2f} |")


if __name__ == "__main__":
    main()
