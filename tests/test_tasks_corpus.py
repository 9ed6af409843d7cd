"""Tests for real-text tasks: passages, the held-out rule, read_texts, corpus_tasks and the
corpus families of the suites."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np
import pytest

from latent_env.tasks import (
    SPLITS,
    TaskError,
    bundled_documents,
    corpus_passages,
    corpus_tasks,
    generate_task,
    make_suite,
    passages,
    read_texts,
    split_of,
    tasks_from_text,
)
from latent_env.tasks.corpus import DEDUP_WORDS, bundled_passages, word_runs
from latent_env.tasks.families import EXPECTED_KINDS, FAMILIES
from tests.text_fakes import FakeTokenizer

WORDS = ("the", "harbour", "keeps", "records", "of", "boats", "and", "weather", "while",
         "a", "ledger", "notes", "every", "catch", "in", "green", "ink", "town")


def norm(text: str) -> str:
    return " ".join(text.split())


def paragraph(rng: np.random.Generator, n_words: int) -> str:
    """Made-up prose with a number about every tenth word, wrapped over lines."""
    words = [str(int(rng.integers(1, 2000))) if rng.random() < 0.1 else
             WORDS[int(rng.integers(len(WORDS)))] for _ in range(n_words)]
    return "\n".join(" ".join(words[i:i + 12]) for i in range(0, n_words, 12)) + "."


def document(seed: int, n_paragraphs: int = 12) -> str:
    rng = np.random.default_rng(seed)
    return "\n\n".join(paragraph(rng, int(rng.integers(20, 90))) for _ in range(n_paragraphs))


def paragraphs_of(text: str) -> list[str]:
    return [norm(p) for p in re.split(r"\n\s*\n", text) if p.strip()]


def shingles(text: str, n: int = 20) -> set[str]:
    words = text.split()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def number_offsets(text: str) -> set[int]:
    """Where rawtext's numbers mode would split ``text``."""
    return {t.meta["offset"] for t in
            tasks_from_text(text, "numbers", min_context_chars=0, max_context_chars=None,
                            on_empty="ignore")}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("corpus")
    (root / "sub").mkdir()
    for i in range(6):
        name = f"sub/doc{i}.md" if i % 2 else f"doc{i}.txt"
        (root / name).write_text(document(i), encoding="utf-8")
    (root / "notes.json").write_text('{"ignored": true}', encoding="utf-8")
    return root


# ---- passages ------------------------------------------------------------------------------

def test_passages_hold_whole_paragraphs_of_at_least_min_chars():
    text = document(1, n_paragraphs=20)
    found = passages("doc", text, min_chars=600)
    assert len(found) > 3
    assert [p.key for p in found] == [f"doc#{i}" for i in range(len(found))]
    assert all(len(p.text) >= 600 for p in found)
    assert all(text[p.start:p.start + len(p.text)] == p.text for p in found)
    # Every paragraph lies in exactly one passage, in order, none cut apart.
    assert [q for p in found for q in paragraphs_of(p.text)] == paragraphs_of(text)
    assert found == passages("doc", text, min_chars=600)  # stable


def test_short_remainder_joins_the_passage_before_it():
    text = "\n\n".join(["a" * 500, "b" * 500, "c" * 100])
    (only,) = passages("d", text, min_chars=900)
    assert only.text == text
    two = passages("d", "\n\n  \n".join(["a" * 500, "b" * 500, "c" * 950, "d" * 100]),
                   min_chars=900)
    assert [len(p.text) for p in two] == [1005, 950 + 5 + 100]
    assert passages("d", "short text", min_chars=900)[0].text == "short text"
    assert passages("d", " \n\n \n") == []


def test_repeated_paragraphs_live_in_one_passage_only():
    shared = "This sentence is shared by both documents and is long enough to count."
    docs = [("a", "\n\n".join(["x " * 300, shared, "y " * 300])),
            ("b", "\n\n".join(["z " * 300, shared, "Note:", "w " * 300]))]
    found = corpus_passages(docs, min_chars=500)
    holding = [p.key for p in found if shared in p.text]
    assert holding == ["a#1"]
    # In "b" the repeat ends a passage: no passage spans it.
    assert [norm(p.text)[:1] for p in found if p.doc_id == "b"] == ["z", "N"]


def test_bundled_corpus_sentences_are_in_one_passage_each():
    docs = bundled_documents()
    assert len(docs) >= 70 and all(d.startswith("pydoc/") for d, _ in docs)
    owner: dict[str, str] = {}
    for p in bundled_passages():
        for q in re.split(r"\n\s*\n", p.text):
            for run in word_runs(q, DEDUP_WORDS):
                assert owner.setdefault(run, p.key) == p.key, run
    assert len(owner) > 30000
    assert {p.split for p in bundled_passages()} == set(SPLITS)


# ---- the held-out rule ---------------------------------------------------------------------

def assert_split_disjoint(docs: list[tuple[str, str]], **counts: int) -> None:
    """Tasks of each split sit inside passages that split owns; no train context holds a
    paragraph (of 12 words or more: shorter ones may be boilerplate) or a 20-word run of any
    test or validation passage."""
    by_key = {p.key: p for p in corpus_passages(docs)}
    held = [p for p in by_key.values() if p.split != "train"]
    held_paragraphs = {q for p in held for q in paragraphs_of(p.text)
                       if len(q.split()) >= DEDUP_WORDS}
    held_runs = set().union(*(shingles(p.text) for p in held))
    for split in SPLITS:
        tasks = corpus_tasks(docs, split, **counts)
        assert tasks
        for task in tasks:
            passage = by_key[task.meta["passage"]]
            assert passage.split == split == split_of(task.meta["split_key"])
            assert task.meta["split_key"] == passage.text
            assert task.context + task.continuation in passage.text
        if split == "train":
            for task in tasks:
                ctx = norm(task.context)
                assert not any(q in ctx for q in held_paragraphs)
                assert not shingles(task.context) & held_runs


def test_bundled_corpus_splits_are_disjoint_by_passage():
    assert_split_disjoint(bundled_documents(), numbers=150, random=300)


def test_text_files_split_by_passage_text_not_by_file_name(corpus_dir, tmp_path):
    docs = read_texts(corpus_dir)
    assert_split_disjoint(docs, numbers=40, random=40)
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    for i, (_, text) in enumerate(reversed(docs)):
        (renamed / f"other{i}.txt").write_text(text, encoding="utf-8")

    def splits(d: list[tuple[str, str]]) -> dict[str, str]:
        return {p.text: p.split for p in corpus_passages(d)}

    assert splits(read_texts(renamed)) == splits(docs)
    assert {p.split for p in corpus_passages(docs)} == set(SPLITS)


# ---- read_texts ----------------------------------------------------------------------------

def test_read_texts_reads_txt_and_md_recursively_sorted(corpus_dir):
    docs = read_texts(corpus_dir)
    assert [d for d, _ in docs] == ["doc0.txt", "doc2.txt", "doc4.txt", "sub/doc1.md",
                                    "sub/doc3.md", "sub/doc5.md"]
    assert docs[0][1] == document(0)
    assert read_texts(corpus_dir / "doc2.txt") == [("doc2.txt", document(2))]


def test_read_texts_errors(tmp_path):
    with pytest.raises(TaskError, match=r"missing: no such file or directory$"):
        read_texts(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "data.json").write_text("{}", encoding="utf-8")
    (empty / "blank.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(TaskError, match="no .txt or .md files with text"):
        read_texts(empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ok.txt").write_text("fine", encoding="utf-8")
    (bad / "latin.txt").write_bytes(b"caf\xe9 au lait")
    with pytest.raises(TaskError) as info:
        read_texts(bad)
    assert str(info.value) == f"{bad / 'latin.txt'}: not valid UTF-8 (byte 4)"
    assert "\n" not in str(info.value)


# ---- corpus_tasks --------------------------------------------------------------------------

@dataclass
class FakeScored:
    token_logprobs: list[float]


class FakeScorer:
    """Digits are surprising, other tokens easy."""

    tokenizer = FakeTokenizer()

    def score(self, contexts, continuations):
        out = []
        for cont in continuations:
            spans = self.tokenizer(cont)["offset_mapping"]
            out.append(FakeScored([-6.0 if cont[s:e].strip().isdigit() else -0.2
                                   for s, e in spans]))
        return out


def test_corpus_tasks_counts_families_ids_and_meta(corpus_dir):
    docs = read_texts(corpus_dir)
    tasks = corpus_tasks(docs, "train", numbers=6, random=9, id_prefix="harbour")
    assert [t.family for t in tasks] == ["text_numbers"] * 6 + ["prose"] * 9
    assert tasks[0].id == "harbour/train/text_numbers/0000"
    assert tasks[6].id == "harbour/train/prose/0000"
    texts = dict(docs)
    for task in tasks:
        assert task.meta["source"] == "corpus" and task.meta["split"] == "train"
        assert task.meta["mode"] == {"text_numbers": "numbers", "prose": "random"}[task.family]
        assert task.meta["passage"].startswith(task.meta["document"] + "#")
        whole = texts[task.meta["document"]]
        assert whole[task.meta["offset"] - len(task.context):task.meta["offset"]] == task.context
        assert 0 < len(task.context) <= 600 and not task.context[-1].isspace()
        assert task.continuation[0].isspace() and task.program is None
    assert all(t.continuation.split()[0].startswith(t.answer) for t in tasks[:6])
    assert all(t.answer is None for t in tasks[6:])


def test_corpus_tasks_are_deterministic_and_seeded(corpus_dir):
    docs = read_texts(corpus_dir)
    first = corpus_tasks(docs, "train", numbers=5, random=5, seed=3)
    assert first == corpus_tasks(docs, "train", numbers=5, random=5, seed=3)
    assert first != corpus_tasks(docs, "train", numbers=5, random=5, seed=4)


def test_corpus_tasks_give_all_they_have_and_check_input(corpus_dir):
    docs = read_texts(corpus_dir)
    every = corpus_tasks(docs, "test", numbers=10**6)
    owned = [p for p in corpus_passages(docs) if p.split == "test"]
    expected = sum(len(tasks_from_text(p.text, "numbers", max_context_chars=600)) for p in owned)
    assert len(every) == expected > 0
    assert corpus_tasks(docs, "test") == []
    with pytest.raises(TaskError, match='unknown split "dev"'):
        corpus_tasks(docs, "dev", numbers=1)
    with pytest.raises(TaskError, match="random must be >= 0"):
        corpus_tasks(docs, "test", random=-1)
    with pytest.raises(TaskError, match="needs a scorer"):
        corpus_tasks(docs, "test", loss=2)


def test_loss_mode_uses_the_scorer(corpus_dir):
    docs = read_texts(corpus_dir)
    tasks = corpus_tasks(docs, "train", loss=8, scorer=FakeScorer(), n_continuation_tokens=3)
    assert [t.family for t in tasks] == ["text_loss"] * 8
    assert all(t.meta["mode"] == "loss" for t in tasks)
    # The fake scorer finds digits surprising: high-loss splits come right before numbers.
    assert sum(t.continuation.split()[0][0].isdigit() for t in tasks) >= 6


def test_prose_positions_are_never_right_before_a_number(corpus_dir):
    docs = read_texts(corpus_dir)
    by_key = {p.key: p for p in corpus_passages(docs)}
    tasks = [t for s in SPLITS for t in corpus_tasks(docs, s, random=10**6)]
    assert len(tasks) > 500
    for task in tasks:
        passage = by_key[task.meta["passage"]]
        assert task.meta["offset"] - passage.start not in number_offsets(passage.text)
        assert not task.continuation.split()[0][0].isdigit()


# ---- the suite families --------------------------------------------------------------------

def test_corpus_families_are_registered_as_needing_nothing():
    assert {"prose", "text_numbers"} <= set(FAMILIES)
    assert EXPECTED_KINDS["prose"] == EXPECTED_KINDS["text_numbers"] == ("empty",)


@pytest.mark.parametrize("family", ["prose", "text_numbers"])
def test_family_draws_are_deterministic_and_well_formed(family):
    by_key = {p.key: p for p in bundled_passages()}
    for seed in range(40):
        for difficulty, limit in ((1, 300), (2, 600), (3, 1200)):
            task = generate_task(family, np.random.default_rng(seed), difficulty)
            assert task == generate_task(family, np.random.default_rng(seed), difficulty)
            passage = by_key[task.meta["passage"]]
            assert task.meta["split_key"] == passage.text
            assert task.context + task.continuation in passage.text
            assert len(task.context) <= limit and not task.context[-1].isspace()
            assert len(task.context) >= min(200, limit)
            assert task.meta["template"] == f"{family}/{passage.doc_id}"
            assert task.meta["difficulty"] == difficulty
            assert task.program is None and task.reason is None
            words = task.continuation.split()
            q = task.meta["offset"] - passage.start
            if family == "prose":
                assert task.answer is None and 6 <= len(words) <= 8
                assert q not in number_offsets(passage.text)
            else:
                assert words[0].endswith(task.answer) or task.answer in words[0]
                assert q in number_offsets(passage.text)


def test_prose_family_never_splits_right_before_a_number():
    by_key = {p.key: p for p in bundled_passages()}
    numbers = {key: number_offsets(p.text) for key, p in by_key.items()}
    rng = np.random.default_rng(11)
    for _ in range(3000):
        task = generate_task("prose", rng, 1)
        q = task.meta["offset"] - by_key[task.meta["passage"]].start
        assert q not in numbers[task.meta["passage"]], task.continuation


def test_family_draws_are_fast_after_the_first():
    generate_task("prose", np.random.default_rng(0), 1)  # builds the cached index
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    for i in range(1000):
        generate_task("prose" if i % 2 else "text_numbers", rng, i % 3 + 1)
    assert time.perf_counter() - start < 1.0


def test_suite_corpus_families_fill_every_split_without_leaks():
    sizes = {"train": 200, "validation": 20, "test": 25}
    suite = {s: make_suite("synthetic", s, n, families=["prose", "text_numbers"])
             for s, n in sizes.items()}
    assert suite["test"] == make_suite("synthetic", "test", 25,
                                       families=["prose", "text_numbers"])
    for split, tasks in suite.items():
        assert len(tasks) == 2 * sizes[split] == len({t.context for t in tasks})
        assert all(split_of(t.meta["split_key"]) == split for t in tasks)
        assert {t.meta["difficulty"] for t in tasks} == {1, 2, 3}
    held = [p for p in bundled_passages() if p.split != "train"]
    held_paragraphs = {q for p in held for q in paragraphs_of(p.text)
                       if len(q.split()) >= DEDUP_WORDS}
    held_runs = set().union(*(shingles(p.text) for p in held))
    for task in suite["train"]:
        ctx = norm(task.context)
        assert not any(q in ctx for q in held_paragraphs)
        assert not shingles(task.context) & held_runs
