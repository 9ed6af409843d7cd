"""Parse a policy's output into segments: tool blocks, reasoning, latent tokens, done.

Grammar (everything else is plain text: kept in the trace, never executed)::

    <TAG>…</TAG>     a tool block, for every registered tool tag (python, calc, predict, …)
    <reason>…</reason>   reasoning, kept verbatim in the latent
    <thinking>       one continuous latent token (consecutive ones count separately)
    <done/>          the policy is finished (multi-turn episodes end here)

Blocks do not nest: inside a block everything up to its own closing tag is the block's text,
except ``<thinking>`` tokens, which are counted as latent tokens and removed from the block.
An unclosed block, or a ``<name>…</name>`` block whose name is no registered tool, becomes an
``error`` segment that the environment reports as a tool error. Parsing never raises.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

REASON_TAG = "reason"
THINKING_TOKEN = "<thinking>"
DONE_TOKEN = "<done/>"
MAX_SEGMENTS = 64  # more blocks than this in one action are dropped (reported as an error)

_OPEN = re.compile(r"<([a-z][a-z0-9_]{0,31})>|<thinking>|<done\s*/>")


@dataclass(frozen=True)
class Segment:
    """One piece of an action. ``kind`` is tool | reason | thinking | text | error."""

    kind: str
    text: str
    tag: str = ""
    start: int = 0
    end: int = 0
    problem: str = ""  # for kind "error": "unclosed" or "unknown_tool"


@dataclass(frozen=True)
class ParsedAction:
    segments: list[Segment]
    done: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def tool_segments(self) -> list[Segment]:
        return [s for s in self.segments if s.kind == "tool"]

    @property
    def n_thinking(self) -> int:
        return sum(1 for s in self.segments if s.kind == "thinking")

    @property
    def well_formed(self) -> bool:
        """At least one latent segment and no parse errors."""
        latent = any(s.kind in ("tool", "reason", "thinking") for s in self.segments)
        return latent and not self.errors


def parse_action(action: str, tool_tags: Collection[str]) -> ParsedAction:
    """Split ``action`` into segments; ``tool_tags`` are the tags of the registered tools."""
    segments: list[Segment] = []
    errors: list[str] = []
    done = False
    pos = 0
    while pos < len(action):
        match = _OPEN.search(action, pos)
        if match is None:
            break
        _add_text(segments, action, pos, match.start())
        token, name = match.group(0), match.group(1)
        if token == THINKING_TOKEN:
            segments.append(Segment("thinking", token, "", match.start(), match.end()))
            pos = match.end()
            continue
        if name is None:  # <done/>
            done = True
            pos = match.end()
            break
        pos = _parse_block(action, match, name, tool_tags, segments, errors)
        if len(segments) > MAX_SEGMENTS:
            errors.append(f"more than {MAX_SEGMENTS} segments; the rest was ignored")
            segments = segments[:MAX_SEGMENTS]
            break
    _add_text(segments, action, pos, len(action))
    return ParsedAction(segments, done, errors)


def _parse_block(action, match, name, tool_tags, segments, errors) -> int:
    """Handle ``<name>``; returns where parsing continues."""
    close = f"</{name}>"
    end = action.find(close, match.end())
    known = name == REASON_TAG or name in tool_tags
    if end < 0:
        if known:
            body = action[match.end() :]
            errors.append(f"unclosed <{name}> block")
            segments.append(Segment("error", body, name, match.start(), len(action), "unclosed"))
            return len(action)
        segments.append(Segment("text", match.group(0), "", match.start(), match.end()))
        return match.end()
    body = action[match.end() : end]
    if name == REASON_TAG:
        segments.append(Segment("reason", body, name, match.start(), end + len(close)))
    elif name in tool_tags:
        # A latent-thought policy may think mid-block; the thoughts are not part of the code.
        for _ in range(body.count(THINKING_TOKEN)):
            segments.append(Segment("thinking", THINKING_TOKEN, "", match.start(), match.start()))
        segments.append(Segment("tool", body.replace(THINKING_TOKEN, ""), name, match.start(),
                                end + len(close)))
    elif name == "output":
        # Outputs come from tools only; a policy writing its own would forge evidence.
        errors.append("<output> blocks are written by the environment; the policy's was ignored")
        segments.append(Segment("text", action[match.start() : end + len(close)], "",
                                match.start(), end + len(close)))
    else:
        errors.append(f"unknown tool <{name}>")
        segments.append(
            Segment("error", body, name, match.start(), end + len(close), "unknown_tool")
        )
    return end + len(close)


def _add_text(segments: list[Segment], action: str, start: int, end: int) -> None:
    if end > start:
        segments.append(Segment("text", action[start:end], "", start, end))
