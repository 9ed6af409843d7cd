"""The latent stages: the SFT stage's traces (every kind), only as many as a stage trains, in SFT's
micro-batches."""

from __future__ import annotations

import train_rl
from latent_env.env import LatentEnv
from latent_env.training import sft
from latent_env.training.data import gold_traces, split_tasks
from latent_env.training.latent_stages import chat_traces, run_latent_stage, stage_sample
from latent_env.training.pipeline import build_context


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


def test_a_latent_stage_trains_in_sft_micro_batches_sorted_by_length(tmp_path, monkeypatch):
    """A row's thoughts each cost a decoder pass as wide as the batch's longest segment, so the
    stage takes SFT's length-sorted micro-batches (18.5 s a step in one pass of 8, 9.1 s in
    sorted pairs, benchmarks/RESULTS.md)."""
    pipeline, sft_args, latent, evaluation, rl, _, trl_config = train_rl.parse(
        ["--preset", "smoke", "--stages", "latent", "--latent_steps", "2",
         "--latent_threshold", "0.9", "--run_dir", str(tmp_path / "run")])
    ctx = build_context(pipeline, sft_args, latent, evaluation, trl_config, rl)
    seen = {}
    real = sft.train_and_save

    def recording(trainer, *args):
        seen["accumulation"] = trainer.args.gradient_accumulation_steps
        seen["micro"] = trainer.args.per_device_train_batch_size
        seen["lengths"] = [len(row["input_ids"]) for row in trainer.train_dataset]
        seen["thinking"] = sum(row["input_ids"].count(trainer.model.thinking_token_id)
                               for row in trainer.train_dataset)
        return real(trainer, *args)

    monkeypatch.setattr(sft, "train_and_save", recording)
    final, metrics = run_latent_stage(ctx, "tiny-random")
    assert (seen["micro"], seen["accumulation"]) == (2, 2)  # smoke: batches of 4, micro 2
    steps = [seen["lengths"][i:i + 4] for i in range(0, len(seen["lengths"]), 4)]
    assert all(step == sorted(step) for step in steps)
    assert seen["thinking"] == metrics["thinking_tokens_inserted"] > 0
    assert metrics["steps"] == 2 and metrics["traces"] == 8
    assert metrics["step_seconds"]["steps"] == 2 and (final / "config.json").is_file()
