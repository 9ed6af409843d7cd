"""A generation stopping criterion: each row stops once the text it generated contains a stop text.

transformers' ``stop_strings`` builds a table over the whole vocabulary on every ``generate`` call
(about a second for a 49k vocabulary); decoding a few trailing tokens per step is far cheaper.
Used by the ``hf:`` policy (``<done/>``) and the multi-turn rollout (closing tags, ``<done/>``).
"""

from __future__ import annotations

from typing import Any

STOP_WINDOW = 12  # trailing tokens decoded each step; stop texts here are at most ~5 tokens


class StopAtTexts:
    """Stops a row once the tokens it generated after ``prompt_width`` decode to text containing
    one of ``stops``; ``ended_at[row]`` is how many tokens it had generated then."""

    def __init__(self, tokenizer: Any, stops: tuple[str, ...], prompt_width: int) -> None:
        self.tokenizer, self.stops, self.width = tokenizer, stops, prompt_width
        self.ended_at: dict[int, int] = {}

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        generated = input_ids.shape[1] - self.width
        tails = input_ids[:, max(self.width, input_ids.shape[1] - STOP_WINDOW):]
        texts = self.tokenizer.batch_decode(tails, skip_special_tokens=True)
        hits = [any(s in text for s in self.stops) for text in texts]
        for row, hit in enumerate(hits):
            if hit:
                self.ended_at.setdefault(row, generated)
        # generate keeps a stopped row stopped, so this is the tail's verdict alone.
        return torch.tensor(hits, dtype=torch.bool, device=input_ids.device)


def criteria(stop: StopAtTexts) -> Any:
    """``stop`` as the ``stopping_criteria`` argument of ``generate``."""
    from transformers import StoppingCriteriaList

    return StoppingCriteriaList([stop])
