"""Where models and batches live: one rule for the whole package.

* Every model this package runs (the policy, the reward model, each evaluation policy) is placed on
  this process's accelerator: ``cuda:$LOCAL_RANK`` when CUDA is available, else the CPU
  (:func:`accelerator`). ``LATENT_ENV_DEVICE`` overrides it (``cpu`` keeps a GPU box on the CPU).
* A batch is built on the host once and moved to the model's device in one copy
  (:func:`model_device`); results come back in one host copy per batch (:func:`to_host`), never
  one per row.
* A private RNG stream forks the generator of the device that draws from it
  (:func:`rng_devices`), so a policy call never reseeds the caller's CUDA stream.
* Between pipeline stages the caching allocator's blocks are returned (:func:`free_memory`).

Precision is the caller's choice (:func:`resolve_dtype`): fp32 on the CPU, where bf16 matmuls
are slow and move log-probs; bf16 is offered on accelerators, with log-softmax kept in fp32.
"""

from __future__ import annotations

import gc
import os
from typing import Any

DEVICE_ENV = "LATENT_ENV_DEVICE"
DTYPES = ("float32", "bfloat16", "float16")


def accelerator() -> Any:
    """This process's device: ``$LATENT_ENV_DEVICE``, else ``cuda:$LOCAL_RANK`` where CUDA is
    available, else the CPU."""
    import torch

    chosen = os.environ.get(DEVICE_ENV, "").strip()
    if chosen:
        return torch.device(chosen)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0") or 0))
    return torch.device("cpu")


def resolve_device(spec: str | None) -> Any:
    """``"auto"``/``None`` → :func:`accelerator`; anything else is a torch device string."""
    import torch

    return accelerator() if spec in (None, "", "auto") else torch.device(spec)


def resolve_dtype(name: str | None, device: Any) -> Any:
    """A torch dtype from ``name`` (one of :data:`DTYPES`; empty: fp32, the precision rewards
    are measured in; bf16 is opt-in, its drift is in ``benchmarks/RESULTS.md``)."""
    import torch

    name = name or "float32"
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    if getattr(device, "type", "cpu") == "cpu" and name == "float16":
        raise ValueError("float16 on the CPU is not supported; use float32 or bfloat16")
    return getattr(torch, name)


def model_device(model: Any) -> Any:
    """The device of ``model``'s first parameter (the CPU for a model without parameters)."""
    import torch

    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def place(model: Any, device: Any) -> Any:
    """``model`` on ``device`` (moved only when it is elsewhere); returns the model."""
    if model_device(model) != device:
        model.to(device)
    return model


def rng_devices(device: Any) -> list[int]:
    """The CUDA devices ``torch.random.fork_rng`` must fork for draws on ``device``."""
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        return [device.index if device.index is not None else torch.cuda.current_device()]
    return []


def to_host(tensor: Any) -> list:
    """``tensor`` as nested Python lists, in one device-to-host copy."""
    return tensor.detach().cpu().tolist()


def free_memory() -> None:
    """Collect garbage and return cached accelerator memory (between stages)."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
