"""Shared fixtures. One torch thread: with 2 threads on 2 shared cores torch stalls badly here."""

from __future__ import annotations

import os

os.environ.setdefault("LATENT_ENV_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer): the tiny random Llama with the default tokenizer."""
    from latent_env.models import load_model

    return load_model("tiny-random")


@pytest.fixture(scope="session")
def default_model():
    """(model, tokenizer): the real SmolLM2-135M-Instruct, fp32."""
    from latent_env.models import load_model

    return load_model("default")


@pytest.fixture(scope="session")
def default_scorer(default_model):
    from latent_env.scoring import LogLikScorer

    model, tokenizer = default_model
    return LogLikScorer(model, tokenizer)
