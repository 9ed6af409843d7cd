"""The RL stage's supervised anchor: gold traces tokenised as SFT sees them, their NLL added to
the RL loss."""

from collections import defaultdict

import pytest
import torch

from latent_env.env import LatentEnv
from latent_env.training.anchor import IGNORE_INDEX, TraceBatches, tokenise_trace
from latent_env.training.config import RLArguments
from latent_env.training.data import gold_sft_records, split_tasks
from latent_env.training.loss_terms import with_loss_terms


@pytest.fixture(scope="module")
def records():
    env = LatentEnv(tasks=None, model="tiny-random")
    return gold_sft_records(env, split_tasks("synthetic", "train", 1))


def test_a_trace_is_its_prompt_then_the_latent(records, tiny):
    _, tokenizer = tiny
    ids, n_prompt = tokenise_trace(records[0], tokenizer)
    latent = records[0]["completion"][0]["content"]
    assert 0 < n_prompt < len(ids)
    assert latent in tokenizer.decode(ids[n_prompt:])
    assert latent not in tokenizer.decode(ids[:n_prompt])


def test_batches_mask_prompt_and_padding_and_cycle_through_every_trace(records, tiny):
    _, tokenizer = tiny
    batches = TraceBatches(records, tokenizer, batch_size=4, coef=1.0, seed=0)
    lengths = {tuple(tokenise_trace(r, tokenizer)[0]) for r in records}
    seen = set()
    for _ in range(-(-len(records) // 4)):  # one pass: ceil(n / 4) batches
        batch = batches.next_batch()
        for ids, mask, labels in zip(batch["input_ids"], batch["attention_mask"], batch["labels"]):
            n = int(mask.sum())
            assert not mask[n:].any() and (labels[n:] == IGNORE_INDEX).all()
            assert (
                labels[:n][labels[:n] != IGNORE_INDEX] == ids[:n][labels[:n] != IGNORE_INDEX]
            ).all()
            assert labels[0] == IGNORE_INDEX  # the prompt pays no loss
            seen.add(tuple(ids[:n].tolist()))
    assert seen == lengths  # every trace came up once in the first pass
    again = TraceBatches(records, tokenizer, batch_size=4, coef=1.0, seed=0)
    assert torch.equal(
        again.next_batch()["input_ids"],
        TraceBatches(records, tokenizer, batch_size=4, coef=1.0, seed=0).next_batch()["input_ids"],
    )


def test_anchor_loss_is_the_models_own_label_loss(records, tiny):
    model, tokenizer = tiny
    batches = TraceBatches(records, tokenizer, batch_size=3, coef=1.0, seed=1)
    reference = TraceBatches(records, tokenizer, batch_size=3, coef=1.0, seed=1).next_batch()
    with torch.no_grad():
        expected = model(**reference).loss  # HF's shifted cross-entropy over the labels
        assert batches.loss(model).item() == pytest.approx(expected.item(), rel=1e-5)


def test_anchor_term_adds_coef_times_nll_scaled_like_trl(records, tiny):
    model, tokenizer = tiny

    class FakeTrainer:  # stands for GRPOTrainer's loss hook and metric store
        current_gradient_accumulation_steps = 2
        loss_is_scaled_for_ga = True  # as GRPO's: the term is divided like its loss

        def __init__(self):
            self._metrics = {"train": defaultdict(list)}

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return torch.tensor(0.5)

    trainer = with_loss_terms(FakeTrainer)()
    assert type(trainer).__name__ == "FakeTrainerWithLossTerms"
    model.train()
    assert trainer.compute_loss(model, {}).item() == 0.5  # no terms: the RL loss unchanged
    model.eval()
    trainer.loss_terms = [TraceBatches(records, tokenizer, batch_size=2, coef=0.3, seed=0)]
    nll = TraceBatches(records, tokenizer, batch_size=2, coef=0.3, seed=0).loss(model).item()
    model.train()
    loss = trainer.compute_loss(model, {})
    assert loss.item() == pytest.approx(0.5 + 0.3 * nll / 2, rel=1e-5)
    assert trainer._metrics["train"]["anchor/nll"] == [pytest.approx(nll, rel=1e-5)]
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.zero_grad()
    # A trainer whose loss is not yet scaled (Trainer.training_step divides it all): no division.
    trainer.loss_is_scaled_for_ga = False
    trainer.loss_terms = [TraceBatches(records, tokenizer, batch_size=2, coef=0.3, seed=0)]
    assert trainer.compute_loss(model, {}).item() == pytest.approx(0.5 + 0.3 * nll, rel=1e-5)
    model.eval()


def test_rl_arguments_reject_bad_values():
    with pytest.raises(ValueError, match="--rl_sft_anchor must be >= 0"):
        RLArguments(rl_sft_anchor=-1)
    with pytest.raises(ValueError, match="--rl_anchor_batch_size must be at least 1"):
        RLArguments(rl_anchor_batch_size=0)
