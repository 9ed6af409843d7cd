"""The run's task sets: SFT, RL and eval disjoint by construction, refused when short, recorded."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import train_rl
from latent_env.tasks import FAMILIES, Task, context_key, make_suite, write_jsonl
from latent_env.training.evaluate import eval_tasks
from latent_env.training.pipeline import build_context
from latent_env.training.stages import record_task_sets, train_tasks
from latent_env.training.task_sets import needed_shares


def smoke_context(tmp_path: Path, *flags: str):
    pipeline, sft, latent, evaluation, rl, lora, trl_config = train_rl.parse(
        ["--preset", "smoke", "--run_dir", str(tmp_path / "run"), *flags])
    return build_context(pipeline, sft, latent, evaluation, trl_config, rl, lora)


def unsplit(tasks: list[Task]) -> list[Task]:
    """The tasks without their "split" fields, as a user's own file has them."""
    return [replace(t, meta={k: v for k, v in t.meta.items() if k != "split"}) for t in tasks]


def one_file(path: Path) -> Path:
    """synthetic-small's three splits in one file, without "split" fields (so split by hash)."""
    write_jsonl(path, unsplit(make_suite("synthetic-small", "all")))
    return path


def assert_disjoint(sets: dict[str, list]) -> None:
    names = list(sets)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            assert not {t.id for t in sets[first]} & {t.id for t in sets[second]}, (first, second)
    held_out = {context_key(t.context) for t in sets["eval"]}
    assert not any(context_key(t.context) in held_out for t in sets["sft"] + sets["rl"])


@pytest.mark.parametrize("source", ["suite", "file"])
def test_sft_rl_and_eval_sets_are_disjoint_and_recorded(tmp_path, source):
    tasks = "synthetic-small" if source == "suite" else str(one_file(tmp_path / "all.jsonl"))
    ctx = smoke_context(tmp_path, "--tasks", tasks)
    sets = {"sft": train_tasks(ctx, "sft"), "rl": train_tasks(ctx, "rl"), "eval": eval_tasks(ctx)}
    assert_disjoint(sets)
    for tasks_of_set in sets.values():  # every family in every set
        assert {t.family for t in tasks_of_set} == set(FAMILIES)
    record_task_sets(ctx)
    recorded = json.loads((ctx.run_dir / "tasks.json").read_text())
    assert recorded["tasks"] == tasks
    assert {name: [t["id"] for t in listed] for name, listed in recorded["sets"].items()} == {
        name: [t.id for t in tasks_of_set] for name, tasks_of_set in sets.items()}


def test_a_file_of_test_tasks_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "test.jsonl"
    write_jsonl(path, make_suite("synthetic-small", "test"))  # every task says "split": "test"
    with pytest.raises(ValueError, match=r"test.jsonl: no train tasks \(its 52 tasks: 0 train, "
                                         r"0 validation, 52 test\); give train tasks \(a single "
                                         r'task file is split by each task\'s "split" field'):
        smoke_context(tmp_path, "--tasks", str(path), "--stages", "sft")
    assert not (tmp_path / "run").exists()
    path = tmp_path / "train.jsonl"
    write_jsonl(path, make_suite("synthetic-small", "train"))
    with pytest.raises(ValueError, match=r"no test tasks to evaluate on \(its 52 tasks: 52 train"
                                         r".*\); pass --eval_per_family 0 or give test tasks"):
        smoke_context(tmp_path, "--tasks", str(path), "--stages", "sft")
    assert not (tmp_path / "run").exists()


def test_a_family_short_of_its_shares_is_refused_not_shared(tmp_path):
    # synthetic-small has 4 train tasks per family: SFT may take all 4 only when RL takes none.
    assert len(train_tasks(smoke_context(tmp_path / "a", "--stages", "sft",
                                         "--train_per_family", "4"), "sft")) == 4 * len(FAMILIES)
    with pytest.raises(ValueError, match=r'family "average" has 4 train tasks, and SFT and RL '
                                         r"need 4 each \(--train_per_family 4\); lower it"):
        smoke_context(tmp_path / "b", "--stages", "sft,rl", "--train_per_family", "4")
    with pytest.raises(ValueError, match=r"SFT needs 5 \(--train_per_kind code=5\)"):
        smoke_context(tmp_path / "c", "--stages", "sft", "--train_per_kind", "code=5")
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


@pytest.mark.parametrize("same_id", [True, False])
def test_a_directory_whose_test_file_repeats_a_train_task_is_refused(tmp_path, same_id):
    train = make_suite("synthetic-small", "train")
    leaked = train[0] if same_id else replace(train[0], id="copied")
    write_jsonl(tmp_path / "dir" / "train.jsonl", train)
    write_jsonl(tmp_path / "dir" / "test.jsonl", [leaked, *make_suite("synthetic-small", "test")])
    message = ("the sft and eval tasks overlap" if same_id
               else "1 sft task.* share a context with an eval task .*/average/0000' and 'copied'")
    with pytest.raises(ValueError, match=message):
        smoke_context(tmp_path, "--tasks", str(tmp_path / "dir"))


@pytest.mark.parametrize("flags, shares", [
    (["--stages", "sft"], ("sft",)),
    (["--stages", "latent,fusion"], ("sft",)),
    (["--stages", "rl"], ("rl",)),
    (["--stages", "rl", "--rl_sft_anchor", "0.5"], ("sft", "rl")),
    (["--stages", "sft", "--bootstrap_k", "2"], ("sft", "rl")),
    (["--stages", "sft,latent,fusion,rl"], ("sft", "rl")),
])
def test_the_shares_a_run_needs_follow_its_stages(flags, shares):
    pipeline, sft, _, _, rl, _, _ = train_rl.parse(["--preset", "smoke", *flags])
    assert needed_shares(pipeline, sft, rl) == shares
