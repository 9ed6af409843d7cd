"""Naive reference computations of :class:`LatentThoughtModel`, for tests and benchmarks.

No KV cache and no segments: at each column holding a latent ``<thinking>`` the whole prefix is
recomputed from scratch to get the previous position's state, then the full sequence is run
once more. The cost grows with k full passes, which is what the segment-wise forward avoids;
the numbers must agree with it to float rounding.
"""

from __future__ import annotations

from typing import Any

import torch

from latent_env.thoughts.fusion import latent_input_embedding


def _latent_embedding(model: Any, hidden: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    config = model.config
    return latent_input_embedding(
        hidden,
        logits,
        model.get_input_embeddings().weight,
        mode=config.mode,
        alpha=config.alpha,
        top_p=config.fusion_top_p,
        temperature=config.fusion_temperature,
        thinking_token_id=config.thinking_token_id,
    )


def reference_embeddings(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Input embeddings with every latent position filled by recomputing its prefix."""
    language_model = model.language_model
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    embeds = model.get_input_embeddings()(input_ids)
    real = mask.bool()
    for column in range(1, input_ids.shape[1]):
        rows = (input_ids[:, column] == model.config.thinking_token_id) & real[:, column]
        rows &= real[:, column - 1]
        if not bool(rows.any()):
            continue
        prefix = language_model(
            inputs_embeds=embeds[:, :column],
            attention_mask=mask[:, :column],
            position_ids=positions[:, :column],
            output_hidden_states=True,
        )
        latent = _latent_embedding(model, prefix.hidden_states[-1][:, -1], prefix.logits[:, -1])
        embeds = embeds.clone()
        embeds[rows, column] = latent[rows].to(embeds.dtype)
    return embeds


def reference_logits(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Logits of every position, computed by full recomputation at each latent position."""
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    embeds = reference_embeddings(model, input_ids, mask)
    return model.language_model(
        inputs_embeds=embeds, attention_mask=mask, position_ids=positions
    ).logits


def reference_greedy(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    max_new_tokens: int,
    logits_processor: Any = None,
) -> torch.Tensor:
    """Greedy decoding without a cache: every step recomputes the whole sequence."""
    ids = input_ids
    mask = torch.ones_like(ids) if attention_mask is None else attention_mask
    for _ in range(max_new_tokens):
        scores = reference_logits(model, ids, mask)[:, -1].float()
        if logits_processor is not None:
            scores = logits_processor(ids, scores)
        next_token = scores.argmax(dim=-1, keepdim=True)
        ids = torch.cat([ids, next_token], dim=1)
        mask = torch.cat([mask, torch.ones_like(next_token)], dim=1)
    return ids
