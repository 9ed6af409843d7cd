"""Cost of latent ``<thinking>`` tokens in LatentThoughtModel.

Measures, on one batch (default: SmolLM2-135M, batch 4, length 256, threads pinned):

* forward+backward (labels, all logits) with k = 0, 2, 4, 8 thinking tokens per row, against a
  plain forward+backward of the wrapped model on the same ids;
* forward only (no grad) of the segment-wise forward against the naive reference that
  recomputes the whole prefix at every latent column (``latent_env.thoughts.reference``).

Two layouts of the thinking tokens, both in the second half of the sequence: ``aligned`` (the
same columns in every row) and ``scattered`` (independent columns per row, as in real training
batches). Each measurement pairs the two things compared back to back, ``--reps`` times after a
warm-up, and reports medians (and the median of the per-pair ratios), so a shared machine's
load drifts cancel out of the ratios.

    python benchmarks/bench_thoughts.py --model default --append benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable

import torch

from latent_env.models import load_model
from latent_env.thoughts import add_thinking_token
from latent_env.thoughts.reference import reference_logits

TARGET_NAIVE_SPEEDUP = 3.0
TARGET_PLAIN_RATIO = 2.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark latent <thinking> tokens.")
    parser.add_argument("--model", default="default", help="load_model spec")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--ks", default="0,2,4,8", help="thinking tokens per row (aligned)")
    parser.add_argument("--scattered-ks", default="8", help="k values also run scattered")
    parser.add_argument("--mode", choices=("hidden", "fusion"), default="fusion")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--naive-reps", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core VM)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--append", default=None, help="append a markdown section to this file")
    return parser.parse_args(argv)


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired(
    base: Callable[[], object], test: Callable[[], object], reps: int
) -> tuple[float, float, float]:
    """Median seconds of ``base`` and ``test`` run back to back, and the median test/base ratio.

    Interleaving the two keeps slow drifts of a shared machine out of the ratio.
    """
    base(), test()  # warm-up
    base_times, test_times = [], []
    for _ in range(reps):
        base_times.append(seconds(base))
        test_times.append(seconds(test))
    ratios = [t / b for t, b in zip(test_times, base_times, strict=True)]
    return statistics.median(base_times), statistics.median(test_times), statistics.median(ratios)


def thinking_ids(base_ids: torch.Tensor, tid: int, k: int, layout: str, seed: int) -> torch.Tensor:
    """Put k thinking tokens per row in the second half of the sequence."""
    ids = base_ids.clone()
    batch, length = ids.shape
    if k == 0:
        return ids
    low, high = length // 2, length - 2
    if layout == "aligned":
        columns = torch.linspace(low, high, k).round().long()
        ids[:, columns] = tid
        return ids
    generator = torch.Generator().manual_seed(seed)
    for row in range(batch):
        ids[row, low + torch.randperm(high - low, generator=generator)[:k]] = tid
    return ids


def forward_backward(model, ids: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        model.zero_grad(set_to_none=True)
        model(input_ids=ids, labels=ids).loss.backward()

    return run


def no_grad(fn: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            fn()

    return run


def configurations(args: argparse.Namespace) -> list[tuple[str, int]]:
    runs = [("aligned", int(k)) for k in args.ks.split(",") if k]
    if args.scattered_ks:
        runs += [("scattered", int(k)) for k in args.scattered_ks.split(",") if int(k) > 0]
    return runs


def measure(args: argparse.Namespace) -> list[dict]:
    torch.manual_seed(args.seed)
    base, tokenizer = load_model(args.model, threads=args.threads)
    torch.set_num_threads(args.threads)
    model = add_thinking_token(base, tokenizer, mode=args.mode, alpha=0.6).train()
    tid = model.thinking_token_id
    ids0 = torch.randint(100, 20_000, (args.batch, args.length))
    plain_fb = forward_backward(model.language_model, ids0)
    plain_f = no_grad(lambda: model.language_model(input_ids=ids0))
    rows = []
    for layout, k in configurations(args):
        ids = thinking_ids(ids0, tid, k, layout, args.seed)
        latent_f = no_grad(lambda ids=ids: model(input_ids=ids))
        row = dict(
            layout=layout,
            k=k,
            passes=k + 1 if k else 1,
            aligned_passes=len(set((ids == tid).nonzero()[:, 1].tolist())) + 1,
        )
        row["plain_fb"], row["fb"], row["fb_ratio"] = paired(
            plain_fb, forward_backward(model, ids), args.reps
        )
        row["plain_f"], row["fwd"], row["fwd_ratio"] = paired(plain_f, latent_f, args.reps)
        if row["aligned_passes"] > row["passes"]:  # a cache request forces the aligned schedule
            aligned_f = no_grad(lambda ids=ids: model(input_ids=ids, use_cache=True))
            _, row["aligned_fwd"], _ = paired(latent_f, aligned_f, args.reps)
        if k:
            naive = no_grad(lambda ids=ids: reference_logits(model, ids))
            _, row["naive"], row["speedup"] = paired(latent_f, naive, args.naive_reps)
        else:
            row["naive"], row["speedup"] = row["fwd"], 1.0
        rows.append(row)
        print(row, flush=True)
    return rows


def markdown(args: argparse.Namespace, rows: list[dict], command: str) -> str:
    lines = [
        f"## Latent thoughts (`{command}`)",
        "",
        f"Model `{args.model}`, batch {args.batch} x length {args.length}, mode `{args.mode}`, "
        f"{args.threads} torch thread(s), load average at start {args.load_at_start:.2f} "
        f"(other jobs share the 2 CPUs). Each cell is a median over {args.reps} back-to-back pairs "
        f"(naive: {args.naive_reps}) after a warm-up; ratios are medians of per-pair ratios. "
        "Training and scoring calls use the waves schedule (k + 1 passes); `aligned passes` is "
        "what cutting every row at the union of latent columns would need.",
        "",
        "| layout | k/row | passes | aligned passes | plain fwd+bwd s | fwd+bwd s | vs plain "
        "| plain fwd s | fwd s | vs plain | naive fwd s | speedup vs naive |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['layout']} | {r['k']} | {r['passes']} | {r['aligned_passes']} "
            f"| {r['plain_fb']:.2f} | {r['fb']:.2f} | {r['fb_ratio']:.2f}x "
            f"| {r['plain_f']:.2f} | {r['fwd']:.2f} | {r['fwd_ratio']:.2f}x "
            f"| {r['naive']:.2f} | {r['speedup']:.2f}x |"
        )
    for r in (r for r in rows if "aligned_fwd" in r):
        lines.append(
            f"\n{r['layout']} k={r['k']}: forward with the aligned schedule ({r['aligned_passes']} "
            f"passes) takes {r['aligned_fwd']:.2f} s vs {r['fwd']:.2f} s with waves."
        )
    lines += ["", "Targets at k = 8 (>= 3x faster than naive recompute; fwd+bwd <= 2x plain):", ""]
    for r in (r for r in rows if r["k"] == 8):
        fast = r["speedup"] >= TARGET_NAIVE_SPEEDUP
        cheap = r["fb_ratio"] <= TARGET_PLAIN_RATIO
        lines.append(
            f"- {r['layout']}: {r['speedup']:.2f}x faster than naive "
            f"({'met' if fast else 'NOT met'}); fwd+bwd {r['fb_ratio']:.2f}x plain "
            f"({'met' if cheap else 'NOT met'})."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.load_at_start = os.getloadavg()[0]
    shown = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/bench_thoughts.py " + shlex.join(shown)
    report = markdown(args, measure(args), command.strip())
    print(report)
    if args.append:
        with open(args.append, "a") as handle:
            handle.write("\n" + report)


if __name__ == "__main__":
    main()
