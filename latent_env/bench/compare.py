"""``latent-env compare``: pair policies from separate ``results.json`` files on their common tasks.

``latent-env bench`` pairs the policies of one run with its first. Checkpoints are often benched
in separate runs (a baseline once, then each variant); this command reads those files and prints
the same paired table: each policy against the baseline, task by task (see
:mod:`latent_env.bench.paired`). Tasks are matched by ``task_id``.

A gain means something only against the scorer that measured it, so files are refused, with the
differing fields named, unless they agree on :data:`SCORING_FIELDS` (the scorer model, the
combiner, the prompt and the tools, as each file's ``config`` records them) and on their task
ids; ``--force`` pairs them anyway, on the tasks they share.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

#: ``config`` fields of a results.json that decide what its gains mean.
SCORING_FIELDS = ("model", "combiner", "prompt", "tools")

def add_compare_subparser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="pair policies from several results.json files with a baseline",
        description=(
            "Read results.json files written by `latent-env bench` (or train_rl.py's "
            "RUN/eval/results.json) and pair every policy with the baseline on the tasks both "
            "ran: gain difference with a bootstrap interval, answers fixed and broken, sign test."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "results",
        nargs="+",
        type=Path,
        metavar="RESULTS_JSON",
        help="results.json files; the first holds the baseline",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="POLICY",
        help="the baseline's policy name in the first file (default: its first)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the bootstrap intervals")
    parser.add_argument(
        "--out", type=Path, default=None, help="also write the comparison to this JSON file"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="pair files that differ in scorer, combiner, prompt, tools or task ids",
    )
    parser.set_defaults(func=run_compare)


def load_policies(
    paths: list[Path],
) -> tuple[list[list[str]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Each file's policy names, all episode records (relabelled where a later file repeats a
    name: ``NAME (FILE)``), and each file's ``config`` with its task ids under ``task_ids``."""
    per_file: list[list[str]] = []
    records: list[dict[str, Any]] = []
    setups: list[dict[str, Any]] = []
    for path in paths:
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
            file_names, episodes = list(results["policies"]), results["episodes"]
            task_ids = {str(r["task_id"]) for r in episodes}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a results.json from latent-env bench ({exc})") from exc
        config = results.get("config")
        setups.append({**(config if isinstance(config, dict) else {}), "task_ids": task_ids})
        seen = {name for names in per_file for name in names}
        rename = {n: (f"{n} ({path})" if n in seen else n) for n in file_names}
        per_file.append(list(rename.values()))
        records += [{**r, "policy": rename[r["policy"]]} for r in episodes if r["policy"] in rename]
    return per_file, records, setups


def setup_differences(paths: list[Path], setups: list[dict[str, Any]]) -> list[str]:
    """One line per file that is not comparable with the first, naming what differs."""
    lines = []
    first = setups[0]
    for path, setup in zip(paths[1:], setups[1:]):
        differ = [
            f"{name} {first.get(name, 'unrecorded')!r} vs {setup.get(name, 'unrecorded')!r}"
            for name in SCORING_FIELDS
            if first.get(name, "unrecorded") != setup.get(name, "unrecorded")
        ]
        ours, theirs = first["task_ids"], setup["task_ids"]
        if ours != theirs:
            differ.append(f"task ids ({len(ours)} vs {len(theirs)}, {len(ours & theirs)} shared)")
        if differ:
            lines.append(f"{path} differs from {paths[0]}: {'; '.join(differ)}")
    return lines


def run_compare(args: argparse.Namespace) -> int:
    from latent_env.bench.paired import paired_against
    from latent_env.bench.table import print_paired, wide_console

    per_file, records, setups = load_policies(args.results)
    differences = setup_differences(args.results, setups)
    if differences and not args.force:
        raise ValueError(
            " | ".join(differences) + " (gains from different setups do not pair; --force "
            "pairs them anyway on the shared tasks)"
        )
    first_file = per_file[0]  # never renamed: nothing comes before it
    baseline = args.baseline or next(iter(first_file), None)
    if baseline not in first_file:
        raise ValueError(
            f"--baseline {baseline!r} is not a policy of {args.results[0]}; "
            f"it has: {', '.join(first_file) or 'none'}"
        )
    names = [name for names in per_file for name in names]
    paired = paired_against(baseline, names, records, args.seed)
    if not paired:
        raise ValueError("nothing to compare: give a second policy or file")
    print_paired(baseline, paired, wide_console())
    if args.out:
        args.out.write_text(json.dumps({"baseline": baseline, "against": paired}, indent=1))
    return 0
