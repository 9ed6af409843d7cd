"""A supervised anchor for the RL stage: every RL loss plus ``coef`` × NLL of a few gold traces.

InstructGPT's PPO-ptx mixes the pre-training loss into PPO so that RL does not undo what earlier
training taught on inputs the RL batch does not cover. Here the mixed-in loss is the SFT stage's
own objective (the latent of a gold trace given its prompt, loss on the latent only), on a fresh
batch of gold traces at every step. Why: with a few prompts per RL step, an update that helps one
kind of task can break a neighbouring one; on the default model, 10 GRPO steps on dates that
*add* days made the policy write ``timedelta`` programs for tasks that ask for the days
*between* two dates (README, "Does it learn?"; at weight 1 the anchor did not prevent that). The
anchor costs one extra forward and backward pass of ``batch_size`` traces per step. A
:class:`TraceBatches` is a loss term of :mod:`latent_env.training.loss_terms`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

IGNORE_INDEX = -100  # label of prompt and padding positions: no loss


class TraceBatches:
    """Gold traces tokenised with the chat template, served as padded batches in a seeded cycle."""

    def __init__(
        self,
        records: Sequence[dict[str, Any]],
        tokenizer: Any,
        batch_size: int,
        coef: float,
        seed: int = 0,
    ) -> None:
        import torch

        if not records:
            raise ValueError("the supervised anchor needs at least one gold trace")
        self.coef, self.batch_size = coef, batch_size
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.examples = [tokenise_trace(r, tokenizer) for r in records]
        self._generator = torch.Generator().manual_seed(seed)
        self._order: list[int] = []

    def next_batch(self) -> dict[str, Any]:
        import torch

        if len(self._order) < self.batch_size:
            self._order += torch.randperm(len(self.examples), generator=self._generator).tolist()
        picked = [self.examples[i] for i in self._order[: self.batch_size]]
        del self._order[: self.batch_size]
        width = max(len(ids) for ids, _ in picked)
        ids = torch.full((len(picked), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(picked), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(picked), width), dtype=torch.long)
        for row, (tokens, n_prompt) in enumerate(picked):
            ids[row, : len(tokens)] = torch.tensor(tokens)
            labels[row, n_prompt : len(tokens)] = torch.tensor(tokens[n_prompt:])
            mask[row, : len(tokens)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def __call__(self, model: Any, inputs: Any = None) -> tuple[Any, dict[str, float]]:
        """The loss term: ``coef`` × :meth:`loss`, logged as ``anchor/nll``."""
        nll = self.loss(model)
        return self.coef * nll, {"anchor/nll": float(nll.detach())}

    def loss(self, model: Any) -> Any:
        """Mean NLL per latent token of the next batch under ``model`` (with gradients)."""
        import torch.nn.functional as F

        batch = {k: v.to(model.device) for k, v in self.next_batch().items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return F.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(),
            batch["labels"][:, 1:].flatten(),
            ignore_index=IGNORE_INDEX,
        )


def tokenise_trace(record: dict[str, Any], tokenizer: Any) -> tuple[list[int], int]:
    """``(token ids of prompt + completion, number of prompt tokens)`` for a conversational
    prompt-completion record, as the SFT stage formats it."""
    prompt = _ids(tokenizer.apply_chat_template(record["prompt"], add_generation_prompt=True))
    full = _ids(tokenizer.apply_chat_template(record["prompt"] + record["completion"]))
    if full[: len(prompt)] != prompt:
        raise ValueError("the chat template renders the prompt differently inside the full trace")
    return full, len(prompt)


def _ids(rendered: Any) -> list[int]:
    # transformers 5 returns a BatchEncoding from apply_chat_template(tokenize=True)
    return list(rendered["input_ids"] if hasattr(rendered, "keys") else rendered)
