"""Tests for raw-text task extraction and the reasoning-gym adapter."""

from __future__ import annotations

import json
import re
import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest

from latent_env.tasks import (
    TaskError,
    split_of,
    tasks_from_file,
    tasks_from_hf_dataset,
    tasks_from_reasoning_gym,
    tasks_from_text,
)
from tests.text_fakes import FakeTokenizer

TEXT = (
    "The old harbour town keeps careful records of its fishing fleet and of the weather. "
    "In the spring of 1998 the fleet counted 42 boats, and by the autumn another 7 had joined. "
    "Each boat carried a crew of 3.5 people on average, which the harbour master wrote down "
    "in a ledger bound in green leather. Prices at the market rose by 12% that year, while "
    "the catch of cod fell to 1,200 tonnes. Nobody in the town was surprised by the news."
)


@dataclass
class FakeScored:
    token_logprobs: list[float]
    total: float
    n_tokens: int


class FakeScorer:
    """Digits are surprising (-6 nats), everything else is easy (-0.2 nats)."""

    def __init__(self, tokenizer=None):
        self.tokenizer = tokenizer or FakeTokenizer()
        self.calls = []

    def score(self, contexts, continuations):
        self.calls.append((list(contexts), list(continuations)))
        results = []
        for cont in continuations:
            spans = self.tokenizer(cont, return_offsets_mapping=True)["offset_mapping"]
            lps = [-6.0 if cont[s:e].strip().isdigit() else -0.2 for s, e in spans]
            results.append(FakeScored(lps, sum(lps), len(lps)))
        return results


def check_split(task, text):
    """Context + continuation is a contiguous piece of the text, split at a word boundary."""
    assert task.context and not task.context[-1].isspace()
    assert task.continuation[0].isspace()
    assert (task.context + task.continuation) in text
    assert task.meta["offset"] == text.index(task.context + task.continuation) + len(task.context)


def test_numbers_mode_splits_before_each_number():
    tasks = tasks_from_text(TEXT, mode="numbers", n_continuation_tokens=3, min_context_chars=20)
    assert [t.answer for t in tasks] == ["1998", "42", "7", "3.5", "12", "1,200"]
    for task in tasks:
        check_split(task, TEXT)
        assert task.continuation.split()[0].startswith(task.answer)
        assert len(task.continuation.split()) == 3
        assert task.family == "rawtext" and task.meta["mode"] == "numbers"
    assert tasks[1].continuation == " 42 boats, and"
    assert tasks[0].id == "text/0000"


def test_numbers_inside_names_are_not_split_points():
    text = "Tickets cost $25 (or 20 euros) during the COVID-19 years, said report B2."
    tasks = tasks_from_text(text, mode="numbers", min_context_chars=5, n_continuation_tokens=2)
    assert [(t.answer, t.continuation) for t in tasks] == [("25", " $25 (or"), ("20", " 20 euros)")]


def test_numbers_mode_limits():
    late = tasks_from_text(TEXT, mode="numbers", min_context_chars=300)
    assert [t.answer for t in late] == ["12", "1,200"]
    spread = tasks_from_text(TEXT, mode="numbers", min_context_chars=20, max_tasks=3)
    assert [t.answer for t in spread] == ["1998", "7", "1,200"]
    short = tasks_from_text(TEXT, mode="numbers", min_context_chars=20, max_context_chars=40)
    assert all(len(t.context) <= 40 and not t.context[0].isspace() for t in short)


def test_continuations_count_tokens_with_a_tokenizer():
    tasks = tasks_from_text(TEXT, mode="numbers", n_continuation_tokens=4,
                            tokenizer=FakeTokenizer(), min_context_chars=20)
    by_answer = {t.answer: t.continuation for t in tasks}
    assert by_answer["1998"] == " 1998"  # four digit tokens
    assert by_answer["42"] == " 42 boats, and"  # " 4", "2", " boats,", " and"


def test_random_mode_is_seeded_and_on_word_boundaries():
    def make(seed):
        return tasks_from_text(TEXT, mode="random", rng=np.random.default_rng(seed),
                               max_tasks=4, min_context_chars=50)

    tasks = make(3)
    assert len(tasks) == 4 and tasks == make(3)
    assert [t.meta["offset"] for t in tasks] == sorted(t.meta["offset"] for t in tasks)
    for task in tasks:
        check_split(task, TEXT)
        assert task.answer is None and len(task.context) >= 50
    assert {t.meta["offset"] for t in make(4)} != {t.meta["offset"] for t in tasks}


def test_loss_mode_picks_the_most_surprising_positions():
    scorer = FakeScorer()
    tasks = tasks_from_text(TEXT, mode="loss", scorer=scorer, max_tasks=3,
                            n_continuation_tokens=4, min_context_chars=20, loss_window_tokens=16)
    assert len(scorer.calls) == 1 and len(scorer.calls[0][0]) > 1  # one batched, windowed call
    # The three spans with the most digit tokens ahead; " 1,20" is four tokens: " 1" "," "2" "0".
    assert [t.continuation for t in tasks] == [" 1998", " 42 boats, and", " 1,20"]
    for task in tasks:
        check_split(task, TEXT)
        assert task.continuation.strip()[0].isdigit()
        assert task.meta["mode"] == "loss"


def test_loss_mode_needs_a_matching_scorer():
    with pytest.raises(TaskError, match="needs a scorer"):
        tasks_from_text(TEXT, mode="loss")

    class WordTokenizer(FakeTokenizer):
        pattern = re.compile(r"\s*\S+")

    with pytest.raises(TaskError, match="pass the tokenizer the scorer uses"):
        tasks_from_text(TEXT, mode="loss", scorer=FakeScorer(), tokenizer=WordTokenizer(),
                        min_context_chars=20)


def test_loss_mode_with_the_real_scorer(tiny):
    from latent_env.scoring import LogLikScorer

    model, tokenizer = tiny
    scorer = LogLikScorer(model, tokenizer)
    tasks = tasks_from_text(TEXT, mode="loss", scorer=scorer, max_tasks=3,
                            min_context_chars=50, loss_window_tokens=32)
    assert len(tasks) == 3
    for task in tasks:
        check_split(task, TEXT)


def test_bad_arguments():
    with pytest.raises(TaskError, match='unknown mode "words"'):
        tasks_from_text(TEXT, mode="words")
    with pytest.raises(TaskError, match="at least 1"):
        tasks_from_text(TEXT, n_continuation_tokens=0)


def test_tasks_from_file(tmp_path):
    path = tmp_path / "harbour.txt"
    path.write_text(TEXT, encoding="utf-8")
    tasks = tasks_from_file(path, min_context_chars=20)
    assert tasks[0].id == "harbour/0000" and tasks[0].answer == "1998"
    path.write_bytes(b"caf\xe9 " * 10)
    with pytest.raises(TaskError, match="not valid UTF-8"):
        tasks_from_file(path)


def test_tasks_from_hf_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = {"text": [TEXT, "", TEXT.replace("42", "44")], "id": [1, 2, 3]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ds"))
    tasks = tasks_from_hf_dataset(tmp_path / "ds", min_context_chars=20, max_tasks=2)
    assert [t.id for t in tasks] == ["ds/0/0000", "ds/0/0001", "ds/2/0000", "ds/2/0001"]
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text(json.dumps({"body": TEXT}) + "\n", encoding="utf-8")
    tasks = tasks_from_hf_dataset(jsonl, text_field="body", min_context_chars=20)
    assert [t.answer for t in tasks][:2] == ["1998", "42"]
    with pytest.raises(TaskError, match='no column "text"'):
        tasks_from_hf_dataset(jsonl)


# ---- reasoning-gym -------------------------------------------------------------------------

def fake_reasoning_gym() -> types.ModuleType:
    module = types.ModuleType("reasoning_gym")

    def create_dataset(name, size, seed, **config):
        if name != "adder":
            raise ValueError(f"Dataset '{name}' not registered")
        rng = np.random.default_rng(seed)
        items = []
        for i in range(size):
            a, b = (int(x) for x in rng.integers(0, 1000, size=2))
            items.append({"question": f"What is {a} + {b}?", "answer": str(a + b),
                          "metadata": {"source_index": i, "terms": (a, b)}})
        return items

    module.create_dataset = create_dataset
    return module


def test_reasoning_gym_adapter_with_a_fake_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "reasoning_gym", fake_reasoning_gym())
    tasks = tasks_from_reasoning_gym("adder", size=4, seed=1)
    first = tasks[0]
    a, b = first.meta["rg_metadata"]["terms"]
    assert first.context == f"What is {a} + {b}? The answer is"
    assert first.continuation == f" {a + b}" and first.answer == str(a + b)
    assert first.id == "reasoning_gym/adder/0000" and first.family == "reasoning_gym/adder"

    test = tasks_from_reasoning_gym("adder", size=10, split="test")
    train = tasks_from_reasoning_gym("adder", size=30, split="train")
    assert len(test) == 10 and len(train) == 30
    assert all(split_of(t.context) == "test" for t in test)
    assert not {t.context for t in test} & {t.context for t in train}
    with pytest.raises(TaskError, match="not registered"):
        tasks_from_reasoning_gym("nope")


def test_reasoning_gym_missing_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install 'latent-env\[reasoning-gym\]'"):
        tasks_from_reasoning_gym("basic_arithmetic")


def test_reasoning_gym_real_package():
    pytest.importorskip("reasoning_gym")
    tasks = tasks_from_reasoning_gym("basic_arithmetic", size=5, seed=3, split="validation")
    assert len(tasks) == 5
    for task in tasks:
        assert task.context.endswith(" The answer is")
        assert task.continuation == " " + task.answer
        assert split_of(task.context) == "validation"
