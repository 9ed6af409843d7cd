"""A stand-in accelerator for device tests on a CPU machine.

torch's ``meta`` device plays the accelerator: its tensors have shapes and no data, and nothing
moves to or from it unless code says so. Alone it is lenient (an embedding with CPU indices and
meta weights runs), so :class:`SameDevice` adds CUDA's rule to every operator: all tensor
arguments on one device, except 0-dim CPU scalars and explicit copies. (torch's
``FakeTensorMode`` can fake CUDA tensors too, but on a CPU-only build it cannot slice, narrow-copy
or log-softmax them, so it cannot run a scorer.)

:class:`TinyLM` is a causal LM small enough to build on ``meta``; ``transformers``' Llama cannot
run there (its mask code calls ``.item()``). :func:`host_copies` replaces a module's
``to_host`` so the copies a device batch makes back to the host are seen and return zeros of the
right shape, or the data a test gave for that tensor.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

ACCELERATOR = torch.device("meta")
_COPIES = {torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default,
           torch.ops.aten.lift_fresh.default}


class SameDevice(TorchDispatchMode):
    """Raise, as CUDA kernels do, when one operator's tensors sit on different devices."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in _COPIES:
            devices = {t.device for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)
                       and not (t.device.type == "cpu" and t.dim() == 0)}
            if len(devices) > 1:
                raise RuntimeError(f"Expected all tensors to be on the same device, but found at "
                                   f"least two devices, {sorted(map(str, devices))} ({func})")
        return func(*args, **kwargs)


class TinyLM(torch.nn.Module):
    """Embedding → linear head: the causal-LM interface the scorer and ``HFPolicy`` call."""

    def __init__(self, vocab_size: int, width: int = 8) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, width)
        self.head = torch.nn.Linear(width, vocab_size)
        self.config = SimpleNamespace(max_position_embeddings=512)

    def forward(self, input_ids, attention_mask=None, position_ids=None, logits_to_keep=0, **_):
        hidden = self.embed(input_ids)
        if attention_mask is not None:
            hidden = hidden * attention_mask.unsqueeze(-1).to(hidden.dtype)
        if position_ids is not None:
            hidden = hidden + position_ids.unsqueeze(-1).to(hidden.dtype)
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        return SimpleNamespace(logits=self.head(hidden))

    def generate(self, input_ids, attention_mask=None, generation_config=None, **_):
        """Greedy, ``max_new_tokens`` long, ``num_return_sequences`` rows per prompt, returning
        what ``HFPolicy`` reads."""
        copies = generation_config.num_return_sequences or 1
        sequences, steps = input_ids.repeat_interleave(copies, dim=0), []
        for _ in range(generation_config.max_new_tokens):
            logits = self(sequences).logits[:, -1, :]
            steps.append(logits)
            sequences = torch.cat([sequences, logits.argmax(-1, keepdim=True)], dim=1)
        return SimpleNamespace(sequences=sequences, logits=tuple(steps))


def tiny_lm_on_accelerator(vocab_size: int) -> TinyLM:
    return TinyLM(vocab_size).to(ACCELERATOR).eval()


def host_copies(monkeypatch: Any, module: Any, data: dict[int, list] | None = None) -> list[Any]:
    """Replace ``module.to_host``; returns the devices of the tensors it was given. A tensor
    whose ``id`` is in ``data`` comes back as that data, any other as zeros of its shape."""
    seen: list[Any] = []

    def to_host(tensor: torch.Tensor) -> list:
        seen.append(tensor.device)
        if data and id(tensor) in data:
            return data[id(tensor)]
        return torch.zeros(tensor.shape, dtype=tensor.dtype).tolist()

    monkeypatch.setattr(module, "to_host", to_host, raising=False)  # also where none is yet
    return seen
