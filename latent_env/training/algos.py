"""The TRL config class of each RL algorithm (imported lazily: TRL is heavy to import)."""

from __future__ import annotations

from typing import Any

# TRL removed PPOTrainer in 1.13; the ppo extra pins the last line that has it.
PPO_INSTALL = "pip install 'latent-env[ppo]'"
PPO_CLONE_INSTALL = "make venv-ppo, then run .venv-ppo/bin/python train_rl.py --algo ppo"


def config_class(algo: str) -> Any:
    if algo == "grpo":
        from trl import GRPOConfig

        return GRPOConfig
    if algo == "rloo":
        from trl import RLOOConfig

        return RLOOConfig
    if algo == "ppo":
        return ppo_module().PPOConfig
    raise ValueError(f"--algo must be grpo, rloo or ppo, got {algo!r}")


def ppo_module() -> Any:
    """``trl.experimental.ppo``, or a ``ValueError`` whose one line says how to install it."""
    try:
        from trl.experimental import ppo
    except ImportError:
        import trl

        raise ValueError(
            f"--algo ppo needs TRL's PPOTrainer, which trl {trl.__version__} does not have (TRL "
            f"removed it in 1.13): {PPO_INSTALL} (in a clone: {PPO_CLONE_INSTALL})"
        ) from None
    return ppo
