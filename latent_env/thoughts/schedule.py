"""Which tokens go into which decoder pass when every row has its own ``<thinking>`` columns.

A latent ``<thinking>`` at column c needs the last hidden state at c-1 of the *same row*. Two
schedules respect that:

* **aligned** (generation, cached calls): cut every row at the union of the latent columns,
  so all rows advance column by column together and an external KV cache stays column-aligned.
  Rows whose latents sit at different columns multiply the passes: up to ``batch * k + 1``.
* **waves** (training and scoring, internal caches): pass i takes, in every row, the tokens
  between that row's (i-1)-th and i-th latent. Rows are independent, so k latents per row cost
  ``k + 1`` passes however they are scattered. Each pass is a block as wide as its longest
  row segment; shorter rows are filled with masked filler columns. Every column of every row
  lands in exactly one block; ``inverse`` maps the joined blocks back to the sequence.

Every pass streams all weights once forward and once backward; on a CPU that cost dominates
when segments are short, so training and scoring use waves (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class WavePlan:
    """Blocks of the waves schedule.

    Attributes:
        columns: per pass, ``(batch, width)`` sequence columns; -1 marks filler.
        inverse: ``(batch, length)`` index of each column in the blocks joined along dim 1.
    """

    columns: list[torch.Tensor]
    inverse: torch.Tensor

    @property
    def passes(self) -> int:
        return len(self.columns)


def wave_plan(latent: torch.Tensor) -> WavePlan:
    """Plan the waves for a ``(batch, length)`` bool mask of latent ``<thinking>`` columns."""
    batch, length = latent.shape
    cuts = [[0, *latent[row].nonzero().flatten().tolist(), length] for row in range(batch)]
    passes = max(len(row_cuts) - 1 for row_cuts in cuts)
    inverse = torch.empty(batch, length, dtype=torch.long)
    columns, offset = [], 0
    for index in range(passes):
        spans = [(c[index], c[index + 1]) if index + 1 < len(c) else (0, 0) for c in cuts]
        width = max(end - start for start, end in spans)
        block = torch.full((batch, width), -1, dtype=torch.long)
        for row, (start, end) in enumerate(spans):
            block[row, : end - start] = torch.arange(start, end)
            inverse[row, start:end] = offset + torch.arange(end - start)
        columns.append(block.to(latent.device))
        offset += width
    return WavePlan(columns, inverse.to(latent.device))


def aligned_starts(latent: torch.Tensor) -> list[int]:
    """Segment starts of the aligned schedule: 0 and every column latent in some row."""
    return sorted({0, *latent.any(dim=0).nonzero().flatten().tolist()})
