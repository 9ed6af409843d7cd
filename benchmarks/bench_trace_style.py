"""Which form of a correct latent helps the reward model most? Gain and accuracy per trace style.

    python benchmarks/bench_trace_style.py [--model default] [--per-family 6] [--split train]

Every style runs the task's gold program, so every answer is right; only the form differs:
``program`` is the program as the task gives it (what the oracle policy writes), ``echo-N`` makes
its final ``print`` repeat the last N words of the text's last line before the answer
(``latent_env.training.data.echo_latent``), ``echo-line`` the whole last line. SFT traces use the
winning form. Mean gain in nats and answer accuracy (greedy continuation with the latent equals
the answer), over the same tasks, through ``latent-env bench``'s runner.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from latent_env.tasks import Task
from latent_env.training.data import echo_latent, gold_latent


class StylePolicy:
    """Writes ``style(task)`` for each task (it reads the task, like the oracle)."""

    def __init__(self, name: str, style: Callable[[Task], str]) -> None:
        self.name, self.style = name, style

    def reset(self, seed: int | None = None) -> None:
        """Stateless."""

    def act_batch(self, observations: list[str], tasks: list[Task] | None = None) -> list[str]:
        return [self.style(task) for task in tasks or []]


def styles() -> dict[str, Callable[[Task], str]]:
    out: dict[str, Callable[[Task], str]] = {"program": gold_latent}
    for words in (2, 3, 6):
        out[f"echo-{words}"] = lambda task, n=words: echo_latent(task, words=n)
    out["echo-line"] = lambda task: echo_latent(task, words=10_000)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--per-family", type=int, default=6)
    parser.add_argument("--split", default="train")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from latent_env.bench.runner import EpisodeStepper, run_policy
    from latent_env.env import LatentEnv
    from latent_env.models import configure_threads
    from latent_env.training.data import split_tasks

    configure_threads(args.threads)
    env = LatentEnv(tasks=None, model=args.model, tools=["python"])
    tasks = split_tasks("synthetic", args.split, args.per_family)
    stepper = EpisodeStepper(env.scorer, env.tools, 16, prompt=env.prompt)
    results: dict[str, Any] = {}
    print(f"{len(tasks)} {args.split} tasks, model {args.model}")
    print("| style | mean gain (nats) | answer accuracy | latent tokens | seconds |")
    print("|---|---|---|---|---|")
    for name, style in styles().items():
        start = time.perf_counter()
        run = run_policy(StylePolicy(name, style), tasks, stepper, seed=0)
        records = run.records
        n = len(records)
        row = {
            "gain": sum(r["gain"] for r in records) / n,
            "accuracy": sum(bool(r["answer_hit"]) for r in records) / n,
            "latent_tokens": sum(r["latent_tokens"] for r in records) / n,
            "seconds": time.perf_counter() - start,
        }
        results[name] = row
        print(f"| {name} | {row['gain']:+.2f} | {100 * row['accuracy']:.1f}% | "
              f"{row['latent_tokens']:.0f} | {row['seconds']:.0f} |", flush=True)
    return results


if __name__ == "__main__":
    main()
