"""LatentEnv: a policy writes latent data before a text continues, and is paid in nats."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym

from latent_env.engine import MAX_ACTION_CHARS, MAX_OBSERVATION_CHARS, EpisodeEngine, Scorer
from latent_env.episode import Episode, text_space
from latent_env.latent import ToolBudget
from latent_env.prompt import PromptLike
from latent_env.rewards.rubric import Rubric
from latent_env.tasks import Task
from latent_env.tools.base import Tool

__all__ = ["MAX_ACTION_CHARS", "MAX_OBSERVATION_CHARS", "LatentEnv", "as_task"]
DEFAULT_TASKS = "synthetic-small"


class _EngineAttribute:
    """An attribute of the env that is its engine's (one copy of the settings, shared)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, env: Any, owner: type | None = None) -> Any:
        return self if env is None else getattr(env.engine, self.name)

    def __set__(self, env: Any, value: Any) -> None:
        setattr(env.engine, self.name, value)

class LatentEnv(gym.Env):
    """Write latent data that makes the true continuation of a text more likely.

    ## Description
    Each episode is a task: a text prefix X (the context) and its true continuation Y, hidden from
    the policy. The policy writes latent data L — Python to execute, arithmetic, a fitted
    trend, reasoning, or continuous ``<thinking>`` tokens. Tool blocks run (Python in an isolated
    sandbox worker), their outputs join L in the form ``<python>code</python><output>16</output>``,
    and the model scores Y after the enriched context c(X, L) = ``<|latent|>L<|latent|>X``.
    This is the founding "latent data" framework as an RL environment.

    ## Action Space
    ``Text(max_length=max_action_chars, min_length=0)`` over every BMP character. Grammar:
    ``<TAG>…</TAG>`` for each registered tool (``python``, ``calc``, ``predict``, plugins),
    ``<reason>…</reason>``, ``<thinking>``, ``<done/>``. Text outside blocks is kept in the
    transcript and ignored otherwise. Any string is accepted: malformed blocks become tool errors,
    characters outside the charset are replaced, over-long actions are cut. An action's tool
    blocks run in order within ``tool_budget`` (default 8 blocks, 6 s of tool time, none after a
    timeout); the rest are skipped (status "skipped", counted in ``info["tool/skipped"]``).
    Tag-like text in a tool output (``</output>``, ``<|latent|>``, ``<python>``) enters L and
    the transcript as ``&lt;…``, so every delimiter in L is one the environment wrote.

    ## Observation Space
    ``Text(max_length=65536, min_length=1)``: a short instruction naming the tool tags, then
    ``<text>X</text>`` (``prompt="founding"`` gives the founding document's longer prompt);
    in multi-turn mode, each turn's action with tool outputs appended.

    ## Rewards
    Paid once, when the episode ends: a weighted sum of terms (``rewards.Rubric``). Default:
    ``reward/loglik_gain`` = log p(Y | c(X, L)) − log p(Y | X) in nats (0 exactly for an empty L).
    Logged with weight 0 unless configured: ``reward/answer_hit`` (greedy continuation with L
    equals the answer), ``reward/answer_hit_without_latent``, ``reward/format``,
    ``reward/latent_cost`` (tokens of L), ``reward/tool_error``. Steps before the end pay 0.

    ## Starting State
    ``reset`` draws a task uniformly from the task source with ``self.np_random``, or takes
    ``options["task"]`` (a ``Task`` or a dict with ``id``, ``context``, ``continuation``).

    ## Episode End
    Termination: in ``single`` mode after the first action; in ``multi`` mode when an action
    contains ``<done/>``. Truncation: in ``multi`` mode after ``max_turns`` actions without
    ``<done/>``. Both score the episode. Stepping a finished episode returns the final
    observation, reward 0 and ``info["warning"]``.

    ## Arguments
    | argument | default | meaning |
    |---|---|---|
    | ``tasks`` | ``"synthetic-small"`` | suite name, ``.jsonl`` path, or a list of tasks |
    | ``split`` | ``"train"`` | split of a named suite |
    | ``model`` | ``"default"`` | scorer model spec, loaded on first use (see ``load_model``) |
    | ``scorer`` | ``None`` | a ready ``LogLikScorer`` (shares a model between envs) |
    | ``tools`` | ``None`` | tool names (entry points) or ``{tag: Tool}``; None = ``DEFAULT_TOOLS`` |
    | ``mode`` | ``"single"`` | ``"single"`` (one action) or ``"multi"`` (tool loop) |
    | ``max_turns`` | ``4`` | turns before truncation in multi mode |
    | ``reward`` | ``None`` | ``Rubric``, ``{term: weight}`` or ``"term=w,term=w"`` |
    | ``combiner`` | ``"prefix"`` | c(X, L) form, see ``latent_env.context`` |
    | ``prompt`` | ``"compact"`` | ``"compact"``, ``"founding"`` (the founding document's \
    example prompt), a format string with ``{context}``, ``{tools}``, ``{tags}``, or a callable |
    | ``max_action_chars`` | ``16384`` | longer actions are cut |
    | ``tool_budget`` | ``ToolBudget()`` | per-action tool limits, see ``latent_env.latent`` |
    | ``engine`` | ``None`` | a ready ``EpisodeEngine`` to run on (envs sharing one); its \
    tools, scorer, reward, mode, prompt and limits replace those arguments |

    Episodes run on ``self.engine`` (``latent_env.engine.EpisodeEngine``); ``tools``,
    ``scorer``, ``rubric``, ``mode``, ``max_turns``, ``prompt``, ``max_action_chars`` and
    ``tool_budget`` are the engine's.

    ## Version History
    * v0: initial release.

    ## Example
    >>> import gymnasium as gym, latent_env
    >>> env = gym.make("latent_env/LatentEnv-v0", tasks="founding", model="tiny-random")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(
    ...     "<python>print((15 + 16 + 17) // 3)</python>")
    >>> terminated, info["latent"]
    (True, '<python>print((15 + 16 + 17) // 3)</python><output>16</output>')
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    tools = _EngineAttribute()
    scorer = _EngineAttribute()
    rubric = _EngineAttribute()
    mode = _EngineAttribute()
    max_turns = _EngineAttribute()
    prompt = _EngineAttribute()
    max_action_chars = _EngineAttribute()
    tool_budget = _EngineAttribute()

    def __init__(
        self,
        tasks: str | Sequence[Any] | None = DEFAULT_TASKS,
        split: str = "train",
        model: str = "default",
        scorer: Scorer | None = None,
        tools: Sequence[str] | Mapping[str, Tool] | None = None,
        mode: str = "single",
        max_turns: int = 4,
        reward: Rubric | Mapping[str, float] | str | None = None,
        combiner: str | Callable[[str, str], str] = "prefix",
        prompt: PromptLike | None = None,
        max_action_chars: int = MAX_ACTION_CHARS,
        render_mode: str | None = None,
        tool_budget: ToolBudget | None = None,
        *,
        engine: EpisodeEngine | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.model_spec, self.combiner = model, combiner
        if engine is None:
            load = scorer if scorer is not None else self._load_scorer
            engine = EpisodeEngine(
                resolve_tools(tools), Rubric.from_spec(reward), scorer=load, prompt=prompt,
                mode=mode, max_turns=max_turns, max_action_chars=max_action_chars,
                tool_budget=tool_budget,
            )
        self.engine = engine
        self.tasks = resolve_tasks(tasks, split)
        self.render_mode = render_mode
        self.action_space = text_space(self.engine.max_action_chars, min_length=0)
        self.observation_space = text_space(MAX_OBSERVATION_CHARS, min_length=1)
        self.episode: Episode | None = None

    # ---- Gymnasium API ------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.episode = self.new_episode(self.draw_task(options))
        return self.engine.observe(self.episode), {
            "task_id": self.episode.task.id, "family": getattr(self.episode.task, "family", None)}

    def step(self, action: Any):
        if self.episode is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self.episode.finished:
            warning = "episode already ended; call reset()"
            return (self.engine.observe(self.episode), 0.0, True, False,
                    {**self.episode.info, "warning": warning})
        turn = self.engine.act([self.episode], [action])[0]
        if not (turn.terminated or turn.truncated):
            return turn.observation, 0.0, False, False, {"turn": self.episode.turns}
        info = self.engine.finish([self.episode])[0]
        return turn.observation, float(info["reward/total"]), turn.terminated, turn.truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.episode is None:
            return None
        reward = self.episode.info.get("reward/total")
        tail = f"\n[reward {reward:+.3f}]" if reward is not None else ""
        return self.episode.observation + tail

    def close(self) -> None:
        self.engine.close()

    # ---- pieces the vector env reuses ---------------------------------------------------------

    def draw_task(self, options: dict[str, Any] | None) -> Task:
        if options and options.get("task") is not None:
            return as_task(options["task"])
        if not self.tasks:
            raise ValueError("no tasks to draw from: pass tasks=… or options={'task': …}")
        return self.tasks[int(self.np_random.integers(len(self.tasks)))]

    def new_episode(self, task: Task) -> Episode:
        """A fresh episode of ``task`` (its ``prompt`` is the first observation)."""
        return self.engine.start([task])[0]

    def _load_scorer(self) -> Scorer:
        from latent_env.models import load_model
        from latent_env.scoring import LogLikScorer

        model, tokenizer = load_model(self.model_spec, device="auto")
        return LogLikScorer(model, tokenizer, combiner=self.combiner)


def as_task(value: Any) -> Task:
    if isinstance(value, Task):
        return value
    if isinstance(value, Mapping):
        return Task.from_dict(dict(value), where="options['task']")
    raise TypeError(f"options['task'] must be a Task or a dict, got {type(value).__name__}")


def resolve_tasks(tasks: str | Sequence[Any] | None, split: str) -> list[Task]:
    if tasks is None:
        return []
    if isinstance(tasks, str):
        from latent_env.tasks import load_tasks

        return list(load_tasks(tasks, split=split))
    return [as_task(t) for t in tasks]


def resolve_tools(tools: Sequence[str] | Mapping[str, Tool] | None) -> dict[str, Tool]:
    if isinstance(tools, Mapping):
        return dict(tools)
    from latent_env.tools.registry import load_tools

    return load_tools(tools)
