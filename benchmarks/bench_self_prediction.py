"""The founding question: does the trained model, reading its own latent, predict the text better
than the model it started from without one? And does it discount a misleading latent?

    python benchmarks/bench_self_prediction.py --policy RUN/rl/final [--start default]
        [--per-family 10] [--out FILE]

On the synthetic test split (``--per-family`` tasks of each family), the policy θ writes its
latent greedily, the tools run (``EpisodeEngine.latents``), and θ itself scores Y. Per family and
overall (means, 95% bootstrap intervals):

* ``own − start``: log p_θ(Y | c(X, L_θ)) − log p_θ0(Y | X), θ0 the ``--start`` model;
* ``plain − start``: log p_θ(Y | X) − log p_θ0(Y | X), what training did to prediction without a
  latent;
* ``θ0 reading the latent``: log p_θ0(Y | c(X, L_θ)) − log p_θ0(Y | X), the same latent judged
  by θ0 (what a frozen scorer pays);
* accuracy: greedy decoding under θ after its own latent starts with the answer
  (:mod:`latent_env.bench.founding`).

Robustness: for tasks with a gold program, the gold latent (echo style, as SFT teaches it) and a
wrong one, the same program with one integer constant changed (the first whose change changes the
printed output without an error). For θ and θ0: the fall log p(Y | c(X, L_gold)) −
log p(Y | c(X, L_wrong)), and log p(Y | c(X, L_wrong)) − log p(Y | X) (below 0: the wrong output
misleads the model below knowing nothing). A model that discounts misleading latents falls less.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tokenize
from dataclasses import replace
from typing import Any

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_multi_turn import interval, sample_single  # noqa: E402


def mean_ci(values: list[float]) -> str:
    if not values:
        return "–"
    low, high = interval(values)
    return f"{statistics.fmean(values):+.2f} [{low:+.2f}, {high:+.2f}]"


def changed_programs(program: str):
    """The program with one integer literal changed (+1, or 2 for 0 and 1), first literal
    first."""
    tokens = list(tokenize.generate_tokens(io.StringIO(program).readline))
    lines = program.splitlines(keepends=True)
    for tok in tokens:
        if tok.type != tokenize.NUMBER or not tok.string.isdigit():
            continue
        value = int(tok.string)
        new = str(value + 1 if value > 1 else 2)
        (row, col), (_, end) = tok.start, tok.end
        edited = list(lines)
        edited[row - 1] = edited[row - 1][:col] + new + edited[row - 1][end:]
        yield "".join(edited)


def wrong_latent(engine: Any, task: Any, gold: Any) -> Any:
    """A latent whose program differs from the gold one in one constant and prints otherwise."""
    from latent_env.training.data import echo_latent

    for program in changed_programs(task.program):
        (latent,) = engine.latents([echo_latent(replace(task, program=program))])
        outputs = [c.output for c in latent.calls]
        if all(o.ok for o in outputs) and [o.output for o in outputs] != [
                c.output.output for c in gold.calls]:
            return latent
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--policy", required=True, help="trained checkpoint θ (writer and "
                                                        "predictor)")
    parser.add_argument("--start", default="default", help="the model θ0 training started from")
    parser.add_argument("--per-family", type=int, default=10, help="test tasks per family")
    parser.add_argument("--max-new", type=int, default=176, help="latent tokens")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="", help="write the per-task numbers here (JSON)")
    args = parser.parse_args()

    from transformers import GenerationConfig

    from latent_env.bench.founding import founding_markdown, founding_scores, founding_table
    from latent_env.context import get_combiner
    from latent_env.env import LatentEnv
    from latent_env.models import configure_threads, load_model
    from latent_env.scoring import LogLikScorer
    from latent_env.training.data import echo_latent, split_tasks
    from latent_env.training.rollout import prompt_token_ids

    configure_threads(args.threads)
    policy, tokenizer = load_model(args.policy)
    theta, theta0 = LogLikScorer(policy, tokenizer), LogLikScorer(*load_model(args.start))
    engine = LatentEnv(tasks=None, scorer=theta).engine
    combine = get_combiner(None)
    tasks = split_tasks("synthetic", "test", args.per_family)
    greedy = GenerationConfig(do_sample=False, pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=tokenizer.eos_token_id)
    latents = []
    for start in range(0, len(tasks), args.batch):
        batch = tasks[start : start + args.batch]
        prompts = [prompt_token_ids(tokenizer, [{"role": "user", "content": ep.prompt}])
                   for ep in engine.start(batch)]
        latents += engine.latents(sample_single(policy, tokenizer, prompts, greedy,
                                                args.max_new))
        print(f"{start + len(batch)}/{len(tasks)} latents written", flush=True)
    records = [{"task_id": t.id, "family": t.family, "context": t.context,
                "continuation": t.continuation, "answer": t.answer, "latent": lat.text}
               for t, lat in zip(tasks, latents)]
    rows = founding_scores(records, theta, theta0)
    robustness = measure_robustness(engine, tasks, theta, theta0, combine, echo_latent)
    print(f"policy={args.policy} start={args.start} tasks={len(rows)} "
          f"per_family={args.per_family} greedy max_new={args.max_new}")
    print(founding_markdown({"trained": founding_table(rows)}))
    report_robustness(robustness)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"tasks": rows, "robustness": robustness}, f, indent=1)


def measure_robustness(engine: Any, tasks: list, theta: Any, theta0: Any, combine: Any,
                       echo_latent: Any) -> list[dict]:
    coded = [t for t in tasks if t.program]
    gold = engine.latents([echo_latent(t) for t in coded])
    kept = [(t, g, w) for t, g in zip(coded, gold)
            if (w := wrong_latent(engine, t, g)) is not None]
    out = []
    for name, scorer in (("trained", theta), ("start", theta0)):
        xs, ys = [t.context for t, _, _ in kept], [t.continuation for t, _, _ in kept]
        right = scorer.score([combine(x, g.text) for x, (_, g, _) in zip(xs, kept)], ys)
        wrong = scorer.score([combine(x, w.text) for x, (_, _, w) in zip(xs, kept)], ys)
        none = scorer.score(xs, ys)
        for (t, _, _), r, w, n in zip(kept, right, wrong, none):
            out.append({"model": name, "task_id": t.id, "family": t.family,
                        "fall": r.total - w.total, "wrong_minus_none": w.total - n.total,
                        "gold_minus_none": r.total - n.total})
    return out


def report_robustness(robustness: list[dict]) -> None:
    print("wrong tool output (gold program, one constant changed):")
    print("| model | tasks | gold − none | wrong − none | fall (gold − wrong) |")
    print("|---|---|---|---|---|")
    for name in ("trained", "start"):
        sel = [r for r in robustness if r["model"] == name]
        print(f"| {name} | {len(sel)} | {mean_ci([r['gold_minus_none'] for r in sel])} "
              f"| {mean_ci([r['wrong_minus_none'] for r in sel])} "
              f"| {mean_ci([r['fall'] for r in sel])} |")


if __name__ == "__main__":
    main()
