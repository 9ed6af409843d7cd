"""The founding table: a trained model reading its own latents against its starting model."""

from __future__ import annotations

import copy

import pytest

from latent_env.bench.founding import founding_markdown, founding_scores, founding_table
from latent_env.context import get_combiner
from latent_env.scoring import LogLikScorer
from tests.test_predictor import independent_logp, nudge

RECORDS = [
    {"task_id": "a", "family": "sum", "context": "Apples: 12, then 7 more. Now",
     "continuation": " 19 apples.", "answer": "19",
     "latent": "<calc>12 + 7</calc><output>19</output>"},
    {"task_id": "b", "family": "sum", "context": "Eggs: 6 boxes of 4. In all",
     "continuation": " 24 eggs", "answer": "24", "latent": ""},
    {"task_id": "c", "family": "prose", "context": "The river runs to the",
     "continuation": " sea.", "answer": None, "latent": "<reason>rivers end</reason>"},
]


def test_columns_are_the_specified_log_prob_differences(tiny):
    start_model, tokenizer = tiny
    trained = copy.deepcopy(start_model)
    nudge(trained, seed=7)
    rows = founding_scores(RECORDS, LogLikScorer(trained, tokenizer),
                           LogLikScorer(start_model, tokenizer))
    combine = get_combiner(None)
    for r, row in zip(RECORDS, rows):
        x, y = r["context"], r["continuation"]
        own = independent_logp(trained, tokenizer, combine(x, r["latent"]), y)
        plain = independent_logp(trained, tokenizer, x, y)
        start = independent_logp(start_model, tokenizer, x, y)
        view = independent_logp(start_model, tokenizer, combine(x, r["latent"]), y)
        assert row["own_minus_start"] == pytest.approx(own - start, abs=1e-3)
        assert row["plain_minus_start"] == pytest.approx(plain - start, abs=1e-3)
        assert row["start_view"] == pytest.approx(view - start, abs=1e-3)
        assert abs(row["plain_minus_start"]) > 1e-3  # the nudge moved prediction
    assert rows[2]["accuracy"] is None and rows[0]["accuracy"] in (0.0, 1.0)


def test_an_untrained_model_against_itself_is_the_frozen_gain(tiny):
    scorer = LogLikScorer(*tiny)
    rows = founding_scores(RECORDS, scorer, scorer)
    gains = scorer.gain([r["context"] for r in RECORDS], [r["latent"] for r in RECORDS],
                        [r["continuation"] for r in RECORDS])
    for row, g in zip(rows, gains):
        assert row["plain_minus_start"] == 0.0
        assert row["own_minus_start"] == pytest.approx(g.gain, abs=1e-4)
        assert row["start_view"] == row["own_minus_start"]
    table = founding_table(rows)
    assert list(table) == ["prose", "sum", "all"] and table["all"]["tasks"] == 3
    mean = sum(r["own_minus_start"] for r in rows) / 3
    assert table["all"]["own_minus_start"][0] == pytest.approx(mean)
    assert table["prose"]["accuracy"] is None
    text = founding_markdown({"trained": table})
    lines = text.splitlines()
    assert lines[2].startswith("| trained | all | 3 | ") and len(lines) == 5
