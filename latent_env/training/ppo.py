"""PPO (``trl.experimental.ppo``) with the environment as its reward model.

TRL's PPO asks for a reward *model*: it calls ``getattr(rm, rm.base_model_prefix)(input_ids, …)``
and reads ``rm.score(hidden_states[-1])`` at the last response token. :class:`EnvRewardModel`
satisfies that shape: its "backbone" decodes each query+response, finds the task by its prompt,
runs the response through the environment (sandbox, scorer) and returns the reward as a one-unit
"hidden state" at every position; ``score`` is the identity. Nothing is learned in it.

Devices: the query batch comes to the host in one copy to be decoded, and the rewards go back to
the batch's device, where TRL indexes them with its sequence lengths. ``config`` is an empty
``PretrainedConfig``, which TRL's DeepSpeed preparation reads (it has no hidden size to tune).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from latent_env.devices import to_host
from latent_env.training.checkpoints import last_checkpoint
from latent_env.training.reward import EnvReward

ASSISTANT_MARKER = "<|im_start|>assistant\n"


class EnvBackbone(torch.nn.Module):
    def __init__(self, reward: EnvReward, tokenizer: Any, tasks_by_prompt: dict[str, str]):
        super().__init__()
        self.reward, self.tokenizer, self.tasks_by_prompt = reward, tokenizer, tasks_by_prompt

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any):
        texts = [
            self.tokenizer.decode([t for t, m in zip(ids, mask) if m], skip_special_tokens=False)
            for ids, mask in zip(to_host(input_ids), to_host(attention_mask))
        ]
        prompts, completions = zip(*(split_query_response(t) for t in texts))
        tasks = [self.tasks_by_prompt[prompt_key(p)] for p in prompts]
        values = self.reward(list(prompts), list(completions), task=tasks)
        hidden = torch.tensor(values, dtype=torch.float32, device=input_ids.device).view(-1, 1, 1)
        hidden = hidden.expand(-1, input_ids.shape[1], 1).contiguous()
        return SimpleNamespace(hidden_states=(hidden,))


class EnvRewardModel(torch.nn.Module):
    """A reward "model" whose reward is the environment's (see module docstring)."""

    base_model_prefix = "backbone"

    def __init__(self, reward: EnvReward, tokenizer: Any, tasks_by_prompt: dict[str, str]):
        super().__init__()
        from transformers import PretrainedConfig

        self.config = PretrainedConfig()
        self.backbone = EnvBackbone(reward, tokenizer, tasks_by_prompt)
        # PPOTrainer moves modules between devices and dtypes; give it a parameter to move.
        self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)

    def score(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden


def prompt_key(prompt: str) -> str:
    """Prompts as PPO hands them back: padding (= the end-of-turn token here) is masked out."""
    return prompt.replace("<|im_end|>", "").strip()


def split_query_response(text: str) -> tuple[str, str]:
    """Cut a chat-formatted query+response at the last assistant marker; drop end tokens."""
    cut = text.rfind(ASSISTANT_MARKER)
    if cut < 0:
        return text, ""
    prompt = text[: cut + len(ASSISTANT_MARKER)]
    response = text[cut + len(ASSISTANT_MARKER) :]
    for end in ("<|im_end|>", "<|endoftext|>"):
        response = response.split(end, 1)[0]
    return prompt.lstrip(), response


def run_ppo(policy: Any, model_path: str, tokenizer: Any, env: Any, records: list[dict],
            config: Any, out_dir: Path, resume: bool) -> tuple[Path, dict]:
    """PPO from ``policy`` (loaded from ``model_path``, which the value model starts from)."""
    import copy

    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification

    from latent_env.training.algos import ppo_module

    PPOTrainer = ppo_module().PPOTrainer
    prompts = [
        tokenizer.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True)
        for r in records
    ]
    tasks_by_prompt = {prompt_key(p): r["task"] for p, r in zip(prompts, records)}
    dataset = Dataset.from_dict(
        {"input_ids": [tokenizer(p, add_special_tokens=False).input_ids for p in prompts]}
    )
    from latent_env.models import checkpoint_path

    model_path = checkpoint_path(model_path)
    reference = copy.deepcopy(policy).eval()  # frozen by PPO; a copy, not a second load
    value = AutoModelForSequenceClassification.from_pretrained(
        model_path, num_labels=1, dtype=torch.float32
    )
    value.config.pad_token_id = tokenizer.pad_token_id
    tokenizer.padding_side = "left"  # PPO generates from a batch of queries
    reward_model = EnvRewardModel(EnvReward(env), tokenizer, tasks_by_prompt)
    config.stop_token = "eos"
    trainer = PPOTrainer(
        args=config, processing_class=tokenizer, model=policy, ref_model=reference,
        reward_model=reward_model, train_dataset=dataset, value_model=value,
    )
    if resume and last_checkpoint(out_dir):
        print("[rl] PPO cannot resume mid-stage (TRL's PPOTrainer has no resume); restarting it")
    trainer.train()
    final = out_dir / "final"
    trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    history = trainer.state.log_history
    scores = [h["objective/scores"] for h in history if "objective/scores" in h]
    return final, {"steps": trainer.state.global_step, "first_score": scores[0] if scores else None,
                   "last_score": scores[-1] if scores else None, "tasks": len(records)}

