"""How the input embedding of a ``<thinking>`` position is built from the position before it.

* hidden mode (LT-Tuning stage 2, Coconut): ``e = h_{t-1}``, the last hidden state of the previous
  position *after* the final norm, i.e. exactly the vector the LM head reads
  (``outputs.hidden_states[-1]`` in transformers).
* fusion mode (LT-Tuning stage 3, context-prediction fusion):
  ``e = alpha * h_{t-1} + (1 - alpha) * sum_w P(w) E(w)``, where ``P`` is the previous position's
  next-token distribution at temperature ``T`` with the ``<thinking>`` logit masked, cut to its
  top-p nucleus (at least the top-1 token) and renormalised, and ``E`` the input embedding matrix.
  The prediction term pulls the latent input back onto the embedding manifold that raw hidden
  states drift away from.
"""

from __future__ import annotations

import torch


def nucleus_distribution(
    logits: torch.Tensor,
    top_p: float,
    temperature: float = 1.0,
    masked_token_id: int | None = None,
) -> torch.Tensor:
    """Top-p renormalised next-token distribution, shape like ``logits`` (``(..., vocab)``).

    The nucleus is the smallest set of most probable tokens whose mass reaches ``top_p``; the
    most probable token is always kept, so ``top_p`` close to 0 yields a one-hot argmax.
    Computed in float32; differentiable w.r.t. ``logits`` inside the (discrete) nucleus.
    """
    scaled = logits.float() / temperature
    if masked_token_id is not None:
        scaled = scaled.clone()
        scaled[..., masked_token_id] = float("-inf")
    probs = torch.softmax(scaled, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    # Keep a token while the mass of the tokens ranked above it is still short of top_p; the
    # first token has mass_before == 0 and is always kept.
    keep_sorted = mass_before < top_p
    keep_sorted[..., 0] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    kept = probs * keep
    return kept / kept.sum(dim=-1, keepdim=True)


def predicted_embedding(
    logits: torch.Tensor,
    embedding_weight: torch.Tensor,
    top_p: float,
    temperature: float = 1.0,
    masked_token_id: int | None = None,
) -> torch.Tensor:
    """``sum_w P(w) E(w)`` for each row of ``logits`` (``(..., vocab)`` → ``(..., hidden)``)."""
    weights = nucleus_distribution(logits, top_p, temperature, masked_token_id)
    return (weights @ embedding_weight.float()).to(embedding_weight.dtype)


def latent_input_embedding(
    hidden: torch.Tensor,
    logits: torch.Tensor | None,
    embedding_weight: torch.Tensor,
    *,
    mode: str,
    alpha: float,
    top_p: float,
    temperature: float,
    thinking_token_id: int | None,
    detach: bool = False,
) -> torch.Tensor:
    """The input embedding of a ``<thinking>`` position given the previous position's state.

    Args:
        hidden: ``(rows, hidden)`` final-norm'ed hidden state at t-1.
        logits: ``(rows, vocab)`` logits at t-1 (needed in fusion mode only).
        embedding_weight: the input embedding matrix ``E`` (``(vocab, hidden)``).
        mode: ``"hidden"`` or ``"fusion"``.
        alpha, top_p, temperature: fusion settings (see module docstring).
        thinking_token_id: the ``<thinking>`` id, masked out of the predicted distribution.
        detach: cut the gradient into ``hidden`` and ``logits``.
    """
    if detach:
        hidden = hidden.detach()
        logits = logits.detach() if logits is not None else None
    if mode == "hidden":
        return hidden
    if mode != "fusion":
        raise ValueError(f"unknown latent mode {mode!r}")
    if logits is None:
        raise ValueError("fusion mode needs the previous position's logits")
    prediction = predicted_embedding(
        logits, embedding_weight, top_p, temperature, thinking_token_id
    )
    return alpha * hidden + (1.0 - alpha) * prediction.to(hidden.dtype)
