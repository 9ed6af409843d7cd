"""The latent stages' data: the SFT stage's traces (every kind), only as many as a stage trains."""

from __future__ import annotations

from latent_env.env import LatentEnv
from latent_env.training.data import gold_traces, split_tasks
from latent_env.training.latent_stages import chat_traces, stage_sample


def test_stage_sample_draws_steps_times_batch_traces_seeded():
    traces = list(range(100))
    picked = stage_sample(traces, steps=3, batch_size=8, seed=1)
    assert len(picked) == 24 == len(set(picked)) and picked == sorted(picked)
    assert picked == stage_sample(traces, steps=3, batch_size=8, seed=1)
    assert picked != stage_sample(traces, steps=3, batch_size=8, seed=2)
    assert stage_sample(traces, steps=20, batch_size=8, seed=1) == traces  # fewer than asked
    assert stage_sample(traces, steps=-1, batch_size=8, seed=1) == traces


def test_chat_traces_are_the_sft_traces_of_every_kind(tiny):
    _, tokenizer = tiny
    env = LatentEnv(tasks=None, model="tiny-random", tools=["python", "calc"])
    tasks = split_tasks("synthetic", "train", 2)
    traces = chat_traces(env, tokenizer, tasks, "echo")
    expected = gold_traces(tasks, "echo")
    assert [t["completion"] for t in traces] == [latent for _, latent in expected]
    kinds = {t["completion"].split(">")[0] for t in traces}
    assert {"<python", "<reason", "<done/"} <= kinds  # not only programs
    assert all(t["prompt"].endswith(tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=True
    ).rsplit("x", 1)[1]) for t in traces)
