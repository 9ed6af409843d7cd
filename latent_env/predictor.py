"""Self-prediction: the weights being trained score the continuation (the founding objective).

The frozen scorer (:class:`latent_env.scoring.LogLikScorer` on a copy of the starting model)
asks "does this latent help a model that never learns to read latents?". A
:class:`SelfPredictor` asks the founding question instead: with θ the policy's live weights,

    reward = log p_θ(Y | c(X, L)) − baseline(X, Y)

where the baseline is one of :data:`BASELINES`:

| baseline | value | cost |
|---|---|---|
| ``ema`` | log p_φ(Y | X), φ ← d·φ + (1 − d)·θ after every optimiser step (RLP's no-think EMA teacher) | one copy of the weights |
| ``initial`` | log p_θ0(Y | X), the starting weights, scored by :meth:`SelfPredictor.prime` before training | none |
| ``self`` | log p_θ(Y | X), the live weights now | one more pass per task |

The enriched term always runs on the live module itself, never a copy, in eval mode for the pass
(the module's mode is put back) and under ``torch.inference_mode``; it is never cached, since θ
moves every step. Only ``initial`` and ``ema`` baselines are cached: ``initial`` forever (θ0 does
not move), ``ema`` until the next :meth:`SelfPredictor.update`.

Unlike the frozen scorer's, an empty latent does not gain exactly 0 unless the baseline is
``self``: under ``ema`` it earns log p_θ(Y | X) − log p_φ(Y | X), what the weights learnt since the
teacher's average, which is the same for every latent of a task and so cancels in GRPO's group
advantage.

A ``<thinking>`` token in the latent is scored as the policy reads it: a
:class:`~latent_env.thoughts.model.LatentThoughtModel` embeds it from the previous position's
hidden state in the same forward pass, so a thought is paid for what it does to the prediction.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from latent_env.context import Combiner
from latent_env.scoring import (
    DEFAULT_BATCH_TOKENS,
    GainResult,
    LogLikScorer,
    ScoreResult,
)

BASELINES = ("ema", "initial", "self")
DEFAULT_EMA_DECAY = 0.9  # half-life ~6.6 optimiser steps: the default RL stage runs 10


class SelfPredictor:
    """A :class:`~latent_env.engine.Scorer` whose model is the live policy (see the module doc).

    Args:
        model: the policy module being trained (the one the trainer steps; with PEFT, the
            adapted model).
        tokenizer: its tokenizer.
        baseline: one of :data:`BASELINES`.
        ema_decay: d of the ``ema`` baseline, in [0, 1).
        combiner: c(X, L) (name or callable, default the founding form).
        batch_tokens, max_length: as :class:`~latent_env.scoring.LogLikScorer`'s.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        baseline: str = "ema",
        *,
        ema_decay: float = DEFAULT_EMA_DECAY,
        combiner: str | Combiner | None = None,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        max_length: int | None = None,
    ) -> None:
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        self.baseline_kind, self.ema_decay = baseline, ema_decay
        self.tokenizer = tokenizer
        self.live = LogLikScorer(model, tokenizer, batch_tokens, max_length=max_length,
                                 combiner=combiner, cache_size=0)
        self.combiner = self.live.combiner
        self.ema: Any = None
        self.updates = 0
        self._primed: dict[tuple[str, str], ScoreResult] = {}
        if baseline == "ema":
            self.ema = teacher_copy(model)
            self._teacher = LogLikScorer(self.ema, tokenizer, batch_tokens,
                                         max_length=self.live.max_length, combiner=combiner)

    @property
    def model(self) -> Any:
        return self.live.model

    # ---- the Scorer protocol ------------------------------------------------------------------

    def score(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[ScoreResult]:
        """log p_θ(continuation | context) with the live weights, now."""
        return self.live.score(contexts, continuations)

    def baseline(self, contexts: Sequence[str], continuations: Sequence[str]) -> list[ScoreResult]:
        """The configured baseline of each (X, Y)."""
        if self.baseline_kind == "self":
            return self._deduplicated(self.live.score, contexts, continuations)
        if self.baseline_kind == "ema":
            return self._teacher.baseline(contexts, continuations)
        keys = list(zip(contexts, continuations))
        unprimed = [k for k in keys if k not in self._primed]
        if unprimed:
            raise ValueError(
                f"baseline 'initial' has no score for {len(unprimed)} of {len(keys)} tasks (the "
                f"first: {unprimed[0][0][-60:]!r}); call prime() on every task before training")
        return [self._primed[k] for k in keys]

    def gain(
        self,
        contexts: Sequence[str],
        latents: Sequence[str],
        continuations: Sequence[str],
        combiner: str | Combiner | None = None,
    ) -> list[GainResult]:
        """log p_θ(Y | c(X, L)) − baseline(X, Y) per item."""
        enriched_contexts = self.live.enriched_contexts(contexts, latents, continuations, combiner)
        enriched = self._deduplicated(self.live.score, enriched_contexts, continuations)
        baselines = self.baseline(contexts, continuations)
        return [GainResult(e.total - b.total, e, b) for e, b in zip(enriched, baselines)]

    def prefix_tokens(self, continuation: str, prefix: str) -> int:
        return self.live.prefix_tokens(continuation, prefix)

    def count_tokens(self, text: str) -> int:
        return self.live.count_tokens(text)

    # ---- training hooks -----------------------------------------------------------------------

    def prime(self, contexts: Sequence[str], continuations: Sequence[str]) -> None:
        """Score the ``initial`` baseline of these tasks with the weights as they are now (call it
        before the first optimiser step); a no-op for the other baselines."""
        if self.baseline_kind != "initial":
            return
        todo = list(dict.fromkeys(k for k in zip(contexts, continuations)
                                  if k not in self._primed))
        for key, result in zip(todo, self.live.score([k[0] for k in todo],
                                                     [k[1] for k in todo])):
            self._primed[key] = result

    def update(self) -> None:
        """One optimiser step was taken: φ ← d·φ + (1 − d)·θ (``ema``; a no-op otherwise)."""
        if self.ema is None:
            return
        import torch

        live = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, teacher in self.ema.named_parameters():
                teacher.lerp_(live[name].detach().to(teacher.dtype), 1.0 - self.ema_decay)
        self._teacher.clear_cache()
        self.updates += 1

    @staticmethod
    def _deduplicated(score: Any, contexts: Sequence[str],
                      continuations: Sequence[str]) -> list[ScoreResult]:
        # GRPO's groups share a prompt: identical (context, continuation) pairs are scored once.
        keys = list(zip(contexts, continuations))
        unique = list(dict.fromkeys(keys))
        scored = dict(zip(unique, score([k[0] for k in unique], [k[1] for k in unique])))
        return [scored[k] for k in keys]


def teacher_copy(model: Any) -> Any:
    """A frozen copy of ``model`` that computes with its own weights.

    A deep copy alone is not enough: a trainer may patch a module's ``forward`` on the instance
    with a closure over the original (TRL's ``add_fused_lm_head`` keeps ``original_forward``), and
    a copied closure still runs the original module, live weights and all. Instance-level
    forwards are dropped from the copy, so each module runs its class's forward.
    """
    teacher = copy.deepcopy(model)
    for module in teacher.modules():
        module.__dict__.pop("forward", None)
    return teacher.eval().requires_grad_(False)
