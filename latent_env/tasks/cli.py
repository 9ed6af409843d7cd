"""``latent-env tasks`` sub-commands: ``make``, ``list`` and ``show``.

The main CLI calls :func:`add_tasks_subparser` and then ``args.func(args)``, which returns an
exit code. ``python -m latent_env.tasks.cli make ...`` runs the same commands on their own.
User mistakes (unknown suite or family, malformed task file) print one line to stderr and
return 2, without a traceback.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latent_env.tasks.families import (
    DIFFICULTIES,
    EXPECTED_KINDS,
    FAMILIES,
    family_description,
)
from latent_env.tasks.jsonl import write_jsonl
from latent_env.tasks.suites import SPLITS, SUITES, load_tasks, make_suite
from latent_env.tasks.task import Task, TaskError

Command = Callable[[argparse.Namespace], int]


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except ``None`` ones whose help already explains what happens."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.required:
            return action.help
        return super()._get_help_string(action)


_FORMATTER = _Formatter


def _user_errors(func: Command) -> Command:
    """Turn a user mistake into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except BrokenPipeError:
            # The reader went away (``... | head``): not an error. Point stdout at devnull so
            # the interpreter's final flush does not complain either.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except (TaskError, ImportError) as exc:
            print(f"latent-env tasks: error: {exc}", file=sys.stderr)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"latent-env tasks: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2

    return wrapper


def _families_arg(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise TaskError("--families needs at least one family name")
    return names


def _outputs(out: str, split: str) -> list[tuple[Path, list[str]]]:
    """Files to write and the splits each holds: ``x.jsonl`` is one file, else a directory."""
    splits = list(SPLITS) if split == "all" else [split]
    path = Path(out)
    if path.suffix == ".jsonl":
        return [(path, splits)]
    return [(path / f"{s}.jsonl", [s]) for s in splits]


@_user_errors
def cmd_make(args: argparse.Namespace) -> int:
    """Generate a suite's split(s) and write them as JSONL."""
    families = _families_arg(args.families)
    written = []
    for path, splits in _outputs(args.out, args.split):
        tasks: list[Task] = []
        for split in splits:
            tasks += make_suite(args.suite, split, n_per_family=args.n_per_family,
                                families=families, difficulty=args.difficulty, seed=args.seed)
        count = write_jsonl(path, tasks)
        written.append(f"{count} tasks to {path}")
    print("wrote " + ", ".join(written))
    return 0


@_user_errors
def cmd_list(args: argparse.Namespace) -> int:
    """Print the built-in suites and the synthetic families."""
    print("Suites (tasks per family: train/validation/test):")
    for suite in SUITES.values():
        sizes = "/".join(str(suite.sizes.get(s, 0)) for s in SPLITS)
        print(f"  {suite.name:<16} {sizes:<10} {suite.description}")
    print("  (also accepted: a .jsonl file, a directory of <split>.jsonl files, "
          "reasoning_gym:NAME, raw text FILE.txt|FILE.md, hf:PATH to a local dataset)")
    print(f"Families (difficulty {DIFFICULTIES[0]}-{DIFFICULTIES[-1]}; [kinds of latent expected "
          "to help]):")
    for name in FAMILIES:
        kinds = ",".join(EXPECTED_KINDS.get(name, ()))
        print(f"  {name:<13} [{kinds}] {family_description(name)}")
    return 0


def format_task(task: Task) -> str:
    """A readable multi-line rendering of one task."""
    extra = ", ".join(f"{k}={v}" for k, v in task.meta.items() if k in ("difficulty", "template"))
    head = f"── {task.id}" + (f"  [{task.family}{', ' + extra if extra else ''}]"
                             if task.family else "")
    lines = [head, "context:", textwrap.indent(task.context, "    "),
             f"continuation: {task.continuation!r}"]
    if task.answer is not None:
        lines.append(f"answer: {task.answer}")
    if task.program:
        lines += ["program:", textwrap.indent(task.program, "    ")]
    if task.reason:
        lines += ["reason:", textwrap.indent(task.reason, "    ")]
    return "\n".join(lines)


@_user_errors
def cmd_show(args: argparse.Namespace) -> int:
    """Pretty-print the first tasks of a suite or task file."""
    tasks = load_tasks(args.spec, split=args.split)
    shown = tasks if args.limit is None or args.limit < 0 else tasks[: args.limit]
    for task in shown:
        print(format_task(task))
        print()
    print(f"({len(shown)} of {len(tasks)} tasks)")
    return 0


def _add_commands(parser: argparse.ArgumentParser) -> None:
    """Register make/list/show on ``parser`` (used standalone and under ``latent-env``)."""
    sub = parser.add_subparsers(dest="tasks_command", metavar="COMMAND", required=True)
    make = sub.add_parser("make", help="generate a suite's tasks into JSONL files",
                          formatter_class=_FORMATTER, description=cmd_make.__doc__)
    make.add_argument("--suite", default="synthetic",
                      help=f"suite name ({', '.join(SUITES)})")
    make.add_argument("--split", default="test", choices=[*SPLITS, "all"],
                      help="split to generate; 'all' writes train, validation and test")
    make.add_argument("--out", required=True, metavar="PATH.jsonl|DIR",
                      help="output file, or a directory that receives <split>.jsonl files")
    make.add_argument("--families", default=None, metavar="a,b",
                      help=f"comma-separated families (default: all of {', '.join(FAMILIES)})")
    make.add_argument("--difficulty", type=int, default=None, choices=DIFFICULTIES,
                      help="only this difficulty (default: cycle through 1, 2, 3)")
    make.add_argument("--n-per-family", type=int, default=None, metavar="N",
                      help="tasks per family and split (default: the suite's sizes)")
    make.add_argument("--seed", type=int, default=None,
                      help="seed (default: the suite's fixed seed)")
    make.set_defaults(func=cmd_make)

    lst = sub.add_parser("list", help="list suites and families", formatter_class=_FORMATTER,
                         description=cmd_list.__doc__)
    lst.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="pretty-print a few tasks", formatter_class=_FORMATTER,
                          description=cmd_show.__doc__)
    show.add_argument("spec", metavar="PATH_OR_SUITE",
                      help="suite name, .jsonl file, directory of split files, reasoning_gym:NAME, "
                      "raw text FILE.txt|FILE.md[?mode=random&...], hf:PATH (a local dataset)")
    show.add_argument("--split", default="test", choices=SPLITS,
                      help="split of a suite, directory or hf: dataset with splits")
    show.add_argument("--limit", type=int, default=3, metavar="N",
                      help="tasks to show (-1 for all)")
    show.set_defaults(func=cmd_show)


def add_tasks_subparser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``tasks`` (with make/list/show) on the main CLI's ``subparsers``."""
    parser = subparsers.add_parser(
        "tasks", help="make, list and show task sets", formatter_class=_FORMATTER,
        description="Make, list and show task sets (suites, JSONL task files).")
    _add_commands(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """A standalone parser: ``python -m latent_env.tasks.cli make|list|show ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m latent_env.tasks.cli", formatter_class=_FORMATTER,
        description="Make, list and show task sets (suites, JSONL task files).")
    _add_commands(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
