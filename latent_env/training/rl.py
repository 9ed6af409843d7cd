"""The RL stage: TRL's GRPO, RLOO or PPO trainers, paid by the environment's reward.

GRPO and RLOO take reward functions: :class:`latent_env.training.reward.EnvReward` runs each
completion through the environment (tool blocks execute in the sandbox, the latent is scored by
the frozen reward model, or with ``--predictor self`` by the policy's own live weights:
:mod:`latent_env.training.self_prediction`). Weight-0 functions log the gain, answer accuracy and tool errors from
the same episodes without scoring them again. Extra loss terms (:mod:`latent_env.training.loss_terms`) add the
supervised anchor and the predictor loss to every step. With ``turns`` > 1, GRPO's completions are
multi-turn episodes played by :class:`latent_env.training.rollout.MultiTurnRollout` (TRL's
``rollout_func``), and the reward scores each played episode whole. PPO needs a reward *model*;
:mod:`latent_env.training.ppo` wraps the environment in one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from latent_env.engine import EpisodeEngine
from latent_env.env import LatentEnv
from latent_env.training.anchor import TraceBatches
from latent_env.training.checkpoints import train_and_save
from latent_env.training.config import RLArguments
from latent_env.training.cpu_head import plain_head_on_cpu
from latent_env.training.loss_terms import with_loss_terms
from latent_env.training.reward import EnvReward
from latent_env.training.step_timer import step_times


class LoggedTerm:
    """A weight-0 reward function that reports a term of the episodes ``source`` just scored."""

    def __init__(self, source: EnvReward, term: str) -> None:
        self.source, self.term = source, term
        self.__name__ = term

    def __call__(self, prompts: Any, completions: Any, **kwargs: Any) -> list[float]:
        infos = self.source.last_infos
        if len(infos) != len(completions):
            raise RuntimeError("LoggedTerm must come after its EnvReward in reward_funcs")
        return [float(info[f"reward/{self.term}"]) for info in infos]


def reward_functions(source: LatentEnv | EpisodeEngine,
                     tokenizer: Any = None) -> tuple[list[Any], list[float]]:
    """The paid reward (decoding completions with the policy's ``tokenizer`` when given, so
    thoughts reach the scorer) and weight-0 logged terms."""
    paid = EnvReward(source, term="total", tokenizer=tokenizer)
    paid.__name__ = "env_reward"
    logged = [LoggedTerm(paid, t) for t in ("loglik_gain", "answer_hit", "tool_error")]
    return [paid, *logged], [1.0] + [0.0] * len(logged)


def run_online_rl(algo: str, model: Any, tokenizer: Any, env: LatentEnv, records: list[dict],
                  config: Any, out_dir: Path, resume: bool,
                  anchor: TraceBatches | None = None,
                  peft_config: Any = None,
                  save_every_minutes: float = 0.0, turns: int = 1,
                  rl: RLArguments | None = None) -> tuple[Path, dict]:
    """GRPO or RLOO on ``records`` (prompt + task JSON); returns the final model dir, metrics.
    With ``anchor``, every step also pays its supervised loss (:mod:`latent_env.training.anchor`);
    with ``peft_config``, only LoRA adapters train (:mod:`latent_env.training.lora`); with
    ``turns`` > 1 (GRPO), episodes are multi-turn (:mod:`latent_env.training.rollout`); ``rl``
    picks the predictor and the predictor loss (:class:`RLArguments`).
    Checkpoints follow ``config``'s save settings and ``save_every_minutes``."""
    from datasets import Dataset

    rl = rl or RLArguments()
    # Self-prediction scores on an engine of its own: the shared env keeps the frozen scorer.
    engine = env.engine if rl.predictor == "frozen" else env.engine.derive(scorer=None)
    funcs, weights = reward_functions(engine, tokenizer)
    config.reward_weights = weights
    extra = {"rollout_func": multi_turn_rollout(engine, records, turns)} if turns > 1 else {}
    trainer = with_loss_terms(_trainer_class(algo))(
        model=model,
        reward_funcs=funcs,
        args=config,
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
        peft_config=peft_config,
        **extra,
    )
    if rl.predictor == "self":
        from latent_env.env import as_task
        from latent_env.training.self_prediction import attach_self_predictor

        attach_self_predictor(trainer, engine, tokenizer, rl, env.combiner,
                              [as_task(task_of(r)) for r in records])
    trainer.loss_terms = loss_terms(anchor, funcs[0], tokenizer, rl, config)
    plain_head_on_cpu(trainer)
    _, final = train_and_save(trainer, tokenizer, out_dir, resume, save_every_minutes)
    return final, {**summarise_log(trainer.state.log_history), **step_times(trainer)}


def loss_terms(anchor: TraceBatches | None, paid: EnvReward, tokenizer: Any, rl: RLArguments,
               config: Any) -> list[Any]:
    """The extra loss terms of every RL step: the anchor, the predictor loss (if weighted)."""
    terms: list[Any] = [anchor] if anchor is not None else []
    if rl.predictor_loss:
        from latent_env.training.predictor_loss import PredictionBatches

        max_length = getattr(paid.engine.scorer, "max_length", None)
        terms.append(PredictionBatches(
            paid, tokenizer, rl.predictor_loss_weight, rl.predictor_plain_weight,
            seed=int(getattr(config, "seed", 0)), **({"max_length": max_length}
                                                     if max_length else {})))
    return terms


def multi_turn_rollout(source: LatentEnv | EpisodeEngine, records: list[dict],
                       turns: int) -> Any:
    """GRPO's ``rollout_func`` for ``turns``-action episodes on the tasks of ``records``, played
    on the engine of ``source`` (an env or an engine)."""
    from latent_env.env import as_task
    from latent_env.training.rollout import MultiTurnRollout, multi_turn_engine

    tasks = [as_task(task_of(record)) for record in records]
    return MultiTurnRollout(multi_turn_engine(getattr(source, "engine", source), turns), tasks)


def summarise_log(history: list[dict]) -> dict[str, Any]:
    """First and last logged values of the reward metrics, and the step count."""
    keys = [k for k in ("reward", "rewards/env_reward/mean", "rewards/loglik_gain/mean",
                        "rewards/answer_hit/mean", "rewards/tool_error/mean", "anchor/nll",
                        "predictor/nll", "predictor/plain_nll",
                        "completions/mean_length")
            if any(k in h for h in history)]
    rows = [h for h in history if any(k in h for k in keys)]
    out: dict[str, Any] = {"logged_steps": len(rows)}
    if rows:
        out["first"] = {k: rows[0].get(k) for k in keys}
        out["last"] = {k: rows[-1].get(k) for k in keys}
    out["steps"] = max((h.get("step", 0) for h in history), default=0)
    return out


def _trainer_class(algo: str) -> Any:
    if algo == "grpo":
        from trl import GRPOTrainer

        return GRPOTrainer
    if algo == "rloo":
        from trl import RLOOTrainer

        return RLOOTrainer
    raise ValueError(f"online RL algo must be grpo or rloo, got {algo!r}")


def task_of(record: dict[str, Any]) -> dict[str, Any]:
    return json.loads(record["task"])
