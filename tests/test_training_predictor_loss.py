"""The predictor loss: NLL of Y given c(X, L) through θ, loss on Y only, on the scored episodes."""

from __future__ import annotations

import copy

import pytest
import torch

from latent_env.context import get_combiner
from latent_env.scoring import LogLikScorer
from latent_env.training.predictor_loss import IGNORE_INDEX, PredictionBatches

TRIPLES = [
    ("Apples: 12, then 7 more. Now", "<calc>12 + 7</calc><output>19</output>", " 19 apples."),
    ("Eggs: 6 boxes of 4. In all", "<python>print(6 * 4)</python><output>24</output>", " 24 eggs"),
    ("The river runs to the", "", " sea."),
]


class Scored:
    """Stands for EnvReward: a call counter and the last call's (X, c(X, L), Y)."""

    def __init__(self, triples):
        self.calls, self.triples = 1, triples

    def scored_triples(self):
        return self.triples


def triples():
    combine = get_combiner(None)
    return [(x, combine(x, latent), y) for x, latent, y in TRIPLES]


def inputs(n: int) -> dict:
    return {"completion_ids": torch.zeros((n, 3), dtype=torch.long)}


def test_labels_cover_the_continuation_only_with_the_scorers_tokens(tiny):
    model, tokenizer = tiny
    loss = PredictionBatches(Scored(triples()), tokenizer, weight=1.0)
    pairs = [(c, y) for _, c, y in triples()]
    batch = loss.batch(pairs)
    scorer = LogLikScorer(model, tokenizer)
    for row, (c, y) in enumerate(pairs):
        item = scorer._tokenize(row, c, y)
        n = item.length
        assert batch["input_ids"][row, :n].tolist() == item.context_ids + item.continuation_ids
        labelled = batch["labels"][row] != IGNORE_INDEX
        assert batch["labels"][row][labelled].tolist() == item.continuation_ids
        assert labelled.nonzero().min().item() == len(item.context_ids)  # the latent: no target
        assert batch["attention_mask"][row].sum().item() == n


def test_nll_is_the_scorers_mean_negative_logprob_per_continuation_token(tiny):
    model, tokenizer = tiny
    loss = PredictionBatches(Scored(triples()), tokenizer, weight=1.0)
    pairs = [(c, y) for _, c, y in triples()]
    scores = LogLikScorer(model, tokenizer).score(*zip(*pairs))
    want = -sum(s.total for s in scores) / sum(s.n_tokens for s in scores)
    with torch.no_grad():
        assert loss.nll(model, pairs).item() == pytest.approx(want, rel=1e-4)


def test_gradients_reach_theta_and_none_flow_from_the_latent_positions(tiny):
    model, tokenizer = tiny
    model = copy.deepcopy(model).train()
    term = PredictionBatches(Scored(triples()[:1]), tokenizer, weight=0.7)
    kept = {}

    def keep_logits(module, args, output):
        output.retain_grad()
        kept["logits"] = output

    handle = model.lm_head.register_forward_hook(keep_logits)
    try:
        loss, metrics = term(model, inputs(1))
    finally:
        handle.remove()
    loss.backward()
    assert loss.item() == pytest.approx(0.7 * metrics["predictor/nll"], rel=1e-6)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    # Logits at position p predict token p+1: the head runs only from the last context position
    # on, so nothing predicting the context (X and the latent) is even computed, and every
    # logit predicting Y gets a gradient.
    x, c, y = triples()[0]
    item = LogLikScorer(model, tokenizer)._tokenize(0, c, y)
    grad = kept["logits"].grad[0].abs().sum(-1)
    n_ctx, n = len(item.context_ids), item.length
    assert kept["logits"].shape[1] == n - n_ctx + 1
    assert torch.all(grad[:-1] > 0) and grad[-1] == 0


def test_plain_term_is_nll_of_y_given_x_alone(tiny):
    model, tokenizer = tiny
    term = PredictionBatches(Scored(triples()), tokenizer, weight=0.0, plain_weight=2.0, seed=1)
    with torch.no_grad():
        loss, metrics = term(model, inputs(3))
    assert set(metrics) == {"predictor/plain_nll"}
    plain = PredictionBatches(Scored(triples()), tokenizer, weight=1.0)
    with torch.no_grad():
        want = plain.nll(model, [(x, y) for x, _, y in triples()])  # all 3, any order
    assert loss.item() == pytest.approx(2.0 * want.item(), rel=1e-4)


def test_each_reward_call_is_trained_on_once_then_the_next_call_replaces_it(tiny):
    _, tokenizer = tiny
    source = Scored(triples())
    term = PredictionBatches(source, tokenizer, weight=1.0, seed=0)
    first = term.next_triples(2) + term.next_triples(1)
    assert sorted(first) == sorted(triples())  # one generation: every episode once
    source.calls, source.triples = 2, triples()[:1]
    assert term.next_triples(2) == triples()[:1] * 2  # the new call's episodes only, cycled
    source.triples = []
    source.calls = 3
    with pytest.raises(RuntimeError, match="no scored episodes"):
        term.next_triples(1)


def test_weights_are_checked(tiny):
    with pytest.raises(ValueError, match="not both 0"):
        PredictionBatches(Scored([]), tiny[1], weight=0.0)
    with pytest.raises(ValueError, match=">= 0"):
        PredictionBatches(Scored([]), tiny[1], weight=-1.0)
