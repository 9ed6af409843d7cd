"""Which split owns a context: the rule every suite, task file and corpus cut shares.

A context belongs to exactly one split, decided by a hash of its whitespace-normalised text:
20% of the hash space is test, 20% validation, 60% train. Tasks cut from a longer text pass the
text's key (``meta["split_key"]``) instead, so the split follows the passage, not the context.
"""

from __future__ import annotations

import hashlib

SPLITS: tuple[str, ...] = ("train", "validation", "test")
# Per-mille ranges of the context hash owned by each split.
_SPLIT_RANGES: dict[str, tuple[int, int]] = {
    "test": (0, 200), "validation": (200, 400), "train": (400, 1000),
}


def context_key(context: str) -> str:
    """Content hash of a context, insensitive to whitespace differences."""
    return hashlib.sha256(" ".join(context.split()).encode("utf-8")).hexdigest()


def split_of(context: str) -> str:
    """The split that owns ``context`` (``"train"``, ``"validation"`` or ``"test"``); pass a
    task's ``meta["split_key"]`` instead when it has one."""
    bucket = int(context_key(context)[:8], 16) % 1000
    return next(s for s, (lo, hi) in _SPLIT_RANGES.items() if lo <= bucket < hi)
