"""Episode state and the text pieces of a turn, below :mod:`latent_env.engine`.

An :class:`Episode` holds one task and the turns taken so far. :func:`run_actions` parses actions
and runs their tool blocks (batched per tool across actions), :func:`render_turn` writes a turn
into the transcript, and the text helpers keep actions and observations inside their spaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gymnasium import spaces

from latent_env.actions import ParsedAction, parse_action
from latent_env.latent import (
    Latent,
    ToolBudget,
    escape_structure,
    merge_latents,
    run_tool_segments,
)
from latent_env.tasks import Task
from latent_env.tools.base import Tool, ToolOutput

# Gymnasium's Text space needs an explicit charset: every BMP character but surrogates and most
# control characters. Characters outside it (emoji, lone surrogates) are replaced by U+FFFD.
TEXT_CHARSET = frozenset(
    "\t\n\r" + "".join(chr(c) for c in range(0x20, 0xD800)) + "".join(
        chr(c) for c in range(0xE000, 0xFFFE)
    )
)
REPLACEMENT = "\ufffd"
_TEXT_SPACES: dict[tuple[int, int], Any] = {}


class TextSpace(spaces.Text):
    """gymnasium's ``Text`` whose repr gives the charset's size: printing the 63k characters
    made ``print(env.observation_space)`` unreadable."""

    def __repr__(self) -> str:
        return (f"Text({self.min_length}, {self.max_length}, "
                f"charset=<{len(self.character_set)} characters>)")


def text_space(max_length: int, min_length: int) -> Any:
    """A ``gymnasium.spaces.Text`` over ``TEXT_CHARSET``, cheap to make many times.

    Building the space indexes its 63k-character charset (~50 ms); later spaces of the same shape
    are shallow copies that share those read-only tables but own their random generator.
    """
    import copy

    key = (max_length, min_length)
    if key not in _TEXT_SPACES:
        _TEXT_SPACES[key] = TextSpace(max_length, min_length=min_length, charset=TEXT_CHARSET)
    space = copy.copy(_TEXT_SPACES[key])
    space._np_random = None  # its own generator, seeded on first use or by .seed()
    return space


def sanitize_text(value: Any, max_chars: int) -> tuple[str, bool]:
    """Coerce any action to text the environment can handle; returns (text, was_changed)."""
    changed = False
    if isinstance(value, bytes):
        value, changed = value.decode("utf-8", "replace"), True
    elif not isinstance(value, str):
        value, changed = ("" if value is None else str(value)), True
    clean = "".join(c if c in TEXT_CHARSET else REPLACEMENT for c in value)
    changed = changed or clean != value
    if len(clean) > max_chars:
        clean, changed = clean[:max_chars], True
    return clean, changed


def fit_observation(text: str, max_chars: int) -> str:
    """Observations longer than the space allows keep their end (the part being predicted)."""
    clean = "".join(c if c in TEXT_CHARSET else REPLACEMENT for c in text)
    if len(clean) <= max_chars:
        return clean
    return "…" + clean[-(max_chars - 1) :]


@dataclass
class Episode:
    """One task and the turns taken on it."""

    task: Task
    prompt: str
    parsed: list[ParsedAction] = field(default_factory=list)
    latents: list[Latent] = field(default_factory=list)
    transcript: str = ""
    actions_changed: int = 0
    finished: bool = False
    info: dict[str, Any] = field(default_factory=dict)  # the scored info, once finished

    @property
    def turns(self) -> int:
        return len(self.parsed)

    @property
    def observation(self) -> str:
        return self.prompt + self.transcript

    @property
    def latent(self) -> Latent:
        return merge_latents(self.latents)


def run_actions(
    actions: Sequence[str], tools: Mapping[str, Tool], budget: ToolBudget | None = None,
) -> list[tuple[ParsedAction, list[ToolOutput | None]]]:
    """Parse each action and run all their tool blocks, batched per tool across actions, each
    action within ``budget``: the one way tool blocks run (engine, tree policy)."""
    parsed = [parse_action(action, tools.keys()) for action in actions]
    return list(zip(parsed, run_tool_segments(parsed, tools, budget)))


def render_output(output: ToolOutput) -> str:
    """A tool output as the policy reads it: escaped, inside ``<output>…</output>``."""
    return f"<output>{escape_structure(output.output)}</output>"


def render_turn(
    action: str, parsed: ParsedAction, outputs: Sequence[ToolOutput | None]
) -> str:
    """The action as the policy wrote it, with each tool block's output right after the block."""
    parts: list[str] = []
    for seg, out in zip(parsed.segments, outputs):
        parts.append(action[seg.start : seg.end])
        if out is not None:
            parts.append(render_output(out))
    return "".join(parts) + "\n"


def render_feedback(outputs: Sequence[ToolOutput | None]) -> str:
    """What the environment says after an action that ends with a tool block: the outputs of
    its blocks, as :func:`render_turn` writes them, with the turn's closing newline. A
    multi-turn rollout appends this to the policy's own tokens and lets it go on."""
    return "".join(render_output(out) for out in outputs if out is not None) + "\n"
