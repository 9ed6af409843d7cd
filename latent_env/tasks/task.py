"""The :class:`Task` record and its validation.

A task is one prediction problem: the policy reads ``context`` (X) and is rewarded by how much
its latent data raises log p(``continuation`` | latent + X). ``answer`` is the bare value the
continuation starts with (for accuracy metrics), ``program`` is gold Python code whose printed
output helps predict the continuation, ``reason`` is gold reasoning text (written as
``<reason>…</reason>``) that helps, ``family`` names the generator or source, and ``meta``
keeps every other key of the JSON object (difficulty, split, seed, template, ...).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

REQUIRED_KEYS: tuple[str, ...] = ("id", "context", "continuation")
OPTIONAL_KEYS: tuple[str, ...] = ("answer", "program", "reason", "family")
RESERVED_KEYS: frozenset[str] = frozenset(REQUIRED_KEYS + OPTIONAL_KEYS)


class TaskError(ValueError):
    """A user-facing problem with tasks: a bad file, an unknown suite or family name, ..."""


class TaskFormatError(TaskError):
    """A task object that does not follow the format; ``where`` is e.g. ``"tasks.jsonl:7"``."""

    def __init__(self, reason: str, where: str = "") -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"{where}: {reason}" if where else reason)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


@dataclass(frozen=True)
class Task:
    """One context/continuation prediction problem (immutable; see the module docstring)."""

    id: str
    context: str
    continuation: str
    answer: str | None = None
    program: str | None = None
    reason: str | None = None
    family: str | None = None
    # hash=False: a dict is unhashable, and two tasks are told apart by their other fields.
    meta: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for key in REQUIRED_KEYS:
            value = getattr(self, key)
            if not isinstance(value, str):
                raise TaskFormatError(f'"{key}" must be a string, got {_type_name(value)}')
        if not self.id.strip():
            raise TaskFormatError('"id" must not be empty')
        if not self.continuation:
            raise TaskFormatError('"continuation" must not be empty')
        for key in OPTIONAL_KEYS:
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                raise TaskFormatError(
                    f'"{key}" must be a string or null, got {_type_name(value)}'
                )
        if self.answer is not None and not self.answer.strip():
            raise TaskFormatError('"answer" must not be empty (use null for no answer)')
        if not isinstance(self.meta, dict):
            raise TaskFormatError(f'"meta" must be a dict, got {_type_name(self.meta)}')
        clash = sorted(RESERVED_KEYS.intersection(self.meta))
        if clash:
            raise TaskFormatError(f'meta key "{clash[0]}" clashes with a task field')

    def to_dict(self) -> dict[str, Any]:
        """The JSON object for this task: fields that are set, then the ``meta`` keys."""
        out: dict[str, Any] = {
            "id": self.id, "context": self.context, "continuation": self.continuation,
        }
        for key in OPTIONAL_KEYS:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(self.meta)
        return out

    @classmethod
    def from_dict(cls, d: Any, where: str = "") -> Task:
        """Build a task from a parsed JSON object; unknown keys go to ``meta``.

        Raises :class:`TaskFormatError` naming ``where`` (e.g. ``"tasks.jsonl:7"``) and the
        reason: not an object, a missing required key, a wrong type, an empty continuation.
        """
        if not isinstance(d, dict):
            raise TaskFormatError(f"expected a JSON object, got {_json_kind(d)}", where)
        for key in REQUIRED_KEYS:
            if key not in d:
                raise TaskFormatError(f'missing required key "{key}"', where)
        known = {k: d[k] for k in REQUIRED_KEYS + OPTIONAL_KEYS if k in d}
        meta = {k: v for k, v in d.items() if k not in RESERVED_KEYS}
        try:
            return cls(**known, meta=meta)
        except TaskFormatError as exc:
            raise TaskFormatError(exc.reason, where) from None

    def check_json(self) -> None:
        """Raise :class:`TaskFormatError` if ``meta`` holds values JSON cannot encode."""
        try:
            json.dumps(self.meta, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TaskFormatError(f"meta is not JSON-serialisable ({exc})", self.id) from None


def _json_kind(value: Any) -> str:
    """JSON's name for a parsed value's type (array, string, number, ...)."""
    kinds = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    if value is None:
        return "null"
    return kinds.get(type(value), type(value).__name__)


#: The family a task without one is grouped and reported under.
NO_FAMILY = "other"


def family_of(task: Task) -> str:
    """The family ``task`` is grouped and reported under (:data:`NO_FAMILY` when it has none)."""
    return task.family or NO_FAMILY


def group_by_family(tasks: Iterable[Task]) -> dict[str, list[Task]]:
    """Tasks by :func:`family_of`, families in first-seen order, tasks in their given order."""
    groups: dict[str, list[Task]] = {}
    for task in tasks:
        groups.setdefault(family_of(task), []).append(task)
    return groups


def interleave(groups: Sequence[Sequence[Task]]) -> list[Task]:
    """Round-robin over groups: g0[0], g1[0], …, g0[1], g1[1], … (shorter groups drop out), so
    any prefix keeps the groups balanced."""
    longest = max((len(g) for g in groups), default=0)
    return [g[i] for i in range(longest) for g in groups if i < len(g)]

