"""Special token ids a tokenizer may lack, with the one fallback every module uses: EOS; and how
generated ids become action text.

Llama-style tokenizers (the default model's among them) define no pad token, and some define no
BOS; padding with EOS is safe wherever an attention mask or a length hides the padding.

``<thinking>`` is a special token of a latent-thought tokenizer, so decoding with
``skip_special_tokens=True`` (as TRL decodes completions) would drop every thought before the
action parser sees it. :func:`decode_action` drops the other special tokens (end of sequence,
padding) and keeps the thoughts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from latent_env.actions import THINKING_TOKEN


def pad_token_id(tokenizer: Any) -> int:
    """The tokenizer's pad id, else its EOS id."""
    pad = tokenizer.pad_token_id
    return pad if pad is not None else tokenizer.eos_token_id


def start_token_id(tokenizer: Any) -> int:
    """The id a scored or generated sequence starts with: BOS, else EOS."""
    start = tokenizer.bos_token_id
    return start if start is not None else tokenizer.eos_token_id


def thinking_token_id(tokenizer: Any) -> int | None:
    """The id of ``<thinking>`` when ``tokenizer`` has it as one token, else ``None``."""
    ids = tokenizer(THINKING_TOKEN, add_special_tokens=False).input_ids
    return ids[0] if len(ids) == 1 else None


def decode_action(tokenizer: Any, ids: Sequence[int]) -> str:
    """Generated ids as action text: special tokens dropped, except ``<thinking>``."""
    ids = [int(i) for i in ids]
    thought = thinking_token_id(tokenizer)
    if thought is None or thought not in ids:
        return tokenizer.decode(ids, skip_special_tokens=True)
    parts, current = [], []
    for i in ids:
        if i == thought:
            parts.append(current)
            current = []
        else:
            current.append(i)
    parts.append(current)
    return THINKING_TOKEN.join(tokenizer.decode(p, skip_special_tokens=True) for p in parts)
