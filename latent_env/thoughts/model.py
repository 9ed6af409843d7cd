"""``LatentThoughtModel``: any HF causal LM whose ``<thinking>`` tokens read a latent embedding.

At every ``<thinking>`` position t the input embedding is built from position t-1 (see
:mod:`latent_env.thoughts.fusion`): the final-norm'ed last hidden state h_{t-1} (``hidden``
mode) or the context-prediction fusion of LT-Tuning (``fusion`` mode). Every other token keeps
its ordinary embedding; a sequence without ``<thinking>`` gives exactly the wrapped model's
logits. A ``<thinking>`` with no real token before it (first position, or right after left
padding) keeps its ordinary embedding. Position ids come from the attention mask
(``cumsum - 1``) unless given, so left and right padding both work.

Computation in passes over the KV cache (:mod:`latent_env.thoughts.schedule`): never a
recomputation of a prefix. Training/scoring calls (no cache asked for) use the *waves*
schedule: k latent tokens per row cost k + 1 passes however the rows' positions differ, with
internal caches that stay correct under gradient checkpointing. Calls with a cache (generation,
cached continuation) cut all rows at the union of latent columns so the caller's cache stays
column-aligned; each such call attaches the last position's state to the cache, so a
``<thinking>`` fed in the next call is embedded without recomputation. The LM head runs once
over all kept positions.

Generation is transformers' own ``generate`` (greedy, sampling, logits processors, stopping
criteria): when the model emits ``<thinking>``, the next step embeds it from the attached state.
Beam search and assisted decoding (which reorder or crop the cache) are not supported.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.cache_utils import DynamicCache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import CausalLMOutputWithPast

from latent_env.thoughts.backbone import LatentBackbone
from latent_env.thoughts.config import THINKING_TOKEN, LatentThoughtConfig
from latent_env.thoughts.fusion import latent_input_embedding
from latent_env.thoughts.schedule import aligned_starts, wave_plan
from latent_env.thoughts.segment_cache import (
    LatentCarry,
    SegmentCache,
    cache_keyword,
    get_carry,
    set_carry,
    take_cache,
)

_LOSS_KWARGS = ("num_items_in_batch", "ignore_index")


@dataclass
class _PassInputs:
    embeds: torch.Tensor  # (batch, length, hidden) token embeddings
    latent: torch.Tensor  # (batch, length) bool, latent <thinking> positions
    attention_mask: torch.Tensor  # (batch, past + length)
    position_ids: torch.Tensor  # (batch, length)
    all_hidden_states: bool
    model_kwargs: dict[str, Any]


@dataclass
class _SegmentRun:
    last_hidden_state: torch.Tensor  # (batch, length, hidden), after the final norm
    hidden_states: tuple[torch.Tensor, ...] | None  # per layer, when asked for


class LatentThoughtModel(PreTrainedModel, GenerationMixin):
    """Wrapper that gives ``<thinking>`` positions a latent input embedding (see module doc).

    Build it with :func:`add_thinking_token` (adds the token, resizes, wraps) or
    :meth:`wrap`; reload with ``LatentThoughtModel.from_pretrained(path)`` (or, once
    ``latent_env.thoughts`` is imported, ``AutoModelForCausalLM.from_pretrained(path)``).
    ``settings`` of the config: ``mode``, ``alpha``, ``fusion_top_p``, ``fusion_temperature``,
    ``thinking_token``, ``thinking_token_id``, ``detach_latent``.
    """

    config_class = LatentThoughtConfig
    base_model_prefix = "language_model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def __init__(self, config: LatentThoughtConfig, language_model: Any = None) -> None:
        super().__init__(config)
        if language_model is None:
            language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.language_model = language_model
        if language_model.config._attn_implementation is None:
            language_model.config._attn_implementation = self.config._attn_implementation or "sdpa"
        if getattr(language_model, "generation_config", None) is not None:
            self.generation_config = copy.deepcopy(language_model.generation_config)
        self.post_init()

    # ---- construction and stage settings --------------------------------------------------

    @classmethod
    def wrap(cls, model: Any, thinking_token_id: int, **settings: Any) -> LatentThoughtModel:
        """Wrap an existing causal LM (weights shared, not copied).

        ``settings`` are :class:`LatentThoughtConfig` fields (mode, alpha, fusion_top_p, ...).
        """
        # Creating a composite config resets the attention backend of its sub-configs: keep the
        # wrapped model's own.
        config = LatentThoughtConfig(
            text_config=model.config,
            thinking_token_id=thinking_token_id,
            attn_implementation=model.config._attn_implementation,
            **settings,
        )
        wrapped = cls(config, language_model=model)
        wrapped.to(model.dtype)
        return wrapped.train(model.training)

    def set_latent_mode(
        self,
        mode: str | None = None,
        alpha: float | None = None,
        top_p: float | None = None,
        temperature: float | None = None,
    ) -> None:
        """Change how latent embeddings are built (e.g. at a curriculum stage change).

        ``top_p`` and ``temperature`` set ``fusion_top_p`` / ``fusion_temperature``.
        """
        updates = {
            "mode": mode,
            "alpha": alpha,
            "fusion_top_p": top_p,
            "fusion_temperature": temperature,
        }
        previous = {key: getattr(self.config, key) for key in updates}
        for key, value in updates.items():
            if value is not None:
                setattr(self.config, key, value)
        try:
            self.config.check_latent_settings()
        except ValueError:
            for key, value in previous.items():
                setattr(self.config, key, value)
            raise

    @property
    def thinking_token_id(self) -> int | None:
        return self.config.thinking_token_id

    # ---- delegation that PEFT, TRL and resize_token_embeddings rely on -----------------------

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: torch.nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> torch.nn.Module | None:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, new_embeddings: torch.nn.Module) -> None:
        self.language_model.set_output_embeddings(new_embeddings)

    def get_decoder(self) -> torch.nn.Module:
        return self.language_model.get_decoder()

    @property
    def base_model(self) -> LatentBackbone:
        """The decoder stack *with* latent inputs (TRL's chunked losses call this, see below)."""
        return LatentBackbone(self)

    # ---- forward --------------------------------------------------------------------------

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: Any = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast | tuple:
        """Causal-LM forward with latent ``<thinking>`` positions.

        Same arguments and outputs as the wrapped model's forward. The KV cache is ``cache``
        (the deprecated ``past_key_values`` is accepted too). ``inputs_embeds`` without
        ``input_ids`` bypasses the latent logic (token identities are unknown). ``labels`` give
        the usual shifted cross-entropy (ignore -100) and need ``logits_to_keep=0``.
        """
        cache = take_cache(cache, past_key_values)
        if input_ids is None:
            return self.language_model(
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                position_ids=position_ids,
                **{cache_keyword(self.language_model): cache},
                labels=labels,
                use_cache=use_cache,
                logits_to_keep=logits_to_keep,
                output_hidden_states=output_hidden_states,
                return_dict=return_dict,
                **kwargs,
            )
        loss_kwargs = {key: kwargs.pop(key) for key in _LOSS_KWARGS if key in kwargs}
        cache, attention_mask, position_ids = self._prepare_inputs(
            input_ids, attention_mask, position_ids, cache, use_cache
        )
        run = self._segment_forward(
            input_ids, attention_mask, position_ids, cache, bool(output_hidden_states), kwargs
        )
        # One LM-head pass over all kept positions: per-segment heads would each produce a
        # full vocab x hidden weight gradient in the backward pass.
        logits = self.lm_logits(_keep_positions(run.last_hidden_state, logits_to_keep))
        loss = None
        if labels is not None:
            if logits.shape[1] != input_ids.shape[1]:
                raise ValueError("labels need the logits of every position: use logits_to_keep=0")
            loss = self.language_model.loss_function(
                logits=logits, labels=labels, vocab_size=logits.shape[-1], **loss_kwargs
            )
        output = CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=run.hidden_states,
            cache=cache,
        )
        use_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if use_dict else output.to_tuple()

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The wrapped model's LM head on final hidden states (with its logit scale/softcap)."""
        logits = self.get_output_embeddings()(hidden)
        text_config = self.config.text_config
        scale = getattr(text_config, "logit_scale", None)  # Cohere-style heads
        if scale is not None:
            logits = logits * scale
        softcap = getattr(text_config, "final_logit_softcapping", None)  # Gemma-2-style heads
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    def _prepare_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        cache: Any,
        use_cache: bool | None,
    ) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """Cache to extend (None: internal segment caches), full attention mask, position ids."""
        # Like transformers: no generation cache while training with checkpointing.
        checkpointing = self.training and self.is_activation_checkpointing
        if cache is None and use_cache and not checkpointing:
            cache = DynamicCache(config=self.config.text_config)
        past_length = cache.get_seq_length() if cache is not None else 0
        batch, length = input_ids.shape
        if attention_mask is None and position_ids is not None and length > 1:
            if bool((position_ids.diff(dim=-1) != 1).any()):
                # Packed rows (TRL padding_free / packing) would let one sequence's <thinking>
                # read the previous sequence's state.
                raise ValueError("packed sequences are not supported; pass an attention mask")
        if attention_mask is None:
            attention_mask = torch.ones(
                batch, past_length + length, dtype=torch.long, device=input_ids.device
            )
        if position_ids is None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, past_length:]
        return cache, attention_mask, position_ids.expand(batch, -1)

    def _latent_columns(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, carry: LatentCarry | None
    ) -> torch.Tensor:
        """``(batch, length)`` bool: ``<thinking>`` tokens whose previous position is real."""
        length = input_ids.shape[1]
        past_length = attention_mask.shape[1] - length
        if self.thinking_token_id is None:
            return torch.zeros_like(input_ids, dtype=torch.bool)
        real = attention_mask.bool()
        previous_real = torch.zeros_like(input_ids, dtype=torch.bool)
        previous_real[:, 1:] = real[:, past_length : past_length + length - 1]
        if past_length > 0 and carry is not None:
            if carry.hidden.shape[0] != input_ids.shape[0]:
                raise ValueError("the cache's latent carry has another batch size (beam search?)")
            previous_real[:, 0] = real[:, past_length - 1]
        return (input_ids == self.thinking_token_id) & previous_real & real[:, past_length:]

    def _segment_forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any,
        all_hidden_states: bool,
        model_kwargs: dict[str, Any],
    ) -> _SegmentRun:
        """Run the decoder in passes (:mod:`~latent_env.thoughts.schedule`), join the states."""
        past_length = attention_mask.shape[1] - input_ids.shape[1]
        carry = get_carry(cache) if past_length > 0 else None
        latent = self._latent_columns(input_ids, attention_mask, carry)
        embeds = self.get_input_embeddings()(input_ids)
        inputs = _PassInputs(
            embeds, latent, attention_mask, position_ids, all_hidden_states, model_kwargs
        )
        if cache is not None:
            return self._aligned_passes(inputs, cache, carry)
        return self._wave_passes(inputs)

    def _aligned_passes(self, inputs: _PassInputs, cache: Any, carry: Any) -> _SegmentRun:
        """All rows cut at the union of latent columns; extends the caller's cache in place."""
        length = inputs.embeds.shape[1]
        past_length = inputs.attention_mask.shape[1] - length
        starts = aligned_starts(inputs.latent)
        decoder = self.language_model.base_model
        last_parts, layer_parts = [], []
        for start, end in zip(starts, starts[1:] + [length], strict=True):
            segment = inputs.embeds[:, start:end]
            if bool(inputs.latent[:, start].any()):
                segment = self._insert_latent(segment, inputs.latent[:, start], carry)
            outputs = decoder(
                inputs_embeds=segment,
                attention_mask=inputs.attention_mask[:, : past_length + end],
                position_ids=inputs.position_ids[:, start:end],
                **{cache_keyword(decoder): cache},
                use_cache=True,
                output_hidden_states=inputs.all_hidden_states,
                **inputs.model_kwargs,
            )
            last_parts.append(outputs.last_hidden_state)
            layer_parts.append(outputs.hidden_states)
            carry = self._carry(outputs.last_hidden_state[:, -1])
        set_carry(cache, carry)
        hidden_states = None
        if inputs.all_hidden_states:
            hidden_states = tuple(torch.cat(layer, 1) for layer in zip(*layer_parts, strict=True))
        return _SegmentRun(torch.cat(last_parts, 1), hidden_states)

    def _wave_passes(self, inputs: _PassInputs) -> _SegmentRun:
        """Pass i runs every row's i-th segment; internal replay-safe caches between passes."""
        decoder = self.language_model.base_model
        plan = wave_plan(inputs.latent)
        if plan.passes == 1:  # no latent: exactly the wrapped decoder
            outputs = decoder(
                inputs_embeds=inputs.embeds,
                attention_mask=inputs.attention_mask,
                position_ids=inputs.position_ids,
                use_cache=False,
                output_hidden_states=inputs.all_hidden_states,
                **inputs.model_kwargs,
            )
            return _SegmentRun(outputs.last_hidden_state, outputs.hidden_states)
        batch, _, width = inputs.embeds.shape
        cache, masks, last_parts, layer_parts, carry = SegmentCache(), [], [], [], None
        with self._replay_safe_checkpointing():
            for index, columns in enumerate(plan.columns):
                real, safe = columns >= 0, columns.clamp(min=0)
                block = inputs.embeds.gather(1, safe.unsqueeze(-1).expand(-1, -1, width))
                if index > 0:  # each row's segment after the first starts with its latent
                    block = self._insert_latent(block, real[:, 0], carry)
                masks.append(inputs.attention_mask.long().gather(1, safe) * real)
                outputs = decoder(
                    inputs_embeds=block,
                    attention_mask=torch.cat(masks, 1),
                    position_ids=inputs.position_ids.gather(1, safe),
                    **{cache_keyword(decoder): cache},
                    use_cache=False,
                    output_hidden_states=inputs.all_hidden_states,
                    **inputs.model_kwargs,
                )
                last_parts.append(outputs.last_hidden_state)
                layer_parts.append(outputs.hidden_states)
                if index + 1 < plan.passes:
                    last_real = (real.sum(1) - 1).clamp(min=0)
                    carry = self._carry(outputs.last_hidden_state[torch.arange(batch), last_real])
                    cache = cache.following()
        where = plan.inverse.unsqueeze(-1).expand(-1, -1, width)
        hidden_states = None
        if inputs.all_hidden_states:
            hidden_states = tuple(
                torch.cat(layer, 1).gather(1, where) for layer in zip(*layer_parts, strict=True)
            )
        return _SegmentRun(torch.cat(last_parts, 1).gather(1, where), hidden_states)

    def _carry(self, hidden: torch.Tensor) -> LatentCarry:
        """State a following ``<thinking>`` is built from (logits only needed for fusion)."""
        logits = self.lm_logits(hidden) if self.config.mode == "fusion" else None
        return LatentCarry(hidden, logits)

    def _insert_latent(
        self, segment_embeds: torch.Tensor, rows: torch.Tensor, carry: LatentCarry
    ) -> torch.Tensor:
        """Replace the first column's embedding by the latent one in the rows that think."""
        latent = latent_input_embedding(
            carry.hidden,
            carry.logits,
            self.get_input_embeddings().weight,
            mode=self.config.mode,
            alpha=self.config.alpha,
            top_p=self.config.fusion_top_p,
            temperature=self.config.fusion_temperature,
            thinking_token_id=self.thinking_token_id,
            detach=self.config.detach_latent,
        ).to(segment_embeds.dtype)
        first = torch.where(rows.unsqueeze(-1), latent, segment_embeds[:, 0])
        return torch.cat([first.unsqueeze(1), segment_embeds[:, 1:]], dim=1)

    @contextmanager
    def _replay_safe_checkpointing(self):
        """Let checkpointed layers keep the segment cache (its updates are replay-safe)."""
        layers = [
            module
            for module in self.language_model.modules()
            if isinstance(module, GradientCheckpointingLayer) and module.gradient_checkpointing
        ]
        if not (self.training and layers):
            yield
            return
        checkpoint_fn = getattr(layers[0], "_gradient_checkpointing_func", None)
        if getattr(checkpoint_fn, "keywords", {}).get("use_reentrant", False):
            raise ValueError(
                "LatentThoughtModel needs non-reentrant gradient checkpointing: pass "
                "activation_checkpointing_kwargs={'use_reentrant': False}"
            )
        for layer in layers:
            layer._can_checkpoint_with_cache = True
        try:
            yield
        finally:
            for layer in layers:
                del layer._can_checkpoint_with_cache


def _keep_positions(hidden: torch.Tensor, logits_to_keep: int | torch.Tensor) -> torch.Tensor:
    """The positions whose logits are returned (transformers' ``logits_to_keep`` convention)."""
    if isinstance(logits_to_keep, torch.Tensor):
        return hidden[:, logits_to_keep]
    return hidden[:, -logits_to_keep:] if logits_to_keep else hidden


def add_thinking_token(
    model: Any, tokenizer: Any, token: str = THINKING_TOKEN, **settings: Any
) -> LatentThoughtModel:
    """Add ``token`` to ``tokenizer`` as a special token, resize ``model``, wrap it.

    The new embedding row (and the new LM-head row when the head is untied) starts at the mean
    of the existing rows, so ``<thinking>`` begins as an "average" token rather than noise.
    ``settings`` are passed to :meth:`LatentThoughtModel.wrap` (mode, alpha, fusion_top_p, ...).
    """
    if isinstance(model, LatentThoughtModel):
        raise TypeError("model is already a LatentThoughtModel")
    added = tokenizer.add_tokens([token], special_tokens=True)
    token_id = tokenizer.convert_tokens_to_ids(token)
    old_rows = model.get_input_embeddings().weight.shape[0]
    if token_id >= old_rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    if added:  # a token the model already knew keeps its trained row
        with torch.no_grad():
            for matrix in _embedding_matrices(model):
                matrix[token_id] = matrix[: min(old_rows, token_id)].mean(dim=0)
    return LatentThoughtModel.wrap(
        model, thinking_token_id=token_id, thinking_token=token, **settings
    )


def _embedding_matrices(model: Any) -> list[torch.Tensor]:
    matrices = [model.get_input_embeddings().weight]
    head = model.get_output_embeddings()
    if head is not None and head.weight.data_ptr() != matrices[0].data_ptr():
        matrices.append(head.weight)
    return matrices
