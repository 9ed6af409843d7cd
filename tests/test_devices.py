"""Device discipline (latent_env.devices) on a CPU machine.

The models sit on a stand-in accelerator (``meta``, with CUDA's same-device rule enforced on every
operator: tests/device_checks.py). A batch built on the host and never moved, or a result made on
the host and indexed with device tensors, raises here as it would on a GPU. Each test runs one
real path: the scorer, ``HFPolicy``, the PPO reward model and a GRPO reward call.
"""

from __future__ import annotations

import json

import pytest
import torch

from latent_env import devices
from tests.device_checks import ACCELERATOR, SameDevice, host_copies, tiny_lm_on_accelerator


@pytest.fixture(scope="module")
def tokenizer():
    from latent_env.models import load_tokenizer

    return load_tokenizer("tiny-random")


def test_the_accelerator_is_the_local_rank_cuda_device_or_the_override(monkeypatch):
    monkeypatch.setenv(devices.DEVICE_ENV, "meta")
    assert devices.accelerator() == torch.device("meta")
    assert devices.resolve_device("auto") == torch.device("meta")
    assert devices.resolve_device("cpu") == torch.device("cpu")
    monkeypatch.delenv(devices.DEVICE_ENV)
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.accelerator() == torch.device("cuda", 3)


def test_a_policy_rng_forks_the_generator_of_its_own_cuda_device():
    assert devices.rng_devices(torch.device("cuda", 1)) == [1]
    assert devices.rng_devices(torch.device("cpu")) == []


def test_dtypes_default_to_fp32_and_refuse_fp16_on_the_cpu():
    assert devices.resolve_dtype("", torch.device("cpu")) is torch.float32
    assert devices.resolve_dtype("bfloat16", torch.device("cuda", 0)) is torch.bfloat16
    with pytest.raises(ValueError, match="float16 on the CPU"):
        devices.resolve_dtype("float16", torch.device("cpu"))
    with pytest.raises(ValueError, match="must be one of"):
        devices.resolve_dtype("fp8", torch.device("cpu"))


def test_the_same_device_rule_catches_a_host_batch():
    model = tiny_lm_on_accelerator(16)
    with SameDevice(), pytest.raises(RuntimeError, match="same device"):
        model(torch.zeros(1, 4, dtype=torch.long))


def test_the_scorer_builds_its_batch_on_the_models_device(monkeypatch, tokenizer):
    import latent_env.scoring as scoring

    copies = host_copies(monkeypatch, scoring)
    scorer = scoring.LogLikScorer(tiny_lm_on_accelerator(len(tokenizer)), tokenizer)
    with SameDevice():
        results = scorer.score(["The sum is", "x"], [" 12.", " y z w"])
    assert [r.n_tokens for r in results] == [len(tokenizer(c).input_ids) for c in (" 12.", " y z w")]
    assert copies == [ACCELERATOR]  # one host copy for the whole batch


def test_hf_policy_generates_on_the_models_device(monkeypatch, tokenizer):
    import latent_env.agents.hf as hf
    from latent_env.agents.hf import HFPolicy

    copies = host_copies(monkeypatch, hf)
    policy = HFPolicy(model="tiny-random", max_new_tokens=3, temperature=0.7,
                      loaded=(tiny_lm_on_accelerator(len(tokenizer)), tokenizer))
    with SameDevice():
        samples = policy.sample(["first prompt", "second, longer prompt"], 2, 0.7)
    assert [len(group) for group in samples] == [2, 2]
    assert copies and set(copies) == {ACCELERATOR}


def test_ppo_rewards_land_on_the_query_device_for_trls_indexing(monkeypatch, tokenizer):
    """TRL's ``get_reward`` indexes the reward "logits" with device sequence lengths."""
    import latent_env.training.ppo as ppo

    prompt = "<|im_start|>user\nWhat comes next?<|im_end|>\n" + ppo.ASSISTANT_MARKER
    ids = tokenizer([prompt + "42"], add_special_tokens=False).input_ids
    host_ids = torch.tensor(ids)
    on_device = host_ids.to(ACCELERATOR), torch.ones_like(host_ids).to(ACCELERATOR)
    host_copies(monkeypatch, ppo, {id(on_device[0]): ids, id(on_device[1]): [[1] * len(ids[0])]})
    seen = {}

    def reward(prompts, completions, task):
        seen.update(completions=completions, task=task)
        return [0.5]

    model = ppo.EnvRewardModel(reward, tokenizer, {ppo.prompt_key(prompt): "task-json"})
    assert isinstance(model.config.to_dict(), dict)  # DeepSpeed preparation reads it
    with SameDevice():
        hidden = model.backbone(*on_device).hidden_states[-1]
        lengths = torch.tensor([host_ids.shape[1] - 1]).to(ACCELERATOR)
        model.score(hidden)[torch.arange(1, device=hidden.device), lengths]
    assert seen == {"completions": ["42"], "task": ["task-json"]}


def test_a_grpo_reward_call_scores_on_the_accelerator(monkeypatch, tokenizer):
    import latent_env.scoring as scoring
    from latent_env.env import LatentEnv
    from latent_env.tasks import load_tasks
    from latent_env.training.rl import reward_functions

    copies = host_copies(monkeypatch, scoring)
    env = LatentEnv(tasks=None, scorer=scoring.LogLikScorer(
        tiny_lm_on_accelerator(len(tokenizer)), tokenizer))
    task = next(iter(load_tasks("synthetic-small", split="train")))
    funcs, _ = reward_functions(env.engine)
    with SameDevice():
        rewards = funcs[0](["p"], ["<|latent|>print(1)<|latent|>"], task=[json.dumps(task.to_dict())])
    assert rewards == [0.0] and copies and set(copies) == {ACCELERATOR}


def test_the_reward_scorer_is_placed_on_the_accelerator_in_its_dtype(monkeypatch):
    from latent_env.devices import model_device
    from latent_env.training.config import PipelineArguments
    from latent_env.training.run_context import CPU_REWARD_BATCH_TOKENS, reward_scorer

    monkeypatch.setenv(devices.DEVICE_ENV, "meta")
    scorer = reward_scorer(PipelineArguments(model="tiny-random", reward_dtype="bfloat16"))
    assert model_device(scorer.model) == ACCELERATOR
    assert next(scorer.model.parameters()).dtype is torch.bfloat16
    assert scorer.batch_tokens == CPU_REWARD_BATCH_TOKENS  # meta is no GPU
    assert reward_scorer(PipelineArguments(model="tiny-random", reward_batch_tokens=512)
                         ).batch_tokens == 512


def test_bad_reward_and_eval_dtypes_are_refused_with_the_choices():
    from latent_env.training.config import EvalArguments, PipelineArguments

    with pytest.raises(ValueError, match="--reward_dtype must be one of float32, bfloat16"):
        PipelineArguments(reward_dtype="half")
    with pytest.raises(ValueError, match="--eval_dtype must be one of"):
        EvalArguments(eval_dtype="fp16")
    with pytest.raises(ValueError, match="--reward_batch_tokens must be >= 0"):
        PipelineArguments(reward_batch_tokens=-1)
