"""Run a parsed action's tool blocks and assemble the latent data L.

L is written in the founding document's format: each tool block followed by its output,
``<python>code</python><output>16</output>``; reasoning as ``<reason>…</reason>``; latent tokens as
``<thinking>``. Plain text outside blocks is not part of L (it stays in the trace).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from latent_env.actions import THINKING_TOKEN, ParsedAction, Segment
from latent_env.tools.base import Tool, ToolOutput

MAX_LATENT_CHARS = 16_000  # a latent longer than this is cut (the scorer truncates tokens too)
# What kind of latent data an episode wrote, for choice metrics. A latent with several kinds
# counts as the first of code, thinking, reasoning: tool output is the most specific signal.
LATENT_KINDS: tuple[str, ...] = ("code", "reasoning", "thinking", "empty")

#: Tool blocks one action may run; later blocks are skipped (status "skipped").
DEFAULT_MAX_TOOL_BLOCKS = 8
#: Tool seconds one action may spend, summed over its blocks; once spent, later blocks are
#: skipped. With the sandbox's 2 s timeout an action costs at most about 6 + 2 s.
DEFAULT_MAX_TOOL_SECONDS = 6.0

# Anything in a tool output, or in text the policy wrote, that would read as structure of L:
# a tag of the action grammar (<python>, </output>, <reason>, <thinking>, <done/>) or the
# latent delimiter. Its "<" is written "&lt;", so every real delimiter in L is one the
# environment wrote.
_STRUCTURE = re.compile(r"<(?=/?[a-z][a-z0-9_]{0,31}\s*/?>|\|latent\|>)")


def escape_structure(text: str) -> str:
    """``text`` with every tag-like ``<`` of the latent's grammar written as ``&lt;``."""
    return _STRUCTURE.sub("&lt;", text)


@dataclass(frozen=True)
class ToolBudget:
    """What one action's tool blocks may spend. Blocks run in order; once the budget is spent
    (or, with ``stop_after_timeout``, a block timed out) the rest are skipped, not run."""

    max_blocks: int = DEFAULT_MAX_TOOL_BLOCKS
    max_seconds: float = DEFAULT_MAX_TOOL_SECONDS
    stop_after_timeout: bool = True

    def __post_init__(self) -> None:
        if self.max_blocks < 1 or not self.max_seconds > 0:
            raise ValueError("ToolBudget needs max_blocks >= 1 and max_seconds > 0")


@dataclass(frozen=True)
class ToolCall:
    """One executed (or refused) block and what came back."""

    tag: str
    text: str
    output: ToolOutput

    def to_dict(self) -> dict:
        return {"tag": self.tag, "text": self.text, **self.output.to_dict()}


@dataclass(frozen=True)
class Latent:
    """The latent data built from one or more actions."""

    text: str
    calls: list[ToolCall] = field(default_factory=list)
    n_reason: int = 0
    n_thinking: int = 0

    @property
    def n_tool_errors(self) -> int:
        return sum(1 for c in self.calls if not c.output.ok)

    @property
    def kind(self) -> str:
        """One of :data:`LATENT_KINDS`: ``code`` when any tool block was written (run or
        refused), else ``thinking`` for latent tokens, ``reasoning`` for ``<reason>`` text, else
        ``empty``."""
        if self.calls:
            return "code"
        if self.n_thinking:
            return "thinking"
        if self.n_reason:
            return "reasoning"
        return "empty"


def run_tool_segments(
    parsed_actions: Sequence[ParsedAction], tools: Mapping[str, Tool],
    budget: ToolBudget | None = None,
) -> list[list[ToolOutput]]:
    """Run every tool block of every action within each action's :class:`ToolBudget`.

    Blocks run in rounds: round k runs the k-th block of every action still within budget,
    batched per tool across actions (one pool round each). Error segments (unknown tags,
    unclosed blocks) get an error output without running anything.
    """
    budget = budget or ToolBudget()
    outputs: list[list[ToolOutput | None]] = [[None] * len(p.segments) for p in parsed_actions]
    queues: list[list[tuple[int, Segment]]] = []
    for a, parsed in enumerate(parsed_actions):
        queues.append([(s, seg) for s, seg in enumerate(parsed.segments) if seg.kind == "tool"])
        for s, seg in enumerate(parsed.segments):
            if seg.kind == "error":
                outputs[a][s] = _refusal(seg)
    spent = [0.0] * len(parsed_actions)
    stopped: list[str | None] = [None] * len(parsed_actions)
    for k in range(max(map(len, queues), default=0)):
        by_tag: dict[str, list[tuple[int, int, str]]] = {}
        for a, queue in enumerate(queues):
            if k < len(queue):
                s, seg = queue[k]
                if k >= budget.max_blocks:
                    stopped[a] = stopped[a] or f"more than {budget.max_blocks} tool blocks"
                if stopped[a]:
                    outputs[a][s] = _skipped(stopped[a])
                else:
                    by_tag.setdefault(seg.tag, []).append((a, s, seg.text))
        for tag, jobs in by_tag.items():
            for (a, s, _), result in zip(jobs, tools[tag].safe_run_batch([t for _, _, t in jobs])):
                outputs[a][s] = result
                spent[a] += result.duration_s
                if result.status == "timeout" and budget.stop_after_timeout:
                    stopped[a] = "an earlier block timed out"
                elif spent[a] >= budget.max_seconds:
                    stopped[a] = f"the action's {budget.max_seconds:g} s of tool time are spent"
    return outputs  # type: ignore[return-value]


def assemble_latent(parsed: ParsedAction, outputs: Sequence[ToolOutput | None]) -> Latent:
    """Join segments and their tool outputs into L (see module docstring)."""
    parts: list[str] = []
    calls: list[ToolCall] = []
    n_reason = n_thinking = 0
    for seg, out in zip(parsed.segments, outputs):
        if seg.kind == "tool" and out is not None:
            code, shown = escape_structure(seg.text), escape_structure(out.output)
            parts.append(f"<{seg.tag}>{code}</{seg.tag}><output>{shown}</output>")
            calls.append(ToolCall(seg.tag, seg.text, out))
        elif seg.kind == "error" and out is not None:
            calls.append(ToolCall(seg.tag, seg.text, out))
        elif seg.kind == "reason":
            parts.append(f"<reason>{escape_structure(seg.text)}</reason>")
            n_reason += 1
        elif seg.kind == "thinking":
            parts.append(THINKING_TOKEN)
            n_thinking += 1
    text = "".join(parts)
    if len(text) > MAX_LATENT_CHARS:
        text = text[:MAX_LATENT_CHARS]
    return Latent(text, calls, n_reason, n_thinking)


def merge_latents(latents: Sequence[Latent]) -> Latent:
    """The latent of a multi-turn episode: each turn's latent in order."""
    text = "".join(lat.text for lat in latents)[:MAX_LATENT_CHARS]
    return Latent(
        text,
        [c for lat in latents for c in lat.calls],
        sum(lat.n_reason for lat in latents),
        sum(lat.n_thinking for lat in latents),
    )


def _skipped(reason: str) -> ToolOutput:
    return ToolOutput.failure("skipped", f"tool block skipped: {reason}")


def _refusal(seg: Segment) -> ToolOutput:
    if seg.problem == "unknown_tool":
        return ToolOutput.failure("unknown_tool", f"unknown tool <{seg.tag}>")
    return ToolOutput.failure("parse_error", f"unclosed <{seg.tag}> block was not run")
