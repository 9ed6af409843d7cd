"""train_rl.py: configuration, presets, and real (tiny-model) runs of every stage and algorithm."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import train_rl
from latent_env.tasks import make_suite, write_jsonl
from latent_env.training.checkpoints import last_checkpoint
from latent_env.training.config import PipelineArguments, SFTArguments, available_presets
from tests.test_training_task_sets import unsplit

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1",
       "LATENT_ENV_THREADS": "1"}


def run_train(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train_rl.py", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_presets_exist():
    assert {"default", "smoke", "gpu-small", "gpu-7b"} <= set(available_presets())


def test_bad_stage_order_and_algo_are_rejected_with_a_fix():
    with pytest.raises(ValueError, match="keep the order sft,latent,fusion,rl"):
        PipelineArguments(stages="rl,sft")
    with pytest.raises(ValueError, match="unknown stage"):
        PipelineArguments(stages="sft,pretrain")
    with pytest.raises(ValueError, match="--algo must be one of grpo, rloo, ppo"):
        PipelineArguments(algo="dpo")
    with pytest.raises(ValueError, match="--sft_epochs > 0 or --sft_max_steps > 0"):
        SFTArguments(sft_epochs=0)
    with pytest.raises(ValueError, match="--sft_trace_style must be echo or program"):
        SFTArguments(sft_trace_style="verbose")
    with pytest.raises(ValueError, match="--sft_micro_batch_size must divide"):
        SFTArguments(sft_batch_size=8, sft_micro_batch_size=3)
    with pytest.raises(ValueError, match="--save_every_minutes must be >= 0"):
        PipelineArguments(save_every_minutes=-1)
    for bad in ("code", "code=0", "prose=3", "code=x"):
        with pytest.raises(ValueError, match="--train_per_kind: .* is not KIND=N"):
            PipelineArguments(train_per_kind=bad)


def test_train_per_kind_sizes_each_family_and_keeps_sft_and_rl_apart(tmp_path):
    from collections import Counter

    from latent_env.training.data import trace_kind
    from latent_env.training.pipeline import build_context
    from latent_env.training.stages import train_tasks

    pipeline, sft, latent, evaluation, rl, _, trl_config = train_rl.parse(
        ["--train_per_family", "3", "--train_per_kind", "code=5,empty=2",
         "--run_dir", str(tmp_path / "run")])
    ctx = build_context(pipeline, sft, latent, evaluation, trl_config, rl)
    parts = {part: train_tasks(ctx, part) for part in ("sft", "rl")}
    for tasks in parts.values():
        per_family = Counter(t.family for t in tasks)
        assert {per_family[t.family] for t in tasks if trace_kind(t) == "code"} == {5}
        assert {per_family[t.family] for t in tasks if trace_kind(t) == "reasoning"} == {3}
        assert {per_family[t.family] for t in tasks if trace_kind(t) == "empty"} == {2}
    assert not {t.id for t in parts["sft"]} & {t.id for t in parts["rl"]}


def test_supervised_stages_checkpoint_and_log_as_the_preset_and_flags_say(tmp_path):
    from latent_env.training.pipeline import build_context
    from latent_env.training.sft import sft_config
    from latent_env.training.stages import trainer_flags

    def sft_settings(*flags: str) -> tuple:
        parsed = train_rl.parse([*flags, "--run_dir", str(tmp_path / str(len(flags)))])
        ctx = build_context(*parsed[:4], parsed[6], parsed[4], parsed[5])
        config = sft_config(tmp_path, epochs=1, max_steps=-1, learning_rate=1e-4, batch_size=8,
                            seed=0, report_to=[], **trainer_flags(ctx))
        return config.save_steps, config.save_total_limit, config.logging_steps

    assert sft_settings() == (10, 1, 5)  # the default preset's
    assert sft_settings("--preset", "smoke") == (2, 1, 1)
    assert sft_settings("--save_steps", "7", "--save_total_limit", "3",
                        "--logging_steps", "2") == (7, 3, 2)


def test_resume_goes_on_with_the_flags_the_run_was_started_with(tmp_path):
    from latent_env.training.pipeline import build_context

    assert train_rl.run_flags(["--resume", "--run_dir", "R", "--seed", "3", "--resume=true",
                               "--run_dir=S", "--resume", "true", "--x"]) == ["--seed", "3", "--x"]
    run_dir = tmp_path / "run"
    first = ["--preset", "smoke", "--sft_epochs", "3", "--run_dir", str(run_dir)]
    parsed = train_rl.parse(first)
    build_context(*parsed[:4], parsed[6], parsed[4], parsed[5], flags=train_rl.run_flags(first))
    argv = train_rl.resumed_argv(["--resume", "--run_dir", str(run_dir), "--eval_per_family", "2"])
    pipeline, sft, _, evaluation, *_ = train_rl.parse(argv)
    assert (pipeline.preset, sft.sft_epochs, evaluation.eval_per_family) == ("smoke", 3, 2)
    assert pipeline.resume and pipeline.run_dir == str(run_dir)
    assert train_rl.resumed_argv(["--seed", "1"]) == ["--seed", "1"]  # no --resume: as given


def test_state_json_is_written_before_any_work_so_resume_finds_the_run(tmp_path):
    from latent_env.training.pipeline import build_context
    from latent_env.training.run_context import resolve_run_dir

    run_dir = tmp_path / "20260101-000000"
    pipeline, sft, latent, evaluation, rl, lora, trl_config = train_rl.parse(
        ["--preset", "smoke", "--run_dir", str(run_dir)])
    build_context(pipeline, sft, latent, evaluation, trl_config, rl, lora)
    state = json.loads((run_dir / "state.json").read_text())
    assert state["stages"] == {} and state["running"] is None
    assert state["config"] == json.loads((run_dir / "config.json").read_text())
    assert state["config"]["pipeline"]["save_every_minutes"] == 5.0
    assert resolve_run_dir("", True, root=tmp_path) == run_dir


def test_default_preset_leaves_room_for_the_longest_gold_latent(tmp_path):
    """The CPU preset's generation limits must not cut a correct latent (trend programs are long)."""
    from latent_env.models import load_tokenizer
    from latent_env.training.data import split_tasks, trace_latent

    pipeline, sft, _, evaluation, _, _, trl_config = train_rl.parse(["--run_dir", str(tmp_path)])
    assert pipeline.model == "default" and sft.sft_trace_style == "echo"
    tokenizer = load_tokenizer("default")
    latents = [trace_latent(t) for t in split_tasks(pipeline.tasks, "test", 25)]
    longest = max(len(tokenizer(latent)["input_ids"]) for latent in latents if latent)
    assert longest < evaluation.eval_max_new_tokens
    assert longest < trl_config.max_completion_length


@pytest.mark.parametrize("preset", available_presets())
def test_every_preset_parses_for_every_algo_and_keeps_latents_whole(tmp_path, preset):
    """Generation limits above the longest gold latent of either split (smoke's tiny model aside),
    no activation recomputation below 7B, and the device chosen by the machine, not the preset."""
    import torch

    from latent_env.models import load_tokenizer
    from latent_env.training.data import split_tasks, trace_latent
    from tests.test_training_ppo import HAS_PPO

    for algo in ("grpo", "rloo", "ppo") if HAS_PPO else ("grpo", "rloo"):
        pipeline, _, _, evaluation, _, _, trl_config = train_rl.parse(
            ["--preset", preset, "--algo", algo, "--run_dir", str(tmp_path)])
        assert pipeline.preset == preset
        assert trl_config.use_cpu == (not torch.cuda.is_available())  # set by the machine
        assert trl_config.activation_checkpointing == (preset == "gpu-7b")
        if preset == "gpu-7b":  # no fp32 7B copy: the reward model, the evaluated policies, RLOO's ref
            assert (pipeline.reward_dtype, evaluation.eval_dtype) == ("bfloat16", "bfloat16")
            if algo == "rloo":
                assert trl_config.model_init_kwargs == {"dtype": "bfloat16"}
    if preset == "smoke":
        return
    tokenizer = load_tokenizer("default")
    latents = [trace_latent(t) for split in ("train", "test")
               for t in split_tasks(pipeline.tasks, split, 100)]
    longest = max(len(tokenizer(latent)["input_ids"]) for latent in latents if latent)
    assert longest < evaluation.eval_max_new_tokens
    if preset.startswith("gpu"):  # the default's RL limit is its measured 160 (README)
        assert longest < (getattr(trl_config, "max_completion_length", None)
                          or trl_config.response_length)


def test_preset_flattening_and_cli_override(tmp_path):
    pipeline, sft, _, evaluation, _, _, trl_config = train_rl.parse(
        ["--preset", "smoke", "--algo", "rloo", "--sft_epochs", "3", "--run_dir", str(tmp_path)]
    )
    assert pipeline.model == "tiny-random" and pipeline.algo == "rloo"
    assert sft.sft_epochs == 3.0  # the command line beats the preset
    assert type(trl_config).__name__ == "RLOOConfig" and trl_config.max_steps == 2


def test_help_documents_presets_and_trl_options():
    out = run_train("--help", timeout=120)
    assert out.returncode == 0
    assert "presets: default, gpu-7b, gpu-small, smoke" in out.stdout
    assert "--num_generations" in out.stdout and "--bootstrap_k" in out.stdout


def test_user_errors_exit_2_without_traceback(tmp_path):
    out = run_train("--preset", "nope", timeout=120)
    assert out.returncode == 2 and "unknown preset 'nope'" in out.stderr
    assert "Traceback" not in out.stderr
    (tmp_path / "x").write_text("")
    out = run_train("--preset", "smoke", "--run_dir", str(tmp_path), timeout=120)
    assert out.returncode == 2 and "pass --resume" in out.stderr


@pytest.mark.slow
def test_smoke_preset_runs_every_stage_and_writes_the_run(tmp_path):
    run_dir = tmp_path / "run"
    out = run_train("--preset", "smoke", "--run_dir", str(run_dir))
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"sft", "latent", "fusion", "rl", "eval"} <= set(metrics)
    assert metrics["latent"]["thinking_tokens_inserted"] > 0
    assert metrics["eval"]["policies"]["none (no latent)"]["mean_gain_nats"] == 0.0
    paired = metrics["eval"]["paired"]  # the rl stage against the checkpoint it started from
    assert (paired["baseline"], paired["candidate"]) == ("after fusion", "trained (sft+latent+fusion+rl)")
    assert paired["episodes"] == metrics["eval"]["policies"]["none (no latent)"]["episodes"]
    for stage in ("sft", "latent", "fusion", "rl"):
        assert (run_dir / stage / "final" / "config.json").is_file()
        timed = metrics[stage]["step_seconds"]  # every step of every stage timed
        assert timed["steps"] == metrics[stage]["steps"] and timed["median"] > 0
    assert not list(run_dir.glob("*/checkpoint-*"))  # finished stages keep only their final model
    assert "[sft] finished; removed 1 Trainer checkpoint(s)" in out.stdout
    assert f"run directory: {run_dir}  (metrics.json, config.json, eval/)" in out.stdout
    assert (run_dir / "eval" / "table.md").read_text().startswith("| policy |")
    # what the gains were measured with, for `latent-env compare` to check
    config = json.loads((run_dir / "eval" / "results.json").read_text())["config"]
    assert {"model", "combiner", "prompt", "tools"} <= set(config) and config["combiner"] == "prefix"
    assert "choice of latent kind" in out.stdout
    assert (run_dir / "eval" / "choice.md").read_text().startswith("| policy |")
    # The founding table: each trained checkpoint reading its own latents, against the base.
    founding = metrics["eval"]["founding"]
    assert set(founding) == {"after sft", "after fusion", "trained (sft+latent+fusion+rl)"}
    assert all(cell["tasks"] == paired["episodes"] for cell in founding.values())
    assert (run_dir / "eval" / "founding.md").read_text().startswith("| policy | family |")
    assert "reading their own latents" in out.stdout
    kinds = metrics["sft"]["traces"]  # every kind of the suite's families is taught
    assert kinds["code"] > 0 and kinds["reasoning"] > 0 and kinds["empty"] > 0
    oracle = metrics["eval"]["choice"]["oracle by kind"]
    assert oracle["regret"] == 0.0 and oracle["oracle_gain"] >= 0.0
    assert (run_dir / "eval" / "gain_by_family.png").is_file()
    assert json.loads((run_dir / "config.json").read_text())["pipeline"]["preset"] == "smoke"
    assert list(run_dir.glob("*/runs/*/events.out.tfevents.*"))  # TensorBoard logs


@pytest.mark.slow
def test_text_flag_mixes_raw_text_into_training_and_evaluation(tmp_path):
    from latent_env.tasks.corpus import bundled_documents

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for doc_id, text in bundled_documents()[:12]:
        (corpus / f"{doc_id.replace('/', '_')}.txt").write_text(text, encoding="utf-8")
    run_dir = tmp_path / "run"
    out = run_train("--preset", "smoke", "--stages", "sft", "--text", str(corpus),
                    "--text_per_mode", "2", "--run_dir", str(run_dir))
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    episodes = json.loads((run_dir / "eval" / "results.json").read_text())["episodes"]
    text_families = {e["family"] for e in episodes if e["family"].startswith("text:")}
    assert text_families == {"text:numbers", "text:random", "text:loss"}
    train_ids = {t["id"] for t in json.loads((run_dir / "sft" / "tasks.json").read_text())}
    assert any(i.startswith("text/train/") for i in train_ids)
    assert not any(e["task_id"] in train_ids for e in episodes)  # test passages only
    assert metrics["sft"]["traces"]["empty"] >= 6  # the text's positions are taught nothing


def test_training_on_a_file_of_test_tasks_is_refused_in_one_line(tmp_path):
    tasks = tmp_path / "test.jsonl"
    write_jsonl(tasks, make_suite("synthetic-small", "test"))  # as `latent-env tasks make` writes
    out = run_train("--preset", "smoke", "--tasks", str(tasks), "--stages", "sft",
                    "--eval_per_family", "1", "--run_dir", str(tmp_path / "run"), timeout=300)
    errors = [line for line in out.stderr.splitlines() if "error" in line.lower()]
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert len(errors) == 1 and errors[0].startswith(f"train_rl.py: error: --tasks {tasks}: no "
                                                     "train tasks (its 52 tasks: 0 train, 0 "
                                                     "validation, 52 test); give train tasks")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_one_task_file_is_split_into_disjoint_recorded_sets(tmp_path):
    tasks = tmp_path / "tasks.jsonl"  # no "split" fields: split by a hash of each context
    write_jsonl(tasks, unsplit(make_suite("synthetic-small", "all")))
    run_dir = tmp_path / "run"
    out = run_train("--preset", "smoke", "--tasks", str(tasks), "--stages", "sft",
                    "--sft_max_steps", "1", "--eval_per_family", "1", "--run_dir", str(run_dir))
    assert out.returncode == 0, out.stderr[-3000:]
    sets = json.loads((run_dir / "tasks.json").read_text())["sets"]
    ids = {name: {t["id"] for t in listed} for name, listed in sets.items()}
    assert set(ids) == {"sft", "eval"} and not ids["sft"] & ids["eval"]
    trained = {t["id"] for t in json.loads((run_dir / "sft" / "tasks.json").read_text())}
    episodes = json.loads((run_dir / "eval" / "results.json").read_text())["episodes"]
    assert trained == ids["sft"] and {e["task_id"] for e in episodes} == ids["eval"]


def run_smoke_rl_stage(run_dir: Path, algo: str, *flags: str) -> dict:
    """A smoke-preset RL stage alone with ``algo``; it must train, save and keep its checkpoint.
    Returns the run's metrics."""
    out = run_train("--preset", "smoke", "--algo", algo, "--stages", "rl", *flags,
                    "--eval_per_family", "0", "--keep_checkpoints", "--run_dir", str(run_dir))
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["rl"]["steps"] >= 1
    assert (run_dir / "rl" / "final" / "config.json").is_file()
    assert last_checkpoint(run_dir / "rl") is not None  # --keep_checkpoints
    return metrics


@pytest.mark.slow
def test_multi_turn_grpo_runs_a_smoke_rl_stage(tmp_path):
    metrics = run_smoke_rl_stage(tmp_path / "multi", "grpo", "--rl_turns", "3")
    assert json.loads((tmp_path / "multi" / "config.json").read_text())["rl"]["rl_turns"] == 3
    assert "rewards/env_reward/mean" in metrics["rl"]["last"]


def test_multi_turn_rl_is_refused_where_trl_has_no_rollout_hook(tmp_path):
    for flags, fix in ((["--algo", "rloo"], "needs --algo grpo"),
                       (["--use_vllm", "true"], "does not work with --use_vllm")):
        out = run_train("--preset", "smoke", "--rl_turns", "2", *flags,
                        "--run_dir", str(tmp_path / "never"), timeout=120)
        assert out.returncode == 2 and fix in out.stderr, out.stderr[-2000:]
        assert "Traceback" not in out.stderr and not (tmp_path / "never").exists()


@pytest.mark.slow
def test_self_prediction_runs_a_smoke_rl_stage_with_the_predictor_loss(tmp_path):
    metrics = run_smoke_rl_stage(tmp_path / "self", "grpo", "--predictor", "self",
                                 "--predictor_baseline", "initial", "--predictor_loss_weight",
                                 "1", "--predictor_plain_weight", "0.5")
    rl = json.loads((tmp_path / "self" / "config.json").read_text())["rl"]
    assert rl["predictor"] == "self" and rl["predictor_baseline"] == "initial"
    assert metrics["rl"]["last"]["predictor/nll"] > 0
    assert metrics["rl"]["last"]["predictor/plain_nll"] > 0


@pytest.mark.slow
def test_sft_with_the_predictor_loss_trains_on_y_after_the_gold_latents(tmp_path):
    run_dir = tmp_path / "sft"
    out = run_train("--preset", "smoke", "--stages", "sft", "--sft_predictor_loss_weight", "0.5",
                    "--sft_predictor_plain_weight", "0.5", "--eval_per_family", "0",
                    "--run_dir", str(run_dir))
    assert out.returncode == 0, out.stderr[-3000:]
    sft = json.loads((run_dir / "metrics.json").read_text())["sft"]
    assert sft["predictor_nll"]["first"] > 0 and sft["predictor_nll"]["last"] > 0
    assert sft["predictor_plain_nll"]["first"] > 0 and sft["predictor_plain_nll"]["last"] > 0
    assert "predictor/nll" in out.stdout and "predictor/plain_nll" in out.stdout  # logged


def test_self_prediction_options_are_checked_before_the_run_starts(tmp_path):
    for flags, fix in (
            (["--predictor", "self", "--reward_model", "tiny-random"], "would be ignored"),
            (["--predictor_baseline", "initial"], "needs --predictor self"),
            (["--predictor", "self", "--predictor_ema_decay", "1"], "must be in [0, 1)"),
            (["--predictor", "teacher"], "must be frozen or self"),
            (["--sft_predictor_loss_weight", "-1"], "must be >= 0"),
            (["--sft_predictor_plain_weight", "-0.5"], "--sft_predictor_plain_weight must be")):
        out = run_train("--preset", "smoke", *flags, "--run_dir", str(tmp_path / "never"),
                        timeout=120)
        assert out.returncode == 2 and fix in out.stderr, (flags, out.stderr[-2000:])
        assert "Traceback" not in out.stderr and not (tmp_path / "never").exists()
    # PPO needs its own venv (trl <= 1.12), so its refusal is checked in-process.
    from latent_env.training.config import PipelineArguments, RLArguments
    from latent_env.training.pipeline import check_predictor

    for rl in (RLArguments(predictor="self"), RLArguments(predictor_plain_weight=1.0)):
        with pytest.raises(ValueError, match="work with --algo grpo or rloo"):
            check_predictor(rl, PipelineArguments(algo="ppo"))
    check_predictor(RLArguments(predictor="self"), PipelineArguments(algo="rloo"))


@pytest.mark.slow
def test_rloo_runs_a_smoke_rl_stage(tmp_path):
    run_smoke_rl_stage(tmp_path / "rloo", "rloo")


@pytest.mark.slow
def test_rl_stage_with_the_supervised_anchor_on_screened_prompts(tmp_path):
    run_dir = tmp_path / "anchor"
    out = run_train("--preset", "smoke", "--stages", "sft,rl", "--rl_sft_anchor", "0.5",
                    "--rl_screen_per_family", "1", "--eval_per_family", "0",
                    "--run_dir", str(run_dir))
    assert out.returncode == 0, out.stderr[-3000:]
    from latent_env.tasks import FAMILIES

    n = len(FAMILIES)  # one prompt per family, all answered wrong (or unjudged) by tiny-random
    assert f"[rl] training on {n} of {n} screened prompts" in out.stdout
    assert f"run directory: {run_dir}  (metrics.json, config.json)" in out.stdout  # no eval/
    rl = json.loads((run_dir / "metrics.json").read_text())["rl"]
    assert rl["steps"] >= 1 and rl["last"]["anchor/nll"] > 0
    assert rl["screening"]["screened"] == n and rl["screening"]["accuracy"] == 0.0
    resolved = json.loads((run_dir / "config.json").read_text())
    assert resolved["rl"] == {"rl_sft_anchor": 0.5, "rl_anchor_batch_size": 8, "rl_turns": 1,
                              "predictor": "frozen", "predictor_baseline": "ema",
                              "predictor_ema_decay": 0.9, "predictor_loss_weight": 0.0,
                              "predictor_plain_weight": 0.0, "rl_screen_per_family": 1}


@pytest.mark.slow
def test_a_killed_run_resumes_without_repeating_finished_stages(tmp_path):
    run_dir = tmp_path / "run"
    args = ["--preset", "smoke", "--stages", "sft,latent", "--eval_per_family", "0",
            "--sft_epochs", "40", "--run_dir", str(run_dir)]
    proc = subprocess.Popen([sys.executable, "train_rl.py", *args], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not list((run_dir / "sft").glob("checkpoint-*/trainer_state.json")):
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-stage: sft has a checkpoint but no final model
    proc.wait()
    assert not (run_dir / "sft" / "final").exists()
    resumed = run_train(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout + resumed.stderr
    state = json.loads((run_dir / "state.json").read_text())
    assert set(state["stages"]) == {"sft", "latent"}
    assert not list(run_dir.glob("*/checkpoint-*"))  # the checkpoint it resumed from is pruned
    final_mtime = (run_dir / "sft" / "final" / "config.json").stat().st_mtime_ns
    again = run_train(*args, "--resume")
    assert again.returncode == 0 and "[sft] finished earlier" in again.stdout
    assert "[latent] finished earlier" in again.stdout
    assert (run_dir / "sft" / "final" / "config.json").stat().st_mtime_ns == final_mtime


@pytest.mark.slow
def test_a_run_killed_before_its_first_step_checkpoint_resumes_from_a_timed_one(tmp_path):
    """No --run_dir: --resume must find the run in runs/ by the state.json written at its start,
    and continue SFT from the checkpoint written by time (save_steps is never reached)."""
    args = [str(ROOT / "train_rl.py"), "--preset", "smoke", "--stages", "sft",
            "--eval_per_family", "0", "--sft_max_steps", "40", "--save_steps", "1000",
            "--save_every_minutes", "0.01"]
    proc = subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("runs/*/sft/checkpoint-*/trainer_state.json")):
        assert proc.poll() is None, "the run ended before its first timed checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (run_dir,) = tmp_path.glob("runs/*")
    checkpoint = last_checkpoint(run_dir / "sft")
    saved_step = int(checkpoint.name.split("-")[-1])
    assert 1 <= saved_step < 40 and not (run_dir / "sft" / "final").exists()
    assert json.loads((run_dir / "state.json").read_text())["running"] == "sft"
    resumed = subprocess.run([sys.executable, *args, "--resume"], cwd=tmp_path, env=ENV,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {checkpoint.relative_to(tmp_path)}" in resumed.stdout
    # It trains the remaining steps only (the smoke preset logs every step).
    assert resumed.stdout.count("{'loss'") == 40 - saved_step
    state = json.loads((run_dir / "state.json").read_text())
    assert state["running"] is None and state["stages"]["sft"]["metrics"]["steps"] == 40
    assert (run_dir / "sft" / "final" / "config.json").is_file()


@pytest.mark.slow
def test_two_process_cpu_launch_with_accelerate(tmp_path):
    """Two gloo processes: accelerate's torchrun launcher; TRL's use_cpu picks the CPU backend."""
    run_dir = tmp_path / "ddp"
    accelerate = Path(sys.executable).with_name("accelerate")
    out = subprocess.run(
        [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "train_rl.py",
         "--preset", "smoke", "--stages", "sft,rl", "--eval_per_family", "0",
         "--bootstrap_k", "2", "--rl_screen_per_family", "2", "--run_dir", str(run_dir)],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("[sft] starting from") == 2  # both ranks ran the stage
    # Screening (and bootstrap sampling) ran on rank 0 alone; both ranks train on its result.
    assert out.stdout.count("[rl] screening") == 1
    assert out.stdout.count("[rl] training on 26 of 26 screened prompts") == 2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["rl"]["steps"] == 2 and (run_dir / "rl" / "final").is_dir()
    assert metrics["sft"]["bootstrap"]["sampled"] > 0


def test_work_on_main_is_computed_once_per_process_without_a_process_group():
    from latent_env.training.run_context import on_main_then_shared

    calls = []
    assert on_main_then_shared(lambda: calls.append(1) or "result") == "result" and calls == [1]


def test_run_directory_defaults(tmp_path, monkeypatch):
    from latent_env.training.run_context import resolve_run_dir

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    fresh = resolve_run_dir("", False, root=tmp_path)
    assert fresh.parent == tmp_path and fresh.name[:8].isdigit()
    with pytest.raises(ValueError, match="no run with a state.json"):
        resolve_run_dir("", True, root=tmp_path)
    for name in ("20260101-000000", "20260102-000000"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "state.json").write_text("{}")
    assert resolve_run_dir("", True, root=tmp_path).name == "20260102-000000"
    assert resolve_run_dir("explicit", True, root=tmp_path) == Path("explicit")


@pytest.mark.slow
def test_saved_policies_generate_with_the_kv_cache(tmp_path):
    """Trainers save use_cache=False; left that way, generation recomputes every prefix."""
    run_dir = tmp_path / "run"
    out = run_train("--preset", "smoke", "--stages", "sft", "--eval_per_family", "0",
                    "--run_dir", str(run_dir))
    assert out.returncode == 0, out.stderr[-3000:]
    config = json.loads((run_dir / "sft" / "final" / "config.json").read_text())
    assert config["use_cache"] is True


def test_a_stage_that_cannot_go_on_ends_with_one_error_line(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "rl").mkdir(parents=True)
    (run_dir / "rl" / "screening.json").write_text(json.dumps({"screened": 9, "kept_ids": []}))
    out = run_train("--preset", "smoke", "--stages", "rl", "--rl_screen_per_family", "1",
                    "--resume", "--run_dir", str(run_dir))
    assert out.returncode == 1
    assert "train_rl.py: error: --rl_screen_per_family 1: the starting policy answered all 9" \
        in out.stderr
    assert "Traceback" not in out.stderr


def test_help_shows_the_presets_effective_defaults():
    out = run_train("--help", timeout=180)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())  # argparse wraps help text
    assert "Defaults shown: --preset default --algo grpo." in text
    assert "(default: sft,latent,fusion,rl)" in text  # the preset's stages
    assert "(default: 10)" in text and "(default: 40)" not in text  # its --latent_steps
    assert "(default: 1e-05)" in text and "(default: 1e-06)" not in text  # GRPO's learning rate
    smoke = " ".join(run_train("--preset", "smoke", "--help", timeout=180).stdout.split())
    assert "Defaults shown: --preset smoke --algo grpo." in smoke
    assert "(default: sft,latent,fusion,rl)" in smoke


def test_print_config_prints_the_resolved_configuration_and_writes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    out = run_train("--preset", "smoke", "--run_dir", str(run_dir), "--sft_epochs", "3",
                    "--print_config", timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    config = json.loads(out.stdout)
    assert config["pipeline"]["preset"] == "smoke" and config["sft"]["sft_epochs"] == 3
    assert config["pipeline"]["stages"] == "sft,latent,fusion,rl"
    assert set(config) == {"pipeline", "sft", "latent", "eval", "rl", "lora", "trl"}
    assert not run_dir.exists()


def test_vllm_and_ppo_are_refused_for_a_latent_thought_policy_in_one_line(tmp_path):
    from types import SimpleNamespace

    from latent_env.training.pipeline import check_engines

    vllm, plain = SimpleNamespace(use_vllm=True), SimpleNamespace(use_vllm=False)
    with pytest.raises(ValueError, match="drop --use_vllm, or run --stages sft,rl"):
        check_engines(PipelineArguments(), vllm)
    with pytest.raises(ValueError, match="use --algo grpo or rloo, or run --stages sft,rl"):
        check_engines(PipelineArguments(algo="ppo"), plain)
    check_engines(PipelineArguments(stages="sft,rl"), vllm)  # a plain causal LM: fine
    check_engines(PipelineArguments(stages="sft,latent"), vllm)  # no RL, no generation engine
    thought = tmp_path / "thought"
    thought.mkdir()
    (thought / "config.json").write_text(json.dumps({"model_type": "latent_thought"}))
    with pytest.raises(ValueError, match="a latent-thought checkpoint"):
        check_engines(PipelineArguments(model=str(thought), stages="rl"), vllm)
    out = run_train("--preset", "smoke", "--use_vllm", "true", "--run_dir",
                    str(tmp_path / "never"), timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "drop --use_vllm" in lines[0], out.stderr
    assert not (tmp_path / "never").exists()
