"""Reading and writing task files (JSONL: one task object per line).

Errors name the file and line, e.g. ``tasks.jsonl:7: missing required key "continuation"`` or
``tasks.jsonl:3: invalid JSON (Expecting ',' delimiter at column 18)``. Blank lines are skipped.
Writes are atomic: a temporary file in the same directory is renamed over the target, so a
failed write never leaves a half-written or truncated task file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from latent_env.tasks.task import Task, TaskFormatError

__all__ = ["TaskFormatError", "load_jsonl", "write_jsonl"]


def _parse_line(raw: bytes, where: str, first: bool) -> Task | None:
    """Parse one line into a task; ``None`` for a blank line."""
    try:
        # utf-8-sig on the first line tolerates a byte-order mark written by some editors.
        line = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        raise TaskFormatError(f"not valid UTF-8 (byte {exc.start + 1})", where) from None
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TaskFormatError(f"invalid JSON ({exc.msg} at column {exc.colno})", where) from None
    return Task.from_dict(obj, where)


def load_jsonl(path: str | os.PathLike[str]) -> list[Task]:
    """Load every task of a JSONL file, in file order.

    Raises :class:`TaskFormatError` (``file:line: reason``) for a malformed line or a duplicate
    id, and ``FileNotFoundError``/``OSError`` when the file cannot be read.
    """
    name = os.fspath(path)
    tasks: list[Task] = []
    first_line: dict[str, int] = {}
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            where = f"{name}:{lineno}"
            task = _parse_line(raw, where, first=lineno == 1)
            if task is None:
                continue
            if task.id in first_line:
                raise TaskFormatError(
                    f'duplicate id "{task.id}" (first on line {first_line[task.id]})', where
                )
            first_line[task.id] = lineno
            tasks.append(task)
    return tasks


def write_jsonl(path: str | os.PathLike[str], tasks: Iterable[Task]) -> int:
    """Write ``tasks`` to ``path`` atomically (parent directories are created); returns the count.

    Everything is validated before the target is touched: duplicate ids or ``meta`` values
    that JSON cannot encode raise :class:`TaskFormatError` and leave an existing file intact.
    """
    target = Path(path)
    lines: list[str] = []
    seen: set[str] = set()
    for task in tasks:
        if task.id in seen:
            raise TaskFormatError(f'duplicate id "{task.id}"', os.fspath(path))
        seen.add(task.id)
        task.check_json()
        lines.append(json.dumps(task.to_dict(), ensure_ascii=False, allow_nan=False))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            for line in lines:
                fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; task files are ordinary readable data
        os.replace(tmp, target)
    except BaseException:
        # Leave no temporary file behind when the write fails or is interrupted.
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(lines)
