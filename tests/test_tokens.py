"""Special token ids: the tokenizer's own, else EOS."""

from types import SimpleNamespace

from latent_env.tokens import pad_token_id, start_token_id


def test_missing_pad_and_bos_fall_back_to_eos_and_present_ones_are_kept():
    bare = SimpleNamespace(pad_token_id=None, bos_token_id=None, eos_token_id=2)
    full = SimpleNamespace(pad_token_id=0, bos_token_id=1, eos_token_id=2)
    assert (pad_token_id(bare), start_token_id(bare)) == (2, 2)
    assert (pad_token_id(full), start_token_id(full)) == (0, 1)
