"""RL prompt screening: keep the prompts the starting policy answers wrong."""

from __future__ import annotations

import json

import pytest

import train_rl
from latent_env.env import LatentEnv
from latent_env.scoring import LogLikScorer
from latent_env.tasks import Task, load_tasks
from latent_env.training.data import echo_latent
from latent_env.training.pipeline import build_context
from latent_env.training.run_context import StageError
from latent_env.training.screen import screen_for_misses
from latent_env.training.stages import rl_prompt_tasks, train_tasks


class ScriptedPolicy:
    """Writes a fixed action per observation (empty when none is given)."""

    def __init__(self, actions: dict[str, str]) -> None:
        self.actions = actions

    def act_batch(self, observations: list[str], tasks: list[Task] | None = None) -> list[str]:
        return [self.actions.get(obs, "") for obs in observations]


def test_keeps_the_tasks_whose_answer_the_policy_misses(default_scorer):
    env = LatentEnv(tasks=None, scorer=default_scorer, tools=["python"])
    train = {t.id.split("/", 2)[2]: t for t in load_tasks("synthetic-small", split="train")}
    # On the default model the echo latents of these tasks give the answer, except sum_diff/0001.
    echoed = [train[k] for k in ("average/0000", "average/0002", "sum_diff/0000", "sum_diff/0001")]
    silent = train["average/0001"]
    unjudged = Task(id="free-text", context="Once upon a", continuation=" time")
    tasks = [echoed[0], silent, *echoed[1:], unjudged]
    policy = ScriptedPolicy({env.new_episode(t).prompt: echo_latent(t) for t in echoed})
    kept, stats = screen_for_misses(env, policy, tasks)
    assert [t.id for t in kept] == [silent.id, train["sum_diff/0001"].id, "free-text"]
    assert (stats["screened"], stats["kept"]) == (6, 3)
    assert stats["accuracy"] == pytest.approx(3 / 5)
    assert stats["mean_gain"] > 0 and stats["seconds"] >= 0


@pytest.fixture
def smoke_context(tmp_path):
    pipeline, sft, latent, evaluation, rl, _, trl_config = train_rl.parse(
        ["--preset", "smoke", "--stages", "rl", "--rl_screen_per_family", "1",
         "--run_dir", str(tmp_path / "run")])
    return build_context(pipeline, sft, latent, evaluation, trl_config, rl)


def test_the_rl_stage_screens_one_prompt_per_family(smoke_context, tiny):
    ctx = smoke_context
    env = LatentEnv(tasks=None, scorer=LogLikScorer(*tiny), tools=["python"])
    out = ctx.run_dir / "rl"
    tasks, summary = rl_prompt_tasks(ctx, env, "tiny-random", out)
    families = {t.family for t in train_tasks(ctx, "rl")}
    # The random model never gets an answer right, so every screened prompt is kept.
    assert sorted(t.family for t in tasks) == sorted(families)
    assert summary["screened"] == summary["kept"] == len(families)
    saved = json.loads((out / "screening.json").read_text())
    assert saved["kept_ids"] == [t.id for t in tasks] and "kept_ids" not in summary


def test_a_resumed_rl_stage_reuses_the_saved_screening(smoke_context):
    ctx = smoke_context
    out = ctx.run_dir / "rl"
    out.mkdir(parents=True)
    first = train_tasks(ctx, "rl")[0]
    saved = {"screened": 9, "kept": 1, "accuracy": 0.9, "kept_ids": [first.id]}
    (out / "screening.json").write_text(json.dumps(saved))
    ctx.pipeline.resume = True
    # No model can be loaded from this path: the stage must not screen again.
    tasks, summary = rl_prompt_tasks(ctx, None, "/nonexistent/model", out)
    assert [t.id for t in tasks] == [first.id] and summary["accuracy"] == 0.9
    saved["kept_ids"] = []
    (out / "screening.json").write_text(json.dumps(saved))
    with pytest.raises(StageError, match="answered all 9 screened prompts right"):
        rl_prompt_tasks(ctx, None, "/nonexistent/model", out)


def test_screening_takes_a_non_negative_count():
    from latent_env.training.config import RLArguments

    with pytest.raises(ValueError, match="--rl_screen_per_family must be >= 0"):
        RLArguments(rl_screen_per_family=-1)
