"""Special token ids a tokenizer may lack, with the one fallback every module uses: EOS.

Llama-style tokenizers (the default model's among them) define no pad token, and some define no
BOS; padding with EOS is safe wherever an attention mask or a length hides the padding.
"""

from __future__ import annotations

from typing import Any


def pad_token_id(tokenizer: Any) -> int:
    """The tokenizer's pad id, else its EOS id."""
    pad = tokenizer.pad_token_id
    return pad if pad is not None else tokenizer.eos_token_id


def start_token_id(tokenizer: Any) -> int:
    """The id a scored or generated sequence starts with: BOS, else EOS."""
    start = tokenizer.bos_token_id
    return start if start is not None else tokenizer.eos_token_id
