"""``--predictor self`` in a real GRPO run: the reward is the live weights' log-prob, the EMA
teacher follows the steps, the predictor loss is paid, the shared env keeps its frozen scorer."""

from __future__ import annotations

import copy

import pytest
import torch

from latent_env.context import get_combiner
from latent_env.env import LatentEnv
from latent_env.scoring import LogLikScorer
from latent_env.training.config import RLArguments
from latent_env.training.data import rl_records
from latent_env.training.reward import EnvReward
from latent_env.training.rollout import prompt_token_ids
from tests.test_env import TASKS
from tests.test_predictor import independent_logp
from tests.test_training_rollout import APPLES, EGGS, scripted

DECAY = 0.5


def with_weights(model, state):
    twin = copy.deepcopy(model)
    twin.load_state_dict(state)
    return twin


@pytest.fixture
def run(tiny, tmp_path, monkeypatch):
    """Two GRPO steps with --predictor self (ema), both predictor loss terms; returns what each
    reward call saw: the live weights at the call, the scored infos and tasks."""
    from trl import GRPOConfig

    from latent_env.training.rl import run_online_rl

    frozen = copy.deepcopy(tiny[0])
    env = LatentEnv(tasks=TASKS, scorer=LogLikScorer(frozen, tiny[1]), tools=["calc"])
    model, tokenizer = copy.deepcopy(tiny[0]), tiny[1]
    records = rl_records(env, [APPLES, EGGS])
    ids = [tuple(prompt_token_ids(tokenizer, r["prompt"])) for r in records]
    model.generate = scripted(model, tokenizer, {
        ids[0]: ["<calc>12 + 7</calc> so 19<eos>"] * 4, ids[1]: ["<calc>6 * 4</calc><eos>"] * 4})
    calls = []
    real_call = EnvReward.__call__

    def spy(self, prompts, completions, **columns):
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        rewards = real_call(self, prompts, completions, **columns)
        calls.append({"state": state, "infos": self.last_infos, "tasks": self.last_tasks,
                      "rewards": rewards, "updates": self.engine.scorer.updates,
                      "teacher": {k: v.detach().clone()
                                  for k, v in self.engine.scorer.ema.state_dict().items()}})
        return rewards

    monkeypatch.setattr(EnvReward, "__call__", spy)
    config = GRPOConfig(output_dir=str(tmp_path / "rl"), max_steps=2, learning_rate=5e-3,
                        per_device_train_batch_size=4, num_generations=2,
                        max_completion_length=24, report_to=[], use_cpu=True, logging_steps=1,
                        save_strategy="no", beta=0.0, seed=0)
    rl = RLArguments(predictor="self", predictor_baseline="ema", predictor_ema_decay=DECAY,
                     predictor_loss_weight=1.0, predictor_plain_weight=0.5)
    final, metrics = run_online_rl("grpo", model, tokenizer, env, records, config,
                                   tmp_path / "rl", resume=False, rl=rl)
    yield {"calls": calls, "env": env, "frozen": frozen, "model": model, "metrics": metrics,
           "tokenizer": tokenizer, "start": tiny[0]}
    env.close()


def test_the_reward_is_the_live_weights_logprob_against_the_ema_teacher(run):
    calls, tokenizer = run["calls"], run["tokenizer"]
    assert len(calls) == 2
    theta0, theta1 = calls[0]["state"], calls[1]["state"]
    assert any(not torch.equal(theta0[k], theta1[k]) for k in theta0)  # a step was taken
    # One optimiser step between the calls: φ1 = d·θ0 + (1-d)·θ1.
    phi1 = {k: DECAY * theta0[k] + (1 - DECAY) * theta1[k] if theta0[k].is_floating_point()
            else theta1[k] for k in theta0}
    live = with_weights(run["model"], theta1)
    teacher = with_weights(run["model"], phi1)
    combine = get_combiner(None)
    for info, task, reward in zip(calls[1]["infos"], calls[1]["tasks"], calls[1]["rewards"]):
        enriched = independent_logp(live, tokenizer, combine(task.context, info["latent"]),
                                    task.continuation)
        baseline = independent_logp(teacher, tokenizer, task.context, task.continuation)
        # Batched, left-padded scoring against one unpadded pass: float rounding only.
        assert info["score/logp_with_latent"] == pytest.approx(enriched, rel=2e-4)
        assert info["score/logp_without_latent"] == pytest.approx(baseline, rel=2e-4)
        assert reward == pytest.approx(enriched - baseline, abs=1e-2)
        live_baseline = independent_logp(live, tokenizer, task.context, task.continuation)
        assert abs(baseline - live_baseline) > 0.1  # the teacher is not the live model
    assert [c["updates"] for c in calls] == [0, 1]


def test_the_shared_env_keeps_its_frozen_scorer(run):
    assert run["env"].scorer.model is run["frozen"]
    start = run["start"].state_dict()
    assert all(torch.equal(v, start[k]) for k, v in run["frozen"].state_dict().items())


def test_the_predictor_loss_is_paid_and_logged(run):
    last = run["metrics"]["last"]
    assert last["predictor/nll"] > 0 and last["predictor/plain_nll"] > 0
