"""LatentThoughtModel inside the rest of the stack: LogLikScorer, TRL SFT/GRPO, PEFT."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from latent_env.models import load_model
from latent_env.scoring import LogLikScorer
from latent_env.thoughts import LatentThoughtModel, StageManager, add_thinking_token
from latent_env.thoughts.reference import reference_logits
from latent_env.thoughts.traces import arithmetic_traces

torch.set_num_threads(1)
TOL = 1e-5


def build(**settings):
    base, tokenizer = load_model("tiny-random", threads=1)
    return add_thinking_token(base, tokenizer, **settings), tokenizer


# ---- scorer -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hidden", "fusion"])
def test_scorer_honours_thinking_tokens_in_the_latent(mode):
    ltm, tokenizer = build(mode=mode, alpha=0.6)
    contexts = [
        "<|latent|><thinking><thinking><|latent|>The students are 12, 18 and 18 years old.",
        "<|latent|>avg<thinking><|latent|>Ages: 20 and 12. Mean:",
        "No latent here. Their average age is",
    ]
    continuations = [" 16", " 16 years", " 16"]
    scores = LogLikScorer(ltm, tokenizer).score(contexts, continuations)
    for context, continuation, score in zip(contexts, continuations, scores, strict=True):
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else None
        start = start if start is not None else tokenizer.eos_token_id
        x = tokenizer(context, add_special_tokens=False).input_ids
        y = tokenizer(continuation, add_special_tokens=False).input_ids
        ids = torch.tensor([[start, *x, *y]])
        with torch.no_grad():
            logprobs = torch.log_softmax(reference_logits(ltm, ids)[0], -1)
        expected = [logprobs[len(x) + j, token].item() for j, token in enumerate(y)]
        assert score.token_logprobs == pytest.approx(expected, abs=TOL)
    plain = LogLikScorer(ltm.language_model, tokenizer).score(contexts[:1], continuations[:1])
    assert abs(plain[0].total - scores[0].total) > 1e-3  # the latent inputs mattered


# ---- SFT --------------------------------------------------------------------------------------


def sft_trainer(ltm, tokenizer, dataset, output_dir, **overrides):
    from trl import SFTConfig, SFTTrainer

    settings = dict(
        output_dir=str(output_dir),
        max_steps=4,
        per_device_train_batch_size=2,
        learning_rate=3e-3,
        logging_steps=1,
        save_steps=4,
        report_to=[],
        use_cpu=True,
        completion_only_loss=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    settings.update(overrides)
    return SFTTrainer(
        model=ltm, args=SFTConfig(**settings), train_dataset=dataset, processing_class=tokenizer
    )


@pytest.fixture(scope="module")
def stage_dataset():
    ltm, tokenizer = build()
    stages = iter(StageManager(ltm, tokenizer, arithmetic_traces(8, seed=2)))
    next(stages)  # stage 1: explicit traces only
    stage = next(stages)  # stage 2: the random model is unsure everywhere -> many <thinking>
    assert stage.thinking_tokens > 0
    return stage.dataset()


def test_sft_default_loss_honours_thinking_tokens(stage_dataset, tmp_path):
    """TRL's default SFT loss never builds full logits: it runs ``model.base_model`` and applies
    the LM head itself (a fused head since trl 1.15, ``chunked_nll`` before). Still latent."""
    ltm, tokenizer = build(mode="fusion")
    trainer = sft_trainer(ltm, tokenizer, stage_dataset, tmp_path)
    batch = next(iter(trainer.get_train_dataloader()))
    assert (batch["labels"] == ltm.thinking_token_id).any()  # <thinking> is a training target
    with torch.no_grad():
        chunked = trainer.compute_loss(trainer.model, dict(batch))
        ours = LatentThoughtModel.forward(ltm, **batch).loss
        plain = ltm.language_model(**batch).loss
    assert abs(chunked.item() - ours.item()) < 1e-4
    assert abs(ours.item() - plain.item()) > 1e-3


@pytest.mark.parametrize("checkpointing", [True, False])
def test_sft_trains_and_the_checkpoint_reloads(stage_dataset, tmp_path, checkpointing):
    ltm, tokenizer = build(mode="hidden")
    before = {n: p.detach().clone() for n, p in ltm.named_parameters()}
    trainer = sft_trainer(
        ltm,
        tokenizer,
        stage_dataset,
        tmp_path,
        activation_checkpointing=checkpointing,
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
    assert any(not torch.equal(p, before[n]) for n, p in ltm.named_parameters())
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "checkpoint-4")
    assert isinstance(reloaded, LatentThoughtModel) and reloaded.config.mode == "hidden"
    ids = torch.tensor([stage_dataset[0]["input_ids"]])
    with torch.no_grad():
        trained = LatentThoughtModel.forward(ltm.eval(), input_ids=ids).logits
        assert torch.allclose(reloaded(input_ids=ids).logits, trained, atol=1e-6)


# ---- GRPO -------------------------------------------------------------------------------------


def _favour_thinking(ltm, tokenizer, prompts):
    """Point the (tied) <thinking> row along the mean final hidden state: it gets sampled often."""
    with torch.no_grad():
        enc = tokenizer(prompts, return_tensors="pt", padding=True)
        hidden = ltm.base_model(**enc).last_hidden_state[enc.attention_mask.bool()].mean(0)
        ltm.get_input_embeddings().weight[ltm.thinking_token_id] = 2.5 * hidden / hidden.norm()


def test_grpo_logprobs_equal_the_sampling_logprobs():
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    ltm, tokenizer = build(mode="fusion", alpha=0.6)
    tokenizer.padding_side = "left"
    prompts = ["Tom has 12 apples and buys 7 more.", "Hi", "Ann has three pens"]
    _favour_thinking(ltm, tokenizer, prompts)
    temperature = 0.7
    args = GRPOConfig(
        output_dir="/tmp/unused-grpo",
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=10,
        use_cpu=True,
        bf16=False,  # GRPOConfig defaults to bf16; trl 1.16 recomputes log-probs under it, on CPU too
        report_to=[],
        temperature=temperature,
        disable_tqdm=True,
    )
    trainer = GRPOTrainer(
        model=ltm,
        reward_funcs=lambda completions, **_: [0.0] * len(completions),
        args=args,
        train_dataset=Dataset.from_list([{"prompt": "x"}] * 2),
        processing_class=tokenizer,
    )
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    torch.manual_seed(0)
    out = ltm.eval().generate(
        **enc,
        max_new_tokens=10,
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=None,
        output_logits=True,
        return_dict_in_generate=True,
    )
    completion = out.sequences[:, enc.input_ids.shape[1] :]
    thinking = completion == ltm.thinking_token_id
    assert thinking.any() and not thinking.all()  # a mix of latent and ordinary steps
    sampled = torch.log_softmax(torch.stack(out.logits, 1) / temperature, -1)
    sampled = sampled.gather(-1, completion.unsqueeze(-1)).squeeze(-1)
    mask = torch.cat([enc.attention_mask, torch.ones_like(completion)], 1)
    with torch.no_grad():
        recomputed, _, _ = trainer._get_per_token_logps_and_entropies(
            ltm, out.sequences, mask, completion.shape[1]
        )
    assert (recomputed - sampled).abs().max() < TOL


# ---- PEFT -------------------------------------------------------------------------------------


def test_lora_wraps_trains_and_generates():
    peft = pytest.importorskip("peft")
    ltm, tokenizer = build(mode="fusion")
    ids = torch.tensor([[400, 500, ltm.thinking_token_id, 600, ltm.thinking_token_id, 700]])
    with torch.no_grad():
        base_logits = ltm(input_ids=ids).logits
    lora = peft.get_peft_model(
        ltm, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    with torch.no_grad():  # LoRA starts as the identity
        assert torch.allclose(lora(input_ids=ids).logits, base_logits, atol=1e-6)
    lora.train()
    lora(input_ids=ids, labels=ids).loss.backward()
    grads = {n: p.grad for n, p in lora.named_parameters() if p.requires_grad}
    assert grads and all("lora_" in n for n in grads)
    # B starts at zero, so only B gets a gradient on the first step (A's is B^T-weighted)
    assert all(g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)
    lora.eval()
    out = lora.generate(
        input_ids=ids,
        max_new_tokens=3,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=None,
    )
    assert out.shape == (1, 9)
