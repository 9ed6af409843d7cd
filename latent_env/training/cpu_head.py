"""On a CPU, answer TRL's fused-LM-head calls from the model's own logits, for the scored columns only.

Since trl 1.15, SFT, GRPO and RLOO patch the trained model with ``add_fused_lm_head``: called with
``fused_lm_head=True`` its forward returns per-token log-probs (plus entropy and top-1 flags)
computed over vocabulary tiles, never the full logits. On GPUs a Triton kernel folds the tiles;
on a CPU they are folded with torch ops over every position, prompt included, and recomputed in
the backward pass. Measured on this 2-core machine with the default model (6 SFT steps / 3 GRPO
steps, ``benchmarks/RESULTS.md``): SFT 116 s and GRPO 111 s with TRL's CPU head, 86 s and 87 s
with trl 1.12's losses, 90 s and 88 s with this one; the head alone (``bench_cpu_head.py``, 3,000
tokens × 49,152 words) 7.5 s against 4.7 s.

:func:`plain_head_on_cpu` re-patches the same models so that a fused call runs the model's own
forward with ``logits_to_keep`` covering only the columns that have a label (the completion), and
computes the same fields from those logits: same values to float rounding, gradients through
log-probs and entropy as TRL's. A model off the CPU, or a TRL without the fused head, is left
as it is.
"""

from __future__ import annotations

import types
from typing import Any

import torch

IGNORE_INDEX = -100


def plain_head_on_cpu(trainer: Any) -> None:
    """Give ``trainer``'s policy (and reference model) the plain head when they live on a CPU."""
    try:
        from trl.trainer.utils import FusedCausalLMOutput
    except ImportError:  # trl < 1.15 computes its losses from ordinary logits
        return
    model = trainer.model
    if hasattr(model, "get_base_model"):  # PEFT: TRL patched the model under the adapters
        model = model.get_base_model()
    temperature = float(getattr(trainer, "temperature", 1.0))  # GRPO/RLOO score at T; SFT at 1
    # Only GRPO's entropy bonus differentiates the entropy; elsewhere it is a metric or a mask,
    # and its graph would cost a second pass over the logits (1.2 s of 5.4 s for 3,000 tokens).
    args = trainer.args
    entropy_grad = bool(getattr(args, "entropy_coef", 0.0) or getattr(args, "use_adaptive_entropy", False))
    for target in (model, getattr(trainer, "ref_model", None)):
        if target is not None and target.device.type == "cpu":
            forward = _plain_forward(FusedCausalLMOutput, temperature, entropy_grad)
            target.forward = types.MethodType(forward, target)


def _plain_forward(output_class: type, temperature: float, entropy_grad: bool) -> Any:
    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None,
                num_items_in_batch=None, **kwargs):
        unpatched = type(self).forward
        if not fused_lm_head:
            extra = {"labels": labels, "shift_labels": shift_labels,
                     "num_items_in_batch": num_items_in_batch}
            return unpatched(self, *args, **kwargs, **{k: v for k, v in extra.items() if v is not None})
        kwargs["use_cache"] = False
        if shift_labels is None:
            # Logits at column c predict label c + 1: keep the columns from the first labelled one on.
            labelled = (labels[:, 1:] != IGNORE_INDEX).any(0).nonzero()
            first = int(labelled[0]) if len(labelled) else labels.shape[1] - 1
            kwargs["logits_to_keep"] = labels.shape[1] - first
            logits = unpatched(self, *args, **kwargs).logits[:, :-1]
            targets = labels[:, first + 1 :]
        else:  # pre-shifted labels (context parallelism): every column is scored
            logits, targets = unpatched(self, *args, **kwargs).logits, shift_labels
        fields = _token_fields(logits, targets.to(logits.device), temperature, entropy_grad)
        count = fields["label_mask"].sum().clamp(min=1)
        loss = -fields["log_probs"].sum() / (count if num_items_in_batch is None else num_items_in_batch)
        if shift_labels is None:  # back to TRL's shape: one value per shifted label column
            fields = {k: _pad_left(v, labels.shape[1] - 1) for k, v in fields.items()}
        return output_class(loss=loss, **fields)

    return forward


def _token_fields(
    logits: torch.Tensor, targets: torch.Tensor, temperature: float, entropy_grad: bool = True
) -> dict:
    """Log-prob of each target, entropy and top-1 flag at temperature T; zero where ignored."""
    mask = targets != IGNORE_INDEX
    z = logits.float() if temperature == 1.0 else logits.float() / temperature
    log_norm = torch.logsumexp(z, -1)
    safe = targets.clamp(min=0).unsqueeze(-1)
    log_probs = (z.gather(-1, safe).squeeze(-1) - log_norm).masked_fill(~mask, 0.0)
    with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
        entropy = (log_norm - (torch.softmax(z, -1) * z).sum(-1)).masked_fill(~mask, 0.0)
    with torch.no_grad():  # argmax takes the first maximum, as TRL's top-1 test does
        is_top1 = (z.argmax(-1) == targets) & mask
    return {"log_probs": log_probs, "entropy": entropy, "is_top1": is_top1, "label_mask": mask}


def _pad_left(values: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - values.shape[1]
    if missing == 0:
        return values
    pad = values.new_zeros(values.shape[0], missing)
    return torch.cat([pad, values], dim=1)
