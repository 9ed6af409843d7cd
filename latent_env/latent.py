"""Run a parsed action's tool blocks and assemble the latent data L.

L is written in the founding document's format: each tool block followed by its output,
``<python>code</python><output>16</output>``; reasoning as ``<reason>…</reason>``; latent tokens as
``<thinking>``. Plain text outside blocks is not part of L (it stays in the trace).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from latent_env.actions import THINKING_TOKEN, ParsedAction, Segment, parse_action
from latent_env.tools.base import Tool, ToolOutput

MAX_LATENT_CHARS = 16_000  # a latent longer than this is cut (the scorer truncates tokens too)
# What kind of latent data an episode wrote, for choice metrics. A latent with several kinds
# counts as the first of code, thinking, reasoning: tool output is the most specific signal.
LATENT_KINDS: tuple[str, ...] = ("code", "reasoning", "thinking", "empty")


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
    parsed_actions: Sequence[ParsedAction], tools: Mapping[str, Tool]
) -> list[list[ToolOutput]]:
    """Run every tool block of every action, batching blocks per tool (one pool round each).

    Error segments (unknown tags, unclosed blocks) get an error output without running anything.
    """
    outputs: list[list[ToolOutput | None]] = [
        [None] * len(p.segments) for p in parsed_actions
    ]
    by_tag: dict[str, list[tuple[int, int, str]]] = {}
    for a, parsed in enumerate(parsed_actions):
        for s, seg in enumerate(parsed.segments):
            if seg.kind == "tool":
                by_tag.setdefault(seg.tag, []).append((a, s, seg.text))
            elif seg.kind == "error":
                outputs[a][s] = _refusal(seg)
    for tag, jobs in by_tag.items():
        results = tools[tag].run_batch([text for _, _, text in jobs])
        for (a, s, _), result in zip(jobs, results):
            outputs[a][s] = result
    return outputs  # type: ignore[return-value]


def assemble_latent(parsed: ParsedAction, outputs: Sequence[ToolOutput | None]) -> Latent:
    """Join segments and their tool outputs into L (see module docstring)."""
    parts: list[str] = []
    calls: list[ToolCall] = []
    n_reason = n_thinking = 0
    for seg, out in zip(parsed.segments, outputs):
        if seg.kind == "tool" and out is not None:
            parts.append(f"<{seg.tag}>{seg.text}</{seg.tag}><output>{out.output}</output>")
            calls.append(ToolCall(seg.tag, seg.text, out))
        elif seg.kind == "error" and out is not None:
            calls.append(ToolCall(seg.tag, seg.text, out))
        elif seg.kind == "reason":
            parts.append(f"<reason>{seg.text}</reason>")
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


def build_latent(action: str, tools: Mapping[str, Tool] | None = None) -> Latent:
    """Parse ``action``, run its blocks with ``tools`` (all installed by default), build L."""
    if tools is None:
        from latent_env.tools.registry import load_tools

        tools = load_tools()
    parsed = parse_action(action, tools.keys())
    return assemble_latent(parsed, run_tool_segments([parsed], tools)[0])


def _refusal(seg: Segment) -> ToolOutput:
    if seg.problem == "unknown_tool":
        message = f"unknown tool <{seg.tag}>"
        return ToolOutput("unknown_tool", f"Error: {message}", message)
    message = f"unclosed <{seg.tag}> block was not run"
    return ToolOutput("parse_error", f"Error: {message}", message)
