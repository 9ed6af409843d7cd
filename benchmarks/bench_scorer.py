"""Scorer throughput vs a raw forward over the same enriched batch, fp32 and bf16, in one run.

    python benchmarks/bench_scorer.py [--items 32] [--reps 5] [--threads 2]

Reports tokens/s of ``LogLikScorer.gain`` (the reward path) and of ``model(input_ids)`` on the
identical padded batch, their ratio, the padding waste, the cost of a repeated (cached) baseline,
and how far bf16 log-probs drift from fp32. Medians over ``--reps`` repetitions.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def make_items(n: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """Arithmetic sentences with a program-and-output latent, ~100-160 tokens enriched."""
    rng = np.random.default_rng(seed)
    names = ["Ann", "Bob", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana"]
    contexts, latents, continuations = [], [], []
    for _ in range(n):
        k = int(rng.integers(3, 7))
        people = list(rng.choice(names, size=k, replace=False))
        ages = [int(a) for a in rng.integers(10, 60, size=k)]
        facts = ", ".join(f"{p} is {a} years old" for p, a in zip(people, ages))
        contexts.append(f"Here are some people: {facts}. Added up, their ages come to")
        code = "\n".join(f"{p.lower()} = {a}" for p, a in zip(people, ages))
        code += f"\nprint({' + '.join(p.lower() for p in people)})"
        latents.append(f"<python>\n{code}\n</python><output>{sum(ages)}</output>")
        continuations.append(f" {sum(ages)} years in total.")
    return contexts, latents, continuations


def timed(fn, reps: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def raw_forward_batches(scorer, enriched: list[str], continuations: list[str]):
    """The exact padded batches the scorer builds, for a plain ``model(input_ids)`` call."""
    import torch

    items = [scorer._tokenize(i, c, y) for i, (c, y) in enumerate(zip(enriched, continuations))]
    batches = []
    for batch in scorer._batches(items):
        width = max(it.length for it in batch)
        ids = torch.full((len(batch), width), scorer.pad_token_id)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, it in enumerate(batch):
            seq = it.context_ids + it.continuation_ids
            ids[row, width - len(seq) :] = torch.tensor(seq)
            mask[row, width - len(seq) :] = 1
        batches.append((ids, mask))
    return batches


def bench_dtype(model, tokenizer, dtype, data, reps: int) -> dict:
    import torch

    from latent_env.context import prefix_combiner
    from latent_env.scoring import LogLikScorer

    contexts, latents, continuations = data
    scorer = LogLikScorer(model.to(dtype), tokenizer, batch_tokens=16 * 160)
    enriched = [prefix_combiner(x, lat) for x, lat in zip(contexts, latents)]
    batches = raw_forward_batches(scorer, enriched, continuations)
    real_tokens = sum(int(m.sum()) for _, m in batches)
    padded_tokens = sum(m.numel() for _, m in batches)

    def raw() -> None:
        with torch.inference_mode():
            for ids, mask in batches:
                model(input_ids=ids, attention_mask=mask)

    def reward_path() -> None:
        scorer.score(enriched, continuations)

    raw_s = timed(raw, reps)
    scorer_s = timed(reward_path, reps)
    scorer.baseline(contexts, continuations)
    cached_s = timed(lambda: scorer.baseline(contexts, continuations), reps)
    results = scorer.score(enriched, continuations)
    return {
        "raw_tok_s": real_tokens / raw_s,
        "scorer_tok_s": real_tokens / scorer_s,
        "ratio": raw_s / scorer_s,
        "padding_waste": 1 - real_tokens / padded_tokens,
        "cached_baseline_ms": cached_s * 1e3,
        "scorer_ms": scorer_s * 1e3,
        "totals": [r.total for r in results],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from latent_env.models import load_model

    model, tokenizer = load_model(args.model, threads=args.threads)
    data = make_items(args.items, args.seed)
    fp32 = bench_dtype(model, tokenizer, torch.float32, data, args.reps)
    bf16 = bench_dtype(model, tokenizer, torch.bfloat16, data, args.reps)
    drift = [abs(a - b) for a, b in zip(fp32["totals"], bf16["totals"])]
    print(f"model={args.model} items={args.items} reps={args.reps} threads={args.threads}")
    print("| dtype | scorer tok/s | raw forward tok/s | scorer / raw | padding waste | "
          "cached baseline |")
    print("|---|---|---|---|---|---|")
    for name, r in (("fp32", fp32), ("bf16", bf16)):
        print(f"| {name} | {r['scorer_tok_s']:.0f} | {r['raw_tok_s']:.0f} | {r['ratio']:.2f} | "
              f"{r['padding_waste']:.1%} | {r['cached_baseline_ms']:.3f} ms "
              f"(vs {r['scorer_ms']:.0f} ms scored) |")
    print(f"bf16 drift of total log-prob vs fp32: median {statistics.median(drift):.3f} nats, "
          f"max {max(drift):.3f} nats over {len(drift)} continuations")


if __name__ == "__main__":
    main()
