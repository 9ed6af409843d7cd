"""``LatentThoughtModel.base_model``: the decoder stack with latent ``<thinking>`` inputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from transformers.modeling_outputs import BaseModelOutputWithPast

from latent_env.thoughts.segment_cache import cache_keyword, take_cache

if TYPE_CHECKING:
    from latent_env.thoughts.model import LatentThoughtModel


class LatentBackbone:
    """What ``LatentThoughtModel.base_model`` returns: the decoder stack with latent inputs.

    TRL's memory-saving loss paths (SFT's fused LM head, its default loss since trl 1.15, and
    ``loss_type="chunked_nll"`` before; the liger paths of GRPO/DPO/KTO) call
    ``model.base_model(input_ids=..., attention_mask=...)``, read
    ``.last_hidden_state`` and apply the LM head weight themselves. The wrapped model's own
    decoder would treat ``<thinking>`` as an ordinary token, so this view runs the latent
    segment-wise forward and returns its final (norm'ed) hidden states instead. Any other
    attribute is the wrapped decoder's.
    """

    def __init__(self, owner: LatentThoughtModel) -> None:
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner.language_model.base_model, name)

    def __call__(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        past_key_values: Any = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPast:
        owner = self._owner
        cache = take_cache(cache, past_key_values)
        if input_ids is None:
            decoder = owner.language_model.base_model
            return decoder(
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                position_ids=position_ids,
                **{cache_keyword(decoder): cache},
                use_cache=use_cache,
                output_hidden_states=output_hidden_states,
                **kwargs,
            )
        kwargs.pop("return_dict", None)
        cache, attention_mask, position_ids = owner._prepare_inputs(
            input_ids, attention_mask, position_ids, cache, use_cache
        )
        run = owner._segment_forward(
            input_ids, attention_mask, position_ids, cache, bool(output_hidden_states), kwargs
        )
        return BaseModelOutputWithPast(
            last_hidden_state=run.last_hidden_state,
            hidden_states=run.hidden_states,
            cache=cache,
        )
