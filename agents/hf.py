"""``hf:PATH_OR_ID|default``: any transformers causal LM writes the latent with its chat template.

The observation is the user message; the model's reply (after the chat template's generation
prompt) is the action. Generation is batched with left padding, greedy unless a temperature is
given, and stops at ``<done/>`` or the end-of-sequence token. ``sample`` draws several candidates
per observation with the model's mean log-prob per token of each, which the tree policy uses.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from latent_env.agents.base import PolicyError, PolicySpecError, Sample, rng_from_state, rng_state
from latent_env.agents.spec import typed_options

from latent_env.actions import DONE_TOKEN
from latent_env.devices import (
    DTYPES,
    model_device,
    resolve_device,
    resolve_dtype,
    rng_devices,
    to_host,
)
from latent_env.stopping import StopAtTexts, criteria
from latent_env.tasks import Task
from latent_env.tokens import decode_action

DEFAULT_MAX_NEW_TOKENS = 96
DEFAULT_BATCH_SIZE = 8
HF_OPTIONS = {"temperature": float, "max_new_tokens": int, "top_p": float, "batch_size": int,
              "seed": int, "device": str, "dtype": str}


def done_stopping_criteria(tokenizer: Any, prompt_length: int) -> Any:
    """Stops each row once its generated text contains ``<done/>``."""
    return criteria(StopAtTexts(tokenizer, (DONE_TOKEN,), prompt_length))


class HFPolicy:
    """A Hugging Face causal LM as a policy.

    Args:
        model: ``"default"`` (SmolLM2-135M-Instruct), ``"tiny-random"``, a local checkpoint
            directory or a hub id (see :func:`latent_env.models.load_model`).
        temperature: 0 means greedy decoding; above 0, sampling at that temperature.
        max_new_tokens: longest action, in tokens.
        top_p: nucleus sampling mass (sampling only).
        batch_size: observations per ``generate`` call.
        seed: seed of the sampling stream until :meth:`reset` gives another.
        loaded: an already loaded ``(model, tokenizer)`` to use instead of loading ``model``
            (the benchmark shares the scorer's model this way); it stays where it is.
        device: where a model this policy loads goes: ``auto`` (this rank's accelerator, see
            :mod:`latent_env.devices`), ``cpu``, ``cuda:1``, …; prompts follow the model.
        dtype: precision of a model this policy loads: ``float32``, ``bfloat16`` or ``float16``
            (not on the CPU).
    """

    def __init__(
        self,
        model: str = "default",
        temperature: float = 0.0,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        top_p: float = 1.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        seed: int | None = 0,
        loaded: tuple[Any, Any] | None = None,
        device: str = "auto",
        dtype: str = "float32",
    ) -> None:
        _check_options(model, temperature, max_new_tokens, top_p, batch_size)
        if dtype not in DTYPES:
            raise PolicySpecError(f"hf:{model}: dtype must be one of {', '.join(DTYPES)}, got "
                                  f"{dtype!r}")
        self.model_spec = model
        self.name = f"hf:{model}"
        self.temperature = temperature
        self.max_new_tokens = max_new_tokens
        self.top_p = top_p
        self.batch_size = batch_size
        self._loaded = loaded
        self.device, self.dtype = device, dtype
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_spec(
        cls,
        target: str,
        options: Mapping[str, Any],
        *,
        tools: Mapping[str, Any] | Collection[str] | None = None,
        shared_models: Mapping[str, tuple[Any, Any]] | None = None,
    ) -> HFPolicy:
        """``hf:TARGET?options``: TARGET is the model; one in ``shared_models`` is reused."""
        typed = typed_options("hf", options, HF_OPTIONS)
        return cls(target, loaded=(shared_models or {}).get(target), **typed)

    # ---- Policy protocol ---------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def get_state(self) -> dict[str, Any]:
        """The sampling stream (every ``generate`` call draws its seed from it)."""
        return rng_state(self.rng)

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.rng = rng_from_state(state)

    def prepare(self) -> None:
        """Load the model now (otherwise the first call does)."""
        self._model_and_tokenizer()

    def act_batch(self, observations: list[str], tasks: list[Task] | None = None) -> list[str]:
        samples = self.sample(observations, 1, self.temperature, with_logprobs=False)
        return [candidates[0].text for candidates in samples]

    # ---- SamplingPolicy ----------------------------------------------------------------------

    def sample(
        self,
        observations: Sequence[str],
        n: int,
        temperature: float,
        with_logprobs: bool = True,
    ) -> list[list[Sample]]:
        """``n`` actions per observation (greedy if ``temperature`` is 0, then all equal)."""
        out: list[list[Sample]] = []
        for start in range(0, len(observations), self.batch_size):
            chunk = list(observations[start : start + self.batch_size])
            out.extend(self._generate(chunk, n, temperature, with_logprobs))
        return out

    def model_and_tokenizer(self) -> tuple[Any, Any]:
        """The policy's ``(model, tokenizer)``, loaded on first use (``bench --scorer self``
        scores with them)."""
        return self._model_and_tokenizer()

    # ---- internals ---------------------------------------------------------------------------

    def _model_and_tokenizer(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from latent_env.models import load_model

            try:
                device = resolve_device(self.device)
                self._loaded = load_model(self.model_spec, dtype=resolve_dtype(self.dtype, device),
                                          device=device)
            except Exception as exc:  # a missing package, checkpoint or hub id
                raise PolicyError(f"{self.name}: could not load the model: {exc}") from exc
        return self._loaded

    def prompts(self, observations: Sequence[str]) -> list[str]:
        """Each observation as a user message in the model's chat template (raw if it has none)."""
        _, tokenizer = self._model_and_tokenizer()
        if not getattr(tokenizer, "chat_template", None):
            return list(observations)
        return [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": obs}], tokenize=False, add_generation_prompt=True
            )
            for obs in observations
        ]

    def _generate(
        self, observations: list[str], n: int, temperature: float, with_logprobs: bool
    ) -> list[list[Sample]]:
        import torch

        model, tokenizer = self._model_and_tokenizer()
        device = model_device(model)
        batch = tokenizer(self.prompts(observations), return_tensors="pt", padding=True,
                          padding_side="left", add_special_tokens=False)
        batch = {key: value.to(device) for key, value in batch.items()}
        per_prompt = n if temperature > 0 else 1  # greedy: every copy would be the same
        config = self._generation_config(tokenizer, per_prompt, temperature, with_logprobs)
        # A private stream per call: the same seed gives the same samples, and the caller's
        # global torch RNG is left as it was.
        call_seed = int(self.rng.integers(2**31))
        stop = done_stopping_criteria(tokenizer, batch["input_ids"].shape[1])
        # (The generator forked is the one that draws: the model's CUDA device, if any.)
        with torch.random.fork_rng(devices=rng_devices(device)), torch.inference_mode():
            torch.manual_seed(call_seed)
            out = model.generate(**batch, generation_config=config, stopping_criteria=stop)
        new_tokens = out.sequences[:, batch["input_ids"].shape[1] :]
        rows = to_host(new_tokens)
        lengths = _generated_lengths(rows, _stop_ids(tokenizer))
        texts = [_cut_at_done(decode_action(tokenizer, row[:length]))
                 for row, length in zip(rows, lengths)]
        means = _mean_logprobs(out.logits, new_tokens, lengths) if with_logprobs else None
        found = [Sample(text, means[i] if means else 0.0) for i, text in enumerate(texts)]
        groups = [found[i * per_prompt : (i + 1) * per_prompt] for i in range(len(observations))]
        return [group * (n // per_prompt) for group in groups]

    def _generation_config(
        self, tokenizer: Any, n: int, temperature: float, with_logprobs: bool
    ) -> Any:
        from transformers import GenerationConfig

        sampling = temperature > 0
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (
            tokenizer.eos_token_id)
        extra = {"temperature": temperature, "top_p": self.top_p, "top_k": 0} if sampling else {}
        return GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            do_sample=sampling,
            num_return_sequences=n,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
            return_dict_in_generate=True,
            output_logits=with_logprobs,
            **extra,
        )


def _check_options(
    model: str, temperature: float, max_new_tokens: int, top_p: float, batch_size: int
) -> None:
    if not model:
        raise PolicySpecError("hf: needs a model: hf:default, hf:tiny-random, hf:PATH or hf:ID")
    if model.startswith((".", "/", "~")) and not Path(model).expanduser().exists():
        raise PolicySpecError(f"hf:{model}: no such model directory")
    if temperature < 0:
        raise PolicySpecError(f"hf:{model}: temperature must be >= 0, got {temperature}")
    if max_new_tokens < 1 or batch_size < 1:
        raise PolicySpecError(f"hf:{model}: max_new_tokens and batch_size must be positive")
    if not 0 < top_p <= 1:
        raise PolicySpecError(f"hf:{model}: top_p must be in (0, 1], got {top_p}")


def _stop_ids(tokenizer: Any) -> set[int]:
    ids = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    return {i for i in ids if i is not None}


def _generated_lengths(rows: list[list[int]], stop_ids: set[int]) -> list[int]:
    """Tokens each row generated before its first end-of-sequence or padding token."""
    lengths = []
    for row in rows:
        end = next((i for i, token in enumerate(row) if token in stop_ids), len(row))
        lengths.append(end)
    return lengths


def _mean_logprobs(logits: Sequence[Any], new_tokens: Any, lengths: list[int]) -> list[float]:
    """Mean log-prob (at temperature 1, from the raw logits) of each row's generated tokens."""
    import torch

    totals = torch.zeros(new_tokens.shape[0], dtype=torch.float64, device=new_tokens.device)
    lengths_t = torch.tensor(lengths, device=new_tokens.device)
    for step, step_logits in enumerate(logits):  # one [rows, vocab] tensor per step
        logp = torch.log_softmax(step_logits.float(), dim=-1)
        chosen = logp.gather(-1, new_tokens[:, step : step + 1]).squeeze(-1).double()
        totals += torch.where(lengths_t > step, chosen, torch.zeros_like(chosen))
    return [t / n if n else 0.0 for t, n in zip(to_host(totals), lengths)]


def _cut_at_done(text: str) -> str:
    """Keep the action up to and including ``<done/>``; anything after it is ignored anyway."""
    head, found, _ = text.partition(DONE_TOKEN)
    return (head + found).strip()
