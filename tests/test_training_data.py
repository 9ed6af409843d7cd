"""Training data built from tasks: trace styles, SFT and RL records, per-family sampling."""

from __future__ import annotations

import json

import pytest

from latent_env.env import LatentEnv
from latent_env.scoring import LogLikScorer
from latent_env.tasks import FAMILIES, Task, load_tasks, write_jsonl
from latent_env.tasks.families import EXPECTED_KINDS
from latent_env.tools import load_tools
from latent_env.training.data import (
    echo_latent,
    gold_latent,
    gold_sft_records,
    rl_records,
    split_tasks,
    take_per_family,
    trace_kinds,
    trace_latent,
)
from tests.test_training_task_sets import unsplit


@pytest.fixture(scope="module")
def python_tool():
    tool = load_tools(["python"])["python"]
    yield tool
    tool.close()


@pytest.fixture(scope="module")
def env(tiny):
    return LatentEnv(tasks=None, scorer=LogLikScorer(*tiny), tools=["python"])


def one_task_per_family() -> list[Task]:
    return split_tasks("synthetic", "train", 1)


def program_of(latent: str) -> str:
    return latent.removeprefix("<python>\n").removesuffix("\n</python>")


def test_echo_traces_print_the_texts_last_words_then_the_answer(python_tool):
    tasks = one_task_per_family()
    assert {t.family for t in tasks} == set(FAMILIES)
    for task in [t for t in tasks if t.program]:
        last_words = " ".join(task.context.split("\n")[-1].split()[-6:])
        output = python_tool.run(program_of(echo_latent(task))).output.strip()
        gold = python_tool.run(task.program).output.strip()
        assert output == f"{last_words} {gold}", task.family
        assert output.endswith(task.answer), task.family


def test_echo_changes_only_the_final_print():
    task = one_task_per_family()[1]
    echo_lines = program_of(echo_latent(task)).split("\n")
    gold_lines = program_of(gold_latent(task)).split("\n")
    assert echo_lines[:-1] == gold_lines[:-1] and echo_lines[-1] != gold_lines[-1]


def test_echo_quotes_text_safely_and_keeps_programs_without_a_final_print(python_tool):
    base = one_task_per_family()[0]
    quoted = Task(id="q", context="He said \"it's\" 3 'times'", continuation=" 4",
                  answer="4", program="print(1 + 3)")
    assert python_tool.run(program_of(echo_latent(quoted))).output.strip() == (
        "He said \"it's\" 3 'times' 4")
    no_print = Task(id="n", context=base.context, continuation=" 1", answer="1",
                    program="x = 1\nresult = x")
    assert echo_latent(no_print) == gold_latent(no_print)


def test_sft_records_are_conversations_in_the_chosen_style(env):
    tasks = [t for t in one_task_per_family() if t.program][:3]
    echo = gold_sft_records(env, tasks)
    plain = gold_sft_records(env, tasks, style="program")
    assert [r["completion"][0]["content"] for r in echo] == [echo_latent(t) for t in tasks]
    assert [r["completion"][0]["content"] for r in plain] == [gold_latent(t) for t in tasks]
    for record, task in zip(echo, tasks):
        assert record["prompt"][0]["role"] == "user"
        assert task.context in record["prompt"][0]["content"]
        assert task.continuation not in record["prompt"][0]["content"]
    with pytest.raises(ValueError, match="trace style"):
        gold_sft_records(env, tasks, style="verbose")


def test_rl_records_carry_the_task_for_the_reward(env):
    tasks = one_task_per_family()[:2]
    records = rl_records(env, tasks)
    assert [Task.from_dict(json.loads(r["task"])) for r in records] == tasks
    assert all(r["prompt"] == [{"role": "user", "content": env.new_episode(t).prompt}]
               for r, t in zip(records, tasks))


def test_split_tasks_of_one_file_keep_its_train_and_test_tasks_apart(tmp_path):
    path = tmp_path / "tasks.jsonl"
    write_jsonl(path, unsplit(load_tasks("synthetic-small", "test"))
                + load_tasks("synthetic-small", "train"))
    train, test = split_tasks(str(path), "train", 4), split_tasks(str(path), "test", 4)
    assert len(train) == len(test) == 4 * len(FAMILIES)
    assert not {t.id for t in train} & {t.id for t in test}


def test_take_per_family_interleaves_so_prefixes_are_balanced():
    tasks = load_tasks("synthetic-small", split="train")
    chosen = take_per_family(tasks, 2)
    families = [t.family for t in chosen]
    n = len(set(families))
    assert len(chosen) == 2 * n
    assert len(set(families[:n])) == n and len(set(families[n:])) == n



def test_each_family_is_taught_the_kind_it_expects():
    kinds = trace_kinds([{"completion": [{"content": trace_latent(t)}]}
                         for t in one_task_per_family()])
    expected = [EXPECTED_KINDS[f][0] for f in FAMILIES]
    assert kinds == {k: expected.count(k) for k in ("code", "reasoning", "empty")}
    assert sum(kinds.values()) == len(FAMILIES)


def test_trace_latent_prefers_program_then_reason_then_nothing():
    both = Task(id="b", context="x", continuation=" 1", program="print(1)", reason="It is 1.")
    assert trace_latent(both, style="program") == "<python>\nprint(1)\n</python>"
    reason = Task(id="r", context="x", continuation=" Lina.", reason=" So it is Lina. ")
    assert trace_latent(reason) == "<reason>So it is Lina.</reason>"
    prose = Task(id="p", context="x", continuation=" and so on", family="prose")
    assert trace_latent(prose) == "<done/>"
    raw = Task(id="t", context="x", continuation=" 3", family="rawtext",
               meta={"source": "rawtext"})
    assert trace_latent(raw) == "<done/>"
    unknown = Task(id="u", context="x", continuation=" y", family="mine")
    assert trace_latent(unknown) is None
    with pytest.raises(ValueError, match="trace style"):
        trace_latent(reason, style="verbose")
