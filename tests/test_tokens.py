"""Special token ids: the tokenizer's own, else EOS."""

from types import SimpleNamespace

from latent_env.tokens import decode_action, pad_token_id, start_token_id, thinking_token_id


def test_missing_pad_and_bos_fall_back_to_eos_and_present_ones_are_kept():
    bare = SimpleNamespace(pad_token_id=None, bos_token_id=None, eos_token_id=2)
    full = SimpleNamespace(pad_token_id=0, bos_token_id=1, eos_token_id=2)
    assert (pad_token_id(bare), start_token_id(bare)) == (2, 2)
    assert (pad_token_id(full), start_token_id(full)) == (0, 1)


def test_decode_action_keeps_thoughts_and_drops_other_special_tokens():
    from tests.test_thoughts_model import build

    _, tokenizer = build()
    thought = tokenizer.convert_tokens_to_ids("<thinking>")
    text = tokenizer("<calc>12 + 7</calc>", add_special_tokens=False).input_ids
    ids = [thought, thought, *text, thought, tokenizer.eos_token_id]
    assert decode_action(tokenizer, ids) == "<thinking><thinking><calc>12 + 7</calc><thinking>"
    # What TRL's skip_special_tokens decoding gives: no thought left.
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<calc>12 + 7</calc>"
    assert thinking_token_id(tokenizer) == thought


def test_decode_action_without_a_thinking_token_is_plain_decoding(tiny):
    _, tokenizer = tiny
    ids = tokenizer("<calc>1</calc>", add_special_tokens=False).input_ids + [
        tokenizer.eos_token_id]
    assert thinking_token_id(tokenizer) is None
    assert decode_action(tokenizer, ids) == tokenizer.decode(ids, skip_special_tokens=True)
