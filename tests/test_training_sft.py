"""The SFT stage's batching: random steps, sorted by length into micro-batches, whose gradient is
that of one random batch."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from latent_env.training.sft import micro_batch_order, run_sft, sft_config


def record(i: int, n_chars: int, completion: str = "<done/>") -> dict:
    return {"prompt": [{"role": "user", "content": f"{i:03d}" + "x" * n_chars}],
            "completion": [{"role": "assistant", "content": completion}]}


def chars(r: dict) -> int:
    return sum(len(t["content"]) for t in r["prompt"] + r["completion"])


def padded(order: list[dict], micro: int) -> int:
    batches = [order[i:i + micro] for i in range(0, len(order), micro)]
    return sum(len(b) * max(map(chars, b)) for b in batches)


def test_steps_are_random_draws_sorted_by_length_within():
    lengths = np.random.default_rng(0).integers(10, 2000, size=61)
    records = [record(i, int(n)) for i, n in enumerate(lengths)]
    ordered = micro_batch_order(records, step_size=8, seed=3)
    key = sorted(r["prompt"][0]["content"] for r in records)
    assert sorted(r["prompt"][0]["content"] for r in ordered) == key  # nothing lost or repeated
    steps = [ordered[i:i + 8] for i in range(0, len(ordered), 8)]
    assert all([chars(r) for r in s] == sorted(chars(r) for r in s) for s in steps)
    # Steps are random draws, not buckets of similar length: their ranges overlap.
    spans = sorted((chars(s[0]), chars(s[-1])) for s in steps)
    assert any(hi > next_lo for (_, hi), (next_lo, _) in zip(spans, spans[1:]))
    # Micro-batches of 2 inside the sorted steps pad less than the same steps in one pass.
    assert padded(ordered, 2) < 0.8 * padded(ordered, 8)
    assert micro_batch_order(records, 8, seed=3) == ordered
    assert micro_batch_order(records, 8, seed=4) != ordered


def test_pre_tokenised_records_are_sorted_by_their_token_count():
    lengths = np.random.default_rng(1).integers(5, 400, size=24)
    records = [{"input_ids": list(range(int(n))), "completion_mask": [1] * int(n)}
               for n in lengths]
    ordered = micro_batch_order(records, step_size=8, seed=0)
    assert sorted(map(id, ordered)) == sorted(map(id, records))
    steps = [[len(r["input_ids"]) for r in ordered[i:i + 8]] for i in range(0, 24, 8)]
    assert all(step == sorted(step) for step in steps)
    assert steps != sorted(steps)  # still random draws


def test_micro_batches_switch_the_trainer_to_accumulation_in_the_given_order(tmp_path):
    common = dict(epochs=1, max_steps=-1, learning_rate=1e-4, batch_size=8, seed=0, report_to=[])
    micro = sft_config(tmp_path, micro_batch_size=2, **common)
    plain = sft_config(tmp_path, **common)
    assert (micro.per_device_train_batch_size, micro.gradient_accumulation_steps,
            micro.train_sampling_strategy) == (2, 4, "sequential")
    assert (plain.per_device_train_batch_size, plain.gradient_accumulation_steps,
            plain.train_sampling_strategy) == (8, 1, "random")
    with pytest.raises(ValueError, match="must divide"):
        sft_config(tmp_path, micro_batch_size=3, **common)


def one_sgd_step(tiny, records: list[dict], micro: int, out) -> dict[str, torch.Tensor]:
    model, tokenizer = tiny
    model = copy.deepcopy(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    config = sft_config(out, epochs=1, max_steps=1, learning_rate=0.5, batch_size=len(records),
                        seed=0, report_to=[], micro_batch_size=micro)
    config.optim, config.lr_scheduler_type, config.warmup_steps = "sgd", "constant", 0
    config.save_strategy, config.disable_tqdm = "no", True
    run_sft(model, tokenizer, records, out, config, resume=False)
    return {n: p.detach() - before[n] for n, p in model.named_parameters()}


def test_a_step_in_micro_batches_is_the_step_of_one_batch(tiny, tmp_path):
    # Completions of 2 to ~60 tokens: weighting micro-batches equally, instead of the step's
    # tokens, would give the one-token traces' micro-batches the weight of the long ones.
    records = [record(0, 30, "<done/>"), record(1, 200, "<python>print(1 + 2 + 3)</python>" * 4),
               record(2, 5, "<reason>a is older than b</reason>"), record(3, 90, "<done/>")]
    whole = one_sgd_step(tiny, records, micro=0, out=tmp_path / "whole")
    split = one_sgd_step(tiny, records, micro=1, out=tmp_path / "split")
    norm = sum(float(d.norm()) ** 2 for d in whole.values()) ** 0.5
    diff = sum(float((whole[n] - split[n]).norm()) ** 2 for n in whole) ** 0.5
    assert norm > 0
    assert diff < 1e-3 * norm
