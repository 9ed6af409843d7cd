"""LoRA for the sft and rl stages: flags, the saved adapter and merged model, and loading both."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latent_env.models import checkpoint_path, load_model
from latent_env.training.config import LoraArguments
from latent_env.training.lora import check_lora, peft_config
from latent_env.training.sft import run_sft, sft_config

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1",
       "LATENT_ENV_THREADS": "1"}
pytest.importorskip("peft")


def test_bad_lora_flags_and_uncovered_stages_are_rejected_with_a_fix():
    with pytest.raises(ValueError, match="--lora_r must be >= 0"):
        LoraArguments(lora_r=-1)
    with pytest.raises(ValueError, match=r"--lora_dropout must be in \[0, 1\)"):
        LoraArguments(lora_dropout=1.0)
    with pytest.raises(ValueError, match="--lora_target_modules is empty"):
        LoraArguments(lora_target_modules=" , ")
    with pytest.raises(ValueError, match="latent,fusion train every weight"):
        check_lora(LoraArguments(lora_r=4), ["sft", "latent", "fusion", "rl"], "grpo")
    with pytest.raises(ValueError, match="--algo grpo or rloo"):
        check_lora(LoraArguments(lora_r=4), ["sft", "rl"], "ppo")
    check_lora(LoraArguments(lora_r=4), ["sft"], "ppo")  # PPO unused: fine
    check_lora(LoraArguments(), ["sft", "latent", "fusion", "rl"], "ppo")  # LoRA off: anything


def test_peft_config_follows_the_flags():
    assert peft_config(LoraArguments()) is None
    config = peft_config(LoraArguments(lora_r=8, lora_target_modules="q_proj, v_proj"))
    assert (config.r, config.lora_alpha, set(config.target_modules)) == (8, 16, {"q_proj", "v_proj"})
    assert peft_config(LoraArguments(lora_r=4, lora_alpha=32)).lora_alpha == 32
    assert peft_config(LoraArguments(lora_r=4)).target_modules == "all-linear"


def records(n: int = 8) -> list[dict]:
    return [{"prompt": [{"role": "user", "content": f"add {i} and {i}"}],
             "completion": [{"role": "assistant", "content": f"<python>print({i} + {i})</python>"}]}
            for i in range(n)]


def test_lora_sft_saves_a_merged_model_and_an_adapter_that_load_alike(tiny, tmp_path):
    _, tokenizer = tiny
    base_path = checkpoint_path("tiny-random")
    model, _ = load_model(base_path)
    before = copy.deepcopy(model.state_dict())
    config = sft_config(tmp_path / "sft", epochs=1, max_steps=2, learning_rate=1e-2,
                        batch_size=4, seed=0, report_to=[])
    config.save_strategy, config.disable_tqdm = "no", True
    final, metrics = run_sft(model, tokenizer, records(), tmp_path / "sft", config, resume=False,
                             peft_config=peft_config(LoraArguments(lora_r=4)))
    assert metrics["steps"] == 2
    adapter = final / "adapter"
    assert (final / "config.json").is_file() and not (final / "adapter_config.json").exists()
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] \
        == base_path
    merged, _ = load_model(str(final))
    loaded, _ = load_model(str(adapter))  # the adapter, merged onto the base it records
    assert not hasattr(loaded, "peft_config")
    changed = [n for n, p in merged.state_dict().items() if not torch.equal(p, before[n])]
    # Only adapted (linear) weights moved; embeddings and norms are as they were.
    assert changed and all("proj" in n for n in changed)
    ids = torch.tensor([tokenizer("print(3 + 3)")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, loaded(ids).logits, atol=1e-5)


@pytest.mark.slow
def test_train_rl_with_lora_runs_sft_and_grpo_and_records_it(tmp_path):
    run_dir = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, "train_rl.py", "--preset", "smoke", "--stages", "sft,rl",
         "--lora_r", "4", "--eval_per_family", "0", "--run_dir", str(run_dir)],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for stage in ("sft", "rl"):
        assert (run_dir / stage / "final" / "adapter" / "adapter_config.json").is_file()
    rl_adapter = json.loads((run_dir / "rl/final/adapter/adapter_config.json").read_text())
    # The rl adapter was trained on the sft stage's merged model, by an absolute path.
    assert rl_adapter["base_model_name_or_path"] == str((run_dir / "sft" / "final").resolve())
    assert json.loads((run_dir / "config.json").read_text())["lora"]["lora_r"] == 4
    load_model(str(run_dir / "rl/final/adapter"))


def test_train_rl_refuses_lora_with_the_latent_stages_in_one_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "train_rl.py", "--preset", "smoke", "--lora_r", "4",
         "--run_dir", str(tmp_path / "run")],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "train_rl.py: error: --lora_r applies to the sft and rl stages; latent,fusion train every "
        "weight: drop them from --stages or set --lora_r 0"]
    assert not (tmp_path / "run").exists()


def test_a_reporter_that_is_not_installed_is_named_with_its_extra(monkeypatch):
    from transformers.integrations import integration_utils

    from latent_env.training.extras import require_reporters

    monkeypatch.setattr(integration_utils, "get_available_reporting_integrations",
                        lambda: ["tensorboard"])
    require_reporters(["tensorboard", "none"])
    with pytest.raises(ValueError, match=r"wandb is not installed \(pip install "
                                         r"'latent-env\[wandb\]'\)"):
        require_reporters(["tensorboard", "wandb"])
    with pytest.raises(ValueError, match="mlflow is not installed"):
        require_reporters(["mlflow"])
    with pytest.raises(ValueError, match="--report_to tensorbored: not a reporting integration"):
        require_reporters(["tensorbored"])


def test_train_rl_report_to_wandb_without_wandb_is_one_line(tmp_path):
    import importlib.util

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    out = subprocess.run(
        [sys.executable, "train_rl.py", "--preset", "smoke", "--report_to", "wandb",
         "--run_dir", str(tmp_path / "run")],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines() == [
        "train_rl.py: error: --report_to wandb: wandb is not installed (pip install "
        "'latent-env[wandb]'), or drop it from --report_to"]
