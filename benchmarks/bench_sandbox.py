"""Sandbox latency and throughput: a fresh fork per run vs a fresh subprocess vs in-process exec.

    python benchmarks/bench_sandbox.py [--runs 2000] [--subprocess-runs 30] [--restarts 5]
                                       [--append-results benchmarks/RESULTS.md]

Reports median / p99 / mean wall time per small snippet seen by the caller of ``Sandbox.run``
with the default limits (every run in a worker freshly forked from the warm zygote: the pool
forks the successor in the background, so a caller waits for a fork only when every worker is
still being replaced), with one worker (each run waits for the previous run's replacement: fork
plus run), and, for reference, with workers reused across runs (``runs_per_worker`` 10**9,
which lets state cross runs). By default the pool's compiler compiles each snippet and the
fresh worker gets the code object; one row has each fresh worker compile instead
(``shared_compiler=False``). Then snippets per second through ``run_many`` on the default pool,
``python -I -c <snippet>`` in a fresh process, and plain ``exec`` of the same trusted code in
this process (reference only: no isolation at all); the time to get a working worker back after
a timeout kill, the cost of forking a worker to ready, and the zygote's own cold start.
Targets (fresh worker per run): median <= 3 ms including the fork, p99 <= 10 ms, >= 300
snippets/s; the speed-up over a fresh subprocess is reported alongside.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latent_env.sandbox import DEFAULT_WORKERS, Limits, Sandbox  # noqa: E402
from latent_env.sandbox.policy import compile_program  # noqa: E402
from latent_env.sandbox.process import WorkerProcess  # noqa: E402
from latent_env.sandbox.zygote import Zygote  # noqa: E402

SNIPPET = 'prices = [12.5, 8.0, 3.25]\ntotal = sum(prices) * {n}\nprint(f"total={{total:.2f}}")'
TARGET_MEDIAN_MS = 3.0
TARGET_P99_MS = 10.0
TARGET_PER_SECOND = 300.0


def summarise(samples: list[float]) -> dict[str, float]:
    """Median, p90, p99 and mean in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p90_ms": ordered[int(round(0.9 * (len(ordered) - 1)))] * 1000,
        "p99_ms": p99 * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
        "n": len(ordered),
    }


def time_calls(fn: Callable[[int], object], runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return samples


def bench_pool(workers: int, runs: int, warmup: int) -> dict[str, dict[str, float]]:
    """Latency seen by one caller: the default pool, one worker, and reused workers."""
    cached = SNIPPET.format(n=1)
    results = {}
    configs = (
        (f"pool of {workers}, fresh worker per run (default)", Limits(), workers),
        ("pool of 1, fresh worker per run (fork + run back to back)", Limits(), 1),
        (f"pool of {workers}, each fresh worker compiles (shared_compiler=False)",
         Limits(shared_compiler=False), workers),
        (f"reference: pool of {workers}, workers reused (state crosses runs)",
         Limits(runs_per_worker=10**9), workers),
    )
    for label, limits, size in configs:
        with Sandbox(workers=size, limits=limits) as sandbox:
            sandbox.start()

            def run_cached(_: int, sandbox: Sandbox = sandbox) -> None:
                assert sandbox.run(cached).ok

            def run_unique(i: int, sandbox: Sandbox = sandbox) -> None:
                assert sandbox.run(SNIPPET.format(n=i + 2)).ok

            time_calls(run_cached, warmup)
            results[f"{label}, same snippet"] = summarise(time_calls(run_cached, runs))
            results[f"{label}, new snippet each run"] = summarise(time_calls(run_unique, runs))
    return results


def bench_throughput(workers: int, runs: int) -> float:
    """Snippets per second through ``run_many`` on the default pool (fresh worker per run)."""
    with Sandbox(workers=workers) as sandbox:
        sandbox.start()
        sandbox.run_many([SNIPPET.format(n=i) for i in range(50)])
        start = time.perf_counter()
        results = sandbox.run_many([SNIPPET.format(n=i) for i in range(runs)])
        elapsed = time.perf_counter() - start
    assert all(r.ok for r in results) and len({r.worker_pid for r in results}) == runs
    return runs / elapsed


def bench_subprocess(runs: int) -> dict[str, float]:
    def run(i: int) -> None:
        subprocess.run(
            [sys.executable, "-I", "-c", SNIPPET.format(n=i)],
            check=True,
            capture_output=True,
            env={"PATH": "/usr/bin:/bin"},
        )

    run(0)
    return summarise(time_calls(run, runs))


def bench_exec(runs: int) -> dict[str, dict[str, float]]:
    code = SNIPPET.format(n=1)
    compiled = compile(code, "<bench>", "exec")
    sink = {"print": lambda *args, **kwargs: None}

    def compile_and_exec(i: int) -> None:
        exec(
            compile(SNIPPET.format(n=i), "<bench>", "exec"), {"__builtins__": __builtins__, **sink}
        )

    def exec_only(_: int) -> None:
        exec(compiled, {"__builtins__": __builtins__, **sink})

    def policy_compile(i: int) -> None:
        assert compile_program(SNIPPET.format(n=i)).code is not None

    return {
        "in-process exec, precompiled (no isolation)": summarise(time_calls(exec_only, runs)),
        "in-process compile + exec (no isolation)": summarise(time_calls(compile_and_exec, runs)),
        "in-process RestrictedPython compile only (no IPC)": summarise(
            time_calls(policy_compile, runs)
        ),
    }


def bench_restart(restarts: int) -> dict[str, dict[str, float]]:
    """Timeout, then time until the pool answers again (includes forking a new worker); and
    the two halves of a worker's cost: the zygote's cold start, and one fork to ready."""
    recoveries = []
    with Sandbox(workers=1, limits=Limits(timeout_s=0.2)) as sandbox:
        sandbox.start()
        for _ in range(restarts):
            assert sandbox.run("while True:\n    pass").status == "timeout"
            start = time.perf_counter()
            assert sandbox.run("1 + 1").ok
            recoveries.append(time.perf_counter() - start)
    cold, forks = [], []
    for _ in range(restarts):
        start = time.perf_counter()
        zygote = Zygote(Limits())
        cold.append(time.perf_counter() - start)
        try:
            start = time.perf_counter()
            worker = WorkerProcess.fork_from(zygote, Limits())
            forks.append(time.perf_counter() - start)
            worker.kill()
        finally:
            zygote.close()
    return {
        "first run after a timeout kill (fork + run)": summarise(recoveries),
        "fork a worker from the zygote to ready": summarise(forks),
        "zygote cold start (python, numpy, warm-up)": summarise(cold),
    }


def render(
    results: dict[str, dict[str, float]],
    verdict: list[str],
    command: str,
    workers: int,
    load: float,
) -> str:
    lines = [
        "## Sandbox (`python benchmarks/bench_sandbox.py`)",
        "",
        f"Command: `{command}`  ",
        f"Date: {datetime.date.today().isoformat()}; {platform.platform()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; default pool of {workers} "
        f"workers, {Limits().runs_per_worker} run per worker; load average at start {load:.2f}.",
        "",
        "| measurement | median ms | p90 ms | p99 ms | mean ms | n |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in results.items():
        lines.append(
            f"| {name} | {row['median_ms']:.3f} | {row['p90_ms']:.3f} | {row['p99_ms']:.3f} "
            f"| {row['mean_ms']:.3f} "
            f"| {row['n']} |"
        )
    lines += ["", *verdict, ""]
    return "\n".join(lines)


def _compare(value: float, target: float, smaller_is_better: bool = True) -> str:
    ok = value <= target if smaller_is_better else value >= target
    return ("<=" if smaller_is_better else ">=") if ok else (">" if smaller_is_better else "<")


def judge(results: dict[str, dict[str, float]], per_second: float) -> list[str]:
    """One verdict line per fresh-worker measurement against the targets, and throughput."""
    fresh = results["fresh `python -I -c` per snippet"]["median_ms"]
    verdict = []
    for name, row in results.items():
        if "fresh worker per run" not in name:
            continue
        median, p99 = row["median_ms"], row["p99_ms"]
        speedup = fresh / median
        checks = [
            f"median {median:.3f} ms {_compare(median, TARGET_MEDIAN_MS)} {TARGET_MEDIAN_MS} ms",
            f"p99 {p99:.3f} ms {_compare(p99, TARGET_P99_MS)} {TARGET_P99_MS} ms",
        ]
        met = median <= TARGET_MEDIAN_MS and p99 <= TARGET_P99_MS
        verdict.append(f"- {name}: {'; '.join(checks)}: targets {'met' if met else 'NOT met'} "
                       f"({speedup:.0f}x faster than a fresh subprocess).")
    met = per_second >= TARGET_PER_SECOND
    verdict.append(
        f"- throughput, `run_many` on the default pool, a fresh worker per run: "
        f"{per_second:.0f} snippets/s "
        f"{_compare(per_second, TARGET_PER_SECOND, smaller_is_better=False)} "
        f"{TARGET_PER_SECOND:.0f}/s: target {'met' if met else 'NOT met'}.")
    return verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="warm pool / exec runs each")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="pool size")
    parser.add_argument("--warmup", type=int, default=100, help="untimed warm-up runs")
    parser.add_argument("--subprocess-runs", type=int, default=30, help="fresh-process runs")
    parser.add_argument("--restarts", type=int, default=5, help="timeout/respawn cycles")
    parser.add_argument(
        "--append-results", type=Path, default=None, help="append the markdown section here"
    )
    args = parser.parse_args()

    load = os.getloadavg()[0]
    results: dict[str, dict[str, float]] = {}
    results.update(bench_pool(args.workers, args.runs, args.warmup))
    per_second = bench_throughput(args.workers, args.runs)
    results["fresh `python -I -c` per snippet"] = bench_subprocess(args.subprocess_runs)
    results.update(bench_exec(args.runs))
    results.update(bench_restart(args.restarts))

    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    section = render(results, judge(results, per_second), command, args.workers, load)
    print(section)
    if args.append_results is not None:
        with args.append_results.open("a", encoding="utf-8") as out:
            out.write("\n" + section)


if __name__ == "__main__":
    main()
