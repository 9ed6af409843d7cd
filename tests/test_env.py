from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import latent_env
from latent_env.env import LatentEnv
from latent_env.scoring import LogLikScorer

FOUNDING = {
    "id": "founding",
    "context": (
        "The names of the students are John, Mary, and Peter. John is 15 years old, Mary is 16 "
        "years old, and Peter is 17 years old. Their average age is"
    ),
    "continuation": " 16",
    "answer": "16",
    "family": "average",
}
TASKS = [
    FOUNDING,
    {"id": "apples", "context": "Tom has 12 apples and buys 7 more. Now he has",
     "continuation": " 19 apples.", "answer": "19", "family": "sum_diff"},
    {"id": "eggs", "context": "A box holds 6 eggs, so four boxes hold", "continuation": " 24",
     "answer": "24", "family": "multi_step"},
]


@pytest.fixture(scope="module")
def tiny_scorer(tiny):
    return LogLikScorer(*tiny)


@pytest.fixture
def env(tiny_scorer):
    env = LatentEnv(tasks=TASKS, scorer=tiny_scorer, tools=["calc", "predict"])
    yield env
    env.close()


def test_registered_and_made_by_id(tiny_scorer):
    assert latent_env.ENV_ID in gym.registry
    env = gym.make(latent_env.ENV_ID, tasks=TASKS, scorer=tiny_scorer, tools=["calc"])
    obs, info = env.reset(seed=1)
    assert "<text>" in obs and info["task_id"] in {t["id"] for t in TASKS}
    env.close()


def test_gymnasium_check_env_passes(env):
    check_env(env, skip_render_check=True)


def test_observation_has_the_context_but_never_the_continuation(env):
    for seed in range(10):
        obs, info = env.reset(seed=seed)
        task = next(t for t in TASKS if t["id"] == info["task_id"])
        assert task["context"] in obs and env.observation_space.contains(obs)
        assert not obs.rstrip().endswith(task["continuation"].strip())


def test_single_turn_episode_reward_and_info(env):
    env.reset(options={"task": FOUNDING})
    obs, reward, terminated, truncated, info = env.step("<calc>(15 + 16 + 17) / 3</calc> ok")
    assert terminated and not truncated
    assert info["latent"] == "<calc>(15 + 16 + 17) / 3</calc><output>16</output>"
    assert reward == info["reward/total"] == pytest.approx(info["reward/loglik_gain"])
    assert info["reward/loglik_gain"] == pytest.approx(
        info["score/logp_with_latent"] - info["score/logp_without_latent"]
    )
    assert info["tools"][0]["status"] == "ok" and info["tokens/continuation"] == 3
    assert "<output>16</output>" in obs


def test_empty_latent_pays_exactly_zero(env):
    env.reset(options={"task": FOUNDING})
    _, reward, terminated, _, info = env.step("I will just read on.")
    assert terminated and reward == 0.0 and info["latent"] == ""


def test_same_seed_same_actions_same_everything(tiny_scorer):
    def rollout() -> list:
        env = LatentEnv(tasks=TASKS, scorer=tiny_scorer, tools=["calc"])
        trace = []
        for episode in range(4):
            obs, info = env.reset(seed=7 if episode == 0 else None)
            obs2, reward, *_ , info = env.step(f"<calc>{episode} + 1</calc>")
            trace.append((obs, obs2, reward, info["task_id"]))
        return trace

    assert rollout() == rollout()


def test_multi_turn_shows_outputs_and_ends_on_done(tiny_scorer):
    env = LatentEnv(tasks=TASKS, scorer=tiny_scorer, tools=["calc"], mode="multi", max_turns=3)
    env.reset(options={"task": FOUNDING})
    obs, reward, terminated, truncated, info = env.step("<calc>15 + 16 + 17</calc>")
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert obs.endswith("<calc>15 + 16 + 17</calc><output>48</output>\n")
    obs, reward, terminated, truncated, info = env.step("<calc>48 / 3</calc><done/>")
    assert terminated and not truncated
    assert info["latent"] == (
        "<calc>15 + 16 + 17</calc><output>48</output><calc>48 / 3</calc><output>16</output>"
    )
    assert info["episode/turns"] == 2


def test_multi_turn_truncates_after_max_turns(tiny_scorer):
    env = LatentEnv(tasks=TASKS, scorer=tiny_scorer, tools=["calc"], mode="multi", max_turns=2)
    env.reset(seed=0)
    assert env.step("<calc>1</calc>")[2:4] == (False, False)
    _, reward, terminated, truncated, info = env.step("<calc>2</calc>")
    assert (terminated, truncated) == (False, True) and reward == info["reward/total"]
    _, reward, terminated, _, info = env.step("<calc>3</calc>")
    assert reward == 0.0 and terminated and "call reset" in info["warning"]


def test_step_before_reset_is_a_gymnasium_error(env):
    with pytest.raises(gym.error.ResetNeeded):
        env.step("x")


def test_bad_arguments_are_rejected_with_a_fix():
    with pytest.raises(ValueError, match="mode must be 'single' or 'multi'"):
        LatentEnv(tasks=TASKS, mode="both")
    with pytest.raises(ValueError, match="unknown reward term"):
        LatentEnv(tasks=TASKS, reward="nope=1")


def test_unknown_tags_become_tool_errors_not_crashes(env):
    env.reset(seed=0)
    *_, info = env.step("<sql>select 1</sql><calc>2+2</calc><calc>3")
    statuses = [t["status"] for t in info["tools"]]
    assert statuses == ["unknown_tool", "ok", "parse_error"]
    assert info["reward/tool_error"] == 2.0 and info["reward/format"] == 0.0


def test_weighted_reward_terms(tiny_scorer):
    env = LatentEnv(tasks=TASKS, scorer=tiny_scorer, tools=["calc"],
                    reward={"loglik_gain": 1.0, "latent_cost": -0.1})
    env.reset(options={"task": FOUNDING})
    *_, info = env.step("<calc>16</calc>")
    expected = info["reward/loglik_gain"] - 0.1 * info["tokens/latent"]
    assert info["reward/total"] == pytest.approx(expected)


ugly_actions = st.one_of(
    st.text(max_size=400),
    st.text(alphabet=st.sampled_from(list("<>/calcpredictreason_thinkingdone 12+\n")),
            max_size=200),
    st.builds(lambda a, b: f"<calc>{a}</calc>{b}", st.text(max_size=50), st.text(max_size=50)),
    st.just("\ud800 lone surrogate <calc>1</calc>"),
    st.just("<calc>" * 500),
    st.just("x" * 100_000),
    st.binary(max_size=100),
    st.none(),
)


def test_spaces_print_in_one_short_line(env):
    for space in (env.observation_space, env.action_space):
        text = repr(space)
        assert text.startswith("Text(") and "characters>)" in text and len(text) < 100


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(action=ugly_actions)
def test_any_action_gives_a_valid_observation_and_finite_reward(env, action):
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)
    assert env.observation_space.contains(obs)
    assert terminated and reward == reward and abs(reward) < 1e6


def test_sampled_actions(env):
    env.action_space.seed(0)
    for _ in range(30):
        env.reset()
        obs, reward, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and abs(reward) < 1e6


def test_render_ansi(tiny_scorer):
    env = LatentEnv(tasks=TASKS, scorer=tiny_scorer, tools=["calc"], render_mode="ansi")
    env.reset(seed=0)
    env.step("<calc>1</calc>")
    assert "[reward" in env.render()
    env.reset(seed=1)  # a new episode has earned nothing yet
    assert "[reward" not in env.render()


def test_env_settings_are_its_engines(tiny_scorer):
    env = LatentEnv(tasks=TASKS, scorer=tiny_scorer, tools=["calc"], mode="multi", max_turns=2)
    assert env.scorer is env.engine.scorer is tiny_scorer
    assert (env.mode, env.max_turns, env.tools) == ("multi", 2, env.engine.tools)
    env.max_turns = 1  # one copy of each setting: setting it on the env sets the engine's
    env.reset(seed=0)
    *_, terminated, truncated, _ = env.step("<calc>1</calc>")
    assert env.engine.max_turns == 1 and truncated and not terminated


@pytest.mark.slow
def test_founding_example_on_the_default_model(default_scorer):
    """A correct <python> block pays clearly more than one that prints a wrong number."""
    env = LatentEnv(tasks="founding", split="test", scorer=default_scorer,
                    tools=["python", "calc", "predict"])
    rewards = {}
    actions = {
        "correct": "<python>\nages = [15, 16, 17]\nprint(sum(ages) // len(ages))\n</python>",
        "founding_program": None,
        "wrong_17": "<python>\nages = [15, 16, 17]\nprint(max(ages))\n</python>",
        "wrong_15": "<python>\nprint(15)\n</python>",
    }
    for name, action in actions.items():
        obs, info = env.reset(seed=0)
        action = action or f"<python>\n{env.episode.task.program}\n</python>"
        *_, info = env.step(action)
        assert info["tools"][0]["status"] == "ok"
        rewards[name] = info["reward/loglik_gain"]
    print("founding example rewards (nats):", rewards)
    assert rewards["correct"] > 0.5 and rewards["founding_program"] > 0.5
    assert rewards["correct"] - rewards["wrong_17"] > 0.5
    assert rewards["correct"] - rewards["wrong_15"] > 0.5
