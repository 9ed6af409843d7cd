"""Tests for raw-text task extraction and the reasoning-gym adapter."""

from __future__ import annotations

import json
import re
import sys
import types
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

from latent_env.tasks import (
    NoTasksError,
    NoTasksWarning,
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
    """Digits (or the tokens ``surprising`` picks) cost -6 nats, everything else -0.2 nats."""

    def __init__(self, tokenizer=None, surprising=str.isdigit):
        self.tokenizer = tokenizer or FakeTokenizer()
        self.surprising = surprising
        self.calls = []

    def score(self, contexts, continuations):
        self.calls.append((list(contexts), list(continuations)))
        results = []
        for cont in continuations:
            spans = self.tokenizer(cont, return_offsets_mapping=True)["offset_mapping"]
            lps = [-6.0 if self.surprising(cont[s:e].strip()) else -0.2 for s, e in spans]
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
    # The three spans with the most digit tokens ahead; four tokens of " 1,200" are " 1" "," "2"
    # "0", and the cut is extended to the end of the number.
    assert [t.continuation for t in tasks] == [" 1998", " 42 boats, and", " 1,200"]
    for task in tasks:
        check_split(task, TEXT)
        assert task.continuation.strip()[0].isdigit()
        assert task.meta["mode"] == "loss"


MUSEUM = ("The museum counts its visitors every month, and the numbers kept climbing all "
          "through the spring. The guides expect the summer to be busier still: July should see "
          "about 8,400 visitors, and the unrecorded August even more.")


def test_loss_mode_never_cuts_inside_a_number_or_a_word():
    # Seven tokens from " July" end at " 8" "," "4": the cut moves to the end of "8,400".
    scorer = FakeScorer(surprising=lambda tok: tok == "July")
    (task,) = tasks_from_text(MUSEUM, mode="loss", scorer=scorer, max_tasks=1,
                              n_continuation_tokens=7, min_context_chars=20)
    assert task.continuation == " July should see about 8,400"
    check_split(task, MUSEUM)

    class PieceTokenizer(FakeTokenizer):
        pattern = re.compile(r"\s*(?:\d|[^\s\d]{1,3})")  # " unr", "eco", "rde", "d"

    scorer = FakeScorer(PieceTokenizer(), surprising=lambda tok: tok == "unr")
    (task,) = tasks_from_text(MUSEUM, mode="loss", scorer=scorer, max_tasks=1,
                              n_continuation_tokens=2, min_context_chars=20)
    assert task.continuation == " unrecorded"  # not " unreco"
    check_split(task, MUSEUM)


def test_numbers_mode_with_a_tokenizer_keeps_numbers_whole():
    tasks = tasks_from_text(MUSEUM, mode="numbers", n_continuation_tokens=2,
                            tokenizer=FakeTokenizer(), min_context_chars=20)
    assert [t.continuation for t in tasks] == [" 8,400"]  # two tokens: " 8" ","


@pytest.mark.parametrize("tail, n_tokens, continuation", [
    ("walked about 3.5 km home", 2, " 3.5"),  # " 3" "." would end mid-number
    ("counted 1_000 units", 2, " 1_000"),
    ("was built in 1998. Then it", 5, " 1998."),  # a full stop is not a separator
    ("grew in the 1990s, when", 4, " 1990s"),  # no cut between "0" and "s"
])
def test_continuations_end_on_whole_numbers(tail, n_tokens, continuation):
    text = "A short history of the village, told plainly: it " + tail
    (task,) = tasks_from_text(text, mode="numbers", n_continuation_tokens=n_tokens,
                              tokenizer=FakeTokenizer(), min_context_chars=10)
    assert task.continuation == continuation


PROSE = "Nothing here is counted; the river runs quietly past the mill and the fields. " * 5


@pytest.mark.parametrize("text, kwargs, reason", [
    (PROSE, {}, 'no number to split before (mode "numbers"; mode "random"'),
    ("Only 3 words.", {"mode": "numbers"}, "its only number is in the first 200 characters "
                                          "(min_context_chars"),
    ("Short text, 4 and 5.", {"min_context_chars": 50}, "all 2 of its numbers are in the first "
                                                        "50 characters"),
    ("A few words only.", {"mode": "random"}, "every word starts in the first 200 characters"),
    ("   \n", {"mode": "random"}, "the text is empty"),
    (TEXT, {"max_tasks": 0}, "max_tasks is 0"),
])
def test_no_tasks_says_why(text, kwargs, reason):
    with pytest.warns(NoTasksWarning, match=re.escape(reason)):
        assert tasks_from_text(text, **kwargs) == []
    with pytest.raises(NoTasksError, match=re.escape(reason)) as caught:
        tasks_from_text(text, on_empty="raise", **kwargs)
    assert reason in caught.value.reason
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tasks_from_text(text, on_empty="ignore", **kwargs) == []
    with pytest.raises(TaskError, match="on_empty must be one of"):
        tasks_from_text(text, on_empty="loud", **kwargs)


def test_loss_mode_says_why_when_the_text_is_too_short():
    with pytest.warns(NoTasksWarning, match="every word starts in the first 200 characters"):
        assert tasks_from_text("Too short to cut.", mode="loss", scorer=FakeScorer()) == []


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
    path.write_text(PROSE, encoding="utf-8")
    with pytest.warns(NoTasksWarning, match=f"^{re.escape(str(path))}: no tasks: the text has no "):
        assert tasks_from_file(path) == []
    with pytest.raises(NoTasksError, match=f"^{re.escape(str(path))}: no tasks: "):
        tasks_from_file(path, on_empty="raise")


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


def test_tasks_from_hf_dataset_splits_and_no_tasks(tmp_path):
    datasets = pytest.importorskip("datasets")
    splits = {"train": datasets.Dataset.from_dict({"text": [TEXT]}),
              "test": datasets.Dataset.from_dict({"text": [TEXT.replace("42", "44")]})}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "dd"))
    test = tasks_from_hf_dataset(tmp_path / "dd", split="test", min_context_chars=20)
    assert "44" in [t.answer for t in test] and "42" not in [t.answer for t in test]
    with pytest.raises(TaskError, match='no split "validation" \\(has train, test\\)'):
        tasks_from_hf_dataset(tmp_path / "dd", split="validation")
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "test.jsonl").write_text(json.dumps({"text": TEXT}) + "\n", encoding="utf-8")
    assert tasks_from_hf_dataset(folder, split="test", min_context_chars=20)[0].answer == "1998"

    datasets.Dataset.from_dict({"text": ["", "Too short: 3.", PROSE]}).save_to_disk(
        str(tmp_path / "prose"))
    with pytest.warns(NoTasksWarning) as caught:
        assert tasks_from_hf_dataset(tmp_path / "prose") == []
    assert len(caught) == 1  # one warning for the dataset, not one per row
    assert "no row gave a task (first, row 1: its only number" in str(caught[0].message)


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
