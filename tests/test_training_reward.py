from __future__ import annotations

import json

import pytest

from latent_env.env import LatentEnv
from latent_env.scoring import LogLikScorer
from latent_env.training.reward import EnvReward
from tests.test_env import TASKS


@pytest.fixture(scope="module")
def env(tiny):
    return LatentEnv(tasks=TASKS, scorer=LogLikScorer(*tiny), tools=["calc"])


def test_reward_from_an_env_or_its_engine_matches_the_env_episode(env):
    completions = ["<calc>15 + 1</calc>", [{"role": "assistant", "content": "<calc>7</calc>"}]]
    columns = {"task": [json.dumps(TASKS[0]), TASKS[1]]}
    from_env = EnvReward(env)(["p", "p"], completions, **columns)
    from_engine = EnvReward(env.engine, term="loglik_gain")
    assert from_engine(["p", "p"], completions, **columns) == from_env
    env.reset(options={"task": TASKS[0]})
    *_, info = env.step("<calc>15 + 1</calc>")
    assert from_engine.last_infos[0]["latent"] == info["latent"]
    assert from_env[0] == pytest.approx(info["reward/total"], abs=1e-6)


def test_reward_counts_sanitised_completions(env):
    reward = EnvReward(env)
    reward(["p", "p"], ["\ud800<calc>1</calc>", "<calc>1</calc>"], task=[TASKS[0], TASKS[1]])
    assert [i["episode/actions_sanitized"] for i in reward.last_infos] == [1, 0]


def test_reward_needs_the_task_column(env):
    with pytest.raises(KeyError, match="'task' column"):
        EnvReward(env)(["p"], [""])
