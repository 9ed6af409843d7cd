"""LT-Tuning curriculum data: confidence-driven ``<thinking>`` insertion, one dataset per stage.

At each stage the *current* model reads the explicit traces (prompt + completion, TRL's
prompt-completion format) with teacher forcing. At every completion position whose gold next
token gets probability below the stage threshold, ``<thinking>`` is inserted before that token:
one with probability 0.85, two in a row with probability 0.15 (a seeded numpy Generator per
trace), at most ``max_thinking`` per trace. When more positions qualify than the cap allows, the
least confident ones win. Nothing is ever inserted inside the prompt.

Tokenisation follows TRL's SFTTrainer: ``prompt`` and ``prompt + completion`` are tokenised, the
completion is what follows the prompt's tokens, and EOS is appended. The output items carry both
the text form (``prompt`` / ``completion`` with ``<thinking>`` in it) and the tokenised form
(``input_ids`` / ``completion_mask``, what SFTTrainer trains on with ``completion_only_loss``,
``<thinking>`` included in the labels) so retokenising the text can never shift an insertion.

Stages (paper defaults): thresholds [0.0, 0.3, 0.2], modes [hidden, hidden, fusion], alphas
[0.5, 0.5, 0.6]. Stage 1 (threshold 0) is plain explicit-CoT SFT; alpha matters in fusion only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from latent_env.tokens import pad_token_id


@dataclass(frozen=True)
class StageSpec:
    """One curriculum stage: insertion threshold, latent mode and fusion weight, epochs."""

    threshold: float
    mode: str
    alpha: float
    epochs: float = 1.0


DEFAULT_STAGES: tuple[StageSpec, ...] = (
    StageSpec(threshold=0.0, mode="hidden", alpha=0.5),
    StageSpec(threshold=0.3, mode="hidden", alpha=0.5),
    StageSpec(threshold=0.2, mode="fusion", alpha=0.6),
)


@dataclass(frozen=True)
class InsertionSettings:
    """How ``<thinking>`` tokens are inserted."""

    max_thinking: int = 10
    double_probability: float = 0.15
    seed: int = 0
    batch_size: int = 8


@dataclass
class StageExample:
    """One trace with ``<thinking>`` inserted."""

    prompt: str
    completion: str
    input_ids: list[int]
    completion_mask: list[int]
    thinking_positions: list[int] = field(default_factory=list)

    def as_processed(self) -> dict[str, list[int]]:
        """TRL's pre-tokenised format (SFTTrainer skips its own tokenisation)."""
        return {"input_ids": self.input_ids, "completion_mask": self.completion_mask}

    def as_prompt_completion(self) -> dict[str, str]:
        """TRL's prompt-completion text format."""
        return {"prompt": self.prompt, "completion": self.completion}


def tokenize_trace(
    tokenizer: Any, prompt: str, completion: str, add_eos: bool = True
) -> tuple[list[int], list[int]]:
    """``(prompt_ids, completion_ids)`` the way TRL's SFTTrainer tokenises a trace.

    Like TRL: ``tokenizer(prompt)`` and ``tokenizer(prompt + completion)`` with the tokenizer's
    default special tokens; the completion is what follows the prompt's ids, plus EOS.
    """
    prompt_ids = tokenizer(text=prompt).input_ids
    joined = tokenizer(text=prompt + completion).input_ids
    if joined[: len(prompt_ids)] == prompt_ids:
        completion_ids = joined[len(prompt_ids) :]
    else:  # the boundary merged into one token: keep the two parts apart
        completion_ids = tokenizer(completion, add_special_tokens=False).input_ids
    if add_eos and tokenizer.eos_token_id is not None:
        completion_ids = completion_ids + [tokenizer.eos_token_id]
    return prompt_ids, completion_ids


@torch.no_grad()
def completion_logprobs(
    model: Any,
    sequences: Sequence[tuple[list[int], list[int]]],
    pad_token_id: int,
    batch_size: int = 8,
) -> Iterator[torch.Tensor]:
    """Per trace, ``(n_completion, vocab)`` next-token log-probs predicting each completion token.

    Batched, no-grad teacher forcing with left padding, so only the last ``max completion + 1``
    positions go through the LM head. The model is put in eval mode for the pass.
    """
    was_training = model.training
    model.eval()
    try:
        for first in range(0, len(sequences), batch_size):
            yield from _completion_logprobs_batch(
                model, sequences[first : first + batch_size], pad_token_id
            )
    finally:
        model.train(was_training)


def _completion_logprobs_batch(
    model: Any, batch: Sequence[tuple[list[int], list[int]]], pad_token_id: int
) -> list[torch.Tensor]:
    rows = [prompt + completion for prompt, completion in batch]
    width = max(len(row) for row in rows)
    keep = max(len(completion) for _, completion in batch) + 1
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        input_ids[index, width - len(row) :] = torch.tensor(row)
        mask[index, width - len(row) :] = 1
    device = next(model.parameters()).device
    logits = model(
        input_ids=input_ids.to(device), attention_mask=mask.to(device), logits_to_keep=keep
    ).logits
    logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
    # Kept position keep-1 is the last token; the predictions of the n completion tokens sit at
    # kept positions keep-n-1 … keep-2.
    return [logprobs[i, keep - len(c) - 1 : keep - 1] for i, (_, c) in enumerate(batch)]


def gold_probabilities(
    model: Any,
    sequences: Sequence[tuple[list[int], list[int]]],
    pad_token_id: int,
    batch_size: int = 8,
) -> list[np.ndarray]:
    """p(gold completion token | everything before it) for every completion token."""
    out = []
    for (_, completion), logprobs in zip(
        sequences, completion_logprobs(model, sequences, pad_token_id, batch_size), strict=True
    ):
        gold = logprobs.gather(-1, torch.tensor(completion).unsqueeze(-1)).squeeze(-1)
        out.append(gold.exp().numpy())
    return out


def thinking_counts(
    probabilities: np.ndarray,
    threshold: float,
    rng: np.random.Generator,
    max_thinking: int = 10,
    double_probability: float = 0.15,
) -> dict[int, int]:
    """How many ``<thinking>`` go before each completion token (index → 1 or 2).

    Positions with probability < ``threshold`` qualify, least confident first; each gets two
    tokens with ``double_probability``, else one, until ``max_thinking`` tokens are used.
    """
    low = [int(j) for j in np.flatnonzero(probabilities < threshold)]
    low.sort(key=lambda j: (float(probabilities[j]), j))
    counts: dict[int, int] = {}
    remaining = max_thinking
    for position in low:
        if remaining <= 0:
            break
        count = 2 if rng.random() < double_probability else 1
        counts[position] = min(count, remaining)
        remaining -= counts[position]
    return counts


def build_example(
    tokenizer: Any,
    prompt: str,
    prompt_ids: list[int],
    completion_ids: list[int],
    counts: dict[int, int],
    thinking_token_id: int,
) -> StageExample:
    """Insert ``counts[j]`` thinking tokens before completion token j; text and ids."""
    new_completion: list[int] = []
    for index, token in enumerate(completion_ids):
        new_completion.extend([thinking_token_id] * counts.get(index, 0))
        new_completion.append(token)
    input_ids = prompt_ids + new_completion
    positions = [
        i for i, t in enumerate(input_ids) if t == thinking_token_id and i >= len(prompt_ids)
    ]
    text_completion = new_completion
    if tokenizer.eos_token_id is not None and new_completion[-1:] == [tokenizer.eos_token_id]:
        text_completion = new_completion[:-1]  # TRL appends EOS to the text form itself
    return StageExample(
        prompt=prompt,
        completion=tokenizer.decode(text_completion),
        input_ids=input_ids,
        completion_mask=[0] * len(prompt_ids) + [1] * len(new_completion),
        thinking_positions=positions,
    )


def build_stage_examples(
    model: Any,
    tokenizer: Any,
    traces: Sequence[dict[str, str]],
    threshold: float,
    settings: InsertionSettings = InsertionSettings(),
    stage_index: int = 0,
) -> list[StageExample]:
    """Run ``model`` over ``traces`` and insert ``<thinking>`` at its low-confidence positions."""
    thinking_id = model.config.thinking_token_id
    sequences = [tokenize_trace(tokenizer, t["prompt"], t["completion"]) for t in traces]
    pad = pad_token_id(tokenizer)
    if threshold > 0.0:
        probabilities = gold_probabilities(model, sequences, pad, settings.batch_size)
    else:  # nothing can fall below 0: skip the model pass
        probabilities = [np.ones(len(completion)) for _, completion in sequences]
    examples = []
    pairs = zip(traces, sequences, probabilities, strict=True)
    for index, (trace, (prompt_ids, completion_ids), probs) in enumerate(pairs):
        # One generator per (seed, stage, trace): a trace's draws do not depend on the others.
        rng = np.random.default_rng([settings.seed, stage_index, index])
        counts = thinking_counts(
            probs, threshold, rng, settings.max_thinking, settings.double_probability
        )
        examples.append(
            build_example(
                tokenizer, trace["prompt"], prompt_ids, completion_ids, counts, thinking_id
            )
        )
    return examples


@dataclass
class Stage:
    """One stage's settings and data, built with the model as trained up to that stage."""

    index: int
    spec: StageSpec
    examples: list[StageExample]

    def dataset(self) -> Any:
        """A ``datasets.Dataset`` in TRL's pre-tokenised format (input_ids, completion_mask)."""
        from datasets import Dataset

        return Dataset.from_list([example.as_processed() for example in self.examples])

    @property
    def thinking_tokens(self) -> int:
        return sum(len(example.thinking_positions) for example in self.examples)


class StageManager:
    """Iterate the LT-Tuning stages; each step sets the model's latent mode and rebuilds data.

    Usage::

        manager = StageManager(model, tokenizer, traces)
        for stage in manager:  # built lazily, with the model as trained so far
            SFTTrainer(model=model, args=..., train_dataset=stage.dataset(), ...).train()
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        traces: Sequence[dict[str, str]],
        stages: Sequence[StageSpec] = DEFAULT_STAGES,
        settings: InsertionSettings = InsertionSettings(),
        first_stage: int = 0,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.traces = list(traces)
        self.stages = list(stages)
        self.settings = settings
        self.first_stage = first_stage

    def build(self, index: int) -> Stage:
        """Switch the model to stage ``index`` and build that stage's data with it."""
        spec = self.stages[index]
        self.model.set_latent_mode(mode=spec.mode, alpha=spec.alpha)
        examples = build_stage_examples(
            self.model, self.tokenizer, self.traces, spec.threshold, self.settings, index
        )
        return Stage(index, spec, examples)

    def __iter__(self) -> Iterator[Stage]:
        for index in range(self.first_stage, len(self.stages)):
            yield self.build(index)
