"""Episode bookkeeping shared by the single and the vector environment.

An :class:`Episode` holds one task and the turns taken so far. Actions are parsed and their tool
blocks run (batched across episodes by :func:`run_turns`); finished episodes are scored together
in one scorer call by :func:`score_episodes`, which turns gains into reward terms.
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
    assemble_latent,
    escape_structure,
    merge_latents,
    run_tool_segments,
)
from latent_env.rewards.rubric import Rubric
from latent_env.rewards.terms import Outcome
from latent_env.tools.base import Tool

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

    task: Any
    prompt: str
    parsed: list[ParsedAction] = field(default_factory=list)
    latents: list[Latent] = field(default_factory=list)
    transcript: str = ""
    actions_changed: int = 0
    finished: bool = False

    @property
    def turns(self) -> int:
        return len(self.parsed)

    @property
    def observation(self) -> str:
        return self.prompt + self.transcript

    @property
    def latent(self) -> Latent:
        return merge_latents(self.latents)


def run_turns(
    episodes: Sequence[Episode], actions: Sequence[str], tools: Mapping[str, Tool],
    budget: ToolBudget | None = None,
) -> list[ParsedAction]:
    """Parse each episode's action and run all tool blocks, batched per tool across episodes,
    each action within ``budget``."""
    parsed = [parse_action(action, tools.keys()) for action in actions]
    outputs = run_tool_segments(parsed, tools, budget)
    for episode, action, p, outs in zip(episodes, actions, parsed, outputs):
        latent = assemble_latent(p, outs)
        episode.parsed.append(p)
        episode.latents.append(latent)
        episode.transcript += render_turn(action, p, outs)
    return parsed


def render_turn(action: str, parsed: ParsedAction, outputs: Sequence[Any]) -> str:
    """The action as the policy wrote it, with each tool block's output right after the block."""
    parts: list[str] = []
    for seg, out in zip(parsed.segments, outputs):
        parts.append(action[seg.start : seg.end])
        if out is not None:
            parts.append(f"<output>{escape_structure(out.output)}</output>")
    return "".join(parts) + "\n"


def score_episodes(
    episodes: Sequence[Episode], scorer: Any, rubric: Rubric
) -> list[dict[str, Any]]:
    """Score finished episodes in one batched call; returns each episode's info dict."""
    if not episodes:
        return []
    latents = [ep.latent for ep in episodes]
    gains = scorer.gain(
        [ep.task.context for ep in episodes],
        [lat.text for lat in latents],
        [ep.task.continuation for ep in episodes],
    )
    infos = []
    for ep, lat, g in zip(episodes, latents, gains):
        answer = getattr(ep.task, "answer", None)
        answer_tokens = scorer.prefix_tokens(ep.task.continuation, f" {answer}") if answer else 0
        parse_errors = [e for p in ep.parsed for e in p.errors]
        outcome = Outcome(
            token_gains=g.token_gains,
            enriched_is_argmax=g.enriched.token_is_argmax,
            baseline_is_argmax=g.baseline.token_is_argmax,
            answer_tokens=answer_tokens,
            latent_tokens=scorer.count_tokens(lat.text),
            n_tool_calls=len(lat.calls),
            n_tool_errors=lat.n_tool_errors,
            well_formed=any(p.well_formed for p in ep.parsed) and not parse_errors,
            n_parse_errors=len(parse_errors),
        )
        info = rubric.compute(outcome, where=f"task {ep.task.id}")
        info.update(episode_info(ep, lat, g, outcome, parse_errors))
        infos.append(info)
    return infos


def episode_info(ep: Episode, lat: Latent, g: Any, outcome: Outcome, errors: list[str]) -> dict:
    return {
        "task_id": ep.task.id,
        "family": getattr(ep.task, "family", None),
        "latent": lat.text,
        "latent/kind": lat.kind,
        "tools": [call.to_dict() for call in lat.calls],
        "tool/calls": outcome.n_tool_calls,
        "tool/errors": outcome.n_tool_errors,
        "tool/skipped": sum(c.output.status == "skipped" for c in lat.calls),
        "sandbox/exec_ms": 1e3 * sum(c.output.duration_s for c in lat.calls),
        "parse/errors": errors,
        "tokens/latent": outcome.latent_tokens,
        "tokens/continuation": g.baseline.n_tokens,
        "tokens/thinking": lat.n_thinking,
        "score/logp_with_latent": g.enriched.total,
        "score/logp_without_latent": g.baseline.total,
        "score/tokens": g.baseline.tokens,
        "score/token_gains": g.token_gains,
        "episode/turns": ep.turns,
        "episode/actions_sanitized": ep.actions_changed,
    }
