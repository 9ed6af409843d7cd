"""STaR/Toolformer bootstrapping: sampled latents are kept by their likelihood gain."""

from __future__ import annotations

import math

import pytest

from latent_env.env import LatentEnv
from latent_env.scoring import LogLikScorer
from latent_env.tasks import load_tasks
from latent_env.training.bootstrap import sample_and_filter


@pytest.fixture(scope="module")
def env(tiny):
    return LatentEnv(tasks=None, scorer=LogLikScorer(*tiny), tools=["calc"])


def test_the_gain_threshold_decides_what_is_kept(env):
    tasks = load_tasks("synthetic-small", split="train")[:2]
    kept_all, latents, stats = sample_and_filter(
        env, "tiny-random", tasks, k=2, min_gain=-math.inf, seed=0, max_new_tokens=6
    )
    assert stats["sampled"] == 4 and stats["kept"] == len(latents) == len(kept_all)
    assert 1 <= stats["kept"] <= 4  # identical samples for one task are kept once
    assert len(set(zip([t.id for t in kept_all], latents))) == len(latents)
    none, _, stats = sample_and_filter(
        env, "tiny-random", tasks, k=2, min_gain=math.inf, seed=0, max_new_tokens=6
    )
    assert none == [] and stats["kept"] == 0 and math.isfinite(stats["mean_sampled_gain"])
