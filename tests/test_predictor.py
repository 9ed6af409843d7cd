"""SelfPredictor: the live weights score Y, baselines ema / initial / self behave as specified."""

from __future__ import annotations

import copy

import pytest
import torch

from latent_env.context import get_combiner
from latent_env.predictor import SelfPredictor
from latent_env.scoring import LogLikScorer

X = "Apples: 12 in the basket, 7 more arrive. Now there are"
Y = " 19 apples."
LATENT = "<calc>12 + 7</calc><output>19</output>"


def independent_logp(model, tokenizer, context: str, continuation: str) -> float:
    """log p(Y | context) by hand: start token, context, Y, one unpadded forward pass."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    ctx = tokenizer(context, add_special_tokens=False).input_ids
    cont = tokenizer(continuation, add_special_tokens=False).input_ids
    ids = torch.tensor([[start] + ctx + cont])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits.float(), dim=-1)[0]
    n = len(cont)
    return float(logp[-n - 1 : -1].gather(-1, torch.tensor(cont).unsqueeze(-1)).sum())


def nudge(model, seed: int, scale: float = 0.05) -> None:
    """An optimiser step stand-in: every weight moves."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


@pytest.fixture
def live(tiny):
    return copy.deepcopy(tiny[0]), tiny[1]


def test_self_gain_equals_an_independent_logprob_with_the_live_weights(live):
    model, tokenizer = live
    predictor = SelfPredictor(model, tokenizer, "self")
    enriched_context = get_combiner(None)(X, LATENT)
    for step in range(2):  # before and after the weights move: always the weights of now
        (g,) = predictor.gain([X], [LATENT], [Y])
        want_e = independent_logp(model, tokenizer, enriched_context, Y)
        want_b = independent_logp(model, tokenizer, X, Y)
        assert g.enriched.total == pytest.approx(want_e, abs=1e-4)
        assert g.baseline.total == pytest.approx(want_b, abs=1e-4)
        assert g.gain == pytest.approx(want_e - want_b, abs=2e-4)
        nudge(model, seed=step)
    # No second copy: the scorer's model is the live module.
    assert predictor.model is model and predictor.ema is None


def test_self_baseline_gives_an_empty_latent_exactly_zero(live):
    predictor = SelfPredictor(*live, "self")
    (g,) = predictor.gain([X], [""], [Y])
    assert g.gain == 0.0


def test_scoring_keeps_the_policy_in_the_mode_it_was_in(live):
    model, tokenizer = live
    predictor = SelfPredictor(model, tokenizer, "self")
    model.train()
    predictor.gain([X], [LATENT], [Y])
    assert model.training
    model.eval()
    predictor.gain([X], [LATENT], [Y])
    assert not model.training


def test_ema_baseline_moves_as_specified(live):
    model, tokenizer = live
    d = 0.75
    predictor = SelfPredictor(model, tokenizer, "ema", ema_decay=d)
    phi = {n: p.detach().clone() for n, p in model.named_parameters()}
    first = predictor.baseline([X], [Y])[0].total
    assert first == pytest.approx(independent_logp(model, tokenizer, X, Y), abs=1e-4)
    nudge(model, seed=10)
    # No step taken yet: the teacher (and its cached baseline) has not moved.
    assert predictor.baseline([X], [Y])[0].total == first
    for step in range(2):
        if step:
            nudge(model, seed=10 + step)
        predictor.update()
        for name, p in model.named_parameters():
            phi[name] = d * phi[name] + (1 - d) * p.detach()
        for name, teacher in predictor.ema.named_parameters():
            torch.testing.assert_close(teacher, phi[name], rtol=1e-5, atol=1e-6)
    assert predictor.updates == 2
    # The baseline is the teacher's score now (cache cleared at update), not the live model's.
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in reference.named_parameters():
            p.copy_(phi[name])
    got = predictor.baseline([X], [Y])[0].total
    assert got == pytest.approx(independent_logp(reference, tokenizer, X, Y), abs=1e-4)
    assert got != pytest.approx(independent_logp(model, tokenizer, X, Y), abs=1e-3)
    assert not any(p.requires_grad for p in predictor.ema.parameters())


def test_the_ema_teacher_runs_its_own_weights_under_a_patched_forward(live):
    model, tokenizer = live
    original = model.forward
    model.forward = lambda *args, **kwargs: original(*args, **kwargs)  # as TRL's fused head does
    predictor = SelfPredictor(model, tokenizer, "ema", ema_decay=0.5)
    start = independent_logp(predictor.ema, tokenizer, X, Y)
    nudge(model, seed=5)
    assert predictor.baseline([X], [Y])[0].total == pytest.approx(start, abs=1e-4)


def test_initial_baseline_keeps_the_starting_weights_score(live):
    model, tokenizer = live
    predictor = SelfPredictor(model, tokenizer, "initial")
    start = independent_logp(model, tokenizer, X, Y)
    predictor.prime([X, X], [Y, Y])
    nudge(model, seed=3)
    (g,) = predictor.gain([X], [LATENT], [Y])
    assert g.baseline.total == pytest.approx(start, abs=1e-4)
    enriched = independent_logp(model, tokenizer, get_combiner(None)(X, LATENT), Y)
    assert g.enriched.total == pytest.approx(enriched, abs=1e-4)  # θ now, against θ0
    with pytest.raises(ValueError, match="call prime"):
        predictor.gain(["another text"], [LATENT], [Y])


def test_self_predictor_matches_the_frozen_scorer_before_training(live):
    model, tokenizer = live
    frozen = LogLikScorer(copy.deepcopy(model), tokenizer).gain([X, X], [LATENT, ""], [Y, Y])
    for baseline in ("ema", "initial", "self"):
        predictor = SelfPredictor(model, tokenizer, baseline)
        predictor.prime([X], [Y])
        got = predictor.gain([X, X], [LATENT, ""], [Y, Y])
        assert [g.gain for g in got] == pytest.approx([g.gain for g in frozen], abs=2e-4)
        assert got[1].gain == pytest.approx(0.0, abs=1e-5)


def test_bad_arguments_are_refused(live):
    with pytest.raises(ValueError, match="baseline must be one of"):
        SelfPredictor(*live, "teacher")
    with pytest.raises(ValueError, match="ema_decay"):
        SelfPredictor(*live, "ema", ema_decay=1.0)


def test_a_thinking_token_is_read_as_a_continuous_input_when_y_is_scored():
    from tests.test_thoughts_model import build

    model, tokenizer = build()
    predictor = SelfPredictor(model, tokenizer, "self")
    thought = "<thinking><thinking>"
    (g,) = predictor.gain([X], [thought], [Y])
    # The wrapped LM alone reads the same ids with the thinking positions' ordinary embeddings
    # and scores differently: the continuous inputs were in the pass that scored Y.
    thinking_id = tokenizer.convert_tokens_to_ids("<thinking>")
    plain_logp = independent_logp(model.language_model, tokenizer,
                                  get_combiner(None)(X, thought), Y)
    with_thoughts = independent_logp(model, tokenizer, get_combiner(None)(X, thought), Y)
    assert g.enriched.total == pytest.approx(with_thoughts, abs=1e-4)
    assert abs(with_thoughts - plain_logp) > 1e-3
    assert thinking_id in tokenizer(get_combiner(None)(X, thought), add_special_tokens=False
                                    ).input_ids


def test_a_policy_without_the_thinking_token_scores_latents_without_thoughts(live):
    predictor = SelfPredictor(*live, "self")
    with_thoughts, plain = predictor.gain([X, X], [f"<thinking>{LATENT}<thinking>", LATENT],
                                          [Y, Y])
    assert with_thoughts.enriched.total == plain.enriched.total
