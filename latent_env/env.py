"""LatentEnv: a policy writes latent data before a text continues, and is paid in nats."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym

from latent_env.episode import (
    Episode,
    fit_observation,
    run_turns,
    sanitize_text,
    score_episodes,
    text_space,
)
from latent_env.latent import ToolBudget
from latent_env.prompt import DEFAULT_PROMPT, PromptLike, prompt_for
from latent_env.rewards.rubric import Rubric
from latent_env.tools.base import Tool

MAX_ACTION_CHARS = 16_384
MAX_OBSERVATION_CHARS = 65_536
DEFAULT_TASKS = "synthetic-small"

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

    def __init__(
        self,
        tasks: str | Sequence[Any] | None = DEFAULT_TASKS,
        split: str = "train",
        model: str = "default",
        scorer: Any = None,
        tools: Sequence[str] | Mapping[str, Tool] | None = None,
        mode: str = "single",
        max_turns: int = 4,
        reward: Rubric | Mapping[str, float] | str | None = None,
        combiner: str | Callable[[str, str], str] = "prefix",
        prompt: PromptLike | None = None,
        max_action_chars: int = MAX_ACTION_CHARS,
        render_mode: str | None = None,
        tool_budget: ToolBudget | None = None,
    ) -> None:
        if mode not in ("single", "multi"):
            raise ValueError(f"mode must be 'single' or 'multi', got {mode!r}")
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.tasks = resolve_tasks(tasks, split)
        self.tools = resolve_tools(tools)
        self.mode, self.max_turns = mode, max_turns
        self.rubric = Rubric.from_spec(reward)
        self.model_spec, self.combiner = model, combiner
        self._scorer = scorer
        self.prompt = prompt or DEFAULT_PROMPT
        self.max_action_chars = max_action_chars
        self.tool_budget = tool_budget or ToolBudget()
        self.render_mode = render_mode
        self.action_space = text_space(max_action_chars, min_length=0)
        self.observation_space = text_space(MAX_OBSERVATION_CHARS, min_length=1)
        self.episode: Episode | None = None
        self._last_info: dict[str, Any] = {}

    # ---- Gymnasium API ------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.episode = self.new_episode(self.draw_task(options))
        return self._observation(), {"task_id": self.episode.task.id,
                                     "family": getattr(self.episode.task, "family", None)}

    def step(self, action: Any):
        if self.episode is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self.episode.finished:
            warning = "episode already ended; call reset()"
            return self._observation(), 0.0, True, False, {**self._last_info, "warning": warning}
        action = self.prepare_action(self.episode, action)
        run_turns([self.episode], [action], self.tools, self.tool_budget)
        terminated, truncated = self.end_flags(self.episode)
        if not (terminated or truncated):
            return self._observation(), 0.0, False, False, {"turn": self.episode.turns}
        info = self.finish([self.episode])[0]
        return self._observation(), float(info["reward/total"]), terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.episode is None:
            return None
        reward = self._last_info.get("reward/total")
        tail = f"\n[reward {reward:+.3f}]" if reward is not None else ""
        return self.episode.observation + tail

    def close(self) -> None:
        for tool in self.tools.values():
            tool.close()

    # ---- pieces the vector env reuses ---------------------------------------------------------

    @property
    def scorer(self) -> Any:
        if self._scorer is None:
            from latent_env.models import load_model
            from latent_env.scoring import LogLikScorer

            model, tokenizer = load_model(self.model_spec)
            self._scorer = LogLikScorer(model, tokenizer, combiner=self.combiner)
        return self._scorer

    def draw_task(self, options: dict[str, Any] | None) -> Any:
        if options and options.get("task") is not None:
            return as_task(options["task"])
        if not self.tasks:
            raise ValueError("no tasks to draw from: pass tasks=… or options={'task': …}")
        return self.tasks[int(self.np_random.integers(len(self.tasks)))]

    def new_episode(self, task: Any) -> Episode:
        return Episode(task=task, prompt=prompt_for(self.prompt, task, self.tools))

    def prepare_action(self, episode: Episode, action: Any) -> str:
        text, changed = sanitize_text(action, self.max_action_chars)
        episode.actions_changed += int(changed)
        return text

    def end_flags(self, episode: Episode) -> tuple[bool, bool]:
        done = self.mode == "single" or episode.parsed[-1].done
        truncated = not done and episode.turns >= self.max_turns
        return done, truncated

    def finish(self, episodes: Sequence[Episode]) -> list[dict[str, Any]]:
        infos = score_episodes(episodes, self.scorer, self.rubric)
        for episode in episodes:
            episode.finished = True
        if episodes and episodes[-1] is self.episode:
            self._last_info = infos[-1]
        return infos

    def _observation(self) -> str:
        assert self.episode is not None
        return fit_observation(self.episode.observation, MAX_OBSERVATION_CHARS)


def as_task(value: Any) -> Any:
    from latent_env.tasks import Task

    if isinstance(value, Task):
        return value
    if isinstance(value, Mapping):
        return Task.from_dict(dict(value), where="options['task']")
    raise TypeError(f"options['task'] must be a Task or a dict, got {type(value).__name__}")


def resolve_tasks(tasks: str | Sequence[Any] | None, split: str) -> list[Any]:
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
