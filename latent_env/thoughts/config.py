"""Configuration of :class:`~latent_env.thoughts.model.LatentThoughtModel`.

The wrapped causal LM's own config is kept whole as ``text_config`` (the sub-config name
transformers' ``get_text_config()`` looks for, so caches, generation and resizing all find the
decoder's sizes), next to the latent-thought settings of the current curriculum stage.
"""

from __future__ import annotations

from typing import ClassVar

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from latent_env.actions import THINKING_TOKEN  # one spelling for the grammar and the model

__all__ = ["LATENT_MODES", "THINKING_TOKEN", "LatentThoughtConfig"]
LATENT_MODES = ("hidden", "fusion")


class LatentThoughtConfig(PreTrainedConfig):
    """Config of a causal LM whose ``<thinking>`` positions read a latent input embedding.

    Attributes:
        text_config: the wrapped causal LM's config (any ``AutoModelForCausalLM`` architecture).
        mode: ``"hidden"`` feeds the previous position's last hidden state h_{t-1};
            ``"fusion"`` feeds ``alpha * h_{t-1} + (1 - alpha) * sum_w P(w) E(w)`` (LT-Tuning stage 3).
        alpha: weight of h_{t-1} in fusion mode (ignored in hidden mode).
        fusion_top_p: nucleus kept from the previous position's next-token distribution in fusion
            mode. (Not named ``top_p``: transformers treats that name as a generation flag.)
        fusion_temperature: softmax temperature of that distribution.
        thinking_token: the special token's text.
        thinking_token_id: its id in the tokenizer / embedding matrix.
        detach_latent: stop gradients from flowing into the state that builds a latent embedding.
    """

    model_type: ClassVar[str] = "latent_thought"
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
    }

    text_config: PreTrainedConfig | dict | None = None
    mode: str = "hidden"
    alpha: float = 0.5
    fusion_top_p: float = 0.9
    fusion_temperature: float = 1.0
    thinking_token: str = THINKING_TOKEN
    thinking_token_id: int | None = None
    detach_latent: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.check_latent_settings()

    def check_latent_settings(self) -> None:
        """Raise ``ValueError`` if mode, alpha, fusion_top_p or fusion_temperature is invalid."""
        if self.mode not in LATENT_MODES:
            raise ValueError(f"mode must be one of {LATENT_MODES}, got {self.mode!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")
        if not 0.0 < self.fusion_top_p <= 1.0:
            raise ValueError(f"fusion_top_p must lie in (0, 1], got {self.fusion_top_p}")
        if self.fusion_temperature <= 0.0:
            raise ValueError(f"fusion_temperature must be positive, got {self.fusion_temperature}")
