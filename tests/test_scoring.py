from __future__ import annotations

import math

import pytest
import torch

from latent_env.context import LATENT_DELIMITER, get_combiner, prefix_combiner
from latent_env.scoring import LogLikScorer

CONTEXTS = [
    "The names of the students are John, Mary, and Peter. Their average age is",
    "Tom has 12 apples and buys 7 more. Now he has",
    "",
    "A short one",
    "x" * 5,
]
CONTINUATIONS = [" 16", " 19 apples.", "Hello world", " with a longer continuation here", "y"]


def hand_logprob(model, tokenizer, context: str, continuation: str) -> tuple[float, list[float]]:
    """Reference: one unpadded forward and a plain log-softmax, token by token."""
    start = tokenizer.bos_token_id
    ctx = [start] + (tokenizer(context, add_special_tokens=False).input_ids if context else [])
    cont = tokenizer(continuation, add_special_tokens=False).input_ids
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logits = model(ids).logits[0].double()
    logprobs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    per_token = [logprobs[len(ctx) - 1 + i, tok].item() for i, tok in enumerate(cont)]
    return sum(per_token), per_token


def test_score_matches_a_hand_computed_log_softmax(tiny):
    model, tokenizer = tiny
    scorer = LogLikScorer(model, tokenizer, batch_tokens=64)
    for result, x, y in zip(scorer.score(CONTEXTS, CONTINUATIONS), CONTEXTS, CONTINUATIONS):
        total, per_token = hand_logprob(model, tokenizer, x, y)
        assert result.total == pytest.approx(total, abs=1e-4)
        assert result.token_logprobs == pytest.approx(per_token, abs=1e-4)
        assert result.n_tokens == len(per_token) == len(result.tokens)


def test_continuation_tokens_are_its_own_not_a_retokenised_merge(tiny):
    model, tokenizer = tiny
    scorer = LogLikScorer(model, tokenizer)
    # "is" + " 16" merged could tokenise differently from " 16" alone; we score " 16"'s tokens.
    result = scorer.score(["Their average age is"], [" 16"])[0]
    assert result.tokens == tokenizer.convert_ids_to_tokens(
        tokenizer(" 16", add_special_tokens=False).input_ids
    )
    glued = scorer.score(["Their average age i"], ["s 16"])[0]
    assert glued.tokens[0] == "s"  # the boundary falls where the caller put it


def test_batching_invariance_any_order_any_budget(tiny):
    model, tokenizer = tiny
    reference = LogLikScorer(model, tokenizer, batch_tokens=1).score(CONTEXTS, CONTINUATIONS)
    order = [3, 0, 4, 2, 1]
    for budget in (16, 64, 100_000):
        scorer = LogLikScorer(model, tokenizer, batch_tokens=budget)
        shuffled = scorer.score([CONTEXTS[i] for i in order], [CONTINUATIONS[i] for i in order])
        for got, i in zip(shuffled, order):
            assert got.total == pytest.approx(reference[i].total, abs=1e-4)
            assert got.token_logprobs == pytest.approx(reference[i].token_logprobs, abs=1e-4)


def test_deterministic_across_calls(tiny):
    model, tokenizer = tiny
    scorer = LogLikScorer(model, tokenizer, batch_tokens=64)
    first = [r.total for r in scorer.score(CONTEXTS, CONTINUATIONS)]
    second = [r.total for r in scorer.score(CONTEXTS, CONTINUATIONS)]
    assert first == second


def test_baseline_cache_skips_the_model(tiny):
    model, tokenizer = tiny
    scorer = LogLikScorer(model, tokenizer)
    scorer.baseline(CONTEXTS, CONTINUATIONS)
    passes = scorer.stats["forward_passes"]
    again = scorer.baseline(CONTEXTS, CONTINUATIONS)
    assert scorer.stats["forward_passes"] == passes
    assert scorer.stats["cache_hits"] == len(CONTEXTS)
    assert [r.total for r in again] == [r.total for r in scorer.score(CONTEXTS, CONTINUATIONS)]


def test_cache_is_bounded(tiny):
    model, tokenizer = tiny
    scorer = LogLikScorer(model, tokenizer, cache_size=2)
    scorer.baseline(CONTEXTS, CONTINUATIONS)
    assert len(scorer._baseline_cache) == 2


def test_gain_is_enriched_minus_baseline_and_zero_without_latent(tiny):
    model, tokenizer = tiny
    scorer = LogLikScorer(model, tokenizer)
    latent = "<python>print(16)</python><output>16</output>"
    gains = scorer.gain(CONTEXTS[:2], [latent, ""], CONTINUATIONS[:2])
    enriched = scorer.score([prefix_combiner(CONTEXTS[0], latent)], CONTINUATIONS[:1])[0]
    baseline = scorer.score(CONTEXTS[:1], CONTINUATIONS[:1])[0]
    assert gains[0].gain == pytest.approx(enriched.total - baseline.total, abs=1e-5)
    assert gains[1].gain == 0.0
    assert gains[0].token_gains == pytest.approx(
        [a - b for a, b in zip(enriched.token_logprobs, baseline.token_logprobs)], abs=1e-5
    )


def test_combiners():
    assert prefix_combiner("X", "L") == f"{LATENT_DELIMITER}L{LATENT_DELIMITER}X"
    assert prefix_combiner("X", "  ") == "X"
    assert get_combiner("prefix_newline")("X", "L").endswith("\nX")
    with pytest.raises(ValueError, match="unknown combiner 'nope'; choose one of"):
        get_combiner("nope")


def test_left_truncation_keeps_the_continuation_and_says_so(tiny):
    model, tokenizer = tiny
    scorer = LogLikScorer(model, tokenizer, max_length=12)
    context = " ".join(["word"] * 40)
    result = scorer.score([context], [" end"])[0]
    kept = 12 - 1 - result.n_tokens
    assert result.truncated == 40 - kept
    tail = " ".join(["word"] * 40)
    ids = tokenizer(tail, add_special_tokens=False).input_ids[-kept:]
    expected, _ = hand_logprob(model, tokenizer, tokenizer.decode(ids), " end")
    assert result.total == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="continuation has .* tokens"):
        scorer.score(["x"], [" long" * 20])


def test_mismatched_lengths_are_rejected(tiny):
    scorer = LogLikScorer(*tiny)
    with pytest.raises(ValueError, match="2 contexts but 1 continuations"):
        scorer.score(["a", "b"], ["c"])


@pytest.mark.slow
def test_default_model_founding_example_gains(default_scorer):
    x = (
        "The names of the students are John, Mary, and Peter. John is 15 years old, Mary is "
        "16 years old, and Peter is 17 years old. Their average age is"
    )
    right = "<python>\nages = [15, 16, 17]\nprint(sum(ages) // 3)\n</python><output>16</output>"
    wrong = "<python>\nages = [15, 16, 17]\nprint(max(ages))\n</python><output>17</output>"
    sentences = [
        ("Tom has 12 apples and buys 7 more. Now he has", " 19", "print(12 + 7)", "19"),
        ("A box holds 6 eggs. Four boxes hold", " 24", "print(6 * 4)", "24"),
        ("She had 50 dollars and spent 18, so she has", " 32", "print(50 - 18)", "32"),
    ]
    contexts = [x, x] + [s[0] for s in sentences]
    latents = [right, wrong] + [
        f"<python>\n{code}\n</python><output>{out}</output>" for _, _, code, out in sentences
    ]
    gains = default_scorer.gain(contexts, latents, [" 16", " 16"] + [s[1] for s in sentences])
    assert gains[0].gain > 0.5
    assert gains[0].gain > gains[1].gain
    for g in gains[2:]:
        assert g.gain > 1.0 and math.isfinite(g.gain)


def test_a_scorer_that_cannot_read_thoughts_scores_the_latent_without_them(tiny):
    scorer = LogLikScorer(*tiny)
    assert not scorer.reads_thoughts
    x, y = "Apples: 12, then 7 more. Now", " 19"
    with_thoughts, plain = scorer.gain([x, x], ["<thinking><calc>12 + 7</calc><thinking>",
                                                "<calc>12 + 7</calc>"], [y, y])
    assert with_thoughts.gain == plain.gain
    assert scorer.count_tokens("<thinking><thinking>ab") == 2 + scorer.count_tokens("ab")
