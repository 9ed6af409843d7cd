"""The predictor loss: θ learns to predict the text from its own latent, on the episodes RL scored.

The founding objective trains one θ both to write L (the RL loss) and to predict the text given
L. This term adds the second half to every RL step::

    weight × NLL_θ(Y | c(X, L))  +  plain_weight × NLL_θ(Y | X)

the second part keeping prediction without a latent from decaying. Each NLL is the mean over the
batch's continuation tokens. The tokens are exactly the scorer's
(:func:`latent_env.scoring.tokenize_pair`: a start token, c(X, L), then Y, each tokenised on its
own, context cut from the left): only Y's tokens are targets; the context, the latent and its
tool outputs included, is read and never predicted. A ``<thinking>`` token in the latent is read
by a latent-thought model as its continuous input, as when it is scored.

Which episodes: after each reward call (one per generation batch), the (X, c(X, L), Y) of every
scored episode are queued in a seeded shuffle; each ``compute_loss`` takes as many as its batch
has rows. With TRL's ``num_iterations`` = 1 every generated episode is trained on once; with more,
the queue cycles over the same generation. In a supervised stage the source is
:class:`FixedTriples`, the gold (or bootstrapped) latents run once through the tools: SFT's loss
then covers the latent and, through this term, the continuation after it (Toolformer's
fine-tuning on the augmented text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from latent_env.scoring import DEFAULT_MAX_LENGTH, tokenize_pair
from latent_env.tokens import pad_token_id, start_token_id

IGNORE_INDEX = -100

Triple = tuple[str, str, str]  # (X, c(X, L), Y)


class PredictionBatches:
    """The predictor loss term (:mod:`latent_env.training.loss_terms`).

    Args:
        source: what scored the episodes: an object whose ``calls`` counts its reward calls and
            whose ``scored_triples()`` gives the last call's (X, c(X, L), Y)
            (:class:`~latent_env.training.reward.EnvReward`).
        tokenizer: the policy's tokenizer.
        weight: W of NLL(Y | c(X, L)).
        plain_weight: weight of NLL(Y | X) (0: not computed).
        max_length: as the scorer's (longer contexts lose tokens from the left).
        seed: of the queue's shuffle.
    """

    def __init__(self, source: Any, tokenizer: Any, weight: float, plain_weight: float = 0.0,
                 max_length: int = DEFAULT_MAX_LENGTH, seed: int = 0) -> None:
        import torch

        if weight < 0 or plain_weight < 0 or weight + plain_weight == 0:
            raise ValueError(f"the predictor loss needs weights >= 0, not both 0; got "
                             f"{weight} and {plain_weight}")
        self.source, self.tokenizer = source, tokenizer
        self.weight, self.plain_weight, self.max_length = weight, plain_weight, max_length
        self.start_id, self.pad_id = start_token_id(tokenizer), pad_token_id(tokenizer)
        self._generator = torch.Generator().manual_seed(seed)
        self._seen_calls = -1
        self._triples: list[Triple] = []
        self._queue: list[int] = []

    def __call__(self, model: Any, inputs: Any) -> tuple[Any, dict[str, float]]:
        """The weighted loss on the next ``rows(inputs)`` scored episodes, and its metrics."""
        triples = self.next_triples(rows(inputs))
        metrics: dict[str, float] = {}
        loss = 0.0
        if self.weight > 0:
            nll = self.nll(model, [(c, y) for _, c, y in triples])
            metrics["predictor/nll"] = float(nll.detach())
            loss = loss + self.weight * nll
        if self.plain_weight > 0:
            plain = self.nll(model, [(x, y) for x, _, y in triples])
            metrics["predictor/plain_nll"] = float(plain.detach())
            loss = loss + self.plain_weight * plain
        return loss, metrics

    def next_triples(self, n: int) -> list[Triple]:
        """The next ``n`` episodes of the newest reward call (refilled in a new shuffle)."""
        import torch

        if self.source.calls != self._seen_calls:
            self._seen_calls, self._triples = self.source.calls, list(self.source.scored_triples())
            self._queue = []
        if not self._triples:
            raise RuntimeError("the predictor loss found no scored episodes: the reward "
                               "function must run before the loss")
        while len(self._queue) < n:
            self._queue += torch.randperm(len(self._triples), generator=self._generator).tolist()
        picked, self._queue = self._queue[:n], self._queue[n:]
        return [self._triples[i] for i in picked]

    def batch(self, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (Y's tokens only)."""
        import torch

        rows_ = [tokenize_pair(self.tokenizer, c, y, self.max_length, self.start_id)[:2]
                 for c, y in pairs]
        width = max(len(c) + len(y) for c, y in rows_)
        ids = torch.full((len(rows_), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows_), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows_), width), dtype=torch.long)
        for row, (context, continuation) in enumerate(rows_):
            full = context + continuation
            ids[row, : len(full)] = torch.tensor(full)
            labels[row, len(context) : len(full)] = torch.tensor(continuation, dtype=torch.long)
            mask[row, : len(full)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def nll(self, model: Any, pairs: Sequence[tuple[str, str]]) -> Any:
        """Mean NLL per continuation token of ``pairs`` under ``model`` (with gradients)."""
        import torch.nn.functional as F

        batch = {k: v.to(model.device) for k, v in self.batch(pairs).items()}
        labels = batch["labels"]
        # The LM head only from the first column that predicts a label: X is most of each row,
        # and its columns' logits (a 49k-word vocabulary each) would only be thrown away.
        labelled = (labels[:, 1:] != IGNORE_INDEX).any(0).nonzero()
        keep = labels.shape[1] - (int(labelled[0]) if len(labelled) else 0)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       logits_to_keep=keep).logits
        targets = labels[:, labels.shape[1] - keep + 1 :]  # logit at column c predicts c + 1
        return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(),
                               ignore_index=IGNORE_INDEX)


class FixedTriples:
    """A source of the same (X, c(X, L), Y) at every step (a supervised stage's latents)."""

    calls = 0

    def __init__(self, triples: Sequence[Triple]) -> None:
        self.triples = list(triples)

    def scored_triples(self) -> list[Triple]:
        return self.triples


def rows(inputs: Any) -> int:
    """Rows of a TRL training batch (GRPO's and RLOO's carry ``completion_ids``, SFT's
    ``input_ids``)."""
    return len(inputs["completion_ids"] if "completion_ids" in inputs else inputs["input_ids"])
