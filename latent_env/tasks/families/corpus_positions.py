"""Families cut from real text: positions in the bundled Python documentation corpus.

The corpus (``pydoc_data.topics``, PSF License; see :mod:`latent_env.tasks.corpus`) is cut
into passages once; a draw picks a passage, then a position in it, with ``rng`` only. The
context ends at the position, keeps at least 200 characters before it (the split rules of
:mod:`latent_env.tasks.rawtext`) and at most 300 / 600 / 1200 characters at difficulty
1 / 2 / 3. ``meta["split_key"]`` is the passage text, so a suite gives each passage (not each
context) to one split; ``meta["template"]`` names the source document (the corpus's stand-in
for a surface template), e.g. ``"prose/pydoc/assert"``.

Neither family has a gold program or reason: these are the positions where the best latent is
none, so the policy learns to write nothing where nothing helps.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from latent_env.tasks.corpus import MIN_CONTEXT_CHARS, Passage, bundled_passages
from latent_env.tasks.families._common import randint
from latent_env.tasks.rawtext import _WORD, _boundary, _candidates, _context_start
from latent_env.tasks.task import Task

MAX_CONTEXT_BY_DIFFICULTY: dict[int, int] = {1: 300, 2: 600, 3: 1200}
PROSE_WORDS = (6, 8)  # continuation length in words, both ends included
NUMBER_WORDS = 3  # the number's word and the two words after it


@dataclass(frozen=True)
class _Positions:
    """Split positions in one passage: word index of each position's first word, and for
    numbers the number itself."""

    passage: Passage
    word_ends: tuple[int, ...]
    word_starts: tuple[int, ...]
    prose: tuple[int, ...]
    numbers: tuple[tuple[int, str], ...]


def _index(passage: Passage) -> _Positions:
    # rawtext's private helpers on purpose: its split rules, without a Task per corpus word.
    text = passage.text
    spans = [m.span() for m in _WORD.finditer(text)]
    word_of = {start: i for i, (start, _) in enumerate(spans)}
    numbers = tuple((word_of[p], str(answer)) for p, answer in
                    _candidates(text, "numbers", MIN_CONTEXT_CHARS))
    before_number = {i for i, _ in numbers}
    prose = tuple(word_of[p] for p, _ in _candidates(text, "random", MIN_CONTEXT_CHARS)
                  if word_of[p] not in before_number
                  and word_of[p] + PROSE_WORDS[1] <= len(spans))
    return _Positions(passage, tuple(e for _, e in spans), tuple(s for s, _ in spans),
                      prose, numbers)


@lru_cache(maxsize=1)
def _positions() -> tuple[tuple[_Positions, ...], tuple[_Positions, ...]]:
    """Passages with prose positions, and passages with number positions (computed once)."""
    indexed = [_index(p) for p in bundled_passages()]
    return (tuple(x for x in indexed if x.prose), tuple(x for x in indexed if x.numbers))


def _cut(
    family: str, where: _Positions, word: int, n_words: int, difficulty: int,
    answer: str | None, mode: str,
) -> Task:
    """The task splitting ``where``'s passage before word ``word``, ``n_words`` predicted."""
    text = where.passage.text
    q = _boundary(text, where.word_starts[word])
    end = where.word_ends[min(word + n_words, len(where.word_ends)) - 1]
    context = text[_context_start(text, q, MAX_CONTEXT_BY_DIFFICULTY[difficulty]):q]
    digest = hashlib.sha1(context.encode("utf-8")).hexdigest()[:12]
    meta = {"template": f"{family}/{where.passage.doc_id}", "difficulty": difficulty,
            "source": "corpus", "document": where.passage.doc_id,
            "passage": where.passage.key, "mode": mode, "offset": where.passage.start + q,
            "split_key": where.passage.text}
    return Task(id=f"{family}/{digest}", context=context, continuation=text[q:end],
                answer=answer, family=family, meta=meta)


def prose(rng: np.random.Generator, difficulty: int) -> Task:
    """Ordinary prose: a random word boundary (not before a number) in the Python docs.

    The continuation is the next 6-8 words; there is no answer, program or reason, since
    nothing the policy could compute or reason out beats writing nothing here.
    """
    passages, _ = _positions()
    where = passages[int(rng.integers(len(passages)))]
    word = where.prose[int(rng.integers(len(where.prose)))]
    return _cut("prose", where, word, randint(rng, *PROSE_WORDS), difficulty, None, "random")


def text_numbers(rng: np.random.Generator, difficulty: int) -> Task:
    """Numbers in real text: the position right before a number in the Python docs.

    The answer is the number, the continuation its word and the two after. The expected
    latent is still none: in technical documentation few numbers follow from the text before
    them (version numbers, list markers, literals in examples), and no gold program exists.
    """
    _, passages = _positions()
    where = passages[int(rng.integers(len(passages)))]
    word, answer = where.numbers[int(rng.integers(len(where.numbers)))]
    return _cut("text_numbers", where, word, NUMBER_WORDS, difficulty, answer, "numbers")
