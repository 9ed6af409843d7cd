"""The plain CPU head answers TRL's fused-LM-head calls with TRL's own numbers and gradients."""

from __future__ import annotations

import pytest
import torch

from latent_env.models import load_model
from latent_env.thoughts import add_thinking_token
from latent_env.training.cpu_head import plain_head_on_cpu

torch.set_num_threads(1)
TOL = 1e-5
FIELDS = ("log_probs", "entropy", "is_top1", "label_mask")

fused_available = pytest.mark.skipif(
    not hasattr(__import__("trl.trainer.utils", fromlist=["x"]), "add_fused_lm_head"),
    reason="this trl (< 1.15) has no fused LM head to replace",
)


def fused_outputs(model, batch, backward_of):
    """The fused call's fields, and the parameter gradients of ``backward_of(outputs)``."""
    model.zero_grad()
    out = model(**batch, fused_lm_head=True)
    backward_of(out).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


def assert_same(trl_run, ours_run):
    (theirs, their_grads), (ours, our_grads) = trl_run, ours_run
    assert abs(theirs.loss.item() - ours.loss.item()) < TOL
    for field in FIELDS:
        a, b = getattr(theirs, field), getattr(ours, field)
        if a is None:  # a field this trainer did not ask TRL's head for
            continue
        assert a.shape == b.shape, field
        assert (a.float() - b.float()).abs().max() < TOL, field
    assert their_grads.keys() == our_grads.keys()
    assert max((their_grads[n] - our_grads[n]).abs().max() for n in their_grads) < TOL


def sft_trainer(model, tokenizer, tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    records = [{"prompt": [{"role": "user", "content": f"What is {a} + {a}?"}],
                "completion": [{"role": "assistant", "content": f"<python>print({a} + {a})</python>"}]}
               for a in range(4)]
    args = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, report_to=[],
                     use_cpu=True, bf16=False, completion_only_loss=True, disable_tqdm=True,
                     dataloader_num_workers=0)
    return SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(records),
                      processing_class=tokenizer)


@fused_available
@pytest.mark.parametrize("latent", [False, True])
def test_sft_fields_and_gradients_equal_trls_fused_head(tmp_path, latent):
    model, tokenizer = load_model("tiny-random", threads=1)
    if latent:
        model = add_thinking_token(model, tokenizer, mode="fusion")
    trainer = sft_trainer(model, tokenizer, tmp_path)
    batch = next(iter(trainer.get_train_dataloader()))
    batch = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "labels")}
    if latent:  # <thinking> inside the completion: its input is built from the previous state
        first = int((batch["labels"] != -100).any(0).nonzero()[0])
        batch["input_ids"][:, first + 2] = model.thinking_token_id
    trainer.model.train()
    theirs = fused_outputs(trainer.model, batch, lambda out: out.loss)
    plain_head_on_cpu(trainer)
    ours = fused_outputs(trainer.model, batch, lambda out: out.loss)
    assert_same(theirs, ours)
    assert ours[0].label_mask.sum() == (batch["labels"][:, 1:] != -100).sum()


@fused_available
def test_grpo_fields_and_entropy_gradients_equal_trls_at_the_sampling_temperature(tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model, tokenizer = load_model("tiny-random", threads=1)
    model.save_pretrained(tmp_path / "policy")  # beta > 0: TRL loads a reference model by path
    tokenizer.save_pretrained(tmp_path / "policy")
    args = GRPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=2,
                      num_generations=2, max_completion_length=6, use_cpu=True, bf16=False,
                      report_to=[], temperature=0.7, beta=0.04, entropy_coef=0.1, disable_tqdm=True)
    trainer = GRPOTrainer(model=str(tmp_path / "policy"), reward_funcs=lambda completions, **_: [0.0] * len(completions),
                          args=args, train_dataset=Dataset.from_list([{"prompt": "x"}] * 2),
                          processing_class=tokenizer)
    ids = torch.randint(100, 5000, (3, 14), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # a left-padded prompt
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :-6] = -100  # GRPO scores the completion (the last 6 columns) only
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    trainer.model.train()

    def loss_of(out):
        return out.loss + 0.1 * out.entropy.sum()  # GRPO's entropy bonus differentiates entropy

    theirs = fused_outputs(trainer.model, batch, loss_of)
    their_ref = trainer.ref_model(**batch, fused_lm_head=True).log_probs
    plain_head_on_cpu(trainer)
    ours = fused_outputs(trainer.model, batch, loss_of)
    assert_same(theirs, ours)
    our_ref = trainer.ref_model(**batch, fused_lm_head=True).log_probs
    assert (their_ref - our_ref).abs().max() < TOL
    assert ours[0].log_probs[:, :-6].abs().max() == 0  # the prompt columns hold zeros


@fused_available
def test_ordinary_calls_still_return_logits(tmp_path):
    model, tokenizer = load_model("tiny-random", threads=1)
    trainer = sft_trainer(model, tokenizer, tmp_path)
    ids = torch.tensor([[400, 500, 600]])
    expected = type(model).forward(model, input_ids=ids, labels=ids)
    plain_head_on_cpu(trainer)
    out = trainer.model(input_ids=ids, labels=ids)
    assert torch.allclose(out.logits, expected.logits) and torch.allclose(out.loss, expected.loss)
