"""The TRL config class of each RL algorithm (imported lazily: TRL is heavy to import)."""

from __future__ import annotations

from typing import Any


def config_class(algo: str) -> Any:
    if algo == "grpo":
        from trl import GRPOConfig

        return GRPOConfig
    if algo == "rloo":
        from trl import RLOOConfig

        return RLOOConfig
    if algo == "ppo":
        # PPO lives in trl.experimental and only up to trl 1.12.x (pinned in pyproject.toml).
        from trl.experimental.ppo import PPOConfig

        return PPOConfig
    raise ValueError(f"--algo must be grpo, rloo or ppo, got {algo!r}")
