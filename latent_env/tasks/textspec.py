"""Raw text as a task spec: ``FILE.txt`` / ``FILE.md`` and ``hf:PATH`` (a local dataset).

:func:`~latent_env.tasks.suites.load_tasks` sends these specs here, so every ``--tasks`` flag
takes them. A text file goes through :func:`~latent_env.tasks.rawtext.tasks_from_file`, a
dataset through :func:`~latent_env.tasks.rawtext.tasks_from_hf_dataset`, with these defaults,
which a spec may override with a trailing ``?key=value&key=value``
(``'notes.txt?mode=random&max_tasks=40'``):

=========================  =====================================================================
option                     meaning (default)
=========================  =====================================================================
``mode``                   ``numbers``: split right before each number; ``random``: at word
                           boundaries (default ``numbers``; ``loss`` needs a scoring model, so it
                           is reached from Python or ``train_rl.py --text``)
``max_tasks``              at most N tasks per text (numbers: all of them; random: one per
                           100 words)
``n_continuation_tokens``  words in each continuation (8)
``min_context_chars``      no split in a text's first N characters (200)
``max_context_chars``      longer contexts are cut on the left, at a word (4000)
``seed``                   seed of the random mode (0)
``text_field``             ``hf:`` only: the column holding the text (``text``)
``max_documents``          ``hf:`` only: read at most N rows (all)
=========================  =====================================================================

A text file is read whole, as a ``.jsonl`` file is (``split`` does not filter it). ``hf:PATH``
must be local — a ``Dataset.save_to_disk`` folder, a folder of data files, or a
``.jsonl``/``.json``/``.csv``/``.parquet`` file — and nothing is downloaded; a dataset with
splits is read at ``split``, a single one whole. A spec that gives no task raises
:class:`~latent_env.tasks.rawtext.NoTasksError` naming the file and the reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from latent_env.tasks.rawtext import NoTasksError, tasks_from_file, tasks_from_hf_dataset
from latent_env.tasks.task import Task, TaskError

TEXT_SUFFIXES: tuple[str, ...] = (".txt", ".md")
HF_PREFIX = "hf:"
SPEC_MODES: tuple[str, ...] = ("numbers", "random")
# Option name -> (type, smallest value allowed for a number).
_TEXT_OPTIONS: dict[str, tuple[type, int]] = {
    "mode": (str, 0), "max_tasks": (int, 1), "n_continuation_tokens": (int, 1),
    "min_context_chars": (int, 0), "max_context_chars": (int, 1), "seed": (int, 0),
}
_HF_OPTIONS = {**_TEXT_OPTIONS, "text_field": (str, 0), "max_documents": (int, 1)}
_OPTION = re.compile(r"^[a-z_]+=[^&=?]*$")


def is_text_spec(spec: str) -> bool:
    """Whether ``spec`` names raw text: ``hf:...`` or a ``.txt``/``.md`` file (options or not)."""
    if spec.startswith(HF_PREFIX):
        return True
    return any(Path(p).suffix.lower() in TEXT_SUFFIXES for p in (spec, spec.rpartition("?")[0]))


def _split_options(spec: str) -> tuple[str, dict[str, str]]:
    """``"a.txt?mode=random"`` → ``("a.txt", {"mode": "random"})``; an existing file is whole."""
    if "?" not in spec or Path(spec).exists():
        return spec, {}
    body, _, tail = spec.rpartition("?")
    parts = tail.split("&")
    if not all(_OPTION.match(part) for part in parts):
        raise TaskError(f'{spec}: options after "?" must be key=value pairs joined by "&"')
    return body, dict(part.split("=", 1) for part in parts)


def _typed(body: str, raw: dict[str, str], schema: dict[str, tuple[type, int]]) -> dict[str, Any]:
    """Options checked against ``schema`` and converted; keyword arguments for the builders."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in schema:
            raise TaskError(f'{body}: unknown option "{key}" (options: {", ".join(schema)})')
        kind, least = schema[key]
        if kind is int:
            if not re.fullmatch(r"\d+", value) or int(value) < least:
                raise TaskError(f"{body}: option {key}={value!r} must be a whole number "
                                f">= {least}")
            out[key] = int(value)
        else:
            out[key] = value
    mode = out.get("mode", "numbers")
    if mode == "loss":
        raise TaskError(f'{body}: mode "loss" needs a scoring model, which a task spec does not '
                        "load: use numbers or random here (or latent_env.tasks.tasks_from_text "
                        "with a scorer, or train_rl.py --text)")
    if mode not in SPEC_MODES:
        raise TaskError(f'{body}: unknown mode "{mode}" (choose from {", ".join(SPEC_MODES)})')
    out["rng"] = np.random.default_rng(out.pop("seed", 0))
    return out


def load_text_spec(spec: str, split: str = "test") -> list[Task]:
    """Tasks from a raw-text spec (see the module docstring); ``split`` picks a dataset split.

    Raises :class:`TaskError` for a missing file or dataset or a bad option, and
    :class:`NoTasksError` (the reason, and how options change the cut) when no task comes out.
    """
    body, raw = _split_options(spec)
    try:
        if body.startswith(HF_PREFIX):
            return _load_hf(body, raw, split)
        if not Path(body).is_file():
            raise TaskError(f"{body}: no such text file")
        return tasks_from_file(body, on_empty="raise", **_typed(body, raw, _TEXT_OPTIONS))
    except NoTasksError as exc:
        hint = f"; options change the cut: '{body}?mode=random&min_context_chars=N'"
        raise NoTasksError(exc.reason + hint, exc.where) from None


def _load_hf(body: str, raw: dict[str, str], split: str) -> list[Task]:
    target = body[len(HF_PREFIX):]
    if not target or not Path(target).exists():
        raise TaskError(f"{body}: no such local dataset (hf:PATH takes a save_to_disk folder, "
                        "a folder of data files or a .jsonl/.json/.csv/.parquet file; nothing "
                        "is downloaded)")
    options = _typed(body, raw, _HF_OPTIONS)
    try:
        return tasks_from_hf_dataset(target, split=split, on_empty="raise", **options)
    except ImportError as exc:
        raise TaskError(f"{body}: {exc}") from None
