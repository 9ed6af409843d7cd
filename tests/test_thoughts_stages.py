"""Stage data: confidence-driven <thinking> insertion and the StageManager."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latent_env.models import load_model
from latent_env.thoughts import DEFAULT_STAGES, InsertionSettings, StageManager, add_thinking_token
from latent_env.thoughts.stages import (
    build_stage_examples,
    gold_probabilities,
    thinking_counts,
    tokenize_trace,
)
from latent_env.thoughts.traces import arithmetic_traces, format_trace

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    base, tokenizer = load_model("tiny-random", threads=1)
    return add_thinking_token(base, tokenizer), tokenizer


@pytest.fixture(scope="module")
def traces():
    return arithmetic_traces(6, seed=1)


def test_paper_stage_defaults():
    assert [s.threshold for s in DEFAULT_STAGES] == [0.0, 0.3, 0.2]
    assert [s.alpha for s in DEFAULT_STAGES] == [0.5, 0.5, 0.6]
    assert [s.mode for s in DEFAULT_STAGES] == ["hidden", "hidden", "fusion"]


def test_threshold_zero_inserts_nothing(tiny, traces):
    model, tokenizer = tiny
    for example, trace in zip(
        build_stage_examples(model, tokenizer, traces, 0.0), traces, strict=True
    ):
        assert example.thinking_positions == []
        assert example.completion == trace["completion"]


def test_threshold_above_one_fills_every_position_up_to_the_cap(tiny, traces):
    model, tokenizer = tiny
    tid = model.thinking_token_id
    short = [format_trace("Q?", "print(1)", "1", " 1.")]
    capped = InsertionSettings(max_thinking=10, double_probability=0.0)
    for example in build_stage_examples(model, tokenizer, traces + short, 1.01, capped):
        n_prompt = example.completion_mask.index(1)
        plain = [t for t in example.input_ids[n_prompt:] if t != tid]
        assert len(plain) > 10
        assert len(example.thinking_positions) == 10  # every position qualifies: the cap binds
    with_doubles = InsertionSettings(max_thinking=10, double_probability=0.5)
    for example in build_stage_examples(model, tokenizer, traces, 1.01, with_doubles):
        assert len(example.thinking_positions) == 10
    unlimited = InsertionSettings(max_thinking=10_000, double_probability=0.0)
    example = build_stage_examples(model, tokenizer, short, 1.01, unlimited)[0]
    n_prompt = example.completion_mask.index(1)
    # one <thinking> before every completion token, EOS included
    completion = example.input_ids[n_prompt:]
    assert completion[0::2] == [tid] * (len(completion) // 2)
    assert tid not in completion[1::2]


def test_insertion_is_seeded_and_never_inside_the_prompt(tiny, traces):
    model, tokenizer = tiny
    tid = model.thinking_token_id
    first = build_stage_examples(model, tokenizer, traces, 1.01, InsertionSettings(seed=3))
    again = build_stage_examples(model, tokenizer, traces, 1.01, InsertionSettings(seed=3))
    other = build_stage_examples(model, tokenizer, traces, 1.01, InsertionSettings(seed=4))
    assert [e.input_ids for e in first] == [e.input_ids for e in again]
    assert [e.input_ids for e in first] != [e.input_ids for e in other]
    for example, trace in zip(first, traces, strict=True):
        prompt_ids, completion_ids = tokenize_trace(tokenizer, trace["prompt"], trace["completion"])
        n_prompt = len(prompt_ids)
        assert example.input_ids[:n_prompt] == prompt_ids
        assert example.completion_mask == [0] * n_prompt + [1] * (len(example.input_ids) - n_prompt)
        assert min(example.thinking_positions) >= n_prompt
        assert [t for t in example.input_ids[n_prompt:] if t != tid] == completion_ids


def test_low_confidence_positions_get_the_tokens():
    """Only positions under the threshold qualify, least confident first, 1 or 2 each."""
    probs = np.array([0.9, 0.05, 0.5, 0.01, 0.25, 0.95])
    counts = thinking_counts(probs, 0.3, np.random.default_rng(0), max_thinking=10)
    assert set(counts) == {1, 3, 4}
    capped = thinking_counts(probs, 0.3, np.random.default_rng(0), max_thinking=1)
    assert capped == {3: 1}  # the least confident position wins the only slot


def test_one_or_two_tokens_with_probabilities_085_and_015():
    probs = np.zeros(20_000)
    counts = thinking_counts(probs, 0.5, np.random.default_rng(7), max_thinking=10**9)
    values = np.array(list(counts.values()))
    assert set(values.tolist()) == {1, 2}
    assert abs((values == 2).mean() - 0.15) < 0.01


def test_gold_probabilities_match_an_unpadded_forward(tiny, traces):
    model, tokenizer = tiny
    sequences = [tokenize_trace(tokenizer, t["prompt"], t["completion"]) for t in traces[:3]]
    batched = gold_probabilities(model, sequences, tokenizer.pad_token_id, batch_size=3)
    prompt, completion = sequences[1]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + completion])).logits[0]
    expected = torch.softmax(logits[len(prompt) - 1 : -1], -1)
    expected = expected[torch.arange(len(completion)), torch.tensor(completion)].numpy()
    assert np.allclose(batched[1], expected, atol=1e-5)


def test_tokenize_trace_matches_trl_prompt_completion_tokenisation(tiny, traces):
    """The ids we insert into are the ids TRL's SFTTrainer trains on."""
    _, tokenizer = tiny
    trace = traces[0]
    prompt_ids, completion_ids = tokenize_trace(tokenizer, trace["prompt"], trace["completion"])
    joined = tokenizer(trace["prompt"] + trace["completion"]).input_ids
    assert prompt_ids + completion_ids == joined + [tokenizer.eos_token_id]


def test_stage_manager_switches_mode_and_rebuilds_with_the_current_model(tiny, traces):
    model, tokenizer = tiny
    manager = StageManager(model, tokenizer, traces)
    stages = []
    for stage in manager:
        assert model.config.mode == stage.spec.mode and model.config.alpha == stage.spec.alpha
        stages.append(stage)
        if stage.index == 1:
            # "Training" between stages: make every gold token certain, so stage 3 finds nothing.
            certain = _CertainModel(model)
            manager.model = certain
    assert [s.index for s in stages] == [0, 1, 2]
    assert stages[0].thinking_tokens == 0
    assert stages[1].thinking_tokens > 0  # the random tiny model is unsure everywhere
    assert stages[2].thinking_tokens == 0
    dataset = stages[1].dataset()
    assert dataset.column_names == ["input_ids", "completion_mask"]
    assert model.thinking_token_id in dataset[0]["input_ids"]


class _CertainModel:
    """Stands in for a trained model: its next-token prediction is always the gold token."""

    def __init__(self, model):
        self.model, self.config = model, model.config
        self.training = False

    def set_latent_mode(self, **settings):
        self.model.set_latent_mode(**settings)

    def parameters(self):
        return self.model.parameters()

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def __call__(self, input_ids, attention_mask, logits_to_keep):
        vocab = self.model.get_input_embeddings().weight.shape[0]
        logits = torch.full((*input_ids.shape, vocab), -1e4)
        logits[:, :-1].scatter_(-1, input_ids[:, 1:].unsqueeze(-1), 1e4)
        return type("Out", (), {"logits": logits[:, -logits_to_keep:]})()
