"""TRL's fused LM head on a CPU against the plain head ``latent_env.training.cpu_head`` gives
trainers.

    python benchmarks/bench_cpu_head.py [--tokens 3000] [--threads 2] [--repeats 5]

One forward and backward of the head alone, with the default model's sizes (hidden 576, vocabulary
49,152), over ``--tokens`` scored positions; the fields an SFT step asks for (log-probs, entropy,
top-1). TRL's head is ``trl.kernels.ChunkedLogProbFunction``, folded with torch ops off a GPU; the
plain head builds the logits once. Prints the median seconds of each and their ratio. Needs a trl
that has the fused head (1.15 or newer).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

HIDDEN, VOCAB = 576, 49152


def timed(step, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from trl.kernels import ChunkedLogProbFunction

    from latent_env.training.cpu_head import _token_fields

    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(args.tokens, HIDDEN, generator=generator, requires_grad=True)
    weight = (torch.randn(VOCAB, HIDDEN, generator=generator) * 0.02).requires_grad_()
    targets = torch.randint(0, VOCAB, (args.tokens,), generator=generator)

    def fused() -> None:
        hidden.grad = weight.grad = None
        log_probs = ChunkedLogProbFunction.apply(
            hidden, weight, None, targets, 1.0, 32768, None, 1.0, ("log_probs", "entropy", "is_top1")
        )[0]
        (-log_probs.sum()).backward()

    def plain() -> None:
        hidden.grad = weight.grad = None
        fields = _token_fields((hidden @ weight.t())[None], targets[None], 1.0, entropy_grad=False)
        (-fields["log_probs"].sum()).backward()

    fused_s, plain_s = timed(fused, args.repeats), timed(plain, args.repeats)
    print(f"{args.tokens} tokens x {VOCAB} words, {args.threads} threads, median of {args.repeats}")
    print(f"| head | forward + backward (s) |\n|---|---|\n| TRL fused (CPU tiles) | {fused_s:.2f} |")
    print(f"| plain logits (cpu_head) | {plain_s:.2f} |\nratio fused / plain: {fused_s / plain_s:.2f}")


if __name__ == "__main__":
    main()
