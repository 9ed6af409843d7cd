from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import latent_env
from latent_env.env import LatentEnv
from latent_env.scoring import LogLikScorer
from latent_env.vector import LatentVectorEnv
from tests.test_env import TASKS


@pytest.fixture(scope="module")
def tiny_scorer(tiny):
    return LogLikScorer(*tiny)


def test_vector_env_matches_single_envs_and_scores_in_one_call(tiny_scorer):
    actions = ["<calc>1 + 1</calc>", "", "<calc>6 * 4</calc><reason>four boxes</reason>"]
    vec = LatentVectorEnv(3, tasks=TASKS, scorer=tiny_scorer, tools=["calc"])
    obs, _ = vec.reset(seed=5)
    passes = tiny_scorer.stats["forward_passes"]
    tiny_scorer.clear_cache()
    obs2, rewards, terminated, truncated, infos = vec.step(actions)
    assert tiny_scorer.stats["forward_passes"] - passes == 1  # baselines + latents, one batch
    assert terminated.all() and not truncated.any()
    for i, action in enumerate(actions):
        single = LatentEnv(tasks=TASKS, scorer=tiny_scorer, tools=["calc"])
        s_obs, _ = single.reset(seed=5 + i)
        assert s_obs == obs[i]
        s_obs2, s_reward, *_ = single.step(action)
        assert s_obs2 == obs2[i]
        assert rewards[i] == pytest.approx(s_reward, abs=1e-4)
    assert list(infos["task_id"]) == [vec.envs[i].episode.task.id for i in range(3)]


def test_next_step_autoreset(tiny_scorer):
    vec = LatentVectorEnv(2, tasks=TASKS, scorer=tiny_scorer, tools=["calc"], mode="multi",
                          max_turns=2)
    vec.reset(seed=0)
    _, rewards, terminated, truncated, _ = vec.step(["<calc>1</calc><done/>", "<calc>2</calc>"])
    assert list(terminated) == [True, False] and rewards[1] == 0.0
    obs, rewards, terminated, truncated, infos = vec.step(["ignored", "<calc>3</calc>"])
    assert rewards[0] == 0.0 and not terminated[0] and "<text>" in obs[0]
    assert obs[0].endswith("</text>\n")  # a fresh episode: no transcript yet
    assert truncated[1] and infos["_reward/total"][1]


def test_make_vec_uses_the_vector_entry_point(tiny_scorer):
    vec = gym.make_vec(latent_env.ENV_ID, num_envs=2, vectorization_mode="vector_entry_point",
                       tasks=TASKS, scorer=tiny_scorer, tools=["calc"])
    assert isinstance(vec.unwrapped, LatentVectorEnv)
    obs, _ = vec.reset(seed=0)
    assert len(obs) == 2


def test_gymnasium_sync_vectorisation_still_works(tiny_scorer):
    vec = gym.make_vec(latent_env.ENV_ID, num_envs=2, vectorization_mode="sync",
                       tasks=TASKS, scorer=tiny_scorer, tools=["calc"])
    vec.reset(seed=0)
    _, rewards, terminated, _, _ = vec.step(["<calc>5</calc>", ""])
    assert terminated.all() and rewards[1] == 0.0 and np.isfinite(rewards).all()


@pytest.mark.slow
def test_gymnasium_async_vectorisation_still_works():
    # spawn, not fork: a forked child of a process whose torch thread pool is running can hang.
    vec = gym.make_vec(latent_env.ENV_ID, num_envs=2, vectorization_mode="async",
                       vector_kwargs={"context": "spawn"},
                       tasks=TASKS, model="tiny-random", tools=["calc"])
    try:
        vec.reset(seed=0)
        _, rewards, terminated, _, _ = vec.step(["<calc>5</calc>", ""])
        assert terminated.all() and rewards[1] == 0.0 and np.isfinite(rewards).all()
    finally:
        vec.close()


def test_reset_can_pin_one_task_per_sub_env(tiny_scorer):
    vec = LatentVectorEnv(2, tasks=TASKS, scorer=tiny_scorer, tools=["calc"])
    _, infos = vec.reset(options={"tasks": [TASKS[2], TASKS[0]]})
    assert list(infos["task_id"]) == ["eggs", "founding"]
    with pytest.raises(ValueError, match="needs 2 tasks"):
        vec.reset(options={"tasks": [TASKS[0]]})


def test_every_slot_runs_on_one_engine_and_a_fresh_slot_renders_no_old_reward(tiny_scorer):
    vec = LatentVectorEnv(3, tasks=TASKS, scorer=tiny_scorer, tools=["calc"], render_mode="ansi")
    assert all(env.engine is vec.engine for env in vec.envs)
    assert vec.scorer is tiny_scorer and vec.envs[2].tools is vec.envs[0].tools
    vec.reset(seed=0)
    vec.step(["<calc>1</calc>"] * 3)
    assert all("[reward" in text for text in vec.render())
    vec.step([""] * 3)  # autoreset: fresh episodes, not yet paid
    assert not any("[reward" in text for text in vec.render())
