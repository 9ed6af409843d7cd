"""Real text as tasks: documents cut into passages, each passage owned by one split.

Bundled corpus
--------------
:func:`bundled_documents` returns the Python documentation that ships inside every CPython as
``pydoc_data.topics`` (the text ``help()`` shows): a dict from topic name to the plain text of
that Language Reference / library topic — 79 topics, about 465 KB on Python 3.11. It is
Python Software Foundation documentation under the PSF License (Python's ``LICENSE``); it needs
no download. Document ids are ``"pydoc/<topic>"``.

Passages and the held-out rule
------------------------------
:func:`passages` splits a document at blank lines and merges consecutive paragraphs until each
passage holds at least ``min_chars`` characters (a short remainder joins the passage before
it). A passage's key is ``"<doc id>#<index>"``; its split is ``split_of(passage.text)`` — the
hash of its own whitespace-normalised text, so the rule does not depend on file names. Every
context and continuation is cut inside one passage, and :func:`corpus_passages` keeps a
paragraph only where no paragraph before it shares a run of 12 words with it (documents repeat
each other: the bundled topics overlap by a fifth), so no test passage's text is ever in a
train context — short repeated lines ("Note:", "* **PEP 634** – ...") aside. Tasks record the passage text as ``meta["split_key"]`` so that suites follow
the same rule.

:func:`corpus_tasks` cuts tasks from the passages of one split with :func:`tasks_from_text`
(modes numbers / random / loss) and samples them down to the requested totals. Families:
``"text_numbers"`` (before a number), ``"prose"`` (a random word boundary not before a number),
``"text_loss"`` (where the scorer is most surprised). :func:`read_texts` loads ``.txt``/``.md``
files as documents.
"""

from __future__ import annotations

import math
import os
import re
import zlib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from latent_env.tasks.rawtext import ScorerLike, tasks_from_text
from latent_env.tasks.splits import SPLITS, split_of
from latent_env.tasks.task import Task, TaskError

MIN_PASSAGE_CHARS = 1200
MIN_CONTEXT_CHARS = 200
# A paragraph repeating a run of this many words from an earlier one is dropped; shorter
# repeats ("Note:", "New in version 3.9.", a signature) are boilerplate and stay in place.
DEDUP_WORDS = 12
# On a CPU the prompt length is the training time, so corpus contexts stay short.
MAX_CONTEXT_CHARS = 600
TEXT_SUFFIXES: tuple[str, ...] = (".txt", ".md")
MODE_FAMILIES: dict[str, str] = {"numbers": "text_numbers", "random": "prose", "loss": "text_loss"}
# A paragraph break: a newline followed by one or more whitespace-only lines.
_BLANK_LINES = re.compile(r"\n(?:[ \t\r\f\v]*\n)+")
# Random/loss candidates per passage: this many times an even share of the total asked for,
# so the final sampling has a choice.
_OVERSAMPLE = 2


@dataclass(frozen=True)
class Passage:
    """Consecutive paragraphs of one document; ``start`` is ``text``'s offset in it."""

    doc_id: str
    index: int
    text: str
    start: int

    @property
    def key(self) -> str:
        """Stable id: ``"<doc id>#<index>"``."""
        return f"{self.doc_id}#{self.index}"

    @property
    def split(self) -> str:
        """The split that owns this passage (by the hash of its text)."""
        return split_of(self.text)


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph, surrounding whitespace excluded."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for gap in [*_BLANK_LINES.finditer(text), None]:
        piece_end = gap.start() if gap else len(text)
        piece = text[pos:piece_end]
        start, end = pos + len(piece) - len(piece.lstrip()), pos + len(piece.rstrip())
        if end > start:
            spans.append((start, end))
        pos = gap.end() if gap else piece_end
    return spans


def word_runs(text: str, n: int = DEDUP_WORDS) -> set[str]:
    """Every run of ``n`` consecutive words of ``text``, space-joined."""
    words = text.split()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def _group_run(run: list[tuple[int, int]], min_chars: int) -> list[list[tuple[int, int]]]:
    """Consecutive paragraphs grouped until each group spans ``min_chars``; a short remainder
    joins the group before it."""
    groups: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    for span in run:
        current.append(span)
        if current[-1][1] - current[0][0] >= min_chars:
            groups.append(current)
            current = []
    if current and groups:
        groups[-1] += current
    elif current:
        groups.append(current)
    return groups


def passages(
    doc_id: str, text: str, min_chars: int = MIN_PASSAGE_CHARS, seen: set[str] | None = None
) -> list[Passage]:
    """``text`` as passages of whole paragraphs, each at least ``min_chars`` long where the
    document allows (see the module docstring); an empty document has none.

    ``seen`` (shared across the documents of a corpus) holds the :func:`word_runs` of the
    paragraphs kept so far: a paragraph repeating one of them is dropped and ends the passage
    before it, so a sentence of :data:`DEDUP_WORDS` words or more lives in one passage only.
    """
    runs: list[list[tuple[int, int]]] = [[]]
    for start, end in _paragraph_spans(text):
        if seen is not None:
            found = word_runs(text[start:end])
            if found & seen:
                runs.append([])
                continue
            seen |= found
        runs[-1].append((start, end))
    if seen is not None:
        # A run of short paragraphs only ("Note:" between two repeats) is boilerplate.
        runs = [r for r in runs if any(word_runs(text[s:e]) for s, e in r)]
    groups = [g for run in runs for g in _group_run(run, min_chars)]
    return [Passage(doc_id, i, text[g[0][0]:g[-1][1]], g[0][0]) for i, g in enumerate(groups)]


def corpus_passages(
    documents: list[tuple[str, str]], min_chars: int = MIN_PASSAGE_CHARS
) -> list[Passage]:
    """Passages of all ``documents``, a paragraph kept only where none before it shares a run
    of :data:`DEDUP_WORDS` words with it: the bundled topics overlap heavily (``specialnames``
    repeats ``customization``, ``compound`` repeats ``if``, ``str.ljust`` repeats
    ``str.rjust``), and text in two passages could sit in two splits."""
    seen: set[str] = set()
    return [p for doc_id, text in documents for p in passages(doc_id, text, min_chars, seen)]


@lru_cache(maxsize=1)
def _bundled() -> tuple[tuple[str, str], ...]:
    from pydoc_data.topics import topics  # 465 KB: loaded only when the corpus is used

    return tuple((f"pydoc/{name}", topics[name]) for name in sorted(topics))


def bundled_documents() -> list[tuple[str, str]]:
    """The bundled corpus as ``(doc id, text)`` pairs, sorted by id (see the module docstring)."""
    return list(_bundled())


@lru_cache(maxsize=1)
def bundled_passages() -> tuple[Passage, ...]:
    """Passages of the bundled corpus (computed once)."""
    return tuple(corpus_passages(list(_bundled())))


def _read_utf8(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TaskError(f"{path}: not valid UTF-8 (byte {exc.start + 1})") from None


def read_texts(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Documents ``(doc id, text)`` from a UTF-8 text file, or from every ``.txt`` and ``.md``
    file under a directory (recursively, sorted; ids are paths relative to it).

    Raises :class:`TaskError` for a missing path, a file that is not UTF-8 (naming it and the
    byte), or no text files.
    """
    root = Path(path)
    if root.is_file():
        files = [(root.name, root)]
    elif root.is_dir():
        found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
        files = [(p.relative_to(root).as_posix(), p) for p in found]
    else:
        raise TaskError(f"{root}: no such file or directory")
    docs = [(doc_id, text) for doc_id, p in files if (text := _read_utf8(p)).strip()]
    if not docs:
        raise TaskError(f"{root}: no .txt or .md files with text")
    return docs


def _passage_rng(seed: int, passage: Passage) -> np.random.Generator:
    # Keyed by the passage, so adding documents leaves other passages' picks unchanged.
    return np.random.default_rng([seed, zlib.crc32(passage.key.encode("utf-8"))])


def _number_offsets(text: str) -> set[int]:
    """Offsets where a split would fall right before a number."""
    # A passage without numbers is common here, not worth a warning.
    return {t.meta["offset"] for t in tasks_from_text(text, "numbers", min_context_chars=0,
                                                      max_context_chars=None, on_empty="ignore")}


def _mode_pool(
    split_passages: list[Passage], mode: str, count: int, seed: int, cut: dict[str, Any]
) -> list[tuple[Passage, Task]]:
    """Candidate (passage, raw task) pairs of one mode over the split's passages."""
    per_passage = None if mode == "numbers" else math.ceil(
        _OVERSAMPLE * count / max(1, len(split_passages)))
    pool: list[tuple[Passage, Task]] = []
    for passage in split_passages:
        found = tasks_from_text(passage.text, mode, rng=_passage_rng(seed, passage),
                                max_tasks=per_passage, on_empty="ignore", **cut)
        if mode == "random":
            numbers = _number_offsets(passage.text)
            found = [t for t in found if t.meta["offset"] not in numbers]
        pool += [(passage, t) for t in found]
    return pool


def corpus_tasks(
    documents: list[tuple[str, str]],
    split: str,
    numbers: int = 0,
    random: int = 0,
    loss: int = 0,
    scorer: ScorerLike | None = None,
    tokenizer: Any | None = None,
    seed: int = 0,
    n_continuation_tokens: int = 8,
    id_prefix: str = "corpus",
    min_context_chars: int = MIN_CONTEXT_CHARS,
    max_context_chars: int = MAX_CONTEXT_CHARS,
) -> list[Task]:
    """Tasks cut from the passages of ``documents`` that ``split`` owns.

    ``numbers``, ``random`` and ``loss`` are totals over the corpus for that split (a mode
    with fewer candidates gives all it has); candidates come from :func:`tasks_from_text`
    inside each passage and are sampled down with a generator seeded by ``seed``. ``loss``
    needs ``scorer`` (and ``tokenizer`` or ``scorer.tokenizer``). Ids are
    ``{id_prefix}/{split}/{family}/NNNN``; ``meta`` holds source ``"corpus"``, the document,
    passage key, mode, split, the offset in the document and ``split_key``.
    """

    if split not in SPLITS:
        raise TaskError(f'unknown split "{split}" (choose from {", ".join(SPLITS)})')
    owned = [p for p in corpus_passages(documents) if p.split == split]
    cut = {"n_continuation_tokens": n_continuation_tokens, "tokenizer": tokenizer,
           "scorer": scorer, "min_context_chars": min_context_chars,
           "max_context_chars": max_context_chars}
    sampler = np.random.default_rng(seed)
    tasks: list[Task] = []
    for mode, count in (("numbers", numbers), ("random", random), ("loss", loss)):
        if count < 0:
            raise TaskError(f"{mode} must be >= 0, got {count}")
        if count == 0:
            continue
        pool = _mode_pool(owned, mode, count, seed, cut)
        if len(pool) > count:
            keep = sorted(sampler.choice(len(pool), size=count, replace=False).tolist())
            pool = [pool[i] for i in keep]
        family = MODE_FAMILIES[mode]
        tasks += [_finish(raw, passage, family, split, f"{id_prefix}/{split}/{family}/{i:04d}")
                  for i, (passage, raw) in enumerate(pool)]
    return tasks


def _finish(raw: Task, passage: Passage, family: str, split: str, task_id: str) -> Task:
    """A raw rawtext task relabelled as a corpus task of ``family``."""
    meta = {"source": "corpus", "document": passage.doc_id, "passage": passage.key,
            "mode": raw.meta["mode"], "split": split,
            "offset": passage.start + raw.meta["offset"], "split_key": passage.text}
    return replace(raw, id=task_id, family=family, meta=meta)
