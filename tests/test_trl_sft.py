"""The SFT stage's batching: traces of similar length together, batches in a seeded random order."""

from __future__ import annotations

import numpy as np

from latent_env.trl.sft import length_buckets_order, sft_config


def record(i: int, n_chars: int) -> dict:
    return {"prompt": [{"role": "user", "content": f"{i:03d}" + "x" * n_chars}],
            "completion": [{"role": "assistant", "content": "<done/>"}]}


def chars(r: dict) -> int:
    return sum(len(t["content"]) for t in r["prompt"] + r["completion"])


def test_batches_hold_similar_lengths_and_come_in_random_order():
    lengths = np.random.default_rng(0).integers(10, 2000, size=61)
    records = [record(i, int(n)) for i, n in enumerate(lengths)]
    ordered = length_buckets_order(records, batch_size=8, seed=3)
    assert sorted(r["prompt"][0]["content"] for r in ordered) == sorted(
        r["prompt"][0]["content"] for r in records)  # a permutation: nothing lost or repeated
    batches = [ordered[i:i + 8] for i in range(0, len(ordered), 8)]
    spans = sorted((min(map(chars, b)), max(map(chars, b))) for b in batches)
    assert all(hi <= next_lo for (_, hi), (next_lo, _) in zip(spans, spans[1:]))  # no overlap
    maxima = [max(map(chars, b)) for b in batches]
    assert maxima != sorted(maxima) and maxima != sorted(maxima, reverse=True)  # shuffled
    padded = sum(len(b) * m for b, m in zip(batches, maxima))
    assert padded < 1.15 * sum(map(chars, records))
    assert length_buckets_order(records, 8, seed=3) == ordered
    assert length_buckets_order(records, 8, seed=4) != ordered


def test_length_buckets_switch_the_trainer_to_the_given_order(tmp_path):
    bucketed = sft_config(tmp_path, epochs=1, max_steps=-1, learning_rate=1e-4, batch_size=4,
                          seed=0, report_to=[], length_buckets=True)
    plain = sft_config(tmp_path, epochs=1, max_steps=-1, learning_rate=1e-4, batch_size=4,
                       seed=0, report_to=[])
    assert (bucketed.train_sampling_strategy, plain.train_sampling_strategy) == (
        "sequential", "random")
