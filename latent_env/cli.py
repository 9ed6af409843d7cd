"""The ``latent-env`` command line: score, tasks, bench, complete, compare.

Every sub-command has ``--help`` with its defaults. User mistakes print one line to stderr and
exit with status 2; nothing prints a traceback for them (set ``LATENT_ENV_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

EXIT_USAGE = 2

# Sub-commands live in their own modules and are imported only when present, so a missing
# optional part never breaks the others: (module, function that adds the sub-parser).
SUBCOMMANDS: list[tuple[str, str]] = [
    ("latent_env.score_cli", "add_score_subparser"),
    ("latent_env.tasks.cli", "add_tasks_subparser"),
    ("latent_env.bench.cli", "add_bench_subparser"),
    ("latent_env.bench.complete", "add_complete_subparser"),
    ("latent_env.bench.compare", "add_compare_subparser"),
]


class UserError(Exception):
    """A mistake in the user's input: reported as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latent-env",
        description="Train and benchmark LLMs that write their own latent data.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    from latent_env import __version__

    parser.add_argument("--version", action="version", version=f"latent-env {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name, adder in SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that part of the product is not installed
            raise
        add: Callable[[argparse._SubParsersAction], None] = getattr(module, adder)
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    from latent_env.models import ModelNotFoundError
    from latent_env.tools.registry import ToolRegistryError

    try:
        return int(func(args) or 0)
    except (UserError, FileNotFoundError, ValueError, ModelNotFoundError,
            ToolRegistryError) as exc:
        if os.environ.get("LATENT_ENV_DEBUG"):
            raise
        print(f"latent-env {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # a command may say what it kept and how to continue
        print(f"latent-env {args.command}: {exc}" if str(exc) else "interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
