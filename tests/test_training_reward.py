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


def test_thoughts_reach_a_self_predictor_through_the_reward(tmp_path):
    """TRL's completion text drops special tokens; the reward decodes the ids and keeps them,
    and a latent-thought policy scoring itself reads them as continuous inputs."""
    from latent_env.predictor import SelfPredictor
    from tests.test_predictor import independent_logp
    from tests.test_thoughts_model import build

    model, tokenizer = build()
    thought_env = LatentEnv(tasks=TASKS, scorer=SelfPredictor(model, tokenizer, "self"),
                            tools=["calc"])
    reward = EnvReward(thought_env, tokenizer=tokenizer)
    thought = tokenizer.convert_tokens_to_ids("<thinking>")
    ids = [thought, thought] + tokenizer("<calc>15 + 1</calc>", add_special_tokens=False
                                         ).input_ids + [tokenizer.eos_token_id]
    text = tokenizer.decode(ids, skip_special_tokens=True)  # what TRL passes as the completion
    (r,) = reward(["p"], [text], task=[json.dumps(TASKS[0])], completion_ids=[ids])
    info = reward.last_infos[0]
    assert info["tokens/thinking"] == 2 and info["latent"].startswith("<thinking><thinking>")
    task = TASKS[0]
    enriched = thought_env.scorer.combiner(task["context"], info["latent"])
    assert info["score/logp_with_latent"] == pytest.approx(
        independent_logp(model, tokenizer, enriched, task["continuation"]), rel=1e-4)
    # Without the tokenizer the reward reads TRL's text: no thought left.
    plain = EnvReward(thought_env)
    plain(["p"], [text], task=[json.dumps(TASKS[0])], completion_ids=[ids])
    assert plain.last_infos[0]["tokens/thinking"] == 0
    thought_env.close()
