"""LatentThoughtModel: latent embeddings, segment-wise forward, generation, save/load, gradients."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, LogitsProcessor, LogitsProcessorList
from transformers.cache_utils import DynamicCache

from latent_env.models import load_model
from latent_env.thoughts import LatentThoughtModel, add_thinking_token
from latent_env.thoughts.fusion import latent_input_embedding, nucleus_distribution
from latent_env.thoughts.reference import reference_greedy, reference_logits
from latent_env.thoughts.schedule import aligned_starts, wave_plan

torch.set_num_threads(1)
TOL = 1e-5


def build(**settings):
    base, tokenizer = load_model("tiny-random", threads=1)
    return add_thinking_token(base, tokenizer, **settings), tokenizer


@pytest.fixture(scope="module")
def shared():
    return build()


@pytest.fixture
def model(shared):
    """The shared tiny model reset to hidden mode, eval, gradients kept (tests may switch)."""
    ltm, _ = shared
    ltm.set_latent_mode(mode="hidden", alpha=0.5, top_p=0.9, temperature=1.0)
    ltm.config.detach_latent = False
    return ltm.eval()


def thinking_batch(tid: int, padding: str = "none") -> tuple[torch.Tensor, torch.Tensor]:
    """3 rows with thinking tokens at different columns (consecutive, first position, ...)."""
    ids = torch.randint(100, 5000, (3, 20), generator=torch.Generator().manual_seed(0))
    ids[0, [4, 5, 12]] = tid  # two in a row, then one more
    ids[1, [7, 15]] = tid
    ids[2, [0, 9, 18]] = tid  # the first has no previous position
    mask = torch.ones_like(ids)
    if padding == "left":
        mask[1, :5], mask[2, :3] = 0, 0
        ids[2, 3] = tid  # first real token of a left-padded row
    elif padding == "right":
        mask[1, 16:], mask[2, 10:] = 0, 0
    return ids, mask


# ---- fusion math -----------------------------------------------------------------------------


def test_fusion_with_alpha_one_is_the_hidden_state():
    hidden, logits, table = torch.randn(4, 8), torch.randn(4, 30), torch.randn(30, 8)
    fused = latent_input_embedding(
        hidden,
        logits,
        table,
        mode="fusion",
        alpha=1.0,
        top_p=0.9,
        temperature=1.0,
        thinking_token_id=3,
    )
    assert torch.allclose(fused, hidden, atol=1e-7)


def test_fusion_with_tiny_top_p_and_alpha_zero_is_the_argmax_embedding():
    hidden, logits, table = torch.randn(4, 8), torch.randn(4, 30), torch.randn(30, 8)
    logits[:, 3] = 100.0  # the thinking logit is masked, never the argmax
    fused = latent_input_embedding(
        hidden,
        logits,
        table,
        mode="fusion",
        alpha=0.0,
        top_p=1e-6,
        temperature=1.0,
        thinking_token_id=3,
    )
    masked = logits.clone()
    masked[:, 3] = -float("inf")
    assert torch.allclose(fused, table[masked.argmax(-1)], atol=1e-6)


def test_nucleus_matches_a_hand_computed_distribution():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    # mass before each token: 0, .5, .8, .95 -> top_p=0.8 keeps the first two only
    expected = torch.tensor([[0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0]])
    assert torch.allclose(nucleus_distribution(logits, 0.8), expected, atol=1e-6)
    # temperature 2 flattens before the cut; masking token 0 renormalises over the rest
    masked = nucleus_distribution(logits, 1.0, masked_token_id=0)
    assert torch.allclose(masked, torch.tensor([[0.0, 0.6, 0.3, 0.1]]), atol=1e-6)
    flat = nucleus_distribution(logits, 1.0, temperature=2.0)
    assert torch.allclose(flat, torch.softmax(logits / 2.0, -1), atol=1e-6)


# ---- forward against the no-cache reference ----------------------------------------------------


@pytest.mark.parametrize("padding", ["none", "left", "right"])
@pytest.mark.parametrize("mode", ["hidden", "fusion"])
def test_segment_forward_matches_full_recompute(model, padding, mode):
    model.set_latent_mode(mode=mode, alpha=0.6)
    ids, mask = thinking_batch(model.thinking_token_id, padding)
    with torch.no_grad():
        fast = model(input_ids=ids, attention_mask=mask).logits
        slow = reference_logits(model, ids, mask)
        plain = model.language_model(input_ids=ids, attention_mask=mask).logits
    real = mask.bool()
    assert (fast - slow)[real].abs().max() < TOL
    assert (fast - plain)[real].abs().max() > 1e-2  # the latent inputs do change the output


def test_without_thinking_tokens_logits_equal_the_wrapped_model(model):
    ids = torch.randint(100, 5000, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        ours = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        theirs = model.language_model(
            input_ids=ids, attention_mask=mask, position_ids=positions
        ).logits
    assert torch.equal(ours, theirs)


def test_thinking_at_the_first_position_uses_its_ordinary_embedding(model):
    tid = model.thinking_token_id
    ids = torch.tensor([[tid, 500, 600]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, model.language_model(input_ids=ids).logits)


def test_logits_to_keep_int_and_tensor(model):
    ids, mask = thinking_batch(model.thinking_token_id, "left")
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask).logits
        last = model(input_ids=ids, attention_mask=mask, logits_to_keep=4).logits
        picked = model(
            input_ids=ids, attention_mask=mask, logits_to_keep=torch.tensor([13, 2, 7])
        ).logits
    assert last.shape[1] == 4 and (last - full[:, -4:]).abs().max() < TOL
    assert (picked - full[:, [13, 2, 7]]).abs().max() < TOL


def test_labels_loss_is_shifted_cross_entropy(model):
    ids, mask = thinking_batch(model.thinking_token_id, "right")
    labels = ids.masked_fill(mask == 0, -100)
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    expected = torch.nn.functional.cross_entropy(
        out.logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100
    )
    assert torch.allclose(out.loss, expected, atol=1e-6)
    with pytest.raises(ValueError, match="logits_to_keep"):
        model(input_ids=ids, labels=labels, logits_to_keep=3)


def test_packed_rows_are_rejected(model):
    """Position ids that restart inside a row without a mask mean packing: not supported."""
    with pytest.raises(ValueError, match="packed"):
        model(
            input_ids=torch.tensor([[400, 500, 600, 400, 500]]),
            position_ids=torch.tensor([[0, 1, 2, 0, 1]]),
        )


def test_tuple_output_and_all_hidden_states(model):
    ids, mask = thinking_batch(model.thinking_token_id)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        as_tuple = model(input_ids=ids, attention_mask=mask, return_dict=False)
    layers = model.config.text_config.num_hidden_layers
    assert len(out.hidden_states) == layers + 1 and out.hidden_states[0].shape[1] == ids.shape[1]
    assert torch.allclose(model.lm_logits(out.hidden_states[-1]), out.logits, atol=1e-6)
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], out.logits)


def test_backbone_view_returns_the_latent_hidden_states(model):
    """TRL's chunked-loss paths call ``model.base_model`` and apply the head themselves."""
    ids, mask = thinking_batch(model.thinking_token_id, "right")
    with torch.no_grad():
        hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        logits = model(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(model.lm_logits(hidden), logits, atol=1e-6)
    assert model.base_model.embed_tokens is model.language_model.model.embed_tokens


def test_wave_schedule_needs_k_plus_one_passes_however_rows_differ():
    latent = torch.zeros(3, 12, dtype=torch.bool)
    latent[0, [2, 3, 9]] = True
    latent[1, [5, 7]] = True
    plan = wave_plan(latent)
    assert plan.passes == 4 and len(aligned_starts(latent)) == 6
    assert [c.shape[1] for c in plan.columns] == [12, 2, 6, 3]  # widest row segment per pass
    joined = torch.cat(plan.columns, 1)
    assert torch.equal(joined.gather(1, plan.inverse), torch.arange(12).expand(3, 12))
    # after its latents, a row only holds filler
    assert plan.columns[2][1].tolist() == [7, 8, 9, 10, 11, -1] and (plan.columns[3][1] < 0).all()


def test_cached_and_uncached_schedules_agree(model):
    """Aligned passes (a cache is requested) and waves (none is) give the same logits."""
    model.set_latent_mode(mode="fusion")
    ids, mask = thinking_batch(model.thinking_token_id, "left")
    with torch.no_grad():
        waves = model(input_ids=ids, attention_mask=mask).logits
        aligned = model(input_ids=ids, attention_mask=mask, use_cache=True).logits
    assert (waves - aligned)[mask.bool()].abs().max() < TOL


def test_cached_continuation_matches_one_pass(model):
    """A thinking token at the start of a cached call is embedded from the previous call."""
    model.set_latent_mode(mode="fusion")
    ids, mask = thinking_batch(model.thinking_token_id, "left")
    with torch.no_grad():
        whole = model(input_ids=ids, attention_mask=mask).logits
        first = model(input_ids=ids[:, :12], attention_mask=mask[:, :12], use_cache=True)
        second = model(
            input_ids=ids[:, 12:], attention_mask=mask, cache=first.cache, use_cache=True
        )
    assert ids[0, 12] == model.thinking_token_id
    assert (torch.cat([first.logits, second.logits], 1) - whole).abs().max() < TOL


@pytest.mark.parametrize("keyword", ["cache", "past_key_values"])
def test_a_cache_passed_under_either_name_is_the_one_extended(model, keyword):
    """Regression: transformers 5.24's ``generate`` passes its KV cache as ``cache``.

    The model read only ``past_key_values``, so the cache arrived in ``**kwargs``: the model
    extended a private cache of its own and attached the latent carry there. A ``<thinking>``
    fed in the next cached call then lost its latent input in the rows that thought at that
    step. Left-padded rows, thinking at different steps, one token per call as in generation.
    """
    model.set_latent_mode(mode="hidden")
    tid = model.thinking_token_id
    ids = torch.randint(100, 5000, (2, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding
    ids[0, [7, 8, 10]] = tid  # row 0 thinks at steps 1, 2 and 4
    ids[1, [9, 11]] = tid  # row 1 at steps 3 and 5
    with torch.no_grad():
        expected = reference_logits(model, ids, mask)
        out = model(input_ids=ids[:, :6], attention_mask=mask[:, :6], use_cache=True)
        cache, parts, returned = out.cache, [out.logits], []
        for column in range(6, ids.shape[1]):
            step = model(
                input_ids=ids[:, column : column + 1],
                attention_mask=mask[:, : column + 1],
                use_cache=True,
                **{keyword: cache},
            )
            parts.append(step.logits)
            returned.append(step.cache)
    assert (torch.cat(parts, 1) - expected)[mask.bool()].abs().max() < TOL
    assert all(other is cache for other in returned)  # the caller's cache, extended in place
    with pytest.raises(ValueError, match="once"):
        model(input_ids=ids[:, :2], cache=cache, past_key_values=DynamicCache())


# ---- generation --------------------------------------------------------------------------------


class ForceTokenAt(LogitsProcessor):
    """Make ``token`` the argmax of row r at the generation steps ``steps[r]``."""

    def __init__(self, prompt_length: int, steps: dict[int, set[int]], token: int) -> None:
        self.prompt_length, self.steps, self.token = prompt_length, steps, token

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.prompt_length
        rows = [row for row, steps in self.steps.items() if step in steps]
        if rows:
            scores = scores.clone()
            scores[rows, self.token] += 1e4
        return scores


@pytest.mark.parametrize("mode", ["hidden", "fusion"])
def test_generate_with_cache_equals_the_no_cache_reference(shared, model, mode):
    _, tokenizer = shared
    model.set_latent_mode(mode=mode, alpha=0.6)
    tokenizer.padding_side = "left"
    enc = tokenizer(["Tom has 12 apples and buys 7 more.", "Hi"], return_tensors="pt", padding=True)
    width = enc.input_ids.shape[1]
    # rows think at different steps: boundary columns hold a latent in one row only
    forced = {0: {1, 2, 5}, 1: {2, 6, 7}}
    processors = LogitsProcessorList([ForceTokenAt(width, forced, model.thinking_token_id)])
    out = model.generate(
        **enc,
        max_new_tokens=9,
        do_sample=False,
        logits_processor=processors,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=None,
        output_logits=True,
        return_dict_in_generate=True,
    )
    reference = reference_greedy(model, enc.input_ids, enc.attention_mask, 9, processors)
    assert torch.equal(out.sequences, reference)
    assert (out.sequences[:, width:] == model.thinking_token_id).sum() == 6
    uncached = model.generate(
        **enc,
        max_new_tokens=9,
        do_sample=False,
        logits_processor=processors,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=None,
        use_cache=False,
    )
    assert torch.equal(uncached, reference)
    with torch.no_grad():
        expected = reference_logits(
            model, reference[:, :-1], torch.cat([enc.attention_mask, torch.ones(2, 8)], 1).long()
        )
    cached_logits = torch.stack(out.logits, 1)
    assert (cached_logits - expected[:, width - 1 :]).abs().max() < TOL


def test_generate_without_thinking_matches_the_wrapped_model(shared, model):
    _, tokenizer = shared
    enc = tokenizer(["The answer is"], return_tensors="pt")
    settings = dict(
        max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=None
    )
    assert torch.equal(
        model.generate(**enc, **settings), model.language_model.generate(**enc, **settings)
    )


# ---- persistence ------------------------------------------------------------------------------


def test_save_and_reload_keep_mode_alpha_and_token(tmp_path):
    ltm, tokenizer = build(mode="fusion", alpha=0.6)
    ltm.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    for loader in (LatentThoughtModel, AutoModelForCausalLM):
        again = loader.from_pretrained(tmp_path)
        assert isinstance(again, LatentThoughtModel)
        assert (again.config.mode, again.config.alpha) == ("fusion", 0.6)
        assert again.config.thinking_token == "<thinking>"
        assert again.thinking_token_id == ltm.thinking_token_id
        ids, mask = thinking_batch(ltm.thinking_token_id)
        with torch.no_grad():
            assert torch.equal(again(input_ids=ids).logits, ltm(input_ids=ids).logits)


def test_add_thinking_token_initialises_the_row_to_the_mean_embedding():
    base, tokenizer = load_model("tiny-random", threads=1)
    old = base.get_input_embeddings().weight.detach().clone()
    ltm = add_thinking_token(base, tokenizer)
    table = ltm.get_input_embeddings().weight
    assert tokenizer.convert_tokens_to_ids("<thinking>") == ltm.thinking_token_id == len(old)
    assert torch.equal(table[: len(old)], old)
    assert torch.allclose(table[-1], old.mean(0), atol=1e-6)
    assert tokenizer("a<thinking>b").input_ids[1] == ltm.thinking_token_id


def test_invalid_stage_settings_are_rejected_and_rolled_back(model):
    with pytest.raises(ValueError, match="alpha"):
        model.set_latent_mode(mode="fusion", alpha=1.5)
    assert (model.config.mode, model.config.alpha) == ("hidden", 0.5)


# ---- gradients --------------------------------------------------------------------------------


def _grad_of_latent_source(ltm, monkeypatch, detach: bool) -> torch.Tensor | None:
    """Gradient reaching the hidden state that builds the single thinking embedding."""
    import latent_env.thoughts.model as model_module

    captured = []
    original = model_module.latent_input_embedding

    def capture(hidden, *args, **kwargs):
        hidden.retain_grad()
        captured.append(hidden)
        return original(hidden, *args, **kwargs)

    monkeypatch.setattr(model_module, "latent_input_embedding", capture)
    ltm.config.detach_latent = detach
    tid = ltm.thinking_token_id
    ids = torch.tensor([[400, 500, 600, tid, 700, 800]])
    labels = ids.clone()
    labels[:, :4] = -100  # no loss on predicting <thinking>: only the latent path reaches h_2
    ltm.train()
    ltm(input_ids=ids, labels=labels).loss.backward()
    ltm.zero_grad()
    return captured[0].grad


def test_gradient_flows_through_the_latent_position(model, monkeypatch):
    for mode in ("hidden", "fusion"):
        model.set_latent_mode(mode=mode)
        grad = _grad_of_latent_source(model, monkeypatch, detach=False)
        assert grad is not None and grad.abs().sum() > 0
        detached = _grad_of_latent_source(model, monkeypatch, detach=True)
        assert detached is None or detached.abs().sum() == 0


def test_gradient_checkpointing_gives_the_same_gradients():
    ltm, _ = build(mode="fusion")
    ids, mask = thinking_batch(ltm.thinking_token_id, "right")
    labels = ids.masked_fill(mask == 0, -100)
    replays = []

    def grads() -> tuple[float, dict[str, torch.Tensor]]:
        ltm.zero_grad()
        ltm.train()
        loss = ltm(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in ltm.named_parameters()}

    plain_loss, plain = grads()
    ltm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    layer = ltm.language_model.model.layers[0]
    checkpoint_fn = layer._gradient_checkpointing_func
    layer._gradient_checkpointing_func = lambda *a, **k: replays.append(1) or checkpoint_fn(*a, **k)
    checkpointed_loss, checkpointed = grads()
    assert len(replays) == 4  # one checkpointed call per pass (3 latents in row 0 -> 4 waves)
    assert abs(plain_loss - checkpointed_loss) < 1e-6
    assert max((plain[n] - checkpointed[n]).abs().max() for n in plain) < 1e-6
    ltm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": True})
    with pytest.raises(ValueError, match="non-reentrant"):
        ltm(input_ids=ids, attention_mask=mask, labels=labels)


@pytest.mark.slow
def test_default_model_segment_forward_and_generate_match_the_reference():
    """The real SmolLM2 (30 layers, grouped-query attention), fusion mode, left padding."""
    from latent_env.models import ModelNotFoundError

    try:
        base, tokenizer = load_model("default", threads=1)
    except ModelNotFoundError as error:
        pytest.skip(str(error))
    ltm = add_thinking_token(base, tokenizer, mode="fusion", alpha=0.6).eval()
    tid = ltm.thinking_token_id
    tokenizer.padding_side = "left"
    enc = tokenizer(
        ["Tom has 12 apples and buys 7 more. He has", "Ann: 3 + 4 ="],
        return_tensors="pt",
        padding=True,
    )
    ids = enc.input_ids.clone()
    ids[0, -3], ids[1, -5:-3] = tid, tid
    with torch.no_grad():
        fast = ltm(input_ids=ids, attention_mask=enc.attention_mask).logits
        slow = reference_logits(ltm, ids, enc.attention_mask)
    assert (fast - slow)[enc.attention_mask.bool()].abs().max() < 1e-4
    width = ids.shape[1]
    processors = LogitsProcessorList([ForceTokenAt(width, {0: {1}, 1: {2, 3}}, tid)])
    out = ltm.generate(
        input_ids=ids,
        attention_mask=enc.attention_mask,
        max_new_tokens=5,
        do_sample=False,
        logits_processor=processors,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=None,
    )
    assert torch.equal(out, reference_greedy(ltm, ids, enc.attention_mask, 5, processors))
