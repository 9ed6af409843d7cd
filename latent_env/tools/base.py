"""The tool interface: a tag the policy writes, and a function from the block's text to an output.

A tool block in a policy's action looks like ``<TAG>text</TAG>``. The environment hands ``text`` to
the tool registered for ``TAG`` and puts the result back into the latent as
``<TAG>text</TAG><output>…</output>``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

TOOL_STATUSES = (
    "ok", "error", "compile_error", "timeout", "memory_error", "output_limit", "crashed",
    "unknown_tool", "parse_error", "skipped",
)
MAX_OUTPUT_CHARS = 2000  # what one tool may put into the latent; longer output is cut with a note


@dataclass(frozen=True)
class ToolOutput:
    """What a tool returns. ``output`` is what the model will read inside ``<output>…</output>``."""

    status: str
    output: str
    error: str | None = None
    duration_s: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def failure(cls, status: str, message: str, duration_s: float = 0.0) -> ToolOutput:
        """A failed block: the model reads ``Error: message``; ``error`` keeps the message."""
        return cls(status, f"Error: {message}", message, duration_s)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Tool(ABC):
    """Base class for tools. Subclasses set ``name``, ``tag``, ``description`` and ``run``.

    ``run_batch`` runs many blocks at once; the default loops, tools with a pool override it.
    Tools must never raise for bad input text: return a ``ToolOutput`` with status ``"error"``.
    """

    name: ClassVar[str] = ""
    tag: ClassVar[str] = ""
    description: ClassVar[str] = ""

    @abstractmethod
    def run(self, text: str) -> ToolOutput:
        """The output for one block's text."""

    def run_batch(self, texts: Sequence[str]) -> list[ToolOutput]:
        return [self.safe_run(text) for text in texts]

    def safe_run(self, text: str) -> ToolOutput:
        """``run`` with a guarantee: any exception becomes an ``error`` output."""
        start = time.perf_counter()
        try:
            result = self.run(text)
        except Exception as exc:  # a tool bug must not crash an episode
            return ToolOutput.failure("error", exception_line(exc), time.perf_counter() - start)
        return result

    def safe_run_batch(self, texts: Sequence[str]) -> list[ToolOutput]:
        """``run_batch`` with the guarantee ``safe_run`` gives one block: a tool whose
        ``run_batch`` raises, or answers with the wrong number of outputs, costs its blocks, not
        the episode. A tool that does not time itself is charged the batch's wall time."""
        start = time.perf_counter()
        try:
            results = list(self.run_batch(texts))
            if len(results) != len(texts) or not all(isinstance(r, ToolOutput) for r in results):
                raise TypeError(f"run_batch gave {len(results)} outputs for {len(texts)} blocks")
        except Exception as exc:  # a plugin bug must not crash an episode
            elapsed = (time.perf_counter() - start) / max(1, len(texts))
            return [ToolOutput.failure("error", exception_line(exc), elapsed) for _ in texts]
        elapsed = time.perf_counter() - start
        return [r if r.duration_s > 0 else replace(r, duration_s=elapsed) for r in results]

    def close(self) -> None:  # noqa: B027 - optional hook; most tools hold no resources
        """Release resources (worker processes, files). Called by the environment on close."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} tag={self.tag!r}>"


def exception_line(exc: BaseException) -> str:
    """``Type: message``, first line only: how a tool failure reads in the latent."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def clip_output(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Cut an output to ``limit`` characters, saying so, so the latent stays bounded."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit} more characters cut]"
