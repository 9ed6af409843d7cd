"""A stand-in tokenizer for the raw-text tests: offsets without loading a model."""

from __future__ import annotations

import re


class FakeTokenizer:
    """GPT-2-like: a token keeps its leading whitespace; digits are single tokens."""

    pattern = re.compile(r"\s*(?:\d|[^\s\d]+)")

    def __call__(self, text, return_offsets_mapping=False, add_special_tokens=True):
        spans = [m.span() for m in self.pattern.finditer(text)]
        return {"input_ids": list(range(len(spans))), "offset_mapping": spans}
