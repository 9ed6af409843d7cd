"""Raw text to tasks: choose split points in a text, context before, a short continuation after.

Modes:

* ``"numbers"`` — split right before each number (the word holding it); ``answer`` is the number.
* ``"random"`` — split at word boundaries drawn with ``rng``.
* ``"loss"`` — Toolformer-style: split where the model is most surprised by what follows, i.e.
  where the weighted negative log-prob of the next few tokens (weights 1, .8, .6, .4, .2) is
  highest. Needs a ``scorer`` (``score(contexts, continuations)`` returning items with
  ``.token_logprobs``) and a HF-style ``tokenizer`` whose offsets map tokens to characters.

A context never ends in whitespace: the whitespace before the split word starts the
continuation (" 16 years."), as the synthetic families do. Continuations are
``n_continuation_tokens`` tokens long when a tokenizer is given, else that many words, and never
end inside a word or a number: a cut after " about 8,4" of "8,400" is extended to " about 8,400"
(letters and digits, digits joined by ``,`` ``.`` ``_``, and letters joined by an apostrophe
belong together).

A text that yields no task is not an error by default: the functions warn with
:class:`NoTasksWarning` naming the reason (the text is shorter than ``min_context_chars``, it has
no number to split before, ...) and return ``[]``. ``on_empty="raise"`` raises
:class:`NoTasksError` instead, ``"ignore"`` returns ``[]`` silently.
"""

from __future__ import annotations

import itertools
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from latent_env.tasks.task import Task, TaskError

MODES: tuple[str, ...] = ("numbers", "random", "loss")
_WORD = re.compile(r"\S+")
# A number not glued to a preceding letter or digit: 42, 3.5, 1,200, 12:30, -7.
_NUMBER = re.compile(r"(?<![\w.,])-?\d+(?:[.,:/]\d+)*")
# Toolformer's weights over the next tokens: max(0, 1 - 0.2 t).
_LOSS_WEIGHTS = (1.0, 0.8, 0.6, 0.4, 0.2)
ON_EMPTY: tuple[str, ...] = ("warn", "raise", "ignore")
_NUMBER_JOINERS = ",._"
_WORD_JOINERS = "'\u2019"


class NoTasksWarning(UserWarning):
    """A text gave no task; the message names the reason."""


class NoTasksError(TaskError):
    """A text gave no task (``on_empty="raise"``); ``reason`` says why, ``where`` names it."""

    def __init__(self, reason: str, where: str = "") -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"{where}: no tasks: {reason}" if where else f"no tasks: {reason}")


def _no_tasks(reason: str, on_empty: str, where: str = "") -> list[Task]:
    """Act on an empty result as ``on_empty`` asks; returns ``[]`` unless it raises."""
    if on_empty == "raise":
        raise NoTasksError(reason, where)
    if on_empty == "warn":
        # stacklevel 3: the warning points at whoever called the public function.
        warnings.warn(str(NoTasksError(reason, where)), NoTasksWarning, stacklevel=3)
    return []


def _check_on_empty(on_empty: str) -> None:
    if on_empty not in ON_EMPTY:
        raise TaskError(f'on_empty must be one of {", ".join(ON_EMPTY)}, got "{on_empty}"')


class ScoredLike(Protocol):
    """What a scorer returns per item (``latent_env.scoring`` results satisfy this)."""

    token_logprobs: Sequence[float]


class ScorerLike(Protocol):
    """The scorer interface the ``"loss"`` mode needs."""

    def score(self, contexts: list[str], continuations: list[str]) -> Sequence[ScoredLike]: ...


def _token_spans(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    """Character spans of the tokenizer's tokens (special and empty tokens dropped)."""
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    offsets = enc["offset_mapping"]
    return [(int(s), int(e)) for s, e in offsets if e > s]


def _unit_spans(text: str, tokenizer: Any | None) -> list[tuple[int, int]]:
    """Spans that continuations are measured in: tokens, or words without a tokenizer."""
    if tokenizer is not None:
        return _token_spans(tokenizer, text)
    return [m.span() for m in _WORD.finditer(text)]


def _boundary(text: str, word_start: int) -> int:
    """Where the context ends for a split before ``word_start``: before its whitespace."""
    q = word_start
    while q > 0 and text[q - 1].isspace():
        q -= 1
    return q


def _word_start(text: str, pos: int) -> int:
    """Start of the whitespace-delimited word containing ``pos``."""
    while pos > 0 and not text[pos - 1].isspace():
        pos -= 1
    return pos


def _continuation_end(units: list[tuple[int, int]], starts: list[int], q: int, n: int) -> int:
    """End of the ``n``-th unit that starts at or after ``q`` (-1 if there is none)."""
    first = int(np.searchsorted(starts, q, side="left"))
    chosen = units[first:first + n]
    return chosen[-1][1] if chosen else -1


def _splits_a_unit(text: str, i: int) -> bool:
    """Whether a cut at ``i`` falls inside a word or a number (``8,4|00``, ``8,|400``)."""
    if i <= 0 or i >= len(text):
        return False
    before, after = text[i - 1], text[i]
    if (before.isalnum() or before == "_") and (after.isalnum() or after == "_"):
        return True
    prev2 = text[i - 2] if i >= 2 else ""
    next2 = text[i + 1] if i + 1 < len(text) else ""
    if after in _NUMBER_JOINERS and before.isdigit() and next2.isdigit():
        return True
    if before in _NUMBER_JOINERS and prev2.isdigit() and after.isdigit():
        return True
    if after in _WORD_JOINERS and before.isalpha() and next2.isalpha():
        return True
    return before in _WORD_JOINERS and prev2.isalpha() and after.isalpha()


def _whole_units_end(text: str, end: int) -> int:
    """``end`` moved right until the cut no longer splits a word or a number."""
    while _splits_a_unit(text, end):
        end += 1
    return end


def _context_start(text: str, q: int, max_chars: int | None) -> int:
    """Left edge of the context: at most ``max_chars`` before ``q``, on a word boundary."""
    if max_chars is None or q <= max_chars:
        return 0
    start = q - max_chars
    while start < q and not text[start - 1].isspace():
        start += 1
    while start < q and text[start].isspace():
        start += 1
    return start


def _candidates(text: str, mode: str, min_context_chars: int) -> list[tuple[int, str | None]]:
    """(word start, answer) pairs for the numbers and random modes, in text order."""
    found: dict[int, str | None] = {}
    if mode == "numbers":
        for m in _NUMBER.finditer(text):
            start = _word_start(text, m.start())
            # "$25" or "(3" qualify; a number inside a name such as "COVID-19" does not.
            if not any(ch.isalnum() for ch in text[start:m.start()]):
                found.setdefault(start, m.group())
    else:
        for m in _WORD.finditer(text):
            found.setdefault(m.start(), None)
    return [(p, a) for p, a in found.items() if _boundary(text, p) >= min_context_chars]


def _spread(items: list[Any], k: int | None) -> list[Any]:
    """At most ``k`` items, evenly spaced over the list (all of them when ``k`` is None)."""
    if k is None or len(items) <= k:
        return items
    if k <= 0:
        return []
    idx = np.linspace(0, len(items) - 1, num=k).round().astype(int)
    return [items[i] for i in sorted(set(idx.tolist()))]


def tasks_from_text(
    text: str,
    mode: str = "numbers",
    n_continuation_tokens: int = 8,
    tokenizer: Any | None = None,
    scorer: ScorerLike | None = None,
    rng: np.random.Generator | None = None,
    max_tasks: int | None = None,
    min_context_chars: int = 200,
    max_context_chars: int | None = 4000,
    id_prefix: str = "text",
    loss_window_tokens: int = 256,
    on_empty: str = "warn",
) -> list[Task]:
    """Cut ``text`` into context/continuation tasks (see the module docstring for the modes).

    ``max_tasks`` caps the count (numbers: evenly spread; random and loss: default one per
    100 words); ``min_context_chars`` skips splits too close to the start; contexts longer than
    ``max_context_chars`` are cut on the left at a word boundary. Ids are ``{id_prefix}/NNNN``.
    When no task comes out, ``on_empty`` decides: ``"warn"`` (a :class:`NoTasksWarning` naming
    the reason, then ``[]``), ``"raise"`` (:class:`NoTasksError`) or ``"ignore"``.
    Raises :class:`TaskError` for an unknown mode, a bad count or a missing scorer.
    """
    if mode not in MODES:
        raise TaskError(f'unknown mode "{mode}" (choose from {", ".join(MODES)})')
    if n_continuation_tokens < 1:
        raise TaskError("n_continuation_tokens must be at least 1")
    _check_on_empty(on_empty)
    tasks = _cut_text(text, mode, n_continuation_tokens, tokenizer, scorer, rng, max_tasks,
                      min_context_chars, max_context_chars, id_prefix, loss_window_tokens)
    if not tasks:
        return _no_tasks(_why_no_tasks(text, mode, max_tasks, min_context_chars), on_empty)
    return tasks


def _cut_text(
    text: str, mode: str, n_continuation_tokens: int, tokenizer: Any | None,
    scorer: ScorerLike | None, rng: np.random.Generator | None, max_tasks: int | None,
    min_context_chars: int, max_context_chars: int | None, id_prefix: str,
    loss_window_tokens: int,
) -> list[Task]:
    """The body of :func:`tasks_from_text`, its arguments checked."""
    default_k = max(1, len(_WORD.findall(text)) // 100)
    if mode == "loss":
        tokenizer = tokenizer if tokenizer is not None else getattr(scorer, "tokenizer", None)
        k = default_k if max_tasks is None else max_tasks
        picks = _loss_splits(text, scorer, tokenizer, min_context_chars, k,
                             n_continuation_tokens, loss_window_tokens)
    else:
        cands = _candidates(text, mode, min_context_chars)
        if mode == "numbers":
            picks = _spread(cands, max_tasks)
        else:
            rng = rng if rng is not None else np.random.default_rng(0)
            k = min(len(cands), default_k if max_tasks is None else max_tasks)
            chosen = rng.choice(len(cands), size=k, replace=False) if k else []
            picks = [cands[int(i)] for i in sorted(chosen)]
    units = _unit_spans(text, tokenizer)
    starts = [s for s, _ in units]
    tasks: list[Task] = []
    for word_start, answer in picks:
        q = _boundary(text, word_start)
        end = _continuation_end(units, starts, q, n_continuation_tokens)
        if end <= q:
            continue
        end = _whole_units_end(text, end)
        context = text[_context_start(text, q, max_context_chars):q]
        tasks.append(Task(
            id=f"{id_prefix}/{len(tasks):04d}", context=context, continuation=text[q:end],
            answer=answer, family="rawtext",
            meta={"source": "rawtext", "mode": mode, "offset": q},
        ))
    return tasks


def _why_no_tasks(text: str, mode: str, max_tasks: int | None, min_context_chars: int) -> str:
    """Why :func:`tasks_from_text` found no split point, in words a user can act on."""
    if max_tasks is not None and max_tasks <= 0:
        return f"max_tasks is {max_tasks}"
    if not text.strip():
        return "the text is empty"
    where = (f"in the first {min_context_chars} characters (min_context_chars, the shortest "
             f"context allowed; the text has {len(text)})")
    if mode == "numbers":
        n_numbers = len(_candidates(text, mode, 0))
        if not n_numbers:
            return ('the text has no number to split before (mode "numbers"; mode "random" '
                    "splits at any word)")
        return (f"its only number is {where}" if n_numbers == 1
                else f"all {n_numbers} of its numbers are {where}")
    return f"every word starts {where}"


def _window_logprobs(
    text: str, spans: list[tuple[int, int]], scorer: ScorerLike, window: int
) -> list[float]:
    """Per-token log-probs along ``text``, scored in windows that each see the previous one."""
    contexts, continuations, sizes = [], [], []
    for i in range(0, len(spans), window):
        ctx_start = spans[max(0, i - window)][0] if i else 0
        start = spans[i][0] if i else 0
        last = min(i + window, len(spans))
        contexts.append(text[ctx_start:start])
        continuations.append(text[start:spans[last - 1][1]])
        sizes.append(last - i)
    results = scorer.score(contexts, continuations)
    logprobs: list[float] = []
    for size, result in zip(sizes, results, strict=True):
        if len(result.token_logprobs) != size:
            raise TaskError(f"the scorer returned {len(result.token_logprobs)} token log-probs "
                            f"for a window of {size} tokens: pass the tokenizer the scorer uses")
        logprobs += [float(x) for x in result.token_logprobs]
    return logprobs


def _loss_splits(
    text: str, scorer: ScorerLike | None, tokenizer: Any | None, min_context_chars: int,
    k: int, n_tokens: int, window: int,
) -> list[tuple[int, str | None]]:
    """Word starts where the weighted loss of the next tokens is highest, at most ``k``."""
    if scorer is None or tokenizer is None:
        raise TaskError('mode "loss" needs a scorer and a tokenizer (or scorer.tokenizer)')
    spans = _token_spans(tokenizer, text)
    if not spans or k <= 0:
        return []
    logprobs = _window_logprobs(text, spans, scorer, window)
    weights = np.array(_LOSS_WEIGHTS)
    ranked: list[tuple[float, int, int]] = []
    for j, (s, e) in enumerate(spans):
        word_start = s + (len(text[s:e]) - len(text[s:e].lstrip()))
        if word_start >= e or (word_start > 0 and not text[word_start - 1].isspace()):
            continue  # not the start of a word
        if _boundary(text, word_start) < min_context_chars:
            continue
        ahead = np.array(logprobs[j:j + len(weights)])
        loss = -float((ahead * weights[:len(ahead)]).sum() / weights[:len(ahead)].sum())
        ranked.append((loss, j, word_start))
    ranked.sort(key=lambda r: (-r[0], r[1]))
    chosen: list[tuple[int, int]] = []
    for _, j, word_start in ranked:
        # Keep continuations from overlapping one another.
        if all(abs(j - other) >= n_tokens for other, _ in chosen):
            chosen.append((j, word_start))
        if len(chosen) >= k:
            break
    return [(word_start, None) for _, word_start in sorted(chosen)]


def tasks_from_file(
    path: str | os.PathLike[str], on_empty: str = "warn", **kwargs: Any
) -> list[Task]:
    """Tasks from a UTF-8 text file (``.txt``, ``.md``, ...); ids default to ``{stem}/NNNN``.

    Keyword arguments go to :func:`tasks_from_text`; ``on_empty`` works as there, with the
    file named in the message. Raises :class:`TaskError` for a file that is not UTF-8.
    """
    _check_on_empty(on_empty)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TaskError(f"{path}: not valid UTF-8 (byte {exc.start + 1})") from None
    kwargs.setdefault("id_prefix", p.stem)
    try:
        return tasks_from_text(text, on_empty="raise", **kwargs)
    except NoTasksError as exc:
        reason = exc.reason
    return _no_tasks(reason, on_empty, os.fspath(path))


_FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet",
                  ".txt": "text"}
_SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def _pick_split(ds: Any, split: str, where: str) -> Any:
    """``ds[split]`` of a ``DatasetDict``; a single ``Dataset`` is used whole."""
    import datasets

    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise TaskError(f'{where}: no split "{split}" (has {", ".join(ds)})')
        return ds[split]
    return ds


def _load_dataset(path_or_name: str, split: str) -> Any:
    """A local HF dataset: a ``save_to_disk`` directory, a data file or folder, or a name."""
    try:
        import datasets
    except ImportError:
        raise ImportError("tasks_from_hf_dataset needs the 'datasets' package: "
                          "pip install datasets") from None
    p = Path(path_or_name)
    if p.is_dir() and any((p / f).exists() for f in _SAVED_MARKERS):
        return _pick_split(datasets.load_from_disk(str(p)), split, str(p))
    if p.is_dir():  # a folder of data files: its splits come from the file names
        return _pick_split(datasets.load_dataset(str(p)), split, str(p))
    if p.is_file():
        builder = _FILE_BUILDERS.get(p.suffix.lower())
        if builder is None:
            raise TaskError(f"{p}: unsupported data file type (use {', '.join(_FILE_BUILDERS)})")
        return datasets.load_dataset(builder, data_files=str(p), split="train")
    return datasets.load_dataset(path_or_name, split=split)


def tasks_from_hf_dataset(
    path_or_name: str | os.PathLike[str],
    split: str = "train",
    text_field: str = "text",
    max_documents: int | None = None,
    on_empty: str = "warn",
    **kwargs: Any,
) -> list[Task]:
    """Tasks from the ``text_field`` of each row of a local Hugging Face dataset.

    ``path_or_name`` is a ``Dataset.save_to_disk`` directory, a folder of data files, a
    ``.json``/``.jsonl``/``.csv``/``.parquet``/``.txt`` file, or anything
    ``datasets.load_dataset`` can load offline. A dataset with splits is read at ``split``; a
    single dataset or data file is read whole. ``max_documents`` caps the rows read. Other
    keyword arguments go to :func:`tasks_from_text` and apply to each row (``max_tasks`` is per
    row); ids are ``{prefix}/{row}/NNNN``. ``on_empty`` acts once, when no row gave a task.
    """
    _check_on_empty(on_empty)
    where = os.fspath(path_or_name)
    ds = _load_dataset(where, split)
    if text_field not in ds.column_names:
        raise TaskError(f'{where}: no column "{text_field}" '
                        f'(columns: {", ".join(ds.column_names)})')
    prefix = kwargs.pop("id_prefix", Path(where).stem or "dataset")
    tasks: list[Task] = []
    first_reason = ""
    for i, row in enumerate(itertools.islice(ds, max_documents)):
        text = row[text_field]
        if not (isinstance(text, str) and text.strip()):
            continue
        try:
            tasks += tasks_from_text(text, id_prefix=f"{prefix}/{i}", on_empty="raise", **kwargs)
        except NoTasksError as exc:
            first_reason = first_reason or f"row {i}: {exc.reason}"
    if not tasks:
        reason = (f"no row gave a task (first, {first_reason})" if first_reason
                  else f'no row has text in column "{text_field}"')
        return _no_tasks(reason, on_empty, where)
    return tasks
