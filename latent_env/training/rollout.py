"""Multi-turn rollouts: each tool block runs as soon as the policy closes it, and the policy reads
its output before it goes on.

An episode's completion is a sequence of tokens of two kinds:

* the policy's own, sampled one chunk at a time. A chunk ends at a tool block's closing tag
  (``</python>``, ``</calc>``, … for the engine's tools), at ``<done/>``, at the end-of-sequence
  token, or when the completion has used its token budget;
* the environment's: after a chunk that closed a tool block, the block's output as
  :func:`latent_env.episode.render_feedback` writes it (``<output>…</output>`` and a newline),
  tokenized on its own and appended.

Each chunk is one action of an :class:`~latent_env.engine.EpisodeEngine` in ``multi`` mode, so the
tools run once, in the sandbox, batched across episodes, and the episode's latent is the engine's.
The episode ends at end-of-sequence, ``<done/>``, ``max_turns`` actions, or when the budget has no
room for the next output and at least one more token. ``env_mask`` is 1 on the policy's tokens
and 0 on the environment's, so the loss never trains the policy to write tool outputs.

:func:`play` is the loop over a Hugging Face model; :class:`MultiTurnRollout` adapts it to TRL's
``GRPOTrainer(rollout_func=…)``, and :class:`~latent_env.training.reward.EnvReward` pays each
episode the engine's reward for the whole of it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from latent_env.actions import DONE_TOKEN
from latent_env.engine import EpisodeEngine
from latent_env.episode import Episode
from latent_env.stopping import StopAtTexts, criteria
from latent_env.tasks import Task
from latent_env.tokens import decode_action


@dataclass
class Rollout:
    """One played episode and the tokens it produced after the prompt."""

    episode: Episode
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)  # 1: the policy's token, 0: the env's
    ended: str = ""  # eos | done | max_turns | length

    def add(self, ids: Sequence[int], by_policy: bool) -> None:
        self.completion_ids.extend(ids)
        self.env_mask.extend([int(by_policy)] * len(ids))


def multi_turn_engine(engine: EpisodeEngine, max_turns: int) -> EpisodeEngine:
    """An engine like ``engine`` (same tools, rubric, prompt, limits and scorer) in multi mode."""
    return engine.derive(mode="multi", max_turns=max_turns)


def stop_texts(engine: EpisodeEngine) -> tuple[str, ...]:
    """Where a chunk ends: each tool's closing tag, and ``<done/>``."""
    return (*(f"</{tag}>" for tag in engine.tools), DONE_TOKEN)


def play(model: Any, tokenizer: Any, engine: EpisodeEngine, episodes: Sequence[Episode],
         prompt_ids: Sequence[Sequence[int]], generation_config: Any,
         max_new_tokens: int) -> list[Rollout]:
    """Play ``episodes`` (fresh, from ``engine.start``) to their end; ``prompt_ids[i]`` is what
    the model reads for episode ``i``, and each completion has at most ``max_new_tokens``.
    ``generation_config`` sets the sampling (its length and stopping are set here)."""
    if engine.mode != "multi":
        raise ValueError("play() needs an engine in multi mode (see multi_turn_engine)")
    eos = _eos_ids(generation_config, tokenizer)
    rollouts = [Rollout(ep) for ep in episodes]
    live = list(range(len(rollouts)))
    while live:
        budgets = [max_new_tokens - len(rollouts[i].completion_ids) for i in live]
        contexts = [list(prompt_ids[i]) + rollouts[i].completion_ids for i in live]
        chunks = _generate(model, tokenizer, contexts, generation_config, max(budgets),
                           stop_texts(engine), eos)
        chunks = [chunk[:budget] for chunk, budget in zip(chunks, budgets)]
        texts = [decode_action(tokenizer, chunk) for chunk in chunks]
        # A chunk of nothing but end-of-sequence after a turn is no action of its own.
        acting = [k for k, i in enumerate(live) if texts[k].strip() or not rollouts[i].episode.turns]
        turns = dict(zip(acting, engine.act([rollouts[live[k]].episode for k in acting],
                                            [texts[k] for k in acting])))
        still = []
        for k, i in enumerate(live):
            rollout, chunk = rollouts[i], chunks[k]
            rollout.add(chunk, by_policy=True)
            turn = turns.get(k)
            rollout.ended = _end(chunk, turn, eos, budgets[k])
            if not rollout.ended:
                ids = tokenizer(turn.feedback, add_special_tokens=False)["input_ids"]
                if len(rollout.completion_ids) + len(ids) < max_new_tokens:
                    rollout.add(ids, by_policy=False)
                    still.append(i)
                else:  # no room for the output and one more token
                    rollout.ended = "length"
        live = still
    return rollouts


def _end(chunk: list[int], turn: Any, eos: set[int], budget: int) -> str:
    """Why the episode ends after this chunk, or ``""`` when the policy goes on."""
    if chunk and chunk[-1] in eos:
        return "eos"
    if turn is not None and turn.terminated:
        return "done"
    if turn is not None and turn.truncated:
        return "max_turns"
    if turn is None or len(chunk) >= budget:  # the budget ran out before a stop text
        return "length"
    return ""


def _eos_ids(generation_config: Any, tokenizer: Any) -> set[int]:
    ids = generation_config.eos_token_id
    ids = tokenizer.eos_token_id if ids is None else ids
    return set(ids) if isinstance(ids, (list, tuple)) else {ids}


def _generate(model: Any, tokenizer: Any, contexts: list[list[int]], generation_config: Any,
              max_new_tokens: int, stops: tuple[str, ...], eos: set[int]) -> list[list[int]]:
    """Sample one chunk per context (left-padded, batched); each row's tokens up to and including
    its end-of-sequence token or the token that completed a stop text."""
    import torch

    pad = generation_config.pad_token_id
    pad = pad if pad is not None else next(iter(eos))
    width = max(len(c) for c in contexts)
    ids = torch.tensor([[pad] * (width - len(c)) + c for c in contexts], device=model.device)
    mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts],
                        device=model.device)
    config = copy.deepcopy(generation_config)
    config.max_new_tokens, config.min_new_tokens = max_new_tokens, None
    config.return_dict_in_generate = False
    stop = StopAtTexts(tokenizer, stops, width)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config,
                             stopping_criteria=criteria(stop))
    rows = []
    for r, row in enumerate(out[:, width:].tolist()):
        end = next((j + 1 for j, token in enumerate(row) if token in eos), len(row))
        rows.append(row[: min(end, stop.ended_at.get(r, end))])
    return rows


class MultiTurnRollout:
    """TRL's ``rollout_func`` for GRPO: plays each prompt as a multi-turn episode (see the module
    docstring) with the trainer's model and sampling settings.

    Args:
        engine: an engine in multi mode (:func:`multi_turn_engine`).
        tasks: the tasks the dataset's prompts were rendered from: a prompt is matched to its
            task by text. The reward function binds each episode to its row's ``task`` column
            before scoring, so two tasks with the same prompt are scored each on its own.

    Returns, per prompt, TRL's ``prompt_ids``, ``completion_ids`` and ``logprobs`` (``None``:
    TRL recomputes them), ``env_mask``, and ``episode`` (the played
    :class:`~latent_env.episode.Episode`, which TRL hands to the reward functions as a column).
    """

    def __init__(self, engine: EpisodeEngine, tasks: Sequence[Task]) -> None:
        if engine.mode != "multi":
            raise ValueError("MultiTurnRollout needs an engine in multi mode")
        self.engine = engine
        self.tasks: dict[str, Task] = {}
        for episode in engine.start(tasks):
            self.tasks.setdefault(episode.prompt, episode.task)
        self.__name__ = "multi_turn_rollout"
        self.last: list[Rollout] = []

    def __call__(self, prompts: Sequence[Any], trainer: Any) -> dict[str, Any]:
        from trl.models.utils import unwrap_model_for_generation

        episodes = self.engine.start([self._task(prompt) for prompt in prompts])
        tokenizer = trainer.processing_class
        prompt_ids = [prompt_token_ids(tokenizer, prompt, trainer) for prompt in prompts]
        with unwrap_model_for_generation(
            trainer.model_wrapped, trainer.accelerator, **unwrap_options(trainer)
        ) as model:
            self.last = play(model, tokenizer, self.engine, episodes, prompt_ids,
                             trainer.generation_config, trainer.max_completion_length)
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": [r.completion_ids for r in self.last],
            "logprobs": None,
            "env_mask": [r.env_mask for r in self.last],
            "episode": [r.episode for r in self.last],
        }

    def _task(self, prompt: Any) -> Task:
        text = prompt_text(prompt)
        if text not in self.tasks:
            raise KeyError("MultiTurnRollout got a prompt that none of its tasks renders to; "
                           "build it with the tasks of the RL dataset")
        return self.tasks[text]


def unwrap_options(trainer: Any) -> dict[str, Any]:
    """The options GRPO's own generation unwraps its model with (trl 1.12 has one fewer)."""
    import inspect

    from trl.models.utils import unwrap_model_for_generation

    options = {"gather_deepspeed3_params": trainer.args.ds3_gather_for_generation,
               "generation_kwargs": getattr(trainer, "generation_kwargs", None),
               "gradient_checkpointing_kwargs": trainer.args.gradient_checkpointing_kwargs}
    accepted = inspect.signature(unwrap_model_for_generation).parameters
    return {k: v for k, v in options.items() if k in accepted}


def prompt_text(prompt: Any) -> str:
    """The user turn's text of a conversational prompt (or the prompt itself)."""
    if isinstance(prompt, str):
        return prompt
    return "".join(m["content"] for m in prompt if m.get("role") == "user")


def prompt_token_ids(tokenizer: Any, prompt: Any, trainer: Any = None) -> list[int]:
    """The prompt's tokens as TRL's GRPO reads them: the chat template with the generation
    prompt (and the trainer's chat template options) for a conversation, the text for a string."""
    if isinstance(prompt, str):
        return tokenizer(prompt, add_special_tokens=False)["input_ids"]
    options: Mapping[str, Any] = getattr(trainer, "chat_template_kwargs", None) or {}
    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                        chat_template=getattr(trainer, "chat_template", None),
                                        **options)
    return list(ids["input_ids"] if isinstance(ids, Mapping) else ids)
