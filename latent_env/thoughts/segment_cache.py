"""KV caches for the segment-wise forward.

Two situations:

* **Training / scoring** (no cache requested by the caller): each segment gets its own
  :class:`SegmentCache` whose layers hold the keys/values of all earlier segments as a fixed
  prefix. ``update`` *replaces* the segment's own keys instead of appending them, so a
  gradient-checkpointed layer that is replayed in the backward pass sees the same keys as in the
  forward pass (transformers drops ordinary caches under checkpointing for exactly that reason).
  Keys stay in the autograd graph, so gradients flow from later segments into earlier ones.
* **Generation** (the caller passes or asks for a cache): the caller's cache is extended in place
  and the state needed to build the next latent embedding is attached to it with
  :func:`set_carry`, so a ``<thinking>`` token fed in the next call (e.g. by ``generate``) can
  be embedded without recomputing anything.

The KV cache argument is ``cache`` since transformers 5.24 (``past_key_values`` before, now
deprecated). :func:`take_cache` accepts both names from callers; :func:`cache_keyword` reads the
name a wrapped decoder takes from its signature, since remote-code models written for older
releases still take ``past_key_values`` and would silently ignore ``cache``.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

_CARRY_ATTRIBUTE = "latent_thought_carry"


class ReplayableLayer(DynamicLayer):
    """One attention layer's cache for one segment: fixed prefix + the segment's own keys."""

    def __init__(
        self, prefix_keys: torch.Tensor | None = None, prefix_values: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        self.prefix_keys = prefix_keys
        self.prefix_values = prefix_values
        if prefix_keys is not None:
            self.keys, self.values = prefix_keys, prefix_values
            self.dtype, self.device = prefix_keys.dtype, prefix_keys.device
            self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.prefix_keys is None:
            keys, values = key_states, value_states
        else:
            keys = torch.cat([self.prefix_keys, key_states], dim=-2)
            values = torch.cat([self.prefix_values, value_states], dim=-2)
        # Replace, never append: a checkpoint replay must rebuild exactly the same keys.
        self.keys, self.values = keys, values
        self.dtype, self.device = key_states.dtype, key_states.device
        self.is_initialized = True
        return keys, values

    def get_seq_length(self) -> int:
        """Length of the prefix, i.e. of the positions before this segment."""
        return 0 if self.prefix_keys is None else self.prefix_keys.shape[-2]


class SegmentCache(Cache):
    """Cache of one segment; :meth:`following` builds the next segment's cache from it."""

    def __init__(self, layers: list[ReplayableLayer] | None = None) -> None:
        if layers is None:
            super().__init__(layer_class_to_replicate=ReplayableLayer)
        else:
            super().__init__(layers=layers)

    def following(self) -> SegmentCache:
        """The cache of the next segment: this segment's full keys become its prefix."""
        return SegmentCache([ReplayableLayer(layer.keys, layer.values) for layer in self.layers])


@dataclass
class LatentCarry:
    """State of the last position of a forward call, for a ``<thinking>`` token in the next call."""

    hidden: torch.Tensor  # (batch, hidden), final-norm'ed
    logits: torch.Tensor | None  # (batch, vocab), only kept in fusion mode


def set_carry(cache: Any, carry: LatentCarry) -> None:
    """Attach ``carry`` to a generation cache (it travels with the cache between calls)."""
    setattr(cache, _CARRY_ATTRIBUTE, carry)


def get_carry(cache: Any) -> LatentCarry | None:
    """The carry attached by the previous forward call on ``cache``, if any."""
    return getattr(cache, _CARRY_ATTRIBUTE, None) if cache is not None else None


def take_cache(cache: Any, past_key_values: Any) -> Any:
    """The caller's KV cache under either name (``cache``, or the deprecated ``past_key_values``).

    A cache that arrived under a name the model did not read would fall into ``**kwargs``: the
    model would extend a private cache and attach the latent carry there, not to the caller's.
    """
    if cache is not None and past_key_values is not None and cache is not past_key_values:
        raise ValueError("pass the KV cache once, as `cache` (or the older `past_key_values`)")
    return cache if cache is not None else past_key_values


def cache_keyword(module: Any) -> str:
    """The keyword ``module``'s forward takes its KV cache by."""
    return _forward_cache_keyword(type(module))


@functools.cache
def _forward_cache_keyword(module_class: type) -> str:
    parameters = inspect.signature(module_class.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"

