"""The outcome of one sandboxed run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal[
    "ok", "error", "compile_error", "timeout", "memory_error", "output_limit", "crashed"
]

#: Every status an :class:`ExecResult` can carry.
STATUSES: frozenset[str] = frozenset(
    {"ok", "error", "compile_error", "timeout", "memory_error", "output_limit", "crashed"}
)
#: Statuses a worker may report itself; "timeout" and "crashed" are decided by the parent only.
WORKER_STATUSES: frozenset[str] = STATUSES - {"timeout", "crashed"}


@dataclass(frozen=True, slots=True)
class ExecResult:
    """What happened when a snippet ran.

    ``stdout`` is the printed output (capped), ``value`` the repr of the last expression or of
    a ``result`` variable (or None), ``error`` one readable line ("ExcType: message (line N)")
    for every status but "ok", ``duration_s`` the wall time seen by the caller, and
    ``worker_pid`` the process that ran it (None when no worker got the request).
    """

    status: Status
    stdout: str = ""
    value: str | None = None
    error: str | None = None
    duration_s: float = 0.0
    worker_pid: int | None = None

    @property
    def ok(self) -> bool:
        """True when the code ran to completion."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of all fields."""
        return asdict(self)
