"""``latent-env bench``: run policies over a task suite and report gains, accuracy and speed.

A thin command line over :func:`latent_env.bench.run.run_bench` (see there and
:mod:`latent_env.bench.run`): every policy walks the same tasks with one shared scorer, then the
*oracle by kind* (see :mod:`latent_env.bench.choice`). Results go to ``OUT/results.json``
(summary per policy and family with seeded 95% bootstrap intervals, every later policy paired
with the first on the same tasks, the choice metrics, the configuration, every episode),
``OUT/report.html``, ``OUT/choice.md``, two PNG plots, and tables on stdout. Each finished
policy is in ``OUT/results.json`` at once and each batch of episodes in ``OUT/checkpoint/``;
``--resume`` continues an interrupted bench. For the same arguments the results are the same,
interrupted or not, except the timing fields ``episodes_per_s`` and ``wall_s``.

Exit status: 0 when at least one ``--policy`` ran to the end, 1 when every one failed (each failure
is in ``results.json``), 2 for a user mistake (unknown SPEC, missing or malformed task file, …),
130 when interrupted (``--resume`` continues).
"""

from __future__ import annotations

import argparse
import inspect

from latent_env.bench.common import DEFAULT_TOOLS  # noqa: F401 (the --tools default)
from latent_env.bench.run import BenchOptions, bench_exit_status, run_bench
from latent_env.context import COMBINERS

#: Flag defaults are run_bench's: the CLI and the function cannot disagree.
OPTION_NAMES = tuple(name for name in BenchOptions.__dataclass_fields__ if name != "policies")
DEFAULTS = {name: p.default for name, p in inspect.signature(run_bench).parameters.items()
            if name in (*OPTION_NAMES, "resume")}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except ``None`` ones, on/off flags and required options (their help
    says it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.required or action.nargs == 0:
            return action.help
        return super()._get_help_string(action)


def add_bench_subparser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark policies on a task suite",
        description=(
            "Run each policy over the tasks (one episode per task, batched through the vector "
            "env with one shared scorer) and write results.json, report.html and plots to OUT. "
            "Every later policy is also paired with the first on the same tasks (gain difference "
            "with its own interval, answers fixed and broken, sign test). The oracle by kind "
            "(each task's best gold latent: code, reasoning or empty) measures every policy's "
            "choice of latent kind. Each finished policy is written at once; --resume continues "
            "an interrupted bench. "
            "Policy SPECs: none, random, oracle, hf:PATH_OR_ID|default, "
            "openai:BASE_URL#MODEL, tree:BASE_SPEC, a name registered under the "
            "latent_env.policies entry-point group, MODULE:CLASS or FILE.py:CLASS; options as "
            "SPEC?key=value&key=value."
        ),
        formatter_class=HelpFormatter,
    )
    parser.set_defaults(**DEFAULTS)
    parser.add_argument("--policy", action="append", required=True, metavar="SPEC",
                        help="a policy to run; repeat for several (the first is the paired baseline)")
    parser.add_argument("--tasks",
                        help="suite name (synthetic, synthetic-small, founding), FILE.jsonl, a "
                        "directory of <split>.jsonl files, raw text FILE.txt|FILE.md (cut right "
                        "before each number; 'FILE.txt?mode=random&max_tasks=N' for word "
                        "boundaries), or hf:PATH, a local Hugging Face dataset (its 'text' "
                        "column); README 'Raw text as tasks' lists the options")
    parser.add_argument("--split",
                        help="split of a named suite, a directory or an hf: dataset with splits")
    parser.add_argument("--episodes", type=int,
                        help="episodes per policy (default: every selected task once); tasks "
                        "are interleaved by family, and reused from the start when N is larger")
    parser.add_argument("--seed", type=int,
                        help="seeds the policies, the env resets and the bootstrap")
    parser.add_argument("--out", help="output directory (created if missing)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted bench in OUT (same arguments) without "
                        "redoing its finished episodes")
    parser.add_argument("--limit", type=int,
                        help="at most N tasks per family (default: all)")
    parser.add_argument("--families",
                        help="comma-separated families to keep (default: all)")
    parser.add_argument("--jobs", type=int,
                        help="sub-envs stepped together = the policy's batch size")
    parser.add_argument("--model",
                        help="scorer model: default, tiny-random, a local path or a HF id")
    parser.add_argument("--tools", help="comma-separated tools the env runs")
    parser.add_argument("--combiner", choices=sorted(COMBINERS), help="how c(X, L) is formed")
    parser.add_argument("--no-oracle-by-kind", dest="oracle_by_kind", action="store_false",
                        help="skip the oracle by kind (each task's best gold latent: code, "
                        "reasoning or empty) and the regret it gives the choice metrics")
    parser.add_argument("--scorer", choices=("frozen", "self"),
                        help="self: also score each hf: policy with its own model, reading its "
                        "own latents against --model without one, per family (founding.md; "
                        "the main table stays scored by --model)")
    add_prompt_argument(parser)
    parser.set_defaults(func=bench_main)


def add_prompt_argument(parser: argparse.ArgumentParser) -> None:
    """``--prompt``: the environment's instruction template the policy reads."""
    from latent_env.prompt import DEFAULT_PROMPT, PROMPTS

    parser.add_argument("--prompt", default=DEFAULT_PROMPT, choices=sorted(PROMPTS),
                        help="the environment's prompt template around the text")


def bench_main(args: argparse.Namespace) -> int:
    """The ``bench`` command; returns the exit status (see the module docstring)."""
    options = {name: getattr(args, name) for name in OPTION_NAMES}
    return bench_exit_status(run_bench(args.policy, resume=args.resume, **options))
