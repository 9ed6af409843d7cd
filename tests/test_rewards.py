from __future__ import annotations

import math

import pytest
from latent_env.rewards import Outcome, RewardError, Rubric, terms

from latent_env.training.reward import completion_text


def outcome(**kw) -> Outcome:
    base = dict(
        token_gains=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        enriched_is_argmax=[True, True, False],
        baseline_is_argmax=[True, False, False],
        answer_tokens=2,
        latent_tokens=40,
        n_tool_calls=2,
        n_tool_errors=1,
        well_formed=True,
        n_parse_errors=0,
    )
    base.update(kw)
    return Outcome(**base)


def test_loglik_gain_variants():
    o = outcome()
    assert terms.loglik_gain(o) == 21.0
    assert terms.loglik_gain(o, reduce="mean") == 3.5
    assert terms.loglik_gain(o, first_n=4) == 10.0
    weights = [1.0, 0.8, 0.6, 0.4, 0.2, 0.0]
    expected = sum(g * w for g, w in zip(o.token_gains, weights)) * 6 / sum(weights)
    assert terms.loglik_gain(o, weighting="toolformer") == pytest.approx(expected)
    assert terms.loglik_gain(outcome(token_gains=[])) == 0.0
    with pytest.raises(ValueError, match="unknown reduce"):
        terms.loglik_gain(o, reduce="max")


def test_answer_hit_uses_the_answer_tokens_only():
    assert terms.answer_hit(outcome()) == 1.0
    assert terms.answer_hit_without_latent(outcome()) == 0.0
    assert terms.answer_hit(outcome(answer_tokens=3)) == 0.0
    assert terms.answer_hit(outcome(answer_tokens=0)) == 0.0  # no known answer


def test_rubric_weights_and_logged_terms():
    rubric = Rubric.from_spec("loglik_gain=1,tool_error=-0.5,latent_cost=-0.01")
    values = rubric.compute(outcome())
    assert values["reward/total"] == pytest.approx(21.0 - 0.5 - 0.4)
    assert values["reward/answer_hit"] == 1.0  # weight 0: logged, not paid
    assert values["reward/format"] == 1.0


def test_rubric_rejects_unknown_terms_and_non_finite_values():
    with pytest.raises(RewardError, match="unknown reward term 'nope'"):
        Rubric({"nope": 1.0})
    with pytest.raises(RewardError, match="must look like"):
        Rubric.from_spec("loglik_gain")
    with pytest.raises(RewardError, match="'loglik_gain' is not finite.*task t1"):
        Rubric().compute(outcome(token_gains=[math.nan]), where="task t1")


def test_a_weight_that_is_not_a_number_is_named():
    with pytest.raises(RewardError, match="weight of 'answer_hit' must be a number, got 'abc'"):
        Rubric.from_spec("loglik_gain=1,answer_hit=abc")
    with pytest.raises(RewardError, match="weight of 'format' must be finite"):
        Rubric.from_spec("format=inf")
    assert Rubric.from_spec(" answer_hit = 0.5 ").weights["answer_hit"] == 0.5


def test_completion_text_accepts_chat_messages():
    assert completion_text("abc") == "abc"
    assert completion_text([{"role": "assistant", "content": "<calc>1</calc>"}]) == "<calc>1</calc>"
