"""Log-likelihood scoring: the numbers that become the environment's reward.

``LogLikScorer.score(contexts, continuations)`` returns, per item, log p(Y | X) summed over the
continuation's tokens, the per-token log-probs and the token count. ``gain`` returns
log p(Y | c(X, L)) − log p(Y | X).

Tokenisation. Context and continuation are tokenised *separately* and concatenated, so the scored
tokens are exactly the continuation's own tokens (``" 16"`` is ``Ġ 1 6`` whatever the context ends
with). Every sequence starts with one start token (the tokenizer's BOS, else EOS), so the first
continuation token of an empty context is still conditioned on something.

Truncation policy. A sequence longer than ``max_length`` tokens loses context tokens from the
*left* (the start token is kept); the continuation is never cut. ``ScoreResult.truncated`` counts
the dropped context tokens so callers can see it happened. A continuation that alone does not fit
raises ``ValueError``.

Batching. Items are sorted by length and packed into batches whose padded size stays within
``batch_tokens``; rows are left-padded so every continuation ends at the last position and only the
last ``max(len(Y)) + 1`` positions go through the LM head. Results do not depend on batch order or
size beyond float rounding (about 1e-5 nats). No gradients. Each pass runs in eval mode and puts
back the mode it found, so a scorer may share a model that is being trained
(:mod:`latent_env.predictor`).

Devices. Batches are built on the host and moved to the model's device in one copy; the
log-softmax (always fp32), the gather and the argmax run there, and each batch's results come back
in one host copy. The scorer never moves the model: whoever loads it places it
(:mod:`latent_env.devices`).

Thoughts. A ``<thinking>`` token in a latent is read as one token when the tokenizer has it (a
latent-thought model embeds it from the previous hidden state). A scorer whose tokenizer lacks it
cannot read a thought: it scores the latent without them, and counts each as one latent token.

Caching. Baselines log p(Y | X) are cached per (context, continuation) in a bounded LRU, because
RL scores many latents for the same task; ``cache_size=0`` caches nothing (weights that move).
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from latent_env.actions import THINKING_TOKEN
from latent_env.context import Combiner, get_combiner
from latent_env.devices import model_device, to_host
from latent_env.tokens import pad_token_id, start_token_id, thinking_token_id

DEFAULT_BATCH_TOKENS = 4096
DEFAULT_MAX_LENGTH = 2048
DEFAULT_CACHE_SIZE = 65536


@dataclass(frozen=True)
class ScoreResult:
    """Log-likelihood of one continuation given one context."""

    total: float
    token_logprobs: list[float]
    n_tokens: int
    tokens: list[str] = field(default_factory=list)
    truncated: int = 0
    token_is_argmax: list[bool] = field(default_factory=list)

    def greedy_prefix(self, n: int) -> bool:
        """Would greedy decoding produce the first ``n`` continuation tokens exactly?

        Greedy decoding follows the gold path as long as each gold token is the argmax given the
        gold tokens before it, so this is exact (up to argmax ties) and needs no generation.
        """
        return n <= len(self.token_is_argmax) and all(self.token_is_argmax[:n])

    @property
    def mean(self) -> float:
        """Per-token mean log-prob (0.0 for an empty continuation)."""
        return self.total / self.n_tokens if self.n_tokens else 0.0


@dataclass(frozen=True)
class GainResult:
    """log p(Y | c(X, L)) − log p(Y | X), with both underlying scores."""

    gain: float
    enriched: ScoreResult
    baseline: ScoreResult

    @property
    def token_gains(self) -> list[float]:
        """Per-token gain, aligned with the continuation's tokens."""
        return [a - b for a, b in zip(self.enriched.token_logprobs, self.baseline.token_logprobs)]


@dataclass
class _Item:
    index: int
    context_ids: list[int]
    continuation_ids: list[int]
    truncated: int

    @property
    def length(self) -> int:
        return len(self.context_ids) + len(self.continuation_ids)


class LogLikScorer:
    """Batched, deterministic log-likelihood scorer for any HF causal LM.

    Args:
        model: a causal LM (``forward(input_ids, attention_mask, position_ids)`` → ``.logits``).
        tokenizer: its tokenizer.
        batch_tokens: padded tokens per forward pass (rows × longest row).
        dtype: if given, the model is cast to it (fp32 recommended: bf16 weights move log p(Y) by
            0.08 nats mean, 0.38 at most, on the default model; benchmarks/RESULTS.md).
        max_length: longest sequence scored; longer contexts are truncated from the left.
        combiner: c(X, L) used by :meth:`gain` (name or callable, default the founding form).
        cache_size: how many baselines to keep.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        dtype: Any = None,
        max_length: int | None = None,
        combiner: str | Combiner | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
        if dtype is not None:
            model = model.to(dtype)
        self.model = model
        self.tokenizer = tokenizer
        self.batch_tokens = batch_tokens
        model_max = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        self.max_length = max_length or min(model_max or DEFAULT_MAX_LENGTH, DEFAULT_MAX_LENGTH)
        self.combiner = get_combiner(combiner)
        self.cache_size = cache_size
        self._baseline_cache: OrderedDict[tuple[str, str], ScoreResult] = OrderedDict()
        self.reads_thoughts = thinking_token_id(tokenizer) is not None
        self.start_token_id = start_token_id(tokenizer)
        self.pad_token_id = pad_token_id(tokenizer)
        self._supports_logits_to_keep = _accepts_kwarg(model, "logits_to_keep")
        self.stats = {"forward_passes": 0, "tokens_scored": 0, "padded_tokens": 0, "cache_hits": 0}

    # ---- public API -------------------------------------------------------------------------

    def score(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[ScoreResult]:
        """Log p(continuation | context) for each pair (same order as given)."""
        if len(contexts) != len(continuations):
            raise ValueError(
                f"score() got {len(contexts)} contexts but {len(continuations)} continuations"
            )
        items = [self._tokenize(i, c, y) for i, (c, y) in enumerate(zip(contexts, continuations))]
        results: list[ScoreResult | None] = [None] * len(items)
        for batch in self._batches(items):
            for item, result in zip(batch, self._score_batch(batch)):
                results[item.index] = result
        return results  # type: ignore[return-value]

    def baseline(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[ScoreResult]:
        """Like :meth:`score`, cached per (context, continuation)."""
        keys = list(zip(contexts, continuations))
        found: dict[tuple[str, str], ScoreResult] = {}
        for key in keys:
            if key in self._baseline_cache:
                self._baseline_cache.move_to_end(key)
                found[key] = self._baseline_cache[key]
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            scored = self.score([k[0] for k in missing], [k[1] for k in missing])
            for key, result in zip(missing, scored):
                found[key] = result
                self._remember(key, result)
        self.stats["cache_hits"] += len(keys) - len(missing)
        return [found[key] for key in keys]

    def gain(
        self,
        contexts: Sequence[str],
        latents: Sequence[str],
        continuations: Sequence[str],
        combiner: str | Combiner | None = None,
    ) -> list[GainResult]:
        """log p(Y | c(X, L)) − log p(Y | X) per item; an empty latent gains exactly 0."""
        enriched_contexts = self.enriched_contexts(contexts, latents, continuations, combiner)
        todo = [i for i, (e, x) in enumerate(zip(enriched_contexts, contexts)) if e != x]
        # Uncached baselines and enriched contexts go through the model together, so one call
        # packs everything into the fewest batches.
        keys = list(zip(contexts, continuations))
        missing = [k for k in dict.fromkeys(keys) if k not in self._baseline_cache]
        scored = self.score(
            [k[0] for k in missing] + [enriched_contexts[i] for i in todo],
            [k[1] for k in missing] + [continuations[i] for i in todo],
        )
        for key, result in zip(missing, scored):
            self._remember(key, result)
        fresh = dict(zip(missing, scored))
        baselines = [fresh.get(k) or self._cached(k) for k in keys]
        self.stats["cache_hits"] += len(keys) - len(missing)
        enriched = list(baselines)
        for i, result in zip(todo, scored[len(missing) :]):
            enriched[i] = result
        return [GainResult(e.total - b.total, e, b) for e, b in zip(enriched, baselines)]

    def enriched_contexts(
        self,
        contexts: Sequence[str],
        latents: Sequence[str],
        continuations: Sequence[str],
        combiner: str | Combiner | None = None,
    ) -> list[str]:
        """c(X, L) per item, as :meth:`gain` scores it (thoughts left out when this tokenizer
        cannot read them; ``combiner`` overrides the scorer's)."""
        if not len(contexts) == len(latents) == len(continuations):
            raise ValueError(
                f"gain() needs equal lengths, got {len(contexts)} contexts, {len(latents)} "
                f"latents, {len(continuations)} continuations"
            )
        combine = get_combiner(combiner) if combiner is not None else self.combiner
        if not self.reads_thoughts:
            latents = [latent.replace(THINKING_TOKEN, "") for latent in latents]
        return [combine(x, latent) for x, latent in zip(contexts, latents)]

    def _cached(self, key: tuple[str, str]) -> ScoreResult:
        self._baseline_cache.move_to_end(key)
        return self._baseline_cache[key]

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` under this scorer's tokenizer (no special tokens; a thought is one)."""
        if not text:
            return 0
        thoughts = 0 if self.reads_thoughts else text.count(THINKING_TOKEN)
        if thoughts:
            text = text.replace(THINKING_TOKEN, "")
        return thoughts + (len(self.tokenizer(text, add_special_tokens=False).input_ids)
                           if text else 0)

    def prefix_tokens(self, continuation: str, prefix: str) -> int:
        """How many leading tokens of ``continuation`` spell ``prefix`` (0 if they don't align)."""
        cont = self.tokenizer(continuation, add_special_tokens=False).input_ids
        head = self.tokenizer(prefix, add_special_tokens=False).input_ids
        return len(head) if head and cont[: len(head)] == head else 0

    def clear_cache(self) -> None:
        self._baseline_cache.clear()

    # ---- internals --------------------------------------------------------------------------

    def _remember(self, key: tuple[str, str], result: ScoreResult) -> None:
        self._baseline_cache[key] = result
        while len(self._baseline_cache) > self.cache_size:
            self._baseline_cache.popitem(last=False)

    def _tokenize(self, index: int, context: str, continuation: str) -> _Item:
        context_ids, continuation_ids, truncated = tokenize_pair(
            self.tokenizer, context, continuation, self.max_length, self.start_token_id,
            where=f"item {index}")
        return _Item(index, context_ids, continuation_ids, truncated)

    def _batches(self, items: list[_Item]) -> list[list[_Item]]:
        """Pack length-sorted items so rows × longest row ≤ batch_tokens (one row always fits)."""
        ordered = sorted(items, key=lambda it: (-it.length, it.index))
        batches: list[list[_Item]] = []
        current: list[_Item] = []
        for item in ordered:
            longest = current[0].length if current else item.length
            if current and (len(current) + 1) * longest > self.batch_tokens:
                batches.append(current)
                current = []
            current.append(item)
        if current:
            batches.append(current)
        return batches

    def _score_batch(self, batch: list[_Item]) -> list[ScoreResult]:
        import torch

        width = max(it.length for it in batch)
        n_max = max(len(it.continuation_ids) for it in batch)
        keep = n_max + 1
        # Built on the host, moved in one copy each (latent_env.devices); continuation ids are
        # right-aligned in ``targets`` like the rows, so one gather serves the whole batch.
        input_ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        targets = torch.zeros((len(batch), n_max), dtype=torch.long)
        for row, it in enumerate(batch):
            ids = it.context_ids + it.continuation_ids
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[row, width - len(ids) :] = 1
            if it.continuation_ids:
                targets[row, n_max - len(it.continuation_ids) :] = torch.tensor(
                    it.continuation_ids, dtype=torch.long)
        device = model_device(self.model)
        input_ids, mask, targets = (t.to(device) for t in (input_ids, mask, targets))
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        kwargs: dict[str, Any] = {"attention_mask": mask, "position_ids": position_ids}
        if self._supports_logits_to_keep:
            kwargs["logits_to_keep"] = keep
        with torch.inference_mode(), eval_mode(self.model):
            logits = self.model(input_ids=input_ids, **kwargs).logits[:, -keep:-1, :]
            # fp32 log-softmax whatever the model's dtype: a bf16 one would round every log-prob.
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            # The logits at position p predict token p+1: kept column j predicts targets[:, j].
            token_lp = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            is_argmax = (logprobs.argmax(-1) == targets).to(token_lp.dtype)
            host_lp, host_argmax = to_host(torch.stack([token_lp, is_argmax]))
        self.stats["forward_passes"] += 1
        self.stats["tokens_scored"] += sum(it.length for it in batch)
        self.stats["padded_tokens"] += len(batch) * width
        return [self._extract(it, host_lp[row], host_argmax[row]) for row, it in enumerate(batch)]

    def _extract(self, item: _Item, token_lp: list[float], is_argmax: list[float]) -> ScoreResult:
        n = len(item.continuation_ids)
        if n == 0:
            return ScoreResult(0.0, [], 0, [], item.truncated, [])
        token_lp = token_lp[len(token_lp) - n :]
        tokens = self.tokenizer.convert_ids_to_tokens(item.continuation_ids)
        return ScoreResult(float(sum(token_lp)), token_lp, n, list(tokens), item.truncated,
                           [bool(a) for a in is_argmax[len(is_argmax) - n :]])


def tokenize_pair(tokenizer: Any, context: str, continuation: str, max_length: int,
                  start_id: int, where: str = "item") -> tuple[list[int], list[int], int]:
    """``(start + context ids, continuation ids, context tokens dropped)`` as the scorer reads a
    pair (see the module docstring's tokenisation and truncation policy); the predictor loss
    (:mod:`latent_env.training.predictor_loss`) trains on exactly these tokens."""
    context_ids = tokenizer(context, add_special_tokens=False).input_ids if context else []
    continuation_ids = (
        tokenizer(continuation, add_special_tokens=False).input_ids if continuation else [])
    room = max_length - 1 - len(continuation_ids)
    if room < 0:
        raise ValueError(
            f"{where}: the continuation has {len(continuation_ids)} tokens, more than "
            f"max_length={max_length} allows; shorten it or raise max_length")
    truncated = max(0, len(context_ids) - room)
    return [start_id] + context_ids[truncated:], continuation_ids, truncated


@contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """``model`` in eval mode (no dropout) for the block, then back in the mode it was in."""
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


def _accepts_kwarg(model: Any, name: str) -> bool:
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
