"""Tests for latent_env.tasks: families, the Task record, JSONL files, suites and the CLI."""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latent_env.tasks import (
    FAMILIES,
    FOUNDING_TASK,
    SPLITS,
    Task,
    TaskError,
    TaskFormatError,
    generate_task,
    list_suites,
    load_jsonl,
    load_split,
    load_tasks,
    make_suite,
    split_of,
    split_task_file,
    write_jsonl,
)
from latent_env.tasks.cli import add_tasks_subparser, main
from latent_env.tasks.families import EXPECTED_KINDS

REPO = Path(__file__).resolve().parents[1]
ALLOWED_IMPORTS = {"math", "statistics", "fractions", "decimal", "datetime", "itertools",
                   "functools", "collections", "numpy"}
SAMPLES = [(seed, d) for seed in range(20) for d in (1, 2, 3)]
# Gold programs exist for code families; word-problem shape for families with any gold (the
# corpus families, which expect nothing, are checked in test_tasks_corpus.py).
CODE_FAMILIES = [f for f in FAMILIES if "code" in EXPECTED_KINDS[f]]
GOLD_FAMILIES = [f for f in FAMILIES if set(EXPECTED_KINDS[f]) - {"empty"}]


def run_program(code: str) -> str:
    """Execute a gold program (our own trusted code) and return what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<gold program>", "exec"), {"__name__": "__gold__"})
    return out.getvalue()


def imported_modules(code: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    return roots


@pytest.fixture(scope="module")
def samples() -> dict[str, list[Task]]:
    return {f: [generate_task(f, np.random.default_rng(s), d) for s, d in SAMPLES]
            for f in FAMILIES}


# ---- families ------------------------------------------------------------------------------

def test_registry_has_the_required_families():
    assert {"average", "sum_diff", "multi_step", "percent", "unit_convert", "date_arith",
            "count_items", "sequence", "trend"} <= set(FAMILIES)


@pytest.mark.parametrize("family", GOLD_FAMILIES)
def test_family_tasks_are_well_formed(family, samples):
    for task in samples[family]:
        assert task.family == family
        assert task.answer and task.answer == task.answer.strip()
        assert task.continuation.startswith(" " + task.answer)
        tail = task.continuation[len(task.answer) + 1:]
        assert len(tail.split()) <= 2, task.continuation  # answer + at most a couple of words
        assert task.context and task.context == task.context.rstrip()
        # The answer is not simply sitting at the end of the context.
        assert not task.context.rstrip(" :=").endswith(task.answer), task.context
        assert task.meta["difficulty"] in (1, 2, 3)
        assert task.meta["template"].startswith(family + "/")
        assert "," not in task.answer  # no thousands separators


@pytest.mark.parametrize("family", CODE_FAMILIES)
def test_gold_programs_print_exactly_the_answer(family, samples):
    for task in samples[family]:
        assert imported_modules(task.program) <= ALLOWED_IMPORTS, task.program
        assert run_program(task.program) == task.answer + "\n", task.program


@pytest.mark.parametrize("family", list(FAMILIES))
def test_generation_is_deterministic(family):
    first = [generate_task(family, np.random.default_rng(7), d).to_dict() for d in (1, 2, 3)]
    again = [generate_task(family, np.random.default_rng(7), d).to_dict() for d in (1, 2, 3)]
    assert first == again
    others = {generate_task(family, np.random.default_rng(s), 2).context for s in range(10)}
    assert len(others) >= 8


@pytest.mark.parametrize("family", list(FAMILIES))
def test_surface_variety(family):
    tasks = [generate_task(family, np.random.default_rng(100 + i), i % 3 + 1) for i in range(50)]
    assert len({t.meta["template"] for t in tasks}) >= 3
    assert len({" ".join(t.context.split()[:5]) for t in tasks}) >= 3


def test_difficulty_grows_the_numbers():
    def digits(d: int) -> float:
        tasks = [generate_task("multi_step", np.random.default_rng(s), d) for s in range(60)]
        return float(np.mean([len(t.answer) for t in tasks]))

    assert digits(1) < digits(3)


def test_generate_task_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(TaskError, match='unknown family "nope"'):
        generate_task("nope", rng, 1)
    for bad in (0, 4, True):
        with pytest.raises(TaskError, match="difficulty"):
            generate_task("average", rng, bad)


@settings(max_examples=150, deadline=None)
@given(family=st.sampled_from(sorted(FAMILIES)), seed=st.integers(0, 2**63 - 1),
       difficulty=st.sampled_from([1, 2, 3]))
def test_generate_task_never_raises(family, seed, difficulty):
    task = generate_task(family, np.random.default_rng(seed), difficulty)
    if family in CODE_FAMILIES:
        assert run_program(task.program) == task.answer + "\n"
    if "reasoning" in EXPECTED_KINDS[family]:
        assert task.reason and task.answer in task.reason


# ---- Task ----------------------------------------------------------------------------------

def test_task_dict_round_trip_keeps_extra_keys():
    d = {"id": "a", "context": "X", "continuation": " 1", "answer": "1", "family": "f",
         "difficulty": 2, "meta": {"nested": [1, 2]}}
    task = Task.from_dict(d)
    assert task.meta == {"difficulty": 2, "meta": {"nested": [1, 2]}}
    assert task.program is None
    assert task.to_dict() == d
    assert hash(task) == hash(Task.from_dict(d))


@pytest.mark.parametrize(("obj", "reason"), [
    ({"id": "a", "context": "x"}, 'missing required key "continuation"'),
    ({"id": "a", "context": 3, "continuation": " y"}, '"context" must be a string, got int'),
    ({"id": "a", "context": "x", "continuation": ""}, '"continuation" must not be empty'),
    ({"id": " ", "context": "x", "continuation": " y"}, '"id" must not be empty'),
    ({"id": "a", "context": "x", "continuation": " y", "answer": 16},
     '"answer" must be a string or null, got int'),
    ([1, 2], "expected a JSON object, got array"),
])
def test_task_from_dict_errors(obj, reason):
    with pytest.raises(TaskFormatError) as info:
        Task.from_dict(obj, where="f.jsonl:4")
    assert str(info.value) == f"f.jsonl:4: {reason}"


def test_task_meta_cannot_shadow_fields():
    with pytest.raises(TaskFormatError, match='meta key "answer"'):
        Task("a", "x", " y", meta={"answer": "y"})


# ---- JSONL ---------------------------------------------------------------------------------

def test_jsonl_round_trip(tmp_path):
    tasks = make_suite("synthetic-small", "test") + [
        Task("unicode", "Café — 5 €, naïve", " 6 €", meta={"seed": 3, "tags": ["a"]})]
    path = tmp_path / "sub" / "tasks.jsonl"
    assert write_jsonl(path, tasks) == len(tasks)
    assert load_jsonl(path) == tasks
    assert [p.name for p in path.parent.iterdir()] == ["tasks.jsonl"]  # no temp file left


def test_jsonl_skips_blank_lines(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('\n{"id": "a", "context": "x", "continuation": " y"}\n   \n',
                    encoding="utf-8")
    assert [t.id for t in load_jsonl(path)] == ["a"]


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "b", "context": "x"}', 'missing required key "continuation"'),
    ('{"id": "b", "context": "x" "continuation": " y"}',
     "invalid JSON (Expecting ',' delimiter at column 28)"),
    ('{"id": "b", "context": ["x"], "continuation": " y"}', '"context" must be a string, got list'),
    ('{"id": "a", "context": "x", "continuation": " y"}', 'duplicate id "a" (first on line 1)'),
    ('"just a string"', "expected a JSON object, got string"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "tasks.jsonl"
    good = '{"id": "a", "context": "x", "continuation": " y"}'
    path.write_text(f"{good}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(TaskFormatError) as info:
        load_jsonl(path)
    assert str(info.value) == f"{path}:3: {message}"


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "tasks.jsonl"
    write_jsonl(path, [FOUNDING_TASK])
    before = path.read_bytes()
    with pytest.raises(TaskFormatError, match="duplicate id"):
        write_jsonl(path, [FOUNDING_TASK, FOUNDING_TASK])
    with pytest.raises(TaskFormatError, match="not JSON-serialisable"):
        write_jsonl(path, [Task("x", "c", " y", meta={"bad": object()})])
    assert path.read_bytes() == before
    assert len(list(tmp_path.iterdir())) == 1


# ---- suites --------------------------------------------------------------------------------

def test_founding_suite_is_the_founding_example():
    (task,) = load_tasks("founding")
    assert task.context.startswith("The names of the students are John, Mary, and Peter.")
    assert task.context.endswith("Their average age is")
    assert (task.continuation, task.answer) == (" 16", "16")
    assert run_program(task.program) == "16\n"
    assert make_suite("founding", "train") == []


@pytest.fixture(scope="module")
def synthetic() -> dict[str, list[Task]]:
    return {split: make_suite("synthetic", split) for split in SPLITS}


def test_synthetic_splits_never_share_a_context(synthetic):
    contexts = {s: {" ".join(t.context.split()) for t in tasks} for s, tasks in synthetic.items()}
    assert not contexts["train"] & contexts["test"]
    assert not contexts["train"] & contexts["validation"]
    assert not contexts["validation"] & contexts["test"]
    assert " ".join(FOUNDING_TASK.context.split()) not in contexts["train"]
    for split, tasks in synthetic.items():
        assert all(split_of(t.meta.get("split_key") or t.context) == split for t in tasks)
        assert len(contexts[split]) == len(tasks)  # no duplicates within a split either


def test_synthetic_sizes_ids_and_mix(synthetic):
    assert [len(synthetic[s]) for s in SPLITS] == [n * len(FAMILIES) for n in (200, 20, 25)]
    test = synthetic["test"]
    assert test[0].id == "synthetic/test/average/0000"
    assert len({t.id for s in SPLITS for t in synthetic[s]}) == 245 * len(FAMILIES)
    assert {t.meta["difficulty"] for t in test} == {1, 2, 3}
    assert all(t.meta["split"] == "test" and t.meta["suite"] == "synthetic" for t in test)


def test_suites_are_deterministic_and_small_is_a_prefix(synthetic):
    small = make_suite("synthetic-small", "test")
    assert [t.context for t in small] == [t.context for t in make_suite("synthetic-small")]
    by_family = {}
    for t in synthetic["test"]:
        by_family.setdefault(t.family, []).append(t.context)
    assert [t.context for t in small] == [c for f in FAMILIES for c in by_family[f][:4]]


def test_overrides_keep_split_ownership():
    tasks = make_suite("synthetic", "train", n_per_family=5, families=["trend", "percent"],
                       difficulty=3, seed=99)
    assert len(tasks) == 10
    assert {t.family for t in tasks} == {"trend", "percent"}
    assert all(t.meta["difficulty"] == 3 and split_of(t.context) == "train" for t in tasks)
    assert tasks != make_suite("synthetic", "train", n_per_family=5,
                               families=["trend", "percent"], difficulty=3, seed=98)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "nope"}, 'unknown suite "nope"'),
    ({"split": "dev"}, 'unknown split "dev"'),
    ({"families": ["average", "x"]}, 'unknown family "x"'),
    ({"difficulty": 5}, "difficulty must be 1, 2 or 3"),
])
def test_make_suite_errors(kwargs, message):
    with pytest.raises(TaskError, match=message):
        make_suite(**kwargs)


def test_load_tasks_from_names_files_and_directories(tmp_path):
    assert set(list_suites()) >= {"founding", "synthetic-small", "synthetic"}
    assert load_tasks("synthetic-small", "validation") == make_suite("synthetic-small",
                                                                     "validation")
    write_jsonl(tmp_path / "test.jsonl", [FOUNDING_TASK])
    assert load_tasks(tmp_path / "test.jsonl") == [FOUNDING_TASK]
    assert load_tasks(str(tmp_path)) == [FOUNDING_TASK]  # DIR/<split>.jsonl
    with pytest.raises(TaskError, match="no such task file"):
        load_tasks(tmp_path / "missing.jsonl")
    with pytest.raises(TaskError, match="neither a suite"):
        load_tasks("no-such-suite")


def test_load_split_splits_one_file_by_its_split_field_else_the_context_hash(tmp_path):
    suite = make_suite("synthetic-small", "all")
    unmarked = [replace(t, id=f"u{i}", meta={k: v for k, v in t.meta.items() if k != "split"})
                for i, t in enumerate(suite)]
    path = tmp_path / "tasks.jsonl"
    write_jsonl(path, [*suite, *unmarked])
    splits = {split: load_split(path, split) for split in SPLITS}
    for split, tasks in splits.items():
        marked = [t for t in tasks if "split" in t.meta]
        assert marked == make_suite("synthetic-small", split)
        # the hash rule: the suites' own, so the unmarked copies land where the originals are
        assert [t.id for t in tasks if "split" not in t.meta] == [
            f"u{suite.index(t)}" for t in marked]
    assert sum(map(len, splits.values())) == 2 * len(suite)  # every task in exactly one split
    assert split_task_file(path) == splits
    assert load_split("synthetic-small", "train") == make_suite("synthetic-small", "train")
    write_jsonl(tmp_path / "dir" / "test.jsonl", unmarked[:1])  # a directory's files are kept
    assert load_split(str(tmp_path / "dir"), "test") == unmarked[:1]


def test_load_split_refuses_raw_text_whose_tasks_share_one_text(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("In 2019 the shop sold 1,250 bikes. " * 40)
    assert load_tasks(str(notes))  # bench and gym.make read it whole
    for spec in (str(notes), f"{notes}?mode=random", f"hf:{tmp_path}"):
        with pytest.raises(TaskError, match="raw text has no train and test splits to keep "
                                            "apart; train on it with train_rl.py --text FILE"):
            load_split(spec, "train")


def test_a_split_field_outside_the_splits_names_file_and_line(tmp_path):
    path = tmp_path / "tasks.jsonl"
    write_jsonl(path, [FOUNDING_TASK, replace(FOUNDING_TASK, id="dev", meta={"split": "dev"})])
    path.write_text(path.read_text().replace("\n", "\n\n", 1))  # a blank line moves it to 3
    with pytest.raises(TaskFormatError, match=r'tasks.jsonl:3: "split" must be one of train, '
                                              r"validation, test .*got 'dev'"):
        load_split(path, "train")


# ---- CLI -----------------------------------------------------------------------------------

def run_cli(argv: list[str]) -> int:
    """Dispatch as the main ``latent-env`` CLI does: subparsers + ``args.func(args)``."""
    parser = argparse.ArgumentParser(prog="latent-env")
    add_tasks_subparser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_make_list_show(tmp_path, capsys):
    out = tmp_path / "suite"
    assert run_cli(["tasks", "make", "--suite", "synthetic-small", "--split", "all",
                    "--out", str(out)]) == 0
    assert f"{4 * len(FAMILIES)} tasks to" in capsys.readouterr().out
    assert [len(load_jsonl(out / f"{s}.jsonl")) for s in SPLITS] == [4 * len(FAMILIES)] * 3

    single = tmp_path / "trend.jsonl"
    assert run_cli(["tasks", "make", "--families", "trend,sequence", "--difficulty", "2",
                    "--n-per-family", "3", "--seed", "5", "--out", str(single)]) == 0
    made = load_jsonl(single)
    assert [t.family for t in made] == ["trend"] * 3 + ["sequence"] * 3
    assert all(t.meta["difficulty"] == 2 for t in made)

    assert run_cli(["tasks", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in [*FAMILIES, *list_suites()])
    assert "  where_now     [reasoning] " in listing and "  prose         [empty] " in listing

    assert run_cli(["tasks", "show", str(single), "--limit", "2"]) == 0
    shown = capsys.readouterr().out
    assert "continuation:" in shown and "(2 of 6 tasks)" in shown


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    assert run_cli(["tasks", "make", "--families", "average,bogus",
                    "--out", str(tmp_path / "x.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'unknown family "bogus"' in err
    assert not (tmp_path / "x.jsonl").exists()

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "context": "x", "continuation": " y"}\n{"id": 1}\n')
    assert run_cli(["tasks", "show", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:2: missing required key" in err


def test_cli_module_subprocess_smoke(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "small.jsonl"
    cmd = [sys.executable, "-m", "latent_env.tasks.cli"]
    done = subprocess.run([*cmd, "make", "--suite", "synthetic-small", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(load_jsonl(out)) == 4 * len(FAMILIES)
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first["id"] == "synthetic-small/test/average/0000"
    bad = subprocess.run([*cmd, "show", str(tmp_path / "missing.jsonl")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "no such task file" in bad.stderr


def test_main_returns_exit_code(capsys):
    assert main(["list"]) == 0
    assert "synthetic" in capsys.readouterr().out


def test_tasks_without_a_family_group_as_other_and_interleave_keeps_prefixes_balanced():
    from latent_env.tasks.task import NO_FAMILY, group_by_family, interleave

    tasks = [Task(id=f"{f}{i}", context="x", continuation="y", family=f or None)
             for f, i in [("a", 0), ("", 1), ("a", 2), ("b", 3), ("", 4)]]
    groups = group_by_family(tasks)
    assert {k: [t.id for t in v] for k, v in groups.items()} == {
        "a": ["a0", "a2"], NO_FAMILY: ["1", "4"], "b": ["b3"]}
    assert [t.id for t in interleave(list(groups.values()))] == ["a0", "1", "b3", "a2", "4"]
