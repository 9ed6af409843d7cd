"""Prompt screening for the RL stage: spend the few RL steps a CPU affords where they can teach.

GRPO and RLOO learn only from differences between completions of one prompt. After SFT, most
prompts are already answered right: their completions differ by wording, and the normalised
advantage turns that noise into updates. Screening runs the starting policy greedily (the way it
is evaluated) on candidate prompts, through the environment, and keeps the prompts whose answer it
gets wrong: there a sampled latent that fixes the answer earns a clearly higher reward. DAPO's
dynamic sampling and online difficulty filtering drop solved prompts for the same reason.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from latent_env.training.reward import EnvReward


def greedy_policy(model_path: str, max_new_tokens: int, batch_size: int = 16) -> Any:
    """The starting policy as it is evaluated: greedy decoding, the RL completion length."""
    from latent_env.agents.hf import HFPolicy

    return HFPolicy(model=model_path, temperature=0.0, max_new_tokens=max_new_tokens,
                    batch_size=batch_size)


def screen_for_misses(env: Any, policy: Any, tasks: Sequence[Any]) -> tuple[list[Any], dict]:
    """The tasks whose latent from ``policy`` (anything with ``act_batch``) leaves the answer
    wrong, in their order, and counts.

    Tasks without an answer cannot be judged and are kept. The stats give the screened and kept
    counts, the policy's accuracy and mean gain on the judged tasks, and the seconds taken.
    """
    started = time.perf_counter()
    judged = [t for t in tasks if t.answer is not None]
    actions = policy.act_batch([env.new_episode(t).prompt for t in judged]) if judged else []
    reward = EnvReward(env, term="loglik_gain")
    gains = reward([""] * len(judged), actions, task=[t.to_dict() for t in judged])
    hits = [bool(info["reward/answer_hit"]) for info in reward.last_infos]
    missed = {t.id for t, hit in zip(judged, hits) if not hit}
    kept = [t for t in tasks if t.answer is None or t.id in missed]
    return kept, {
        "screened": len(tasks),
        "kept": len(kept),
        "accuracy": sum(hits) / len(hits) if hits else None,
        "mean_gain": sum(gains) / len(gains) if gains else None,
        "seconds": round(time.perf_counter() - started, 1),
    }
