"""The episode engine: the one place that turns tasks and actions into observations and rewards.

Every consumer of episodes — the single env (``env.py``), the vector env (``vector.py``), the TRL
reward (``training/reward.py``) and, through the bench runner, every benchmark — goes through
:class:`EpisodeEngine`'s public API:

* :meth:`EpisodeEngine.start` makes one :class:`~latent_env.episode.Episode` per task; its
  ``observation`` is what the policy reads first.
* :meth:`EpisodeEngine.act` takes one action per episode: sanitises it (counted in
  ``info["episode/actions_sanitized"]``), parses it, runs every tool block of every episode
  batched per tool (concurrently in the sandbox pool for ``<python>``), and returns a
  :class:`Turn` per episode. A tool that raises, or returns the wrong number of outputs, becomes
  an error output of its blocks (``Tool.safe_run_batch``), never a crashed episode.
* :meth:`EpisodeEngine.finish` scores the given episodes in one scorer call and turns the gains
  into the rubric's reward terms.
* :meth:`EpisodeEngine.run` is start + act + finish: single-turn scoring of a batch.
* :meth:`EpisodeEngine.latents` runs actions that have no task (the latent alone).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from latent_env.actions import ParsedAction
from latent_env.episode import (
    Episode,
    fit_observation,
    render_feedback,
    render_turn,
    run_actions,
    sanitize_text,
)
from latent_env.latent import Latent, ToolBudget, assemble_latent
from latent_env.prompt import DEFAULT_PROMPT, PromptLike, prompt_for
from latent_env.rewards.rubric import Rubric
from latent_env.rewards.terms import Outcome
from latent_env.scoring import GainResult
from latent_env.tasks import Task
from latent_env.tools.base import Tool, ToolOutput

MAX_ACTION_CHARS = 16_384
MAX_OBSERVATION_CHARS = 65_536
MODES = ("single", "multi")


@runtime_checkable
class Scorer(Protocol):
    """What episodes need from a scorer (``latent_env.scoring.LogLikScorer`` is one)."""

    tokenizer: Any

    def gain(
        self, contexts: Sequence[str], latents: Sequence[str], continuations: Sequence[str]
    ) -> list[GainResult]:
        """log p(Y | c(X, L)) − log p(Y | X) per item."""

    def prefix_tokens(self, continuation: str, prefix: str) -> int:
        """How many leading tokens of ``continuation`` spell ``prefix``."""

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text``."""


@dataclass(frozen=True)
class Turn:
    """What one action did to its episode."""

    outputs: tuple[ToolOutput | None, ...]  # per parsed segment; None where nothing ran
    observation: str  # the episode's next observation, as the policy reads it
    terminated: bool  # single mode, or the action wrote ``<done/>``
    truncated: bool  # multi mode, ``max_turns`` actions without ``<done/>``
    feedback: str = ""  # the tool outputs shown after the action (``render_feedback``)


class EpisodeEngine:
    """Runs episodes on ``tools``, scores them with ``scorer`` and pays them by ``rubric``.

    Args:
        tools: ``{tag: Tool}``.
        rubric: the reward terms and weights; ``None`` = the default (``loglik_gain``).
        scorer: a :class:`Scorer`, or a zero-argument callable that loads one on first use
            (so an engine that never scores never loads a model); ``None`` = no scoring.
        prompt: how a task becomes the first observation (see ``latent_env.prompt``).
        mode: ``"single"`` (an episode is one action) or ``"multi"`` (a tool loop ended by
            ``<done/>`` or ``max_turns``).
        max_turns: actions before truncation in multi mode.
        max_action_chars: longer actions are cut.
        tool_budget: per-action tool limits.
    """

    def __init__(
        self,
        tools: Mapping[str, Tool],
        rubric: Rubric | None = None,
        *,
        scorer: Scorer | Callable[[], Scorer] | None = None,
        prompt: PromptLike | None = None,
        mode: str = "single",
        max_turns: int = 4,
        max_action_chars: int = MAX_ACTION_CHARS,
        tool_budget: ToolBudget | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be 'single' or 'multi', got {mode!r}")
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns}")
        self.tools = dict(tools)
        self.rubric = rubric if rubric is not None else Rubric.from_spec(None)
        self.prompt: PromptLike = prompt or DEFAULT_PROMPT
        self.mode, self.max_turns = mode, max_turns
        self.max_action_chars = max_action_chars
        self.tool_budget = tool_budget or ToolBudget()
        self._scorer: Scorer | None = None
        self._load_scorer: Callable[[], Scorer] | None = None
        self.scorer = scorer  # type: ignore[assignment]

    @property
    def scorer(self) -> Scorer:
        """The scorer, loaded on first use if a loader was given."""
        if self._scorer is None:
            if self._load_scorer is None:
                raise RuntimeError("this EpisodeEngine has no scorer: pass scorer=…")
            self._scorer = self._load_scorer()
        return self._scorer

    @scorer.setter
    def scorer(self, value: Scorer | Callable[[], Scorer] | None) -> None:
        # A scorer object has ``gain``; anything else callable is a loader.
        if value is None or hasattr(value, "gain"):
            self._scorer, self._load_scorer = value, None  # type: ignore[assignment]
        else:
            self._scorer, self._load_scorer = None, value

    def derive(self, **changes: Any) -> EpisodeEngine:
        """An engine with the same tools, rubric, prompt, mode and limits as this one, with
        ``changes`` (any ``__init__`` argument) applied. Unless ``scorer`` is among them, both
        use one scorer: this engine's, loaded once by whichever needs it first."""
        shared: Any = self._scorer
        if shared is None and self._load_scorer is not None:
            shared = lambda: self.scorer  # noqa: E731
        settings: dict[str, Any] = {
            "rubric": self.rubric, "prompt": self.prompt, "mode": self.mode,
            "max_turns": self.max_turns, "max_action_chars": self.max_action_chars,
            "tool_budget": self.tool_budget, "scorer": shared}
        settings.update(changes)
        return EpisodeEngine(settings.pop("tools", self.tools), **settings)

    # ---- the episode API ----------------------------------------------------------------------

    def start(self, tasks: Sequence[Task]) -> list[Episode]:
        """One fresh episode per task; ``episode.observation`` is the rendered prompt."""
        return [Episode(task=task, prompt=prompt_for(self.prompt, task, self.tools))
                for task in tasks]

    def observe(self, episode: Episode) -> str:
        """The episode's observation cut to the observation space (its end is kept)."""
        return fit_observation(episode.observation, MAX_OBSERVATION_CHARS)

    def act(self, episodes: Sequence[Episode], actions: Sequence[Any]) -> list[Turn]:
        """Take one action in each episode (see the module docstring); finished episodes
        cannot act."""
        if len(episodes) != len(actions):
            raise ValueError(f"act() got {len(episodes)} episodes but {len(actions)} actions")
        for episode in episodes:
            if episode.finished:
                raise ValueError(f"episode of task {episode.task.id} has finished; start anew")
        texts = [self._sanitize(ep, action) for ep, action in zip(episodes, actions)]
        turns = []
        for ep, text, (parsed, outputs) in zip(
            episodes, texts, run_actions(texts, self.tools, self.tool_budget)
        ):
            ep.parsed.append(parsed)
            ep.latents.append(assemble_latent(parsed, outputs))
            ep.transcript += render_turn(text, parsed, outputs)
            terminated, truncated = self._end_flags(ep, parsed)
            turns.append(Turn(tuple(outputs), self.observe(ep), terminated, truncated,
                              render_feedback(outputs)))
        return turns

    def latents(self, actions: Sequence[Any]) -> list[Latent]:
        """The latent each action writes as a whole episode of its own, with no task to score
        (``latent-env complete``, ``score --run``): sanitised, tools run as :meth:`act` runs
        them."""
        texts = [sanitize_text(action, self.max_action_chars)[0] for action in actions]
        return [assemble_latent(parsed, outputs)
                for parsed, outputs in run_actions(texts, self.tools, self.tool_budget)]

    def finish(self, episodes: Sequence[Episode]) -> list[dict[str, Any]]:
        """Score ``episodes`` in one scorer call; returns each one's info dict (reward terms
        first) and marks them finished (``episode.info`` keeps it)."""
        infos = score_episodes(episodes, self.scorer, self.rubric) if episodes else []
        for episode, info in zip(episodes, infos):
            episode.finished, episode.info = True, info
        return infos

    def run(self, tasks: Sequence[Task], actions: Sequence[Any]) -> list[dict[str, Any]]:
        """Single-turn scoring: each action is its task's whole episode."""
        episodes = self.start(tasks)
        self.act(episodes, actions)
        return self.finish(episodes)

    def close(self) -> None:
        for tool in self.tools.values():
            tool.close()

    def _sanitize(self, episode: Episode, action: Any) -> str:
        text, changed = sanitize_text(action, self.max_action_chars)
        episode.actions_changed += int(changed)
        return text

    def _end_flags(self, episode: Episode, last: ParsedAction) -> tuple[bool, bool]:
        done = self.mode == "single" or last.done
        return done, not done and episode.turns >= self.max_turns


def score_episodes(
    episodes: Sequence[Episode], scorer: Scorer, rubric: Rubric
) -> list[dict[str, Any]]:
    """Score episodes in one batched ``gain`` call; returns each episode's info dict."""
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


def episode_info(
    ep: Episode, lat: Latent, g: GainResult, outcome: Outcome, errors: list[str]
) -> dict[str, Any]:
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
